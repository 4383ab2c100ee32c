"""The faceswap-GAN objective: what the ``gan`` model adds to the reconstruction loss.

The trainer blends each prediction into its warped input (``mask·rgb + (1 − mask)·warped``),
scores that blend with :class:`~swapface.train.losses.FaceLoss` as for every model, and then
adds :meth:`GanObjective.generator_loss`: a least-squares adversarial term, an edge loss that
weighs the eyes heavily, and faceswap-GAN's two mask regularisers. After the generator step it
calls :meth:`GanObjective.discriminator_step` once per side.

Defaults are faceswap-GAN v2.2's (``FaceSwap_GAN_v2.2_train_test.ipynb`` loss_weights and
``networks/faceswap_gan_model.py``). It works on [−1, 1] images and we on [0, 1]; that halves
every L1 difference alike, so the weights keep their ratios to the reconstruction loss.
Deviations: plain LSGAN instead of its default mixup-LSGAN, and the adversarial and edge terms
judge only the blended face (it also scored the raw RGB, which the trainer does not pass here).

Under DDP (:meth:`GanObjective.distribute`) each discriminator has its own wrapper, used only
by its own update, so its backward all-reduces exactly its gradients. The generator's
adversarial term calls the bare discriminator with its weights frozen: gradients flow through
it into the generator (whose wrapper syncs them) and never reach the discriminator, so nothing
of D is reduced, or left half-reduced, during the generator step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.models.gan import GanModel
from swapface.train.guard import check_gradients


@dataclass
class GanConfig:
    adversarial_weight: float = option(0.1, help="weight of the least-squares adversarial loss "
                                       "(faceswap-GAN w_D)")
    edge_weight: float = option(0.1, help="weight of the edge (image-gradient L1) loss over the "
                                "whole face (faceswap-GAN w_edge)")
    eye_edge_weight: float = option(30.0, help="extra edge-loss weight inside the eye mask, whose "
                                    "few pixels need it to count (faceswap-GAN w_eyes)")
    mask_l1_weight: float = option(0.01, help="L1 pull of the learned mask towards 0, i.e. towards "
                                   "keeping the input where the face need not change (faceswap-GAN)")
    mask_tv_weight: float = option(0.1, help="total variation of the learned mask: keeps it smooth "
                                   "(faceswap-GAN)")
    d_lr: float = option(2e-4, help="discriminator Adam learning rate, β (0.5, 0.999) "
                         "(faceswap-GAN lrD; its generator uses 1e-4)")

    def __post_init__(self) -> None:
        weights = ("adversarial_weight", "edge_weight", "eye_edge_weight", "mask_l1_weight",
                   "mask_tv_weight")
        bad = [f"{n} must be finite and ≥ 0, got {getattr(self, n)!r}"
               for n in weights if not 0 <= getattr(self, n) < float("inf")]
        if not 0 < self.d_lr < float("inf"):
            bad.append(f"d_lr must be > 0, got {self.d_lr!r}")
        if bad:
            raise ConfigError("; ".join(bad))


def first_order(x: Tensor) -> tuple[Tensor, Tensor]:
    """faceswap-GAN's ``first_order``: |vertical| and |horizontal| differences, [.., H−1, W−1]."""
    corner = x[..., :-1, :-1]
    return (corner - x[..., 1:, :-1]).abs(), (corner - x[..., :-1, 1:]).abs()


@contextlib.contextmanager
def _fp32(t: Tensor) -> Iterator[None]:
    """Autocast off: the LSGAN squares and the small mask terms are kept in full precision."""
    if t.device.type in ("cpu", "cuda"):
        with torch.autocast(device_type=t.device.type, enabled=False):
            yield
    else:
        yield


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """No gradients into ``module``'s weights (they still flow through it to its input)."""
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


class GanObjective:
    """Generator-side GAN losses and the discriminators' own optimizer and update step."""

    def __init__(self, model: GanModel, cfg: GanConfig) -> None:
        self.model = model
        self.cfg = cfg
        # faceswap-GAN gives each discriminator its own Adam; one Adam over both is the same
        # update, since Adam's state is per parameter.
        self.optimizer = torch.optim.Adam(model.discriminator_parameters(), lr=cfg.d_lr, betas=(0.5, 0.999),
                                          fused=True)
        # What the D step runs per side: the bare discriminators, or their DDP wrappers.
        self.critics: dict[str, nn.Module] = dict(model.discriminators.items())

    def distribute(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Wrap each discriminator for its own update (e.g. in DistributedDataParallel): one
        wrapper per side, since a side's update uses only its own discriminator and DDP
        expects every parameter it wraps to get a gradient in each backward."""
        self.critics = {side: wrap(d) for side, d in self.model.discriminators.items()}

    @staticmethod
    def blend(rgb: Tensor, mask: Tensor | None, warped: Tensor) -> Tensor:
        """faceswap-GAN's output: the face drawn through its mask over the warped input."""
        if mask is None:
            return rgb
        mask = mask.float()
        return mask * rgb.float() + (1.0 - mask) * warped.float()

    def generator_loss(self, side: str, warped: Tensor, blended: Tensor, target: Tensor,
                       mask: Tensor | None, eye_mask: Tensor | None) -> tuple[Tensor, dict[str, float]]:
        """Weighted sum of the GAN-only generator terms, and each term as a float."""
        cfg = self.cfg
        parts: dict[str, Tensor] = {}
        with _fp32(blended):
            fake, warped, target = blended.float(), warped.float(), target.float()
            if cfg.adversarial_weight > 0:
                # D judges without learning here: only the generator gets this gradient.
                with _frozen(self.model.discriminators[side]):
                    score = self.model.discriminate(fake, warped, side)
                parts["adv"] = cfg.adversarial_weight * (score - 1.0).square().mean()
            if cfg.edge_weight > 0 or (cfg.eye_edge_weight > 0 and eye_mask is not None):
                weight: Tensor | float = cfg.edge_weight
                if eye_mask is not None:
                    weight = cfg.edge_weight + cfg.eye_edge_weight * eye_mask.float()[..., :-1, :-1]
                (fy, fx), (ty, tx) = first_order(fake), first_order(target)
                parts["edge"] = (weight * ((fy - ty).abs() + (fx - tx).abs())).mean()
            if mask is not None:
                m = mask.float()
                if cfg.mask_l1_weight > 0:
                    parts["mask_l1"] = cfg.mask_l1_weight * m.abs().mean()
                if cfg.mask_tv_weight > 0:
                    dy, dx = first_order(m)
                    parts["mask_tv"] = cfg.mask_tv_weight * (dy.mean() + dx.mean())
        if not parts:
            return blended.new_zeros(()), {}
        stacked = torch.stack(list(parts.values()))
        # One device sync for all logged values.
        return stacked.sum(), dict(zip(parts, stacked.detach().cpu().tolist(), strict=True))

    def discriminator_step(self, side: str, warped: Tensor, real: Tensor, fake: Tensor) -> dict[str, float]:
        """One LSGAN update of ``side``'s discriminator: real pairs → 1, fake pairs → 0."""
        with _fp32(real):
            images = torch.cat([real.float(), fake.detach().float()])
            pairs = warped.detach().float()
            scores = self.critics[side](GanModel.pair(images, torch.cat([pairs, pairs])))  # one pass
            real_score, fake_score = scores.chunk(2)
            loss = (real_score - 1.0).square().mean() + fake_score.square().mean()
        # Clear stale gradients (both sides share this optimizer) so only this loss is applied.
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        check_gradients(self.critics[side].parameters(), f"discriminator {side}")
        self.optimizer.step()
        return {"d": float(loss.detach())}
