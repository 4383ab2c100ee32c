"""ONNX Runtime vs PyTorch inference, side by side in one run, per registered model.

Run: .venv/bin/python benchmarks/onnx_speed.py [--model MODEL_DIR] [--models lightweight original]
     [--rounds 7]

For each model (every registered one at 64 px with a mask head, untrained weights saved as a
real checkpoint — speed does not depend on training — plus ``--model`` if given) it exports
decoder b with ``swapface export``'s code and times one inference call per face crop at
batch 1 (live) and batch 8 (convert's default) through each engine's ``infer`` (BGR uint8
in and out, as :class:`~swapface.swap.FrameSwapper` calls it):

* torch native: PyTorch's own kernels, eager (what live runs);
* torch tuned: after :meth:`TorchModel.tune` at that batch size (what convert runs on a CPU);
* onnxruntime: :class:`OnnxModel` on the CPUExecutionProvider, same thread count.

Rounds interleave the engines so that load from other processes hits them alike; the figure
is the median round. Max abs diff: |ONNX − torch| over the float face and mask outputs of
both decoders on real face crops (woman_a, found by the HOG finder). Test media:
../shared/data or $SWAPFACE_TEST_DATA.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from swapface.core.runtime import configure_process  # noqa: E402

configure_process()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from swapface.models import MODELS, build_model  # noqa: E402
from swapface.models.base import model_options  # noqa: E402
from swapface.models.checkpoint import freeze_architecture, save_checkpoint  # noqa: E402
from swapface.swap.export import checked_export, max_abs_diff  # noqa: E402
from swapface.swap.geometry import crop, model_matrix  # noqa: E402
from swapface.swap.model import load_model  # noqa: E402
from swapface.swap.onnx_model import OnnxModel, intra_op_threads, open_session, session_metadata  # noqa: E402
from tests.conftest import find_data_dir  # noqa: E402

BATCHES = (1, 8)
SIZE_OPTION = {"lightweight": "input_size", "resnet": "size", "gan": "size"}  # original: 64 fixed


def untrained(name: str, root: Path) -> Path:
    """A 64 px model folder with a mask head and a real checkpoint, as training leaves it."""
    torch.manual_seed(0)
    options = {"learn_mask": True, **({SIZE_OPTION[name]: 64} if name in SIZE_OPTION else {})}
    model = build_model(name, options)
    folder = root / name
    freeze_architecture(folder, {"model": name, "options": model_options(model),
                                 "input_size": model.input_size, "output_size": model.output_size,
                                 "coverage": 0.625})
    save_checkpoint(folder, model, None, {"iteration": 0, "seed": 0})
    return folder


def real_faces(data: Path, count: int = 8) -> list[tuple[np.ndarray, object]]:
    """(frame, face record) of the first ``count`` woman_a frames where a face is found."""
    from swapface.faces import FaceFinder
    from swapface.media.video import iter_video

    finder, found = FaceFinder.create(), []
    for index, _, image in iter_video(data / "video" / "woman_a.mp4"):
        if index % 10 == 0:
            found += [(image, face) for face in finder.records(image)[:1]]
        if len(found) >= count:
            break
    return found


def crops_for(model, faces) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    size = model.input_size
    return [crop(image, model_matrix(face, model.coverage, size), size) for image, face in faces]


def per_face_ms(infer, crops: list[np.ndarray], calls: int) -> float:  # type: ignore[no-untyped-def]
    began = time.perf_counter()
    for _ in range(calls):
        infer(crops, "b")
    return (time.perf_counter() - began) * 1000 / (calls * len(crops))


def measure(folder: Path, faces, rounds: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    native = load_model(folder, cpu=True)
    began = time.perf_counter()
    graph, _ = checked_export(native, "b")
    export_s = time.perf_counter() - began
    session = open_session(graph)
    onnx = OnnxModel(session, session_metadata(session, folder))
    real = crops_for(native, faces)
    rgb = np.stack(real)[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    diff = max(max_abs_diff(native, checked_export(native, side)[0] if side != "b" else graph, side,
                            np.ascontiguousarray(rgb)) for side in native.sides)
    row: dict[str, object] = {"model": native.arch.get("model"), "size": native.input_size,
                              "export_s": export_s, "mb": len(graph) / 1e6, "diff": diff}
    for batch in BATCHES:
        tuned = load_model(folder, cpu=True)
        tuned.tune(batch, "b")
        crops = (real * batch)[:batch]
        engines = {"native": native.infer, "tuned": tuned.infer, "onnx": onnx.infer}
        calls = max(2, 16 // batch)
        for infer in engines.values():  # warm-up: first-call allocations, lazy init
            per_face_ms(infer, crops, 2)
        times: dict[str, list[float]] = {name: [] for name in engines}
        for _ in range(rounds):
            for name, infer in engines.items():
                times[name].append(per_face_ms(infer, crops, calls))
        for name, values in times.items():
            row[f"{name}{batch}"] = statistics.median(values)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="also a trained model folder")
    parser.add_argument("--models", nargs="+", default=MODELS.names(), help="registered models")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    data = find_data_dir()
    if data is None:
        sys.exit("test media not found: set SWAPFACE_TEST_DATA or provide ../shared/data")
    faces = real_faces(data)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folders = [untrained(name, Path(tmp)) for name in args.models]
        for folder in [*folders, *([args.model] if args.model else [])]:
            print(f"measuring {folder.name} ...", file=sys.stderr, flush=True)
            rows.append(measure(folder, faces, args.rounds))
    import onnxruntime

    print(f"\n{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"ORT intra-op threads {intra_op_threads()}; torch {torch.__version__}, "
          f"onnxruntime {onnxruntime.__version__}; ms per face (median of {args.rounds} rounds)\n")
    print("| model | torch native b1 | torch tuned b1 | ORT b1 | torch native b8 | torch tuned b8 "
          "| ORT b8 | ORT vs best torch (b1 / b8) | export | .onnx | max abs diff |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        gain = [min(r[f"native{b}"], r[f"tuned{b}"]) / r[f"onnx{b}"] for b in BATCHES]  # type: ignore[type-var, operator]
        cells = " | ".join(f"{r[f'{e}{b}']:.2f}" for b in BATCHES for e in ("native", "tuned", "onnx"))
        print(f"| {r['model']} {r['size']} px | {cells} | {gain[0]:.2f}× / {gain[1]:.2f}× | "
              f"{r['export_s']:.1f} s | {r['mb']:.1f} MB | {r['diff']:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
