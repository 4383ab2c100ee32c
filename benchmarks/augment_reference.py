"""Seed-style training augmentation (NumPy/OpenCV, one sample at a time) vs the batched Augmenter.

Run: .venv/bin/python benchmarks/augment_reference.py [--batch 64] [--repeats 5] [--threads N]

:func:`reference_batch` is the deepfakes-2017 loop generalised to any face/output size and
coverage: ``random_transform`` (cv2.getRotationMatrix2D + warpAffine with replicated border,
then a random flip), ``random_warp`` (5×5 jittered control grid, cv2.resize of the maps to
5/4·out and a crop of the middle out px, cv2.remap) and the target through ``umeyama`` +
warpAffine. It keeps the seed's half-pixel conventions (control points at pixel centres, the
target grid at 0, out/4, …, out), so it matches :class:`swapface.train.augment.Augmenter`
in distribution, not pixel for pixel. The training benchmark uses it as the reference loop.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np
import torch

from swapface.align.transform import umeyama
from swapface.train.augment import AugmentConfig, Augmenter

SEED_ARGS = {"rotation_range": 10.0, "zoom_range": 0.05, "shift_range": 0.05, "random_flip": 0.5}


def random_transform(image: np.ndarray, rng: np.random.Generator, rotation_range: float,
                     zoom_range: float, shift_range: float, random_flip: float) -> np.ndarray:
    h, w = image.shape[:2]
    rotation = rng.uniform(-rotation_range, rotation_range)
    scale = rng.uniform(1 - zoom_range, 1 + zoom_range)
    tx = rng.uniform(-shift_range, shift_range) * w
    ty = rng.uniform(-shift_range, shift_range) * h
    mat = cv2.getRotationMatrix2D((w // 2, h // 2), rotation, scale)
    mat[:, 2] += (tx, ty)
    result = cv2.warpAffine(image, mat, (w, h), borderMode=cv2.BORDER_REPLICATE)
    if rng.random() < random_flip:
        result = result[:, ::-1]
    return result


def random_warp(image: np.ndarray, rng: np.random.Generator, output_size: int,
                coverage: float) -> tuple[np.ndarray, np.ndarray]:
    size = image.shape[0]
    if output_size % 8:
        raise ValueError("the seed's resize-and-crop needs output_size divisible by 8")
    half = coverage * size / 2
    range_ = np.linspace(size / 2 - half, size / 2 + half, 5)
    mapx = np.broadcast_to(range_, (5, 5))
    mapy = mapx.T
    noise = 5.0 * size / 256
    mapx = mapx + rng.normal(size=(5, 5), scale=noise)
    mapy = mapy + rng.normal(size=(5, 5), scale=noise)
    big, pad = output_size * 5 // 4, output_size // 8  # seed: (80, 80)[8:72] for 64 px
    interp_mapx = cv2.resize(mapx, (big, big))[pad:pad + output_size, pad:pad + output_size].astype("float32")
    interp_mapy = cv2.resize(mapy, (big, big))[pad:pad + output_size, pad:pad + output_size].astype("float32")
    warped = cv2.remap(image, interp_mapx, interp_mapy, cv2.INTER_LINEAR)
    src_points = np.stack([mapx.ravel(), mapy.ravel()], axis=-1)
    step = output_size // 4
    dst_points = np.mgrid[0:output_size + 1:step, 0:output_size + 1:step].T.reshape(-1, 2)
    mat = umeyama(src_points, dst_points, True)[0:2]
    target = cv2.warpAffine(image, mat, (output_size, output_size))
    return warped, target


def reference_batch(images_uint8_bgr: list[np.ndarray], rng: np.random.Generator, output_size: int = 64,
                    coverage: float = 0.625) -> tuple[np.ndarray, np.ndarray]:
    """Seed loop over uint8 BGR faces → (inputs, targets) float32 [B,3,out,out] RGB in [0,1]
    (RGB like the Augmenter's input, so the two feed the same model)."""
    inputs, targets = [], []
    for image in images_uint8_bgr:
        image = random_transform(image, rng, **SEED_ARGS)
        warped, target = random_warp(image, rng, output_size, coverage)
        inputs.append(warped[:, :, ::-1])
        targets.append(target[:, :, ::-1])
    # Contiguous NCHW, as a PyTorch port would feed it (a transposed view is channels-last in
    # memory, which sends oneDNN down a ~20 % slower path on AVX2 CPUs).
    to_nchw = lambda xs: np.ascontiguousarray(  # noqa: E731
        np.stack(xs).transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
    return to_nchw(inputs), to_nchw(targets)


def _time(fn, repeats: int) -> float:
    fn()  # warm-up (allocations, thread pools)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--output", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch/cv2 threads (default: theirs)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    rng = np.random.default_rng(0)
    faces = [rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8) for _ in range(args.batch)]
    tensor = torch.from_numpy(np.stack(faces)[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 255.0
    masks = torch.rand(args.batch, 1, args.size, args.size)
    gen = torch.Generator().manual_seed(0)
    print(f"batch {args.batch} of {args.size}px faces → {args.output}px, torch threads "
          f"{torch.get_num_threads()}, median of {args.repeats}")
    ref = _time(lambda: reference_batch(faces, rng, args.output), args.repeats)
    print(f"reference (seed loop, NumPy/OpenCV)      {ref:8.1f} ms/batch")
    for label, cfg in (("Augmenter fp32 CPU, warp, no colour", AugmentConfig(color=False)),
                       ("Augmenter fp32 CPU, warp + LAB colour", AugmentConfig()),
                       ("Augmenter fp32 CPU, + target masks", AugmentConfig())):
        aug = Augmenter(cfg, args.size, args.output, 0.625)
        m = masks if "masks" in label else None
        ms = _time(lambda aug=aug, m=m: aug.augment(tensor, m, gen), args.repeats)
        print(f"{label:40s} {ms:8.1f} ms/batch")


if __name__ == "__main__":
    main()
