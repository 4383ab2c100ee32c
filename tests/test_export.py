"""``swapface export`` and the ONNX Runtime engine on real faces.

The session's ``trained`` model (lightweight 64 px, mask head, 200 iterations) is exported and
checked against PyTorch on crops of woman_a and woman_b: the float outputs of each decoder
and of the mask head within 1e-4, each ONNX side equal to its own torch side (and far from
the other), and convert with the ``.onnx`` file alone equal to convert with the folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from swapface import __version__
from swapface.align.store import AlignmentsStore
from swapface.cli.main import main
from swapface.convert.config import ConvertConfig
from swapface.convert.pipeline import run_convert
from swapface.core.images import read_image
from swapface.media.video import iter_video
from swapface.models import MODELS, build_model
from swapface.models.base import model_options
from swapface.models.checkpoint import freeze_architecture, read_architecture, save_checkpoint
from swapface.swap import OnnxModel, TorchModel, load_inference, load_model
from swapface.swap.export import (
    ExportConfig,
    cache_path,
    checked_export,
    checkpoint_key,
    max_abs_diff,
    run_export,
)
from swapface.swap.geometry import crop, model_matrix
from swapface.swap.onnx_model import INPUT_NAME, open_session, session_metadata
from tests.conftest import TRAINED_ITERATIONS, Pair

TOLERANCE = 1e-4  # the bound on float outputs


def _crops(pair: Pair, coverage: float, size: int, per_person: int = 4) -> np.ndarray:
    """BGR uint8 model crops of real faces: ``per_person`` of woman_a, then of woman_b."""
    out = []
    for person in (pair.a, pair.b):
        with AlignmentsStore(person.store, readonly=True) as store:
            records = {f.index: f for f in store.frames() if len(f.faces) == 1}
        wanted = dict(sorted(records.items())[:per_person])
        for index, _, image in iter_video(person.video):
            if index in wanted:
                out.append(crop(image, model_matrix(wanted[index].faces[0], coverage, size), size))
            if index >= max(wanted):
                break
    assert len(out) == 2 * per_person
    return np.stack(out)


def _rgb(crops: np.ndarray) -> np.ndarray:
    """BGR uint8 NHWC → RGB float NCHW in [0, 1]: the graph's input."""
    return np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2), np.float32) / np.float32(255)


def _torch_float(model: TorchModel, x: np.ndarray, side: str) -> list[np.ndarray]:
    with torch.inference_mode():
        rgb, mask = model.module.decode(model.module.encode(torch.from_numpy(x)), side)
    return [t.numpy() for t in ((rgb,) if mask is None else (rgb, mask))]


def _onnx_float(model: OnnxModel, x: np.ndarray, side: str) -> list[np.ndarray]:
    return model._session(side).run(None, {INPUT_NAME: x})


@pytest.fixture(scope="module")
def torch_model(trained: Path) -> TorchModel:
    return load_model(trained, cpu=True)


@pytest.fixture(scope="module")
def crops(pair: Pair, torch_model: TorchModel) -> np.ndarray:
    return _crops(pair, torch_model.coverage, torch_model.input_size)


@pytest.fixture(scope="module")
def exported(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both decoders of the session's model, exported by ``swapface export``."""
    root = tmp_path_factory.mktemp("export")
    out = {}
    for side in "ab":
        out[side] = root / f"model_{side}.onnx"
        assert main(["export", "-m", str(trained), "-o", str(out[side]), "--side", side]) == 0
    assert sorted(p.name for p in root.iterdir()) == ["model_a.onnx", "model_b.onnx"]  # no temp left
    return out


# ------------------------------------------------------------------ the graph
def test_each_exported_side_matches_its_torch_decoder_on_real_faces(exported, torch_model, crops):
    x = _rgb(crops)
    outputs = {}
    for side in "ab":
        onnx_model = OnnxModel.open(exported[side], cpu=True)
        got, want = _onnx_float(onnx_model, x, side), _torch_float(torch_model, x, side)
        assert len(got) == len(want) == 2  # face and mask
        for g, w in zip(got, want, strict=True):
            assert g.shape == w.shape and np.abs(g - w).max() <= TOLERANCE
        # one face at a time and all at once: the batch axis is really dynamic
        single = _onnx_float(onnx_model, x[:1], side)[0]
        assert np.abs(single - want[0][:1]).max() <= TOLERANCE
        outputs[side] = got
    # The decoders draw different people: an export of the wrong side would fail the match
    # above by far more than the tolerance.
    assert np.abs(outputs["a"][0] - outputs["b"][0]).mean() > 100 * TOLERANCE
    assert np.abs(outputs["a"][0] - _torch_float(torch_model, x, "b")[0]).max() > 100 * TOLERANCE


def test_infer_keeps_torch_conventions_bgr_uint8_and_masks(exported, torch_model, crops):
    onnx_model = OnnxModel.open(exported["b"], cpu=True)
    faces, masks = onnx_model.infer(list(crops), "b")
    want_faces, want_masks = torch_model.infer(list(crops), "b")
    assert faces.dtype == np.uint8 and faces.shape == want_faces.shape
    assert np.abs(faces.astype(int) - want_faces).max() <= 1  # a rounding flip at most
    assert (faces == want_faces).mean() > 0.999
    assert masks is not None and want_masks is not None
    assert masks.shape == want_masks.shape and np.abs(masks - want_masks).max() <= TOLERANCE
    # BGR out: swapping channels would be far off on skin tones
    assert np.abs(faces[..., ::-1].astype(int) - want_faces).mean() > 5
    with pytest.raises(ValueError, match="holds decoder"):
        onnx_model.infer(list(crops[:1]), "a")


def test_metadata_describes_the_model(exported, trained, torch_model):
    arch = read_architecture(trained)
    meta = {p.key: p.value for p in onnx.load(str(exported["a"])).metadata_props}
    assert meta["input_size"] == meta["output_size"] == "64"
    assert float(meta["coverage"]) == arch["coverage"] == torch_model.coverage
    assert meta["side"] == "a" and meta["sides"] == "a,b" and meta["has_mask"] == "true"
    assert meta["model"] == "lightweight" and json.loads(meta["arch"]) == arch
    assert meta["iteration"] == str(TRAINED_ITERATIONS) and meta["swapface_version"] == __version__
    assert meta["checkpoint"] == checkpoint_key(trained)
    assert "synthetic media" in meta["synthetic_media"]
    loaded = OnnxModel.open(exported["a"])
    assert (loaded.input_size, loaded.output_size, loaded.sides, loaded.has_mask, loaded.device) == \
        (64, 64, ("a",), True, "cpu")
    assert loaded.iteration == TRAINED_ITERATIONS


def _model_folder(name: str, root: Path, **options: object) -> TorchModel:
    torch.manual_seed(0)
    module = build_model(name, options)
    with torch.no_grad():  # untrained gates are 0: open them so attention is in the graph
        for m in module.modules():
            if hasattr(m, "gamma"):
                m.gamma.fill_(0.5)
    folder = root / name
    freeze_architecture(folder, {"model": name, "options": model_options(module), "coverage": 0.625,
                                 "input_size": module.input_size, "output_size": module.output_size})
    save_checkpoint(folder, module, None, {"iteration": 0})
    return load_model(folder, cpu=True)


SMALL = {"lightweight": {}, "original": {}, "resnet": {"size": 64, "base_filters": 8},
         "gan": {"size": 64, "base_filters": 8, "encoder_dim": 64}}


@pytest.mark.parametrize("name", MODELS.names())
def test_every_registered_model_exports_with_a_dynamic_batch(name, tmp_path, pair):
    """gan's attention once reshaped to the traced batch size: fine at 2, wrong at any other."""
    model = _model_folder(name, tmp_path, **SMALL.get(name, {}))
    graph, _ = checked_export(model, "b")
    x = _rgb(_crops(pair, model.coverage, model.input_size, per_person=3))
    for batch in (1, 5):
        assert max_abs_diff(model, graph, "b", x[:batch]) <= TOLERANCE


# ------------------------------------------------------------------ convert with the file alone
def _convert(model: Path, pair: Pair, out: Path, engine: str = "auto") -> tuple[dict[int, np.ndarray], str]:
    summary = run_convert(ConvertConfig(input=pair.a.video, model_dir=model, output=out,
                                        alignments=pair.a.store, frame_ranges=["0-60"],
                                        discard_frames=True, engine=engine))
    assert summary.faces_swapped >= 3
    frames = {int(p.stem.rsplit("_", 1)[1]): read_image(p) for p in sorted(out.glob("*.png"))}
    return frames, summary.engine


def test_convert_with_the_onnx_file_alone_matches_torch(trained, pair, tmp_path, capsys):
    folder = tmp_path / "model"
    shutil.copytree(trained, folder)
    onnx_file = tmp_path / "model.onnx"
    assert main(["export", "-m", str(folder), "-o", str(onnx_file)]) == 0
    shutil.rmtree(folder)  # the file needs no model folder
    swapped, engine = _convert(onnx_file, pair, tmp_path / "onnx")
    reference, torch_engine = _convert(trained, pair, tmp_path / "torch", engine="torch")
    assert (engine, torch_engine) == ("onnxruntime", "torch")
    assert sorted(swapped) == sorted(reference) == list(range(61))
    source = {i: img for i, _, img in iter_video(pair.a.video) if i in (0, 20)}
    for index in (0, 20):
        assert np.abs(reference[index].astype(int) - source[index]).mean() > 0.2  # really swapped
    for index, image in swapped.items():
        diff = np.abs(image.astype(int) - reference[index])
        assert diff.max() <= 3 and diff.mean() < 0.01, (index, diff.max(), diff.mean())
    capsys.readouterr()
    assert main(["convert", str(pair.a.video), "-m", str(onnx_file), "-o", str(tmp_path / "cli"),
                 "--alignments", str(pair.a.store), "--frame-ranges", "0-20", "--discard-frames",
                 "-q"]) == 0
    assert "onnxruntime" in capsys.readouterr().err


# ------------------------------------------------------------------ --engine onnx on a folder
def test_engine_onnx_on_a_folder_caches_and_re_exports_a_new_checkpoint(trained, tmp_path, crops):
    folder = tmp_path / "model"
    shutil.copytree(trained, folder, ignore=shutil.ignore_patterns("engine_*.onnx"))
    cache = cache_path(folder, "b")
    first = load_inference(folder, "onnx", cpu=True, side="b")
    assert isinstance(first, OnnxModel) and first.sides == ("a", "b") and cache.is_file()
    stamp = cache.stat().st_mtime_ns
    again = load_inference(folder, "onnx", cpu=True, side="b")
    assert cache.stat().st_mtime_ns == stamp  # the cache was used, not rewritten
    old_faces, _ = again.infer(list(crops), "b")

    # A newer checkpoint: decoder b draws redder faces now.
    module = load_model(folder, cpu=True).module
    with torch.no_grad():
        module.decoders["b"].rgb.bias[0] += 1.0
    save_checkpoint(folder, module, None, {"iteration": TRAINED_ITERATIONS + 1})
    fresh = load_inference(folder, "onnx", cpu=True, side="b")
    meta = session_metadata(open_session(cache, cpu=True), cache)
    assert meta["iteration"] == str(TRAINED_ITERATIONS + 1) and meta["checkpoint"] == checkpoint_key(folder)
    faces, _ = fresh.infer(list(crops), "b")
    want, _ = load_model(folder, cpu=True).infer(list(crops), "b")
    assert np.abs(faces.astype(int) - want).max() <= 1
    assert np.abs(faces.astype(int) - old_faces).mean() > 5  # not the stale weights

    # Decoder a is exported on first use, into its own cache file, and is side a's.
    assert not cache_path(folder, "a").exists()
    faces_a, _ = fresh.infer(list(crops), "a")
    want_a, _ = load_model(folder, cpu=True).infer(list(crops), "a")
    assert cache_path(folder, "a").is_file() and np.abs(faces_a.astype(int) - want_a).max() <= 1


def test_auto_runs_onnx_on_the_cpu_for_long_jobs_only(trained, tmp_path):
    folder = tmp_path / "model"
    # without the export cache other tests' live runs leave in the shared fixture folder
    shutil.copytree(trained, folder, ignore=shutil.ignore_patterns("engine_*.onnx"))
    assert isinstance(load_inference(folder, "auto", cpu=True, faces=10), TorchModel)
    assert not cache_path(folder, "b").exists()  # a short job pays no export
    assert isinstance(load_inference(folder, "auto", cpu=True, faces=None), OnnxModel)  # live
    assert isinstance(load_inference(folder, "auto", cpu=True, faces=5000), OnnxModel)
    assert isinstance(load_inference(folder, "torch", cpu=True, faces=5000), TorchModel)


# ------------------------------------------------------------------ bad inputs: one clear line
def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if ": error:" in line]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def test_export_of_bad_inputs_is_one_clear_line(trained, tmp_path, capsys):
    out = str(tmp_path / "m.onnx")
    assert main(["export", "-m", str(tmp_path / "nope"), "-o", out]) == 2
    assert "model folder not found" in _one_error_line(capsys)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(trained / "model.json", fresh / "model.json")
    assert main(["export", "-m", str(fresh), "-o", out]) == 2
    assert "no checkpoint yet" in _one_error_line(capsys)
    assert main(["export", "-m", str(trained), "-o", str(tmp_path)]) == 2
    assert "is a folder" in _one_error_line(capsys)
    (tmp_path / "m.onnx").write_bytes(b"keep me")
    assert main(["export", "-m", str(trained), "-o", out]) == 2
    assert "--overwrite" in _one_error_line(capsys)
    assert (tmp_path / "m.onnx").read_bytes() == b"keep me"
    assert not list(tmp_path.glob(".m*"))  # no temp files either


def test_convert_and_live_refuse_bad_onnx_files_in_one_line(pair, tmp_path, capsys, exported):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(exported["b"].read_bytes()[:5000])
    foreign = tmp_path / "foreign.onnx"  # a valid ONNX graph that swapface did not write
    node = onnx.helper.make_node("Identity", ["x"], ["y"])
    value = onnx.helper.make_tensor_value_info
    onnx.save(onnx.helper.make_model(onnx.helper.make_graph(
        [node], "g", [value("x", onnx.TensorProto.FLOAT, [1])], [value("y", onnx.TensorProto.FLOAT, [1])])),
        str(foreign))
    convert = ["convert", str(pair.a.video), "--alignments", str(pair.a.store), "-o",
               str(tmp_path / "out"), "--frame-ranges", "0-1", "-q", "-m"]
    assert main([*convert, str(corrupt)]) == 2
    assert "not a readable ONNX model" in _one_error_line(capsys)
    assert main([*convert, str(foreign)]) == 2
    assert "not a swapface ONNX export" in _one_error_line(capsys)
    assert main([*convert, str(exported["b"]), "--engine", "torch"]) == 2
    assert "needs the model folder" in _one_error_line(capsys)
    assert main(["live", "-m", str(corrupt), "--source", str(pair.a.video), "--no-mjpeg",
                 "--max-frames", "1"]) == 2
    assert "not a readable ONNX model" in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_export_config_refuses_other_suffixes(trained, tmp_path):
    from swapface.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\.onnx"):
        run_export(ExportConfig(model_dir=trained, output=tmp_path / "model.pt"))
