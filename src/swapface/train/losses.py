"""Reconstruction losses of the face-swap trainer: MAE, MSE, SSIM, MS-SSIM, combined by config.

Images are ``[B, C, H, W]`` in [0, 1]; every loss takes an optional per-pixel weight map
``[B, 1, H, W]``. A weighted loss is ``mean(weight * error)`` over *all* pixels (not divided by
the weight sum), so a weight is a literal per-pixel factor: the penalized-mask background
weight and the eye/mouth multipliers then mean "this pixel counts k times", as in faceswap.
All maths runs in fp32 with autocast off: SSIM's E[x²] − E[x]² cancels catastrophically in
bf16 (8-bit mantissa), and BCE refuses to run under CUDA autocast.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.core.registry import Registry
from swapface.train.perceptual import DlibPerceptual

Padding = Literal["valid", "reflect"]
Reducer = Callable[[Tensor | None], Tensor]  # weight map (or None) → scalar loss
WIN, SIGMA, K1, K2 = 11, 1.5, 0.01, 0.03  # Wang et al. 2004; data range 1
MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, finest scale first


def _fp32(t: Tensor) -> contextlib.AbstractContextManager[None]:
    """Autocast off on ``t``'s device (autocast would re-cast conv inputs to bf16)."""
    if t.device.type in ("cpu", "cuda"):
        return torch.autocast(device_type=t.device.type, enabled=False)
    return contextlib.nullcontext()


def _reduce(err: Tensor, weight: Tensor | None) -> Tensor:
    return err.mean() if weight is None else (err * weight.float()).mean()


def _crop(weight: Tensor | None, padding: Padding | None) -> Tensor | None:
    """Weights for a ``valid`` SSIM map lose the border the window cannot centre on."""
    r = WIN // 2
    return weight[..., r:-r, r:-r] if weight is not None and padding == "valid" else weight


def _ssim_maps(x: Tensor, y: Tensor, padding: Padding) -> tuple[Tensor, Tensor]:
    """(SSIM map, contrast-structure map), per channel. ``valid`` maps shrink by WIN − 1."""
    if min(x.shape[-2:]) < WIN:
        raise ValueError(f"SSIM needs images of at least {WIN} px, got {tuple(x.shape[-2:])}")
    c = x.shape[1]
    # One depthwise separable Gaussian pass over all five moments at once.
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    if padding == "reflect":
        stack = F.pad(stack, [WIN // 2] * 4, mode="reflect")
    g = torch.exp(-((torch.arange(WIN, device=x.device, dtype=x.dtype) - WIN // 2) ** 2) / (2 * SIGMA**2))
    g = g / g.sum()
    stack = F.conv2d(stack, g.view(1, 1, 1, WIN).expand(5 * c, 1, 1, WIN), groups=5 * c)
    stack = F.conv2d(stack, g.view(1, 1, WIN, 1).expand(5 * c, 1, WIN, 1), groups=5 * c)
    mu_x, mu_y, xx, yy, xy = stack.split(c, dim=1)
    c1, c2 = K1**2, K2**2
    # Population (not sample) covariance, as in the paper and skimage's default-off flag.
    cs = (2 * (xy - mu_x * mu_y) + c2) / (xx - mu_x**2 + yy - mu_y**2 + c2)
    lum = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return lum * cs, cs


# Each loss is split into maps (computed once per step) and a weighted reduction, so FaceLoss
# reuses the SSIM maps for the base, eye and mouth terms instead of recomputing them 3×.
def _per_pixel(err: Tensor, padding: Padding | None = None) -> Reducer:
    return lambda w: _reduce(err, _crop(w, padding))


def _prep_ms_ssim(x: Tensor, y: Tensor, padding: Padding) -> Reducer:
    n = 1
    while n < len(MS_WEIGHTS) and min(x.shape[-2:]) // 2**n >= WIN:
        n += 1
    betas = torch.tensor(MS_WEIGHTS[:n], device=x.device)
    betas = betas / betas.sum()
    maps, ones = [], torch.ones_like(x[:, :1])
    for i in range(n):
        if i:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        s, cs = _ssim_maps(x, y, padding)
        maps.append(s if i == n - 1 else cs)  # luminance only at the coarsest scale

    def reduce(weight: Tensor | None) -> Tensor:
        w = ones if weight is None else weight.float()
        w_mean, values = w.mean(dim=(1, 2, 3))[:, None], []
        for i, m in enumerate(maps):
            w = F.avg_pool2d(w, 2) if i else w
            wc = _crop(w, padding)
            values.append((m * wc).sum(dim=(2, 3)) / wc.sum(dim=(2, 3)).clamp_min(1e-8))
        # cs can go negative (anti-correlated): clamp before the fractional power (NaN otherwise).
        ms = torch.stack(values).clamp_min(1e-6).pow(betas[:, None, None]).prod(dim=0)  # [B, C]
        return (w_mean * (1.0 - ms)).mean()

    return reduce


Prepare = Callable[[Tensor, Tensor, Padding], Reducer]  # (pred, target, padding) → reducer
LOSSES: Registry[Prepare] = Registry("loss")


def _prep_mae(x: Tensor, y: Tensor, padding: Padding) -> Reducer:
    return _per_pixel((x - y).abs())


def _prep_mse(x: Tensor, y: Tensor, padding: Padding) -> Reducer:
    return _per_pixel((x - y).square())


def _prep_ssim(x: Tensor, y: Tensor, padding: Padding) -> Reducer:
    return _per_pixel(1.0 - _ssim_maps(x, y, padding)[0], padding)


LOSSES.register_value("mae", _prep_mae, description="mean absolute error (L1)")
LOSSES.register_value("mse", _prep_mse, description="mean squared error (L2)")
LOSSES.register_value("ssim", _prep_ssim,
                      description="1 - SSIM (11-tap Gaussian, per channel; Wang et al. 2004)")
LOSSES.register_value("ms_ssim", _prep_ms_ssim,
                      description="1 - MS-SSIM over the scales the image size allows")
# One built function per loss, looked up per step by the trainer and the loss functions.
_PREPARED: dict[str, Prepare] = {name: LOSSES.create(name) for name in LOSSES.names()}


def _loss(name: str, pred: Tensor, target: Tensor, weight: Tensor | None, padding: Padding) -> Tensor:
    with _fp32(pred):
        return _PREPARED[name](pred.float(), target.float(), padding)(weight)


def mae(pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    return _loss("mae", pred, target, weight, "valid")


def mse(pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    return _loss("mse", pred, target, weight, "valid")


def ssim_loss(pred: Tensor, target: Tensor, weight: Tensor | None = None,
              padding: Padding = "valid") -> Tensor:
    """1 − SSIM (11-tap Gaussian, σ 1.5, per channel, mean over channels and pixels).

    ``valid`` (default) scores only windows fully inside the image, exactly like the paper
    and skimage (whose reflect-padded borders are cropped before the mean); the weight map is
    cropped to match. ``reflect`` scores every pixel, with mirrored borders.
    """
    return _loss("ssim", pred, target, weight, padding)


def ms_ssim_loss(pred: Tensor, target: Tensor, weight: Tensor | None = None,
                 padding: Padding = "valid") -> Tensor:
    """1 − MS-SSIM with the standard 5 weights, halving resolution (2×2 mean) per scale.

    Only scales whose side is still ≥ 11 px are used (64 px → 3 scales: 64, 32, 16) and their
    weights renormalised to sum to 1 — SSIM of a window larger than the image is undefined.
    With a weight map each scale takes a weight-normalised mean (weights 2×2-pooled too), so the
    product stays in [0, 1]; the per-image result is then scaled by the mean weight, which for a
    single scale is exactly ``mean(weight * (1 − SSIM))``.
    """
    return _loss("ms_ssim", pred, target, weight, padding)


def parse_loss_spec(spec: str) -> dict[str, float]:
    """``"mae:0.5,ssim:0.5"`` → ``{"mae": 0.5, "ssim": 0.5}``; a bare name weighs 1."""
    terms: dict[str, float] = {}
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        name, _, value = (p.strip() for p in item.partition(":"))
        name = name.lower().replace("-", "_")
        if name not in LOSSES:
            raise ConfigError(f"unknown loss {name!r} in {spec!r}; choose from {', '.join(LOSSES.names())}")
        if name in terms:
            raise ConfigError(f"loss {name!r} given twice in {spec!r}")
        try:
            terms[name] = float(value) if value else 1.0
        except ValueError:
            raise ConfigError(f"bad weight {value!r} for loss {name!r} in {spec!r}") from None
        if not 0 <= terms[name] < float("inf"):
            raise ConfigError(f"loss weight must be finite and ≥ 0, got {name}:{value}")
    if not any(terms.values()):
        raise ConfigError(f"loss spec {spec!r} has no term with a positive weight")
    return terms


@dataclass
class LossConfig:
    loss: str = option("mae:0.5,ssim:0.5", help="reconstruction loss: name[:weight],… from "
                       "mae, mse, ssim, ms_ssim")
    mask_loss: float = option(1.0, help="weight of the learned-mask loss (models with a mask head)")
    mask_loss_fn: str = option("mse", help="learned-mask loss vs the target mask", choices=["mse", "bce"])
    penalized_mask: bool = option(True, help="weight the reconstruction loss by the target face mask")
    background_weight: float = option(0.1, help="penalized mask: weight of background pixels (0–1)")
    eye_multiplier: float = option(3.0, help="per-pixel loss factor inside the eyes (1 = off)")
    mouth_multiplier: float = option(2.0, help="per-pixel loss factor inside the mouth (1 = off)")
    perceptual: float = option(0.0, help="weight of a perceptual loss in the first feature maps of "
                               "dlib's face ResNet (edges, lids, lips, skin texture; 0 = off)")
    perceptual_levels: int = option(2, help="how many of the ResNet's residual levels it compares "
                                    "(1-3: the deep ones carry identity, which evaluate judges)",
                                    choices=[1, 2, 3])

    def __post_init__(self) -> None:
        self.terms: dict[str, float] = parse_loss_spec(self.loss)  # fail at config time, not mid-run
        bad = [f"{name} must be {rule}, got {getattr(self, name)!r}" for name, ok, rule in (
            ("mask_loss", self.mask_loss >= 0, "≥ 0"),
            ("mask_loss_fn", self.mask_loss_fn in ("mse", "bce"), "mse or bce"),
            ("background_weight", 0 <= self.background_weight <= 1, "in [0, 1]"),
            ("eye_multiplier", self.eye_multiplier >= 1, "≥ 1"),
            ("mouth_multiplier", self.mouth_multiplier >= 1, "≥ 1"),
            ("perceptual", self.perceptual >= 0, "≥ 0"),
            ("perceptual_levels", self.perceptual_levels in (1, 2, 3), "1, 2 or 3")) if not ok]
        if bad:
            raise ConfigError("; ".join(bad))


class FaceLoss(nn.Module):
    """Total training loss and its parts (each part is its weighted contribution to the total)."""

    def __init__(self, cfg: LossConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.perceptual: nn.Module | None = None
        if cfg.perceptual > 0:  # reads dlib's weights (~1 s): only when asked for
            self.perceptual = DlibPerceptual(cfg.perceptual_levels)

    def forward(self, pred_rgb: Tensor, target_rgb: Tensor, *, face_mask: Tensor | None = None,
                eye_mask: Tensor | None = None, mouth_mask: Tensor | None = None,
                pred_mask: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
        """Masks are ``[B, 1, H, W]`` in [0, 1], ``pred_mask`` a probability (post-sigmoid).
        ``face_mask`` is needed by ``penalized_mask`` and as the target of ``pred_mask``; an
        eye/mouth term whose mask is not given is skipped (absent from the parts)."""
        cfg = self.cfg
        weight = None
        if cfg.penalized_mask:
            if face_mask is None:
                raise ValueError("penalized_mask is on: FaceLoss needs face_mask")
            weight = cfg.background_weight + (1.0 - cfg.background_weight) * face_mask.float()
        with _fp32(pred_rgb):
            x, y = pred_rgb.float(), target_rgb.float()
            terms = [(k, w, _PREPARED[k](x, y, "valid")) for k, w in cfg.terms.items() if w > 0]
            parts = {k: w * reduce(weight) for k, w, reduce in terms}
            # faceswap's multipliers: the same loss restricted to the region, (k − 1) more times.
            for key, mask, mult in (("eyes", eye_mask, cfg.eye_multiplier),
                                    ("mouth", mouth_mask, cfg.mouth_multiplier)):
                if mask is not None and mult != 1.0:
                    parts[key] = (mult - 1.0) * torch.stack([w * r(mask) for _, w, r in terms]).sum()
        if self.perceptual is not None:
            parts["perceptual"] = cfg.perceptual * self.perceptual(pred_rgb, target_rgb, weight)
        if pred_mask is not None and cfg.mask_loss > 0:
            if face_mask is None:
                raise ValueError("pred_mask given: FaceLoss needs face_mask as its target")
            with _fp32(pred_mask):
                p, t = pred_mask.float(), face_mask.float()
                fn = cfg.mask_loss_fn
                term = F.binary_cross_entropy(p.clamp(1e-6, 1 - 1e-6), t) if fn == "bce" else mse(p, t)
            parts["mask"] = cfg.mask_loss * term
        stacked = torch.stack(list(parts.values()))
        # One device sync for all logged values instead of one .item() per part.
        return stacked.sum(), dict(zip(parts, stacked.detach().cpu().tolist(), strict=True))


def _hull_planes(pts: Tensor) -> Tensor:
    """``[B, n, 2]`` points → ``[B, n + 4, 3]`` half-planes (a, b, c) of their convex hull.

    ``a·x + b·y + c`` is the signed distance to the edge line, > 0 outside. Edge i→j is a hull
    edge when no point lies on its right; each hull vertex gets one such edge, other slots are
    disabled. The bounding-box planes cap degenerate (collinear, e.g. closed-eye) hulls.
    """
    d = pts[:, None, :, :] - pts[:, :, None, :]  # d[b, i, k] = p_k − p_i
    dx, dy = d[..., 0], d[..., 1]
    cross = dx[..., :, None] * dy[..., None, :] - dy[..., :, None] * dx[..., None, :]  # [B, i, j, k]
    length = d.norm(dim=-1)  # [B, i, j]
    hull = (cross.amin(dim=-1) >= -1e-3 * length) & (length > 1e-6)
    j = hull.float().argmax(dim=-1)  # [B, i]
    e = d.gather(2, j[..., None, None].expand(-1, -1, 1, 2)).squeeze(2)
    ln = e.norm(dim=-1).clamp_min(1e-6)
    a, b = e[..., 1] / ln, -e[..., 0] / ln
    c = -(a * pts[..., 0] + b * pts[..., 1])
    planes = torch.stack([a, b, c], dim=-1) * hull.any(dim=-1)[..., None]
    planes[..., 2] -= (~hull.any(dim=-1)) * 1e4  # disabled slot: always far "inside"
    axes = torch.eye(2, device=pts.device).expand(pts.shape[0], 2, 2)  # box: lo − x ≤ 0, x − hi ≤ 0
    box = [torch.cat([-axes, pts.amin(1)[..., None]], -1), torch.cat([axes, -pts.amax(1)[..., None]], -1)]
    return torch.cat([planes, *box], dim=1)


def _soft_hull(pts: Tensor, size: int, grow: float, soft: float) -> Tensor:
    """``[N, n, 2]`` points → ``[N, size, size]`` soft masks of their grown, feathered hulls.

    Evaluated only in a window around the points' box (the ramp is 0 beyond it): ~10× fewer
    pixels than the whole 64-px image, which keeps a batch of 64 under 5 ms on CPU.
    """
    num, planes, reach = pts.shape[0], _hull_planes(pts), grow + soft / 2
    lo = (pts.amin(1) - reach).floor()
    sw, sh = (min(int(v) + 1, size) for v in ((pts.amax(1) + reach).ceil() - lo).amax(0).tolist())
    # Shift windows inside the image: still covering the hull's visible part, no index clipping.
    lo = torch.stack([lo[:, 0].clamp(0, size - sw), lo[:, 1].clamp(0, size - sh)], 1)
    v, u = torch.meshgrid(torch.arange(sh, device=pts.device, dtype=pts.dtype),
                          torch.arange(sw, device=pts.device, dtype=pts.dtype), indexing="ij")
    u, v = u.reshape(-1), v.reshape(-1)  # window-local x, y
    offset = planes[..., 2:] + planes[..., :2] @ lo[..., None]  # c in window-local coordinates
    dist = torch.addcmul(offset, planes[..., :1], u).addcmul_(planes[..., 1:2], v).amax(1)  # [N, sh*sw]
    value = ((reach - dist) / soft).clamp(0, 1)  # linear ramp = dilation + feathered edge
    index = (lo[:, 1, None] + v) * size + lo[:, 0, None] + u
    out = pts.new_zeros(num, size * size)
    out.scatter_(1, index.long(), value)
    return out.view(num, size, size)


@torch.no_grad()
def region_masks(landmarks_out: Tensor, size: int, dilate: float = 0.03,
                 feather: float = 0.03) -> tuple[Tensor, Tensor]:
    """Soft eye and mouth masks ``[B, 1, size, size]`` (float32) from 68 landmarks in output px.

    Convex hulls of each eye (36–41, 42–47) and of the mouth, grown by ``dilate`` and faded over
    ``feather`` (fractions of ``size``; ≈2 px each at 64 px) by a linear ramp on the distance to
    the hull. The mouth hull is that of the outer lip 48–59: the inner lip 60–67 lies inside it
    and would cost 5× more hull tests. Tensor ops on the landmarks' device; 2 tiny host syncs.
    """
    pts = landmarks_out.float()
    b = pts.shape[0]
    grow, soft = dilate * size, max(feather * size, 1e-3)
    eyes = _soft_hull(torch.cat([pts[:, 36:42], pts[:, 42:48]]), size, grow, soft)
    mouth = _soft_hull(pts[:, 48:60], size, grow, soft)
    return eyes.view(2, b, 1, size, size).amax(0), mouth[:, None]  # eyes: union of the two
