"""The trained model loaded for inference, and the geometry between frame and model pixels.

Each stored face is cropped straight from the frame into the model's input with one
``warpAffine``: the centred ``coverage`` window of the aligned face (the crop the model was
trained on) mapped to model pixels. The output is pasted back through the same mapping.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from swapface.align.records import FaceRecord
from swapface.convert.masks import build, centre_window, window_matrix

log = logging.getLogger(__name__)

def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """2×3 affine ``outer ∘ inner``."""
    o = np.vstack([np.asarray(outer, np.float64), [0.0, 0.0, 1.0]])
    i = np.vstack([np.asarray(inner, np.float64), [0.0, 0.0, 1.0]])
    return (o @ i)[:2]


def model_matrix(face: FaceRecord, coverage: float, model_size: int) -> np.ndarray:
    """Frame → model pixels: the centred ``coverage`` window of the aligned face at ``model_size``."""
    window = centre_window(face.size, coverage)
    to_model = cv2.invertAffineTransform(window_matrix(window, model_size))
    return compose(to_model, face.matrix)


def crop(frame: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` px model crop of ``frame``; area-averaged when it shrinks (no aliasing)."""
    shrinks = np.sqrt(abs(np.linalg.det(np.asarray(matrix)[:, :2]))) < 1.0
    return cv2.warpAffine(frame, matrix, (size, size),
                          flags=cv2.INTER_AREA if shrinks else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def model_mask(kind: str, face: FaceRecord, coverage: float, size: int,
               predicted: np.ndarray | None) -> np.ndarray:
    """The ``kind`` mask in model-output space (``size`` px covering the coverage window)."""
    window = centre_window(face.size, coverage)
    mask = build(kind, face, face.size, window=window, predicted=predicted)
    to_model = cv2.invertAffineTransform(window_matrix(window, size))
    return cv2.warpAffine(mask, to_model, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


class Swapper:
    """Encoder + one side's decoder of a trained model folder, batched, on CPU or CUDA."""

    def __init__(self, model_dir: Path, swap_model: bool, cpu: bool,
                 coverage: float | None = None) -> None:
        import torch

        from swapface.train.inference import load_for_inference

        self.torch = torch
        loaded = load_for_inference(model_dir, cpu)
        self.model, self.device, arch = loaded.model, loaded.device, loaded.arch
        self.input_size = int(arch.get("input_size", self.model.input_size))
        self.output_size = int(arch.get("output_size", self.model.output_size))
        self.side = "a" if swap_model else "b"
        trained = loaded.coverage
        self.coverage = trained if coverage is None else float(coverage)
        if abs(trained - self.coverage) > 1e-6:
            log.warning("--coverage %.3f differs from the %.3f the model was trained with; "
                        "the face will be cropped differently from training", coverage, trained)
        # bf16 halves the memory traffic on GPUs; the CPU path stays fp32 (exact, and bf16 is
        # slow on CPUs without native support).
        self.autocast = self.device == "cuda" and torch.cuda.is_bf16_supported()

    def __call__(self, crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """BGR uint8 crops → (BGR uint8 faces [N,o,o,3], masks float [N,o,o] or None)."""
        torch = self.torch
        batch = torch.from_numpy(np.stack(crops)).to(self.device)
        x = batch.flip(-1).permute(0, 3, 1, 2).float().div_(255.0)
        with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16, enabled=self.autocast):
            rgb, mask = self.model.decode(self.model.encode(x), self.side)
            faces = (rgb.float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).flip(-1)
            faces_np = np.ascontiguousarray(faces.cpu().numpy())
            masks_np = None if mask is None else mask[:, 0].float().clamp(0, 1).cpu().numpy()
        return faces_np, masks_np
