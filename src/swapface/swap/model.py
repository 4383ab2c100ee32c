"""Trained models as the swap engine sees them: crops in, faces (and masks) out.

:class:`InferenceModel` is all that convert, the one-frame preview, evaluate, live and export
need of a model: its input and output sizes, the crop it was trained on (``coverage``: the
centred fraction of the stored aligned face the model sees), its sides and whether it has
a mask head, and a batched :meth:`~InferenceModel.infer`. :func:`load_model` reads a model
folder as ``swapface train`` writes it (``model.json`` + the newest checkpoint) into a
:class:`TorchModel`; other engines (ONNX Runtime) implement the same protocol.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from swapface.core.errors import InputError
from swapface.core.runtime import choose_device

log = logging.getLogger(__name__)

DEFAULT_COVERAGE = 0.625  # what model folders that predate the recorded coverage were trained on


class InferenceModel(Protocol):
    input_size: int
    output_size: int
    coverage: float  # fraction of the aligned face the model sees (centred crop)
    sides: tuple[str, ...]  # decoders: ("a", "b")
    has_mask: bool  # predicts a mask next to the face
    device: str

    def infer(self, crops: Sequence[np.ndarray], side: str) -> tuple[np.ndarray, np.ndarray | None]:
        """BGR uint8 crops (input_size²) → (BGR uint8 faces [N,o,o,3], masks float [N,o,o] or None)."""
        ...


class TorchModel:
    """Encoder + decoders of a trained PyTorch model, batched, on the CPU or CUDA."""

    def __init__(self, module: Any, device: str, arch: dict[str, Any] | None = None,
                 iteration: int = 0, coverage: float = DEFAULT_COVERAGE, name: str = "") -> None:
        import torch

        self.module = module.to(device).eval()
        self.device = device
        self.arch = arch or {}
        self.iteration = iteration
        self.name = name
        self.input_size = int(self.arch.get("input_size", module.input_size))
        self.output_size = int(self.arch.get("output_size", module.output_size))
        self.coverage = float(coverage)
        self.sides = tuple(module.decoders.keys())
        self.has_mask = bool(module.learn_mask)
        # bf16 halves the memory traffic on GPUs; the CPU path stays fp32 (exact, and bf16 is
        # slow on CPUs without native support).
        self.autocast = device.startswith("cuda") and torch.cuda.is_bf16_supported()
        self._forward: dict[str, Any] = {}
        self._batch: dict[str, int] = {}  # side → static batch size of its compiled graph

    def _side(self, side: str) -> Any:
        if side not in self.sides:
            raise ValueError(f"side must be one of {self.sides}, got {side!r}")
        if side not in self._forward:
            self._forward[side] = _forward_class()(self.module, side)
        return self._forward[side]

    def tune(self, batch_size: int, side: str = "b", cache_file: Path | None = None) -> dict[str, str]:
        """Give each conv layer its fastest CPU algorithm at this batch size ({layer: algorithm}).

        fp32 on the CPU only (see :mod:`swapface.models.conv_tuning`): Winograd and im2col GEMM
        run the ``original`` model ~1.7× faster than oneDNN alone on this project's AVX2 CPU
        (20 vs 34 ms per face at batch 8). Timed once per machine and model folder, ~3 s.
        """
        if self.device != "cpu" or self.autocast:
            return {}
        import torch

        from swapface.models.conv_tuning import tune_convolutions

        forward = self._side(side)
        x = torch.zeros(batch_size, 3, self.input_size, self.input_size)
        return tune_convolutions(forward, lambda: forward(x), training=False, frozen=True,
                                 cache_file=cache_file)

    def compile(self, batch_size: int, side: str = "b") -> bool:
        """Compile one side with inductor (weights frozen in as constants); False if it fails.

        Batches are then padded to ``batch_size`` so one static graph serves the whole
        video. On this project's 2-core AVX2 CPU the frozen graph runs the ``original`` model
        ~1.2× faster than eager (29 vs 34 ms per face at batch 8); compiling costs ~7 s.
        """
        import torch
        import torch._inductor.config as inductor_config

        x = torch.zeros(batch_size, 3, self.input_size, self.input_size, device=self.device)
        try:
            with inductor_config.patch(freezing=True), torch.inference_mode(), self._autocast():
                compiled = torch.compile(self._side(side), dynamic=False)
                compiled(x)  # compiles now, inside the freezing patch
        except Exception as exc:  # no C++ compiler, unsupported op...: eager still works
            log.warning("torch.compile failed (%s); running the model eagerly", exc)
            return False
        self._forward[side], self._batch[side] = compiled, batch_size
        return True

    def _autocast(self) -> Any:
        import torch

        return torch.autocast("cuda", torch.bfloat16, enabled=self.autocast)

    def infer(self, crops: Sequence[np.ndarray], side: str) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        forward = self._side(side)
        batch = torch.from_numpy(np.stack(crops)).to(self.device)
        # contiguous NCHW: a permuted (channels-last) input sends oneDNN down a slower path here
        x = batch.flip(-1).permute(0, 3, 1, 2).contiguous().float().div_(255.0)
        n, static = x.shape[0], self._batch.get(side, 0)
        if static and n < static:  # a static graph: pad the last batch
            x = torch.cat([x, x.new_zeros(static - n, *x.shape[1:])])
        with torch.inference_mode(), self._autocast():
            rgb, mask = forward(x)
            rgb, mask = rgb[:n], None if mask is None else mask[:n]
            faces = (rgb.float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).flip(-1)
            faces_np = np.ascontiguousarray(faces.cpu().numpy())
            masks_np = None if mask is None else mask[:, 0].float().clamp(0, 1).cpu().numpy()
        return faces_np, masks_np


@functools.cache
def _forward_class() -> type:
    import torch

    class Forward(torch.nn.Module):
        """encode → one side's decode as a module: the unit that gets tuned and compiled."""

        def __init__(self, model: torch.nn.Module, side: str) -> None:
            super().__init__()
            self.model, self.side = model, side

        def forward(self, x: torch.Tensor) -> Any:
            return self.model.decode(self.model.encode(x), self.side)

    return Forward


def trained_coverage(arch: dict[str, Any], default: float = DEFAULT_COVERAGE) -> float:
    """The coverage a model was trained with (``default`` for folders that predate the field)."""
    value = arch.get("coverage")
    return float(value) if value is not None else default


def load_model(model_dir: Path, cpu: bool = False, coverage: float | None = None) -> TorchModel:
    """The newest checkpoint of ``model_dir``, ready to infer, with clear errors for user mistakes.

    ``coverage`` overrides the crop the model was trained with (a warning says so).
    """
    from swapface.models import build_model
    from swapface.models.checkpoint import load_checkpoint, read_architecture

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise InputError(f"model folder not found: {model_dir}")
    arch = read_architecture(model_dir)
    device = choose_device(cpu)
    module = build_model(arch["model"], arch.get("options", {}))
    checkpoint = load_checkpoint(model_dir, device)
    if checkpoint is None:
        raise InputError(f"{model_dir} has no checkpoint yet; train the model first")
    try:
        module.load_state_dict(checkpoint.model)
    except RuntimeError as exc:  # shapes differ: model.json edited or weights from elsewhere
        detail = (str(exc).splitlines()[1:2] or [str(exc)])[0].strip()
        raise InputError(f"{model_dir}: the checkpoint does not fit the architecture in "
                         f"model.json (another resolution or options?): {detail}") from exc
    trained = trained_coverage(arch)
    if coverage is not None and abs(trained - coverage) > 1e-6:
        log.warning("--coverage %.3f differs from the %.3f the model was trained with; "
                    "the face will be cropped differently from training", coverage, trained)
    return TorchModel(module, device, arch, int(checkpoint.state.get("iteration", 0)),
                      trained if coverage is None else float(coverage), model_dir.name)
