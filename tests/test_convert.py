"""swapface convert end to end: a tiny model, a short clip and its own alignments store."""

from __future__ import annotations

import copy
import dataclasses
import shutil
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from swapface.align.store import AlignmentsStore
from swapface.align.transform import alignment_matrix
from swapface.cli.main import main
from swapface.convert.config import ConvertConfig, parse_ranges
from swapface.convert.pipeline import run_convert
from swapface.core.errors import ConfigError, InputError
from swapface.core.images import read_image, read_metadata, write_image
from swapface.media.video import iter_video, probe_video
from swapface.models.checkpoint import read_architecture
from swapface.swap import Causal, Centred, SwapOptions, load_model
from swapface.swap.blend import roi_of
from swapface.swap.geometry import crop, model_matrix
from tests.extract_helpers import cut_clip, extract

CLIP_FRAMES = 30
COVERAGE = 0.625


SWAP_FIELDS = {f.name for f in dataclasses.fields(SwapOptions)}


@pytest.fixture(scope="module")
def setup(data_dir, trained, tmp_path_factory) -> dict:
    """The session's trained model and a 30-frame clip of woman_b with its own store."""
    root = tmp_path_factory.mktemp("convert")
    video = data_dir / "video"
    model_dir = trained
    clip = root / "clip.mp4"
    cut_clip(video / "woman_b.mp4", clip, CLIP_FRAMES, audio=True)
    _, frames = extract(clip, root / "clip", every_n=1, size=128)
    store = root / "clip" / "alignments.db"
    inputs = [image for _, _, image in iter_video(clip)]
    records = {f.index: f for f in frames}
    assert len(inputs) == CLIP_FRAMES and records[10].faces
    return {"root": root, "model": model_dir, "clip": clip, "store": store, "inputs": inputs,
            "records": records}


def _cfg(setup, output: Path, **kw) -> ConvertConfig:
    swap = SwapOptions(**{k: kw.pop(k) for k in list(kw) if k in SWAP_FIELDS})
    return ConvertConfig(input=setup["clip"], model_dir=setup["model"], output=output,
                         alignments=setup["store"], swap=swap, **kw)


def _frames(folder: Path) -> dict[int, np.ndarray]:
    return {int(p.stem.rsplit("_", 1)[1]): read_image(p) for p in sorted(folder.glob("*.png"))}


def _face_roi(setup, index: int, shape, margin: int = 2) -> np.ndarray:
    """Boolean frame mask of the boxes that the model windows of frame ``index`` cover."""
    out = np.zeros(shape[:2], bool)
    size = read_architecture(setup["model"])["output_size"]
    for face in setup["records"][index].faces:
        box = roi_of(model_matrix(face, COVERAGE, size), size, shape)
        assert box is not None
        x0, y0, x1, y1 = box
        out[max(0, y0 - margin):y1 + margin, max(0, x0 - margin):x1 + margin] = True
    return out


def test_parse_ranges():
    assert parse_ranges(["10-50", "7"]) == [(10, 50), (7, 7)]
    with pytest.raises(ConfigError):
        parse_ranges(["9-3"])
    with pytest.raises(ConfigError):
        ConvertConfig(input=Path("x"), model_dir=Path("m"), output=Path("o"), discard_frames=True)


def test_video_output(setup, tmp_path):
    out = tmp_path / "swapped.mp4"
    code = main(["convert", str(setup["clip"]), "-m", str(setup["model"]), "-o", str(out),
                 "--alignments", str(setup["store"]), "--preset", "ultrafast", "-q"])
    assert code == 0
    info, src = probe_video(out), probe_video(setup["clip"])
    assert info.fps == src.fps
    assert sum(1 for _ in iter_video(out)) == CLIP_FRAMES
    assert info.has_audio
    with av.open(str(out)) as container:
        tags = {k.lower(): v for k, v in container.metadata.items()}
    assert "synthetic media" in tags.get("comment", "")
    # Existing output refused without --overwrite, replaced with it.
    with pytest.raises(ConfigError, match="overwrite"):
        run_convert(_cfg(setup, out, preset="ultrafast"))
    run_convert(_cfg(setup, out, preset="ultrafast", overwrite=True, frame_ranges=["0-1"]))


def test_frame_ranges_png(setup, tmp_path):
    out = tmp_path / "frames"
    summary = run_convert(_cfg(setup, out, frame_ranges=["5-12"]))
    frames = _frames(out)
    assert sorted(frames) == list(range(CLIP_FRAMES))
    assert summary.frames_out == CLIP_FRAMES and summary.frames_swapped == 8
    meta = read_metadata(next(out.glob("*.png")))
    assert meta and meta["synthetic"] is True and meta["generator"] == "swapface"
    for index, image in frames.items():
        original = setup["inputs"][index]
        if 5 <= index <= 12:
            roi = _face_roi(setup, index, image.shape)
            changed = np.any(image != original, axis=2)
            assert changed[roi].mean() > 0.05
            assert not changed[~roi].any()
        else:
            assert np.array_equal(image, original)


def test_discard_frames(setup, tmp_path):
    out = tmp_path / "frames"
    summary = run_convert(_cfg(setup, out, frame_ranges=["3-5", "20"], discard_frames=True))
    assert sorted(_frames(out)) == [3, 4, 5, 20]
    assert summary.frames_in == CLIP_FRAMES and summary.frames_out == 4


def test_missing_store_is_extracted_on_the_fly(setup, tmp_path):
    clip = tmp_path / "my clip.mp4"  # a space in the path on purpose
    shutil.copy(setup["clip"], clip)
    summary = run_convert(ConvertConfig(input=clip, model_dir=setup["model"], output=tmp_path / "o"))
    store = tmp_path / "my clip_alignments.db"
    assert store.is_file()
    with AlignmentsStore(store, readonly=True) as s:
        assert s.count_frames() == CLIP_FRAMES
    assert summary.frames_swapped == CLIP_FRAMES and summary.frames_out == CLIP_FRAMES


def test_store_from_another_video_is_refused(setup, tmp_path):
    with AlignmentsStore(tmp_path / "bad.db") as store:
        store.set_meta("source_frames", 999)
    with pytest.raises(InputError, match="999"):
        run_convert(ConvertConfig(
            input=setup["clip"], model_dir=setup["model"], output=tmp_path / "o2",
            alignments=tmp_path / "bad.db"))
    # Same frame count, other frame size: caught at the first frame, nothing left behind.
    with AlignmentsStore(tmp_path / "other.db") as store:
        store.set_meta("source_frames", CLIP_FRAMES)
        record = setup["records"][10]
        store.put_frame(replace(record, width=record.width * 2, height=record.height * 2))
    out = tmp_path / "o3.mp4"
    with pytest.raises(InputError, match="another video"):
        run_convert(ConvertConfig(input=setup["clip"], model_dir=setup["model"], output=out,
                                  alignments=tmp_path / "other.db"))
    assert not out.exists() and not list(tmp_path.glob("o3*"))


def _lab_gap(image: np.ndarray, original: np.ndarray, region: np.ndarray) -> float:
    a = cv2.cvtColor(image, cv2.COLOR_BGR2LAB)[region].astype(np.float64).mean(axis=0)
    b = cv2.cvtColor(original, cv2.COLOR_BGR2LAB)[region].astype(np.float64).mean(axis=0)
    return float(np.linalg.norm(a - b))


@pytest.mark.parametrize("option", [("mask_type", m) for m in
                                    ("rect", "facehull", "facehullandrect", "components",
                                     "extended", "predicted")]
                         + [("color", c) for c in ("none", "avg-color", "match-hist",
                                                   "color-transfer", "seamless-clone", "border")])
def test_masks_and_colours_stay_in_roi(setup, tmp_path, option):
    index = 10
    out = tmp_path / "f"
    run_convert(_cfg(setup, out, frame_ranges=[str(index)], discard_frames=True,
                     **{option[0]: option[1]}))
    image = _frames(out)[index]
    original = setup["inputs"][index]
    changed = np.any(image != original, axis=2)
    roi = _face_roi(setup, index, image.shape)
    assert changed.any() and not changed[~roi].any()


def test_colour_matching_reduces_lab_gap(setup, tmp_path):
    index = 10
    original = setup["inputs"][index]
    region = np.zeros(original.shape[:2], np.uint8)
    for face in setup["records"][index].faces:
        hull = cv2.convexHull(np.round(face.landmarks).astype(np.int32))
        cv2.fillConvexPoly(region, hull, 1)
    region = region.astype(bool)
    gaps = {}
    for method in ("none", "avg-color", "color-transfer", "border"):
        out = tmp_path / method
        run_convert(_cfg(setup, out, frame_ranges=[str(index)], discard_frames=True,
                         mask_type="facehull", color=method))
        gaps[method] = _lab_gap(_frames(out)[index], original, region)
    assert gaps["avg-color"] < gaps["none"]
    assert gaps["color-transfer"] < gaps["none"]
    assert gaps["border"] < gaps["none"]


def test_model_crop_matches_training_crop(setup):
    """One warp from the frame equals the trainer's view: the stored face's centred window."""
    size = read_architecture(setup["model"])["input_size"]
    faces_dir = setup["root"] / "clip" / "faces"
    for index in (0, 10, 20):
        face = setup["records"][index].faces[0]
        stored = read_image(next(faces_dir.glob(f"clip_{index:06d}_0.*")))
        lo, hi = round(face.size * (1 - COVERAGE) / 2), round(face.size * (1 + COVERAGE) / 2)
        expected = cv2.resize(stored[lo:hi, lo:hi], (size, size), interpolation=cv2.INTER_AREA)
        got = crop(setup["inputs"][index], model_matrix(face, COVERAGE, size), size)
        assert np.abs(got.astype(np.int16) - expected).mean() < 3.0


def test_overwrite_frame_folder_removes_only_our_old_frames(setup, tmp_path):
    out = tmp_path / "frames"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    write_image(out / "holiday.png", setup["inputs"][0])  # the user's own picture: no label
    with pytest.raises(ConfigError, match="overwrite"):
        run_convert(_cfg(setup, out, frame_ranges=["1"], discard_frames=True))
    run_convert(_cfg(setup, out, frame_ranges=["2"], discard_frames=True, overwrite=True))
    assert sorted(p.name for p in out.iterdir()) == ["clip_000002.png", "holiday.png", "keep.txt"]
    # A second convert replaces the first one's frames (they carry the synthetic label).
    run_convert(_cfg(setup, out, frame_ranges=["1"], discard_frames=True, overwrite=True))
    assert sorted(p.name for p in out.iterdir()) == ["clip_000001.png", "holiday.png", "keep.txt"]
    assert np.array_equal(read_image(out / "holiday.png"), setup["inputs"][0])


def _swapped_frames(setup, out: Path) -> list[int]:
    return [i for i, image in sorted(_frames(out).items()) if not np.array_equal(image, setup["inputs"][i])]


def test_input_aligned_dir_keeps_only_faces_left_in_the_folder(setup, tmp_path):
    faces = tmp_path / "faces"
    shutil.copytree(setup["root"] / "clip" / "faces", faces, ignore=shutil.ignore_patterns("masks"))
    for path in sorted(faces.glob("*.png")):
        meta = read_metadata(path)
        if meta["frame_index"] < 10:
            path.unlink()  # the user deleted these faces
        elif meta["frame_index"] < 15:
            path.rename(path.with_name(f"000{meta['frame_index']:02d}_{path.name}"))  # sorted copies
    out = tmp_path / "frames"
    summary = run_convert(_cfg(setup, out, faces=faces))
    assert _swapped_frames(setup, out) == list(range(10, CLIP_FRAMES))
    assert summary.faces_swapped == CLIP_FRAMES - 10
    assert any("10 faces not in --faces" in p for p in summary.problems)


def test_identity_filter_and_nfilter(setup, data_dir, tmp_path):
    reference = tmp_path / "woman b.png"
    write_image(reference, setup["inputs"][25])
    ranges = {"frame_ranges": ["0-3"]}
    keep = run_convert(_cfg(setup, tmp_path / "keep", filter=[reference], **ranges))
    other = run_convert(_cfg(setup, tmp_path / "other", filter=[data_dir / "stills" / "obama.jpg"],
                             **ranges))
    drop = run_convert(_cfg(setup, tmp_path / "drop", nfilter=[reference], **ranges))
    assert (keep.faces_swapped, other.faces_swapped, drop.faces_swapped) == (4, 0, 0)
    assert _swapped_frames(setup, tmp_path / "keep") == [0, 1, 2, 3]
    assert _swapped_frames(setup, tmp_path / "drop") == []


def _jitter(tracks: np.ndarray) -> float:
    """Mean |second difference| of (frames, 68, 2) landmarks."""
    return float(np.linalg.norm(np.diff(tracks, n=2, axis=0), axis=2).mean())


def _smoothed(smoother, frames):
    out = [f for frame in frames for f in smoother.push(frame)] + smoother.flush()
    assert [f.index for f in out] == [f.index for f in frames]
    return out


def test_smoothing_reduces_jitter_and_follows_fast_motion(setup):
    frames = [copy.deepcopy(setup["records"][i]) for i in sorted(setup["records"])]
    raw = np.stack([f.faces[0].landmarks for f in frames])
    smoother = Centred(window=5)
    _smoothed(smoother, frames)
    stats = smoother.stats
    smooth = np.stack([f.faces[0].landmarks for f in frames])
    assert stats.tracks == 1 and stats.faces == len(frames)
    assert _jitter(smooth) < 0.6 * _jitter(raw)
    face = frames[12].faces[0]
    assert face.masks == {}  # stale stored masks dropped; convert redraws them
    np.testing.assert_allclose(face.matrix, alignment_matrix(face.landmarks, face.size, face.face_span))
    # Fast motion: the same landmarks swept ±60 px on a 16-frame period (a whip pan). The
    # centred fit stays on the path; a causal 5-frame mean trails it by ~2 frames.
    t = np.arange(len(frames))
    sweep = 60.0 * np.sin(2 * np.pi * t / 16.0)
    moving = raw + sweep[:, None, None] * np.array([1.0, 0.0])
    truth = smooth + sweep[:, None, None] * np.array([1.0, 0.0])
    for f, lm in zip(frames, moving, strict=True):
        f.faces[0].landmarks = lm
    _smoothed(Centred(window=5), frames)
    followed = np.stack([f.faces[0].landmarks for f in frames])
    causal = np.stack([moving[max(0, i - 4):i + 1].mean(axis=0) for i in t])
    err = np.linalg.norm(followed - truth, axis=2).mean()
    lag_err = np.linalg.norm(causal - truth, axis=2)[4:].mean()
    assert err < 1.0 and lag_err > 10 * err


def test_causal_smoothing_reduces_jitter_without_delay_and_keeps_up_with_fast_motion(setup):
    """Live mode's filter: past frames only, every frame out as it comes in."""
    frames = [copy.deepcopy(setup["records"][i]) for i in sorted(setup["records"])]
    raw = np.stack([f.faces[0].landmarks for f in frames])
    smoother = Causal(fps=30.0)
    for frame in frames:
        assert [f.index for f in smoother.push(frame)] == [frame.index]  # no look-ahead
    assert smoother.flush() == [] and smoother.delay == 0
    calm = np.stack([f.faces[0].landmarks for f in frames])
    assert _jitter(calm) < 0.7 * _jitter(raw)  # measured: 0.60×
    # The whip pan of the centred test: a 5-frame trailing mean lags ~2 frames behind; the
    # speed-adaptive cut-off opens up on fast motion and stays much closer to the path.
    t = np.arange(len(frames))
    sweep = (60.0 * np.sin(2 * np.pi * t / 16.0))[:, None, None] * np.array([1.0, 0.0])
    for f, lm in zip(frames, raw + sweep, strict=True):
        f.faces[0].landmarks = lm
    _smoothed(Causal(fps=30.0), frames)
    followed = np.stack([f.faces[0].landmarks for f in frames])
    moving = raw + sweep
    trailing = np.stack([moving[max(0, i - 4):i + 1].mean(axis=0) for i in t])
    err = np.linalg.norm(followed - (raw + sweep), axis=2)[4:].mean()
    lag_err = np.linalg.norm(trailing - (raw + sweep), axis=2)[4:].mean()
    assert err < 0.2 * lag_err  # measured: 2.7 px vs 26.6 px


def test_convert_smoothing_switch(setup, tmp_path):
    on = run_convert(_cfg(setup, tmp_path / "on", frame_ranges=["10-12"]))
    off = run_convert(_cfg(setup, tmp_path / "off", frame_ranges=["10-12"], smooth=False))
    assert "faces on 1 tracks" in on.smoothing and off.smoothing == "off"
    a, b = _frames(tmp_path / "on"), _frames(tmp_path / "off")
    assert any(not np.array_equal(a[i], b[i]) for i in (10, 11, 12))


def test_coverage_comes_from_the_model_folder(setup, caplog):
    assert read_architecture(setup["model"])["coverage"] == COVERAGE
    assert load_model(setup["model"], cpu=True).coverage == COVERAGE
    assert load_model(setup["model"], cpu=True, coverage=0.8).coverage == 0.8
    assert "differs from the 0.625 the model was trained with" in caplog.text


def _audio_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        packets = [p for p in container.demux(stream) if p.pts is not None]
        return float(sum(p.duration for p in packets) * stream.time_base)


def test_discard_frames_video_keeps_audio_in_step(setup, tmp_path):
    out = tmp_path / "cut.mkv"
    summary = run_convert(_cfg(setup, out, frame_ranges=["3-10", "20-27"], discard_frames=True,
                               preset="ultrafast"))
    fps = probe_video(setup["clip"]).fps
    assert summary.frames_out == 16 == sum(1 for _ in iter_video(out))
    # Two cuts, each at most one AAC packet (1024 samples) off.
    assert abs(_audio_seconds(out) - 16 / fps) < 2 * 1024 / 44100 + 1e-3


def test_gif_output_is_labelled(setup, tmp_path):
    from swapface.media import parse_metadata_comment, read_gif_comment

    out = tmp_path / "swapped.gif"
    summary = run_convert(_cfg(setup, out, frame_ranges=["0-5"], discard_frames=True))
    assert summary.frames_out == 6 and summary.frames_swapped == 6
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 6
    tags = parse_metadata_comment(read_gif_comment(out))
    assert tags["synthetic_media"] == "true" and tags["generator"] == "swapface"
    assert not [p for p in tmp_path.iterdir() if p.name != "swapped.gif"]


def _model_and_crops(setup):
    """The test model on the CPU and three real face crops at its input size."""
    model = load_model(setup["model"], cpu=True)
    size = model.input_size
    crops = [crop(setup["inputs"][i], model_matrix(setup["records"][i].faces[0], COVERAGE, size), size)
             for i in (3, 10, 20)]
    return model, crops


def test_compiled_model_matches_eager_on_a_padded_batch(setup):
    model, crops = _model_and_crops(setup)
    eager_faces, eager_masks = model.infer(crops, "b")
    assert model.compile(batch_size=4, side="b")
    faces, masks = model.infer(crops, "b")  # 3 crops padded to the static batch of 4
    assert faces.shape == eager_faces.shape and masks.shape == eager_masks.shape
    assert np.abs(faces.astype(int) - eager_faces.astype(int)).max() <= 1
    np.testing.assert_allclose(masks, eager_masks, atol=1e-4)


def test_tuned_convolutions_match_pytorch_kernels_on_real_crops(setup):
    model, crops = _model_and_crops(setup)
    native_faces, native_masks = model.infer(crops, "b")
    chosen = model.tune(batch_size=3, side="b")
    assert chosen and set(chosen.values()) <= {"native", "channels_last", "gemm", "winograd2",
                                               "winograd4", "phase_winograd4"}
    faces, masks = model.infer(crops, "b")
    assert np.abs(faces.astype(int) - native_faces.astype(int)).max() <= 1
    np.testing.assert_allclose(masks, native_masks, atol=1e-4)
