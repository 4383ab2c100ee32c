"""Face descriptor speed: dlib's per-face call vs the PyTorch port batched (same chips).

Run: .venv/bin/python benchmarks/identity_speed.py [--faces 64] [--batch 32] [--repeats 3]

The chips are dlib's own 150 px face chips (get_face_chip, padding 0.25) of the faces in the
test stills, repeated to ``--faces``. Both paths describe the same chips in this one run:

* dlib: ``face_recognition_model_v1.compute_face_descriptor(chip)``, one call per face, the
  way :class:`swapface.faces.identity.IdentityEncoder` uses it;
* torch: :class:`swapface.faces.dlib_resnet.DlibResNet`, ``--batch`` chips per call, fp32,
  with torch's default thread count and with one thread.

desc/s = descriptors / wall seconds (best of ``--repeats``); cpu ms/desc = process CPU time
(all threads) per descriptor, the figure to compare when other jobs share the machine.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import dlib
import numpy as np
import torch

from swapface.faces.bundled import dlib_model_path
from swapface.faces.dlib_resnet import MODEL_FILE, load_dlib_resnet

REPO = Path(__file__).resolve().parents[1]
STILLS = ["obama.jpg", "two_people.jpg", "dlib_faces/2008_002470.jpg", "dlib_faces/2008_001322.jpg"]


def face_chips(data: Path, n: int) -> np.ndarray:
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(dlib_model_path("shape_predictor_68_face_landmarks.dat"))
    chips = []
    for name in STILLS:
        image = dlib.load_rgb_image(str(data / "stills" / name))
        chips += [dlib.get_face_chip(image, predictor(image, r), size=150, padding=0.25)
                  for r in detector(image, 1)]
    return np.stack([chips[i % len(chips)] for i in range(n)])


def timed(fn: Callable[[], object], repeats: int, n: int) -> tuple[float, float]:
    """(descriptors/s from the best wall time, CPU ms per descriptor from that same run)."""
    fn()  # warm-up: first-call allocations, torch's kernel choice
    best = (float("inf"), 0.0)
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return n / best[0], 1000 * best[1] / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    data = Path(os.environ.get("SWAPFACE_TEST_DATA", REPO.parent / "shared" / "data"))
    chips = face_chips(data, args.faces)
    facerec = dlib.face_recognition_model_v1(dlib_model_path(MODEL_FILE))
    model = load_dlib_resnet()
    batches = [torch.from_numpy(chips[i:i + args.batch]) for i in range(0, len(chips), args.batch)]

    def run_dlib() -> list:
        return [facerec.compute_face_descriptor(chip) for chip in chips]

    @torch.inference_mode()
    def run_torch() -> list:
        return [model(b) for b in batches]

    threads, n = torch.get_num_threads(), len(chips)
    rows = [("dlib, 1 face per call", *timed(run_dlib, args.repeats, n))]
    rows.append((f"torch, batch {args.batch}, {threads} threads", *timed(run_torch, args.repeats, n)))
    torch.set_num_threads(1)
    rows.append((f"torch, batch {args.batch}, 1 thread", *timed(run_torch, args.repeats, n)))
    torch.set_num_threads(threads)

    ours = np.concatenate([t.numpy() for t in run_torch()])
    diff = np.abs(ours - np.array(run_dlib(), np.float32)).max()
    print(f"{len(chips)} chips of 150 px, {os.cpu_count()} CPUs, max |torch - dlib| = {diff:.2e}")
    print(f"{'path':<32} {'desc/s':>8} {'cpu ms/desc':>12} {'vs dlib':>8}")
    for name, rate, cpu_ms in rows:
        print(f"{name:<32} {rate:>8.1f} {cpu_ms:>12.2f} {rate / rows[0][1]:>7.2f}×")


if __name__ == "__main__":
    main()
