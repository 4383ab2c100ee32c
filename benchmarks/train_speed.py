"""Training throughput (EG/s) of our loop vs a plain seed-style reference loop, side by side.

Run: .venv/bin/python benchmarks/train_speed.py [--model original] [--batch 64] [--steps 4]

EG/s is faceswap's figure: batch × 2 sides × iterations / seconds. Both loops train the
same architecture from the same initial weights on the same real faces (extracted from the
two training clips first):

* ours: `swapface.train.Trainer.step` — faces decoded once and prefetched in a background
  thread, batched tensor augmentation, both sides in one step (one encoder pass over A and
  B), mask-weighted MAE+SSIM loss, fused Adam, freed memory kept by malloc (no page faults),
  and the device's best settings (channels_last / bf16 / torch.compile on CUDA; on a CPU
  bf16 only where it has native bf16, and in fp32 each conv layer's fastest algorithm —
  oneDNN, im2col GEMM or Winograd — timed once before the run and not counted);
* reference: what the seed code does — per-sample OpenCV augmentation on the CPU
  (random_transform + random_warp, benchmarks/augment_reference.py), eager fp32, one
  `train_on_batch`-style step per side, MAE loss; timed first with the allocator as it
  comes, and again at the end with ours' allocator setting to split the gain.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.augment_reference import reference_batch  # noqa: E402
from swapface.extract.config import ExtractConfig  # noqa: E402
from swapface.extract.run import run_extract  # noqa: E402
from swapface.models import build_model  # noqa: E402
from swapface.models.conv_tuning import installed  # noqa: E402
from swapface.train.config import TrainConfig, parse_model_options  # noqa: E402
from swapface.train.data import BatchPrefetcher  # noqa: E402
from swapface.train.trainer import Trainer  # noqa: E402


def extract_faces(data: Path, root: Path) -> tuple[Path, Path]:
    for side, clip in (("A", "woman_a.mp4"), ("B", "woman_b.mp4")):
        run_extract(ExtractConfig(input=data / "video" / clip, every_n=8, faces=str(root / side),
                                  alignments=root / f"{side}.db"))
    return root / "A", root / "B"


def ours(faces: tuple[Path, Path], model_dir: Path, args: argparse.Namespace) -> tuple[float, str]:
    cfg = TrainConfig(faces_a=faces[0], faces_b=faces[1], model_dir=model_dir, model=args.model,
                      model_option=args.model_option, batch_size=args.batch, iterations=10**9,
                      precision=args.precision, cpu_conv=args.cpu_conv)
    trainer = Trainer(cfg)
    began = time.perf_counter()
    net = trainer._wrapped()  # CPU fp32: picks each conv layer's fastest algorithm (timed once)
    tuning = time.perf_counter() - began
    prefetch = BatchPrefetcher(trainer.sets, args.batch, seed=0)
    generator = torch.Generator().manual_seed(0)
    try:
        for _ in range(args.warmup):
            trainer.step(net, *prefetch.next(), generator)
        start = time.perf_counter()
        for _ in range(args.steps):
            trainer.step(net, *prefetch.next(), generator)
        if trainer.rt.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    finally:
        prefetch.close()
    rt = trainer.rt
    setting = f"{rt.device.type}, {'bf16' if rt.dtype else 'fp32'}, channels_last={trainer._channels_last()}"
    algorithms = installed(trainer.model)
    if algorithms:
        counts = Counter(algorithms.values())
        setting += (f", conv layers: {', '.join(f'{n} {a}' for a, n in counts.most_common())}"
                    f" (chosen in {tuning:.0f} s, once per machine and model folder)")
    return args.batch * 2 * args.steps / seconds, setting


def reference(faces: tuple[Path, Path], args: argparse.Namespace) -> float:
    from swapface.core.images import read_image

    sets = [[read_image(p) for p in sorted(folder.glob("*.png"))] for folder in faces]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model = build_model(args.model, parse_model_options(args.model_option)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=5e-5, betas=(0.5, 0.999))
    rng = np.random.default_rng(0)

    def one_step() -> None:
        for side, images in zip("ab", sets, strict=True):
            picks = [images[i] for i in rng.integers(len(images), size=args.batch)]
            warped, target = reference_batch(picks, rng, output_size=model.input_size)
            x, y = torch.from_numpy(warped).to(device), torch.from_numpy(target).to(device)
            out, _ = model(x, side)
            loss = (out - y).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    for _ in range(args.warmup):
        one_step()
    start = time.perf_counter()
    for _ in range(args.steps):
        one_step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return args.batch * 2 * args.steps / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="original")
    parser.add_argument("--model-option", nargs="*", default=[])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--cpu-conv", default="tuned", choices=["tuned", "native"])
    args = parser.parse_args()
    data = Path(os.environ.get("SWAPFACE_TEST_DATA", REPO.parent / "shared" / "data"))
    with tempfile.TemporaryDirectory() as tmp:
        faces = extract_faces(data, Path(tmp))
        # The reference first, with the allocator as a plain script has it; ours then turns on
        # retain_freed_memory (process-wide), so the reference is timed again after it to
        # show what the allocator alone is worth.
        eg_ref = reference(faces, args)
        eg_ours, setting = ours(faces, Path(tmp) / "model", args)
        eg_ref_kept = reference(faces, args)
    print(f"model {args.model} {args.model_option}, batch {args.batch}, {args.steps} timed steps, "
          f"{os.cpu_count()} CPU threads, torch {torch.__version__}")
    print(f"ours      ({setting}): {eg_ours:8.2f} EG/s")
    print(f"reference (eager fp32, per-sample OpenCV augmentation): {eg_ref:8.2f} EG/s")
    print(f"reference, with our allocator setting (freed memory kept): {eg_ref_kept:8.2f} EG/s")
    print(f"ratio ours / reference: {eg_ours / eg_ref:.2f} "
          f"(convolution algorithms and fused Adam alone: {eg_ours / eg_ref_kept:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
