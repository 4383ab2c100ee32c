"""One table of what a GPU machine does with swapface: ``python benchmarks/gpu_check.py``.

Rows: training EG/s (``original`` 64 px and ``resnet`` 128 px, each with bf16 + compile and
eager fp32; ``gan`` 64 px), convert frames/s end to end, MTCNN batched extract frames/s, a
one-process torchrun DDP run, and the peak GPU memory of the whole check. Run through
``benchmarks/gpu_check.sh`` (which first runs ``pytest -m cuda``) within a few minutes on an
H100/H200. ``--dry-run`` runs every row on the CPU at tiny sizes (CI runs it so the script
cannot rot); figures from a dry run measure nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from benchmarks.robustness_common import make_clip  # noqa: E402
from swapface.convert.config import ConvertConfig  # noqa: E402
from swapface.convert.pipeline import run_convert  # noqa: E402
from swapface.extract.config import ExtractConfig  # noqa: E402
from swapface.extract.run import run_extract  # noqa: E402
from swapface.models.checkpoint import save_checkpoint  # noqa: E402
from swapface.swap.options import SwapOptions  # noqa: E402
from swapface.train.config import TrainConfig  # noqa: E402
from swapface.train.data import BatchPrefetcher  # noqa: E402
from swapface.train.trainer import Trainer  # noqa: E402


@dataclass
class Row:
    what: str
    figure: str
    setting: str
    seconds: float


@dataclass
class Sizes:
    frames: int  # clip length for convert and extract
    every_n: int  # training faces: every n-th frame of each clip
    batch: int
    steps: int
    warmup: int


FULL = Sizes(frames=300, every_n=4, batch=64, steps=30, warmup=5)
DRY = Sizes(frames=12, every_n=40, batch=2, steps=1, warmup=1)


def _timed(what: str, run: Callable[[], tuple[str, str]]) -> Row:
    began = time.perf_counter()
    try:
        figure, setting = run()
    except Exception as exc:  # a row that fails is reported; the other rows still run
        figure, setting = "FAILED", f"{type(exc).__name__}: {exc}"[:160]
    return Row(what, figure, setting, time.perf_counter() - began)


def train_speed(faces: tuple[Path, Path], work: Path, sizes: Sizes, model: str, options: list[str],
                precision: str, compile_: bool, cpu: bool) -> tuple[str, str]:
    cfg = TrainConfig(faces_a=faces[0], faces_b=faces[1], model_dir=work / f"m_{model}_{precision}",
                      model=model, model_option=options, batch_size=sizes.batch, iterations=10**9,
                      precision=precision, compile=compile_, cpu=cpu, cpu_conv="native",
                      tensorboard=False)
    trainer = Trainer(cfg)
    net = trainer._wrapped()
    prefetch = BatchPrefetcher(trainer.sets, sizes.batch, seed=0)
    generator = torch.Generator().manual_seed(0)
    try:
        for _ in range(sizes.warmup):  # compile and autotune happen here, not in the timing
            trainer.step(net, *prefetch.next(), generator)
        _sync()
        start = time.perf_counter()
        for _ in range(sizes.steps):
            trainer.step(net, *prefetch.next(), generator)
        _sync()
        seconds = time.perf_counter() - start
    finally:
        prefetch.close()
    save_checkpoint(cfg.model_dir, trainer.model, trainer.optimizer, {"iteration": sizes.steps})
    rt = trainer.rt
    eg = sizes.batch * 2 * sizes.steps / seconds
    dtype = "bf16" if rt.dtype else "fp32"
    return f"{eg:.1f} EG/s", f"{rt.device}, {dtype}, compile={compile_}, batch {sizes.batch}"


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def convert_speed(clip: Path, store: Path, model_dir: Path, work: Path, cpu: bool,
                  swap: SwapOptions | None = None) -> tuple[str, str]:
    summary = run_convert(ConvertConfig(input=clip, model_dir=model_dir, alignments=store,
                                        output=work / "swapped.mp4", overwrite=True, cpu=cpu,
                                        swap=swap or SwapOptions()))
    return f"{summary.fps:.1f} frames/s", f"{summary.device}, {summary.frames_out} frames, end to end"


def extract_speed(clip: Path, work: Path, cpu: bool) -> tuple[str, str]:
    summary = run_extract(ExtractConfig(input=clip, detector="mtcnn", faces=str(work / "mtcnn"),
                                        alignments=work / "mtcnn.db", cpu=cpu, workers=1))
    return (f"{summary.fps:.1f} frames/s",
            f"mtcnn, {summary.frames_processed} frames, {summary.faces_written} faces")


def ddp_smoke(faces: tuple[Path, Path], work: Path, cpu: bool) -> tuple[str, str]:
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
            "-m", "swapface.cli.main", "train", "-A", str(faces[0]), "-B", str(faces[1]),
            "-m", str(work / "ddp"), "--model", "lightweight", "--iterations", "4",
            "--batch-size", "4", "--save-interval", "4", "--cpu-conv", "native",
            "--no-tensorboard", "-q", *(["--cpu"] if cpu else [])]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
    return "ok", "torchrun 1 process, 4 iterations, checkpoint written"


def run_check(data: Path, work: Path, dry: bool) -> list[Row]:
    sizes = DRY if dry else FULL
    cpu = dry or not torch.cuda.is_available()
    clip = make_clip(data / "video" / "woman_a.mp4", work / "clip_a.mp4", sizes.frames)
    faces = []
    for side in "ab":
        run_extract(ExtractConfig(input=data / "video" / f"woman_{side}.mp4", every_n=sizes.every_n,
                                  size=128, faces=str(work / side), alignments=work / f"{side}.db",
                                  cpu=cpu, workers=1))
        faces.append(work / side)
    faces_ab = (faces[0], faces[1])
    run_extract(ExtractConfig(input=clip, size=128, faces=str(work / "clip_faces"),
                              alignments=work / "clip.db", cpu=cpu, workers=1))
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    models = (("original", [], ("bf16", "fp32")),
              ("resnet", ["size=64", "base_filters=8", "encoder_dim=32"] if dry else ["size=128"],
               ("bf16", "fp32")),
              ("gan", ["base_filters=8", "encoder_dim=64"] if dry else [], ("bf16",)))
    rows = []
    for model, options, precisions in models:
        px = next((o.split("=")[1] for o in options if o.startswith("size=")), "64")
        for precision in precisions:
            compiled = precision == "bf16" and not dry
            mode = "dry run" if dry else ("bf16 + compile" if compiled else precision)
            name = f"train {model} {px} px ({mode})"
            rows.append(_timed(name, lambda m=model, o=options, p=precision, c=compiled: train_speed(
                faces_ab, work, sizes, m, o, "fp32" if dry else p, c, cpu)))
    rows.append(_timed("train lightweight 64 px + refiner 128 px", lambda: train_speed(
        faces_ab, work, sizes, "lightweight", ["refine_size=128"], "fp32" if dry else "bf16", False,
        cpu)))
    model_dir = work / "m_original_fp32"
    rows.append(_timed("convert end to end", lambda: convert_speed(clip, work / "clip.db", model_dir,
                                                                     work, cpu)))
    detail = SwapOptions(detail="exemplars", detail_faces=faces_ab[1])
    rows.append(_timed("convert end to end + B's detail", lambda: convert_speed(
        clip, work / "clip.db", model_dir, work, cpu, detail)))
    rows.append(_timed("extract mtcnn (batched)", lambda: extract_speed(clip, work, cpu)))
    rows.append(_timed("DDP smoke (torchrun)", lambda: ddp_smoke(faces_ab, work, cpu)))
    peak = (f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if torch.cuda.is_available()
            else "n/a (no CUDA)")
    rows.append(Row("peak GPU memory", peak, torch.cuda.get_device_name() if torch.cuda.is_available()
                    else "cpu", 0.0))
    return rows


def table(rows: list[Row], dry: bool) -> str:
    out = ["| check | figure | setting | seconds |", "|---|---|---|---|"]
    out += [f"| {r.what} | {r.figure} | {r.setting} | {r.seconds:.1f} |" for r in rows]
    if dry:
        out.append("\n(dry run on the CPU at tiny sizes: the figures measure nothing)")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from tests.conftest import find_data_dir

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: checks the script")
    ap.add_argument("--work", type=Path, help="work folder (default: a temp folder)")
    args = ap.parse_args(argv)
    data = find_data_dir()
    if data is None:
        print("test media not found: set SWAPFACE_TEST_DATA or provide ../shared/data"
              + ("; dry run skipped, as the test suite skips" if args.dry_run else ""))
        return 0 if args.dry_run else 2
    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA device: run with --dry-run to check the script on the CPU")
        return 2
    with tempfile.TemporaryDirectory(prefix="swapface_gpu_check_") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = run_check(data, work, args.dry_run)
    print(table(rows, args.dry_run))
    return 1 if any(r.figure == "FAILED" for r in rows) else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
