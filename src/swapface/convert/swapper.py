"""The trained model loaded for inference, and the geometry between frame and model pixels.

Each stored face is cropped straight from the frame into the model's input with one
``warpAffine``: the centred ``coverage`` window of the aligned face (the crop the model was
trained on) mapped to model pixels. The output is pasted back through the same mapping.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

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


class _Forward(torch.nn.Module):
    """encode → one side's decode as a module: the unit that gets compiled."""

    def __init__(self, model: torch.nn.Module, side: str) -> None:
        super().__init__()
        self.model, self.side = model, side

    def forward(self, x: torch.Tensor) -> Any:
        return self.model.decode(self.model.encode(x), self.side)


class Swapper:
    """Encoder + one side's decoder of a trained model folder, batched, on CPU or CUDA."""

    def __init__(self, model_dir: Path, swap_model: bool, cpu: bool,
                 coverage: float | None = None) -> None:
        from swapface.train.inference import load_for_inference

        loaded = load_for_inference(model_dir, cpu)
        self.model_dir = Path(model_dir)
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
        self._forward: Any = _Forward(self.model, self.side)
        self._batch = 0  # > 0 once compiled for that static batch size

    def tune(self, batch_size: int) -> dict[str, str]:
        """Give each conv layer its fastest CPU algorithm at this batch size ({layer: algorithm}).

        fp32 on the CPU only (see :mod:`swapface.train.conv_tuning`): Winograd and im2col GEMM
        run the ``original`` model ~1.7× faster than oneDNN alone on this project's AVX2 CPU
        (20 vs 34 ms per face at batch 8). Timed once per machine and model folder, ~3 s.
        """
        if self.device != "cpu" or self.autocast:
            return {}
        from swapface.train.conv_tuning import TUNING_FILE, tune_convolutions

        x = torch.zeros(batch_size, 3, self.input_size, self.input_size)
        return tune_convolutions(self._forward, lambda: self._forward(x), training=False, frozen=True,
                                 cache_file=self.model_dir / TUNING_FILE)

    def compile(self, batch_size: int) -> bool:
        """Compile the model with inductor (weights frozen in as constants); False if it fails.

        Batches are then padded to ``batch_size`` so one static graph serves the whole
        video. On this project's 2-core AVX2 CPU the frozen graph runs the ``original`` model
        ~1.2× faster than eager (29 vs 34 ms per face at batch 8); compiling costs ~7 s.
        """
        import torch._inductor.config as inductor_config

        x = torch.zeros(batch_size, 3, self.input_size, self.input_size, device=self.device)
        try:
            with inductor_config.patch(freezing=True), torch.inference_mode(), self._autocast():
                compiled = torch.compile(self._forward, dynamic=False)
                compiled(x)  # compiles now, inside the freezing patch
        except Exception as exc:  # no C++ compiler, unsupported op...: eager still works
            log.warning("torch.compile failed (%s); running the model eagerly", exc)
            return False
        self._forward, self._batch = compiled, batch_size
        return True

    def _autocast(self) -> Any:
        return torch.autocast("cuda", torch.bfloat16, enabled=self.autocast)

    def __call__(self, crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """BGR uint8 crops → (BGR uint8 faces [N,o,o,3], masks float [N,o,o] or None)."""
        batch = torch.from_numpy(np.stack(crops)).to(self.device)
        # contiguous NCHW: a permuted (channels-last) input sends oneDNN down a slower path here
        x = batch.flip(-1).permute(0, 3, 1, 2).contiguous().float().div_(255.0)
        n = x.shape[0]
        if self._batch and n < self._batch:  # a static graph: pad the last batch
            x = torch.cat([x, x.new_zeros(self._batch - n, *x.shape[1:])])
        with torch.inference_mode(), self._autocast():
            rgb, mask = self._forward(x)
            rgb, mask = rgb[:n], None if mask is None else mask[:n]
            faces = (rgb.float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).flip(-1)
            faces_np = np.ascontiguousarray(faces.cpu().numpy())
            masks_np = None if mask is None else mask[:, 0].float().clamp(0, 1).cpu().numpy()
        return faces_np, masks_np
