"""Non-finite numbers never reach the weights or a checkpoint.

A finite loss can still give inf/NaN gradients (an fp16/bf16 overflow in backward, a GAN
critic blowing up), and one such step poisons every weight. The trainer checks the loss
before backward, the gradients before each optimizer step (the generator's and each
critic's) and the weights before each save; any failure stops training with the last good
checkpoint untouched.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from swapface.core.errors import SwapfaceError


class TrainingDiverged(SwapfaceError):
    """The loss, gradients or weights became NaN/inf; the last good checkpoint is kept."""


def _hint(model_dir: object) -> str:
    return (f"stopped without saving — the last good checkpoint in {model_dir} is kept. "
            "Lower --lr or use --precision fp32.")


def check_gradients(params: Iterable[nn.Parameter], what: str, iteration: int | None = None,
                    model_dir: object = "the model folder") -> None:
    """Raise :class:`TrainingDiverged` unless every gradient is finite (one fused norm)."""
    grads = [p.grad for p in params if p.grad is not None]
    if grads and not torch.isfinite(torch.nn.utils.get_total_norm(grads)):
        when = "" if iteration is None else f" at iteration {iteration}"
        raise TrainingDiverged(f"{what} gradients became non-finite{when}; " + _hint(model_dir))


def check_weights(modules: Iterable[nn.Module], iteration: int, model_dir: object) -> None:
    """Raise :class:`TrainingDiverged` before a save of any non-finite weight."""
    tensors = [p.detach() for m in modules for p in m.parameters()]
    if tensors and not torch.isfinite(torch.nn.utils.get_total_norm(tensors)):
        raise TrainingDiverged(f"weights became non-finite by iteration {iteration}; "
                               + _hint(model_dir))
