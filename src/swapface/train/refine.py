"""Training the per-identity refiners alongside the swap model, in the same steps.

Each step the swap model already draws its side's batch at the decoder's size; the refiner
of that side takes those faces (detached: the refiner's loss never reaches the decoder) and
learns to turn them into the *same* augmented faces at the refiner's size. The 2×/4×
targets come from the batch's own augmentation parameters rendered at the larger size, so
input and target are the same crop, rotation, flip and colour shift. The refiner therefore
learns to correct exactly what the decoder gets wrong (its blur, its soft eyes), early
blurry outputs included, and it costs one small network's step, not another pass of data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import Tensor, nn

from swapface.models import SwapModel
from swapface.train.augment import AugmentConfig, Augmenter, AugmentParams
from swapface.train.losses import FaceLoss, LossConfig

REFINER_LR = 5e-4  # the body is small and starts as a plain upscale: Adam at 5e-4 is stable


class RefinerTraining:
    """Optimizer, target renderer and loss of a model's refiners."""

    def __init__(self, model: SwapModel, aug_cfg: AugmentConfig, face_size: int, coverage: float,
                 loss_cfg: LossConfig, device: torch.device,
                 autocast: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext) -> None:
        self.model = model
        self.autocast = autocast  # the swap step's precision (bf16 where the device has it)
        self.sides = tuple(model.refiners.keys())
        self.optimizer = torch.optim.Adam(model.refiners.parameters(), lr=REFINER_LR, fused=True)
        # Renders the batch's own parameters at the refiner's size (only the targets are used).
        self.augmenter = Augmenter(aug_cfg, face_size, model.output_size, coverage, device)
        self.loss = FaceLoss(loss_cfg).to(device)
        self.nets: dict[str, nn.Module] = dict(model.refiners.items())

    def distribute(self, ddp: Callable[[nn.Module], nn.Module]) -> None:
        """Each refiner in a DDP wrapper of its own (synced by its own backward), as the
        trainer does with a GAN's discriminators."""
        self.nets = {side: ddp(net) for side, net in self.nets.items()}

    def step(self, side: str, decoded: Tensor, faces: Tensor, masks: Tensor | None,
             params: AugmentParams) -> dict[str, float]:
        """One update of ``side``'s refiner: ``decoded`` [N,3,s,s] (the decoder's output for the
        batch) → the batch's targets at the refiner's size. ``faces``/``masks`` are the stored
        faces the batch was rendered from."""
        if side not in self.model.refiners:
            return {}
        target = self.augmenter.render(faces, masks, params)
        tm = target.target_masks
        with self.autocast():
            refined = self.nets[side](decoded.detach())
        loss, parts = self.loss(
            refined.float(), target.targets.float(),
            face_mask=None if tm is None else tm[:, 0:1], eye_mask=None if tm is None else tm[:, 1:2],
            mouth_mask=None if tm is None else tm[:, 2:3])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {f"refine_{side}": float(loss.detach()),
                **{f"refine_{k}_{side}": v for k, v in parts.items()}}
