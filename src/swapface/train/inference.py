"""Loading a trained model folder for inference (convert, evaluate): one place, one set of errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from swapface.core.errors import InputError
from swapface.train.checkpoint import load_checkpoint, read_architecture, trained_coverage
from swapface.train.models import SwapModel, build_model


@dataclass
class LoadedModel:
    model: SwapModel  # eval mode, on ``device``
    device: str
    arch: dict[str, Any]  # model.json
    iteration: int

    @property
    def coverage(self) -> float:
        return trained_coverage(self.arch)


def pick_device(cpu: bool = False) -> str:
    return "cuda" if torch.cuda.is_available() and not cpu else "cpu"


def load_for_inference(model_dir: Path, cpu: bool = False) -> LoadedModel:
    """The newest checkpoint of ``model_dir`` in eval mode, with clear errors for user mistakes."""
    if not model_dir.is_dir():
        raise InputError(f"model folder not found: {model_dir}")
    arch = read_architecture(model_dir)
    device = pick_device(cpu)
    model = build_model(arch["model"], arch.get("options", {}))
    checkpoint = load_checkpoint(model_dir, device)
    if checkpoint is None:
        raise InputError(f"{model_dir} has no checkpoint yet; train the model first")
    try:
        model.load_state_dict(checkpoint.model)
    except RuntimeError as exc:  # shapes differ: model.json edited or weights from elsewhere
        detail = (str(exc).splitlines()[1:2] or [str(exc)])[0].strip()
        raise InputError(f"{model_dir}: the checkpoint does not fit the architecture in "
                         f"model.json (another resolution or options?): {detail}") from exc
    return LoadedModel(model.to(device).eval(), device, arch, int(checkpoint.state.get("iteration", 0)))
