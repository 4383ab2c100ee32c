"""Reconstruction: how well does each decoder redraw its own identity from unseen faces?

A→A and B→B on held-out faces (frames the model never trained on) tell apart a model that
learnt the faces from one that memorised its training set. Inputs are the un-augmented
centred coverage crop the trainer trains on (:meth:`Augmenter.center`); SSIM is the
trainer's own (Wang et al. 2004, matching skimage), L1 the mean absolute error in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from swapface.core.errors import InputError
from swapface.core.progress import SILENT, Progress

BATCH = 16


PASTE_SIZE = 128  # px: what a face is pasted at in a typical 480–720p frame


@dataclass
class SideScores:
    faces: int
    ssim: float  # at the model's output size
    l1: float
    ssim_paste: float = float("nan")  # the output upscaled to PASTE_SIZE vs the real face there
    l1_paste: float = float("nan")
    # What a perfect model of this output size would score at PASTE_SIZE: the real face shrunk
    # to the output size and upscaled the same way. Below it, the model's learning is the limit.
    ssim_paste_ceiling: float = float("nan")


@dataclass
class ReconstructionFigures:
    model: str
    size: int  # model output size, px
    a: SideScores | None  # A→A on --faces-a
    b: SideScores | None  # B→B on --faces-b


def score_faces(model: Any, folder: Path, side: str, coverage: float, limit: int = 200,
                device: str = "cpu", progress: Progress = SILENT) -> SideScores:
    """SSIM and L1 of ``model``'s ``side`` decoder redrawing up to ``limit`` faces of ``folder``.

    ``side`` need not be the folder's identity: B faces through A's decoder score how much
    of A the decoder forces onto any input (a sanity baseline for A→A).
    """
    import torch

    from swapface.train.augment import AugmentConfig, Augmenter
    from swapface.train.data import FaceSet
    from swapface.train.losses import ssim_loss

    faces = FaceSet(folder)
    picks = np.unique(np.linspace(0, len(faces) - 1, min(limit, len(faces))).round().astype(int))
    make = {n: Augmenter(AugmentConfig(), faces.size, n, coverage, device)
            for n in {model.input_size, model.output_size, PASTE_SIZE}}
    ssim_sum = l1_sum = ssim_paste = l1_paste = ceiling = 0.0
    count = 0
    bar = progress.task(f"reconstruct {side.upper()}", len(picks), "face")
    try:
        for start in range(0, len(picks), BATCH):
            data = [faces.load(int(i)) for i in picks[start:start + BATCH]]
            data = [d for d in data if d is not None]
            bar.advance(len(picks[start:start + BATCH]))
            if not data:
                continue
            rgb = torch.from_numpy(np.stack(data)[..., 2::-1].copy()).permute(0, 3, 1, 2)
            rgb = rgb.to(device).float() / 255.0
            x = make[model.input_size].center(rgb).targets
            target = make[model.output_size].center(rgb).targets
            with torch.inference_mode():
                out, _mask = model(x, side)
                out = out.float().clamp(0, 1)
                n = len(data)
                ssim_sum += (1.0 - float(ssim_loss(out, target))) * n
                l1_sum += float((out - target).abs().mean()) * n
                # What a viewer gets: the output resized to paste size (bicubic, as convert
                # warps it) against the real face at that size, detail the model never had.
                real = make[PASTE_SIZE].center(rgb).targets
                big, perfect = (torch.nn.functional.interpolate(
                    t, size=PASTE_SIZE, mode="bicubic", align_corners=False).clamp(0, 1)
                    for t in (out, target))
                ssim_paste += (1.0 - float(ssim_loss(big, real))) * n
                l1_paste += float((big - real).abs().mean()) * n
                ceiling += (1.0 - float(ssim_loss(perfect, real))) * n
            count += n
    finally:
        bar.close()
    if not count:
        raise InputError(f"no readable faces in {folder}")
    return SideScores(count, ssim_sum / count, l1_sum / count, ssim_paste / count,
                      l1_paste / count, ceiling / count)


def reconstruction(model_dir: Path, faces_a: Path | None, faces_b: Path | None,
                   coverage: float | None, limit: int, cpu: bool,
                   progress: Progress = SILENT) -> ReconstructionFigures:
    """SSIM and L1 of A→A and B→B; ``coverage`` None = as recorded in the model folder."""
    from swapface.swap.model import load_model

    loaded = load_model(model_dir, cpu, coverage)
    model, device, coverage = loaded.module, loaded.device, loaded.coverage
    scores = {side: None if folder is None else
              score_faces(model, folder, side, coverage, limit, device, progress)
              for side, folder in (("a", faces_a), ("b", faces_b))}
    return ReconstructionFigures(model_dir.name, int(model.output_size), scores["a"], scores["b"])
