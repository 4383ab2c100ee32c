"""The training preview: rows of A, A→A, A→B, B, B→B, B→A (the seeds' show_sample)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

COLUMNS = ("A", "A→A", "A→B", "B", "B→B", "B→A")


def _to_uint8(batch: torch.Tensor) -> np.ndarray:
    """[N,RGB,H,W] in [0,1] → [N,H,W,BGR] uint8 (OpenCV's order, for writing)."""
    rgb = (batch.detach().float().clamp(0, 1) * 255 + 0.5).byte().permute(0, 2, 3, 1).cpu().numpy()
    return rgb[..., ::-1]


def _resized(t: torch.Tensor, size: int) -> torch.Tensor:
    if t.shape[-1] == size:
        return t
    return torch.nn.functional.interpolate(t.float(), size=(size, size), mode="bilinear",
                                           align_corners=False)


@torch.inference_mode()
def preview_grid(model: torch.nn.Module, faces_a: torch.Tensor, faces_b: torch.Tensor,
                 autocast: object, blend: Callable[..., torch.Tensor] | None = None) -> np.ndarray:
    """One row per sample pair, six tiles per row, 2 px gutters; BGR uint8.

    ``blend(rgb, mask, input)`` shows models whose output is meant to be blended (GAN) the
    way they are judged.
    """
    was_training = model.training
    model.eval()
    outputs = []
    with autocast:  # type: ignore[attr-defined]
        for faces, side in ((faces_a, "a"), (faces_a, "b"), (faces_b, "b"), (faces_b, "a")):
            rgb, mask = model(faces, side)
            outputs.append(blend(rgb.float(), mask.float(), faces) if blend and mask is not None
                           else rgb)
    aa, ab, bb, ba = outputs
    model.train(was_training)
    # A refined model draws bigger faces than it reads: every tile at the largest size.
    size = max(t.shape[-1] for t in (faces_a, aa, ab, faces_b, bb, ba))
    columns = [_to_uint8(_resized(t, size)) for t in (faces_a, aa, ab, faces_b, bb, ba)]
    n, h, w, _ = columns[0].shape
    gap = 2
    grid = np.full((n * (h + gap) - gap, 6 * (w + gap) - gap, 3), 255, np.uint8)
    for r in range(n):
        for c, col in enumerate(columns):
            y, x = r * (h + gap), c * (w + gap)
            grid[y:y + h, x:x + w] = col[r]
    return grid
