"""Batched training augmentation: the seed's random_transform + random_warp as tensor ops.

Per sample the seed did: a random rotation/zoom/shift/flip of the stored face
(cv2.warpAffine), then ``random_warp``: a 5×5 control grid over the coverage window, each
point jittered, bilinearly upsampled to a dense map → the distorted *input*; and the
undistorted *target* through the least-squares similarity from the jittered points to
the regular output grid. Here every step is a coordinate map, so the whole chain
(transform ∘ warp, or transform ∘ similarity) is composed per sample and the face is
sampled **once** with ``grid_sample`` — one interpolation instead of the seed's two, the same
code on CPU and GPU. Randomness comes only from the caller's ``torch.Generator``.

With ``warp_to_landmarks`` the input's warp is faceswap's instead of the seed's: a smooth
field moving the face's landmarks onto a similar face's (:mod:`swapface.align.warp_landmarks`),
composed into the same single sampling.

Coordinates are continuous pixels with pixel ``i`` covering ``[i, i+1)`` (grid_sample's
``align_corners=False``). The coverage window is ``[S/2 - cS/2, S/2 + cS/2]`` and output pixel
``j`` samples the window at ``(j + 0.5) / out`` — exactly what the seed's
``cv2.resize(map5x5, (80, 80))[8:72]`` does to the control grid, and what a cv2 crop +
resize does to the image, so :meth:`Augmenter.center` equals one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from swapface.align.warp_landmarks import LandmarkBatch, choose_partners, landmark_field
from swapface.core.config import option
from swapface.core.errors import ConfigError

SEED_FACE_SIZE = 256  # the seed's stored face size: warp noise is given in its pixel units
GRID = 5  # control points per side (seed)


@dataclass
class AugmentConfig:
    rotation: float = option(10.0, help="max random rotation in degrees (±)")
    zoom: float = option(0.05, help="max random zoom as a fraction (±)")
    shift: float = option(0.05, help="max random shift as a fraction of the face size (±)")
    flip: float = option(0.5, help="probability of a horizontal flip")
    random_warp: bool = option(True, help="seed random warp of the inputs (5×5 jittered control grid)")
    warp_until: float = option(
        1.0, help="fraction of the run's budget (iterations or minutes, whichever ends first) "
        "after which random warp is switched off, as DeepFaceLab users do for the last part")
    warp_noise: float = option(5.0, help="control-point jitter std in px of a 256-px face (scales with size)")
    color: bool = option(True, help="random LAB colour shift, the same for a sample's input and target")
    # A typical aligned face has an L* std of ~20 and a*/b* stds of ~5-8, so these are about
    # 0.3·std for L* and ~0.4-0.6·std for a*/b*: visible lighting/tint changes, not recolouring.
    color_l: float = option(6.0, help="max L* shift (±, L* in 0..100)")
    color_ab: float = option(3.0, help="max a*/b* shift (±)")
    warp_to_landmarks: bool = option(
        False, help="instead of the random warp, warp each input's landmarks onto those of one of "
        "the 10 closest faces by landmark distance (faceswap/dfaker warp to landmarks)")
    warp_partners: str = option(
        "other", choices=["other", "same"], help="where warp-to-landmarks draws those faces from: the "
        "other identity (faceswap) or the same one")
    landmark_noise: float = option(2.0, help="warp-to-landmarks jitter std of the target landmarks, "
                                   "in px of a 256-px face (faceswap: 2)")

    def __post_init__(self) -> None:
        if not 0.0 <= self.warp_until <= 1.0:
            raise ConfigError(f"warp_until must be between 0 and 1, got {self.warp_until!r}")
        if self.warp_partners not in ("other", "same"):
            raise ConfigError(f"warp_partners must be 'other' or 'same', got {self.warp_partners!r}")
        if not 0 <= self.landmark_noise < float("inf"):
            raise ConfigError(f"landmark_noise must be finite and ≥ 0, got {self.landmark_noise!r}")


class Batch(NamedTuple):
    inputs: Tensor  # [B,3,out,out] distorted faces fed to the model
    targets: Tensor  # [B,3,out,out] what the model must reproduce
    target_masks: Tensor | None  # [B,1,out,out], aligned with targets


class AugmentParams(NamedTuple):
    """One batch's random draws (on the augmenter's device); exposed for tests and previews."""

    angle: Tensor  # [B] radians, positive = counter-clockwise on screen (cv2 convention)
    scale: Tensor  # [B]
    shift: Tensor  # [B,2] px
    flip: Tensor  # [B] bool
    noise: Tensor | None  # [B,2,GRID,GRID] control-point offsets in px (x, y); None = no warp
    lab: Tensor | None  # [B,3] L*, a*, b* shifts; None = no colour change
    # Warp to landmarks (replaces ``noise``): [B,68,2] stored-face px (pixel edges), the face's
    # own landmarks and where they go (the partner's, jittered); NaN rows = no warp for that face.
    lm_src: Tensor | None = None
    lm_dst: Tensor | None = None


class Augmenter:
    def __init__(self, cfg: AugmentConfig, face_size: int, output_size: int, coverage: float,
                 device: torch.device | str = "cpu") -> None:
        if not 0.0 < coverage <= 1.0:
            raise ValueError(f"coverage must be in (0, 1], got {coverage}")
        self.cfg, self.size, self.out, self.coverage = cfg, face_size, output_size, coverage
        self.device = torch.device(device)
        lo, hi = face_size * (1 - coverage) / 2, face_size * (1 + coverage) / 2
        ticks = torch.linspace(lo, hi, GRID)
        # Regular control grid in face pixels, [2,GRID,GRID] as (x, y) maps (rows = y).
        self._ctrl = torch.stack(torch.meshgrid(ticks, ticks, indexing="xy")).to(self.device)
        # The same points in output pixels: the similarity's destination.
        out_ticks = torch.linspace(0, output_size, GRID)
        self._dst = torch.stack(torch.meshgrid(out_ticks, out_ticks, indexing="xy")).reshape(2, -1)
        self._dst = self._dst.to(self.device)
        # Bilinear interpolation of the control grid at output pixel centres, as an [out,GRID]
        # weight matrix (hat functions): dense = W · grid · Wᵀ. F.interpolate cannot express the
        # seed's sample positions t_j = (j+½)·4/out (align_corners=True puts t at j·4/(out-1),
        # a ~1/out scale error; False clamps the ends), and the two small matmuls are cheaper.
        t = (torch.arange(output_size) + 0.5) * (GRID - 1) / output_size
        self._interp = (1 - (t[:, None] - torch.arange(GRID)[None]).abs()).clamp(min=0).to(self.device)
        centres = torch.arange(output_size, dtype=torch.float32) + 0.5
        self._out_px = torch.stack(torch.meshgrid(centres, centres, indexing="xy")).to(self.device)

    def sample_params(self, batch: int, generator: torch.Generator,
                      landmarks: LandmarkBatch | None = None) -> AugmentParams:
        """Draw one batch's parameters. Always draws the same amount, whatever the config, so
        a seed's stream does not shift when an option is toggled; drawn on the generator's
        device (CPU for bit-identical batches) and moved to ours. ``landmarks`` (on our
        device) is required with ``warp_to_landmarks``: the partner is drawn here, from the
        same generator, so a seed fixes it too."""
        u = torch.rand(batch, 8, generator=generator, device=generator.device).to(self.device)
        noise = torch.randn(batch, 2, GRID, GRID, generator=generator, device=generator.device)
        pick = torch.rand(batch, generator=generator, device=generator.device).to(self.device)
        lm_noise = torch.randn(batch, 68, 2, generator=generator, device=generator.device).to(self.device)
        c, s = self.cfg, self.size
        signed = u * 2 - 1
        lab_amount = torch.tensor([c.color_l, c.color_ab, c.color_ab], device=self.device)
        lm_src = lm_dst = None
        if c.warp_to_landmarks:
            if landmarks is None:
                raise ValueError("warp_to_landmarks needs the batch's landmarks (a LandmarkBatch)")
            jitter = lm_noise * (c.landmark_noise * s / SEED_FACE_SIZE)
            lm_src, lm_dst = choose_partners(landmarks, pick, jitter)
        return AugmentParams(
            angle=signed[:, 0] * math.radians(c.rotation),
            scale=1 + signed[:, 1] * c.zoom,
            shift=signed[:, 2:4] * (c.shift * s),
            flip=u[:, 4] < c.flip,
            noise=(noise.to(self.device) * (c.warp_noise * s / SEED_FACE_SIZE)
                   if c.random_warp and not c.warp_to_landmarks else None),
            lab=signed[:, 5:8] * lab_amount if c.color else None,
            lm_src=lm_src,
            lm_dst=lm_dst,
        )

    def augment(self, faces: Tensor, masks: Tensor | None, generator: torch.Generator,
                landmarks: LandmarkBatch | None = None) -> Batch:
        """faces [B,3,S,S] RGB in [0,1] (masks [B,1,S,S]) on ``device`` → an augmented batch.
        ``landmarks``: the faces' own and candidate partners' (needed by ``warp_to_landmarks``)."""
        return self.render(faces, masks, self.sample_params(faces.shape[0], generator, landmarks))

    def center(self, faces: Tensor, masks: Tensor | None = None) -> Batch:
        """No augmentation (previews): the coverage window resized to output_size."""
        b = faces.shape[0]
        zero = torch.zeros(b, device=self.device)
        params = AugmentParams(zero, zero + 1, torch.zeros(b, 2, device=self.device),
                               torch.zeros(b, dtype=torch.bool, device=self.device), None, None)
        return self.render(faces, masks, params)

    def render(self, faces: Tensor, masks: Tensor | None, p: AugmentParams) -> Batch:
        b, _, h, w = faces.shape
        if h != self.size or w != self.size:
            raise ValueError(f"expected {self.size}×{self.size} faces, got {h}×{w}")
        ctrl = self._ctrl.expand(b, -1, -1, -1) if p.noise is None else self._ctrl + p.noise
        maps = [self._target_map(ctrl)]
        if p.lm_src is not None and p.lm_dst is not None:  # warped input: landmarks moved
            maps.insert(0, self._landmark_map(p))
        elif p.noise is not None:  # warped input: the jittered grid interpolated over the window
            maps.insert(0, torch.einsum("ik,bckl,jl->bcij", self._interp, ctrl, self._interp))
        # Both maps live in the transformed face; pull them back through flip and the random
        # affine, so one grid_sample reads the stored face directly (border = seed's replicate).
        pts = self._apply(*self._transform_inverse(p), torch.cat(maps, dim=2))
        grid = (pts * (2.0 / self.size) - 1.0).permute(0, 2, 3, 1)
        # Sample in fp32 whatever the storage dtype: half-precision grids are off by ~0.1 px.
        # Masks are sampled apart (only on the target map) rather than concatenated to the
        # faces: the cat would copy the whole full-size batch, which costs more than a call.
        rgb = F.grid_sample(faces.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
        if p.lab is not None:  # the same shift for input and target: they are one tensor here
            rgb = lab_to_rgb(rgb_to_lab(rgb) + p.lab[:, :, None, None]).clamp(0.0, 1.0)
        rgb = rgb.to(faces.dtype)
        targets = rgb[:, :, -self.out:]
        inputs = rgb[:, :, :self.out] if len(maps) == 2 else targets
        target_masks = None
        if masks is not None:
            target_masks = F.grid_sample(masks.float(), grid[:, -self.out:], mode="bilinear",
                                         padding_mode="border", align_corners=False).to(masks.dtype)
        return Batch(inputs, targets, target_masks)

    def _target_map(self, ctrl: Tensor) -> Tensor:
        """Output pixel centres → transformed-face px through the inverse of the least-squares
        similarity (Umeyama) taking the jittered control points onto the regular output grid.
        In 2-D that similarity is the complex least-squares fit q ≈ a·p + t, closed form:
        a = Σ conj(p̃) q̃ / Σ |p̃|² over centred points — no SVD, batched."""
        src = ctrl.reshape(ctrl.shape[0], 2, -1)  # [B,2,N]
        src_mean, dst_mean = src.mean(-1, keepdim=True), self._dst.mean(-1, keepdim=True)
        p, q = src - src_mean, self._dst - dst_mean
        norm = (p * p).sum((1, 2))
        ar = (p[:, 0] * q[0] + p[:, 1] * q[1]).sum(-1) / norm
        ai = (p[:, 0] * q[1] - p[:, 1] * q[0]).sum(-1) / norm
        # Inverse of y = a·x + t is x = (y - t)/a, with 1/a = conj(a)/|a|².
        mag = ar * ar + ai * ai
        inv = torch.stack([torch.stack([ar, ai], -1), torch.stack([-ai, ar], -1)], -2) / mag[:, None, None]
        src_mean, dst_mean = src_mean[..., 0], dst_mean[..., 0]
        offset = src_mean - torch.einsum("bij,j->bi", inv, dst_mean)
        return self._apply(inv, offset, self._out_px.expand(ctrl.shape[0], -1, -1, -1))

    def _landmark_map(self, p: AugmentParams) -> Tensor:
        """Output pixel centres → transformed-face px for warp to landmarks. The landmarks go
        through this sample's flip/rotation/zoom/shift and window into output pixels (faceswap
        warps after its transform too, but with untransformed landmarks); the spline moving
        them is solved there, with its anchors on the output's corners and edge midpoints."""
        assert p.lm_src is not None and p.lm_dst is not None
        a, b = self._transform_inverse(p)
        a_inv = torch.linalg.inv(a)
        lo, step = self.size * (1 - self.coverage) / 2, self.size * self.coverage / self.out

        def to_output(points: Tensor) -> Tensor:  # stored px → transformed px → output px
            return (torch.einsum("bij,bnj->bni", a_inv, points - b[:, None]) - lo) / step

        field = landmark_field(to_output(p.lm_src), to_output(p.lm_dst), self.out)
        return field * step + lo

    def _transform_inverse(self, p: AugmentParams) -> tuple[Tensor, Tensor]:
        """Affine (A, b) taking transformed-face px to stored-face px. The forward transform is
        the seed's: y = s·R(θ)(x - c) + c + shift (cv2.getRotationMatrix2D), then x ↦ S - x
        if flipped; inverted in closed form: x = Rᵀ(flip(y) - c - shift)/s + c."""
        c = self.size / 2.0
        cos, sin = torch.cos(p.angle) / p.scale, torch.sin(p.angle) / p.scale
        rt = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # Rᵀ/s
        f = torch.where(p.flip, -1.0, 1.0)
        a = rt * torch.stack([f, torch.ones_like(f)], -1)[:, None, :]  # Rᵀ/s · diag(f, 1)
        e = torch.stack([torch.where(p.flip, float(self.size), 0.0), torch.zeros_like(f)], -1)
        b = torch.einsum("bij,bj->bi", rt, e - c - p.shift) + c
        return a, b

    @staticmethod
    def _apply(a: Tensor, b: Tensor, pts: Tensor) -> Tensor:
        """Per-sample affine on a [B,2,H,W] coordinate map."""
        return torch.einsum("bij,bjhw->bihw", a, pts) + b[:, :, None, None]


# sRGB (D65) ↔ CIE L*a*b*. Constants from IEC 61966-2-1 and CIE 15; the reference white is
# folded into the XYZ matrix, and inverses are exact (not the rounded published ones), so the
# round trip stays ~1e-5. Everything between the two non-linearities is a 3×3 matrix.
_WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
_RGB2XYZ = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                         [0.2126729, 0.7151522, 0.0721750],
                         [0.0193339, 0.1191920, 0.9503041]], dtype=torch.float64) / _WHITE[:, None]
_F2LAB = torch.tensor([[0.0, 116.0, 0.0], [500.0, -500.0, 0.0], [0.0, 200.0, -200.0]], dtype=torch.float64)
_XYZ2RGB, _LAB2F = torch.linalg.inv(_RGB2XYZ).float(), torch.linalg.inv(_F2LAB).float()
_RGB2XYZ, _F2LAB = _RGB2XYZ.float(), _F2LAB.float()
_DELTA = 6.0 / 29.0
_L_OFFSET = torch.tensor([16.0, 0.0, 0.0])


def _mix(matrix: Tensor, x: Tensor) -> Tensor:
    """3×3 colour matrix over the channel axis (-3) of [..., 3, H, W]."""
    return torch.einsum("ij,...jhw->...ihw", matrix.to(x.device, x.dtype), x)


def _knee(x: Tensor, knot: float, curve: Callable[[Tensor], Tensor], slope: float) -> Tensor:
    """Linear (``slope``) below ``knot``, ``curve`` above; both pieces meet at the knot, so
    curve(max(x, k)) + slope·(min(x, k) - k) is the exact piecewise function. Clamps instead
    of torch.where, which evaluates both branches anyway and is ~10× slower than a clamp on CPU."""
    return curve(x.clamp(min=knot)).add_(x.clamp(max=knot).sub_(knot).mul_(slope))


def _pow(x: Tensor, exponent: float) -> Tensor:
    """x ** exponent for x > 0 (the knees clamp first): exp(e·log x) is ~2.5× faster than
    torch.pow with a fractional exponent on CPU, and as accurate in fp32."""
    return torch.log(x).mul_(exponent).exp_()


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """[..., 3, H, W] sRGB in [0,1] → L* (0..100), a*, b*."""
    lin = _knee(rgb, 0.04045, lambda x: _pow((x + 0.055) / 1.055, 2.4), 1 / 12.92)
    f = _knee(_mix(_RGB2XYZ, lin), _DELTA**3, lambda t: _pow(t, 1 / 3), 1 / (3 * _DELTA**2))
    return _mix(_F2LAB, f).sub_(_L_OFFSET.to(f.device, f.dtype)[:, None, None])


def lab_to_rgb(lab: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_lab`; out-of-gamut results are not clamped."""
    f = _mix(_LAB2F, lab + _L_OFFSET.to(lab.device, lab.dtype)[:, None, None])
    lin = _mix(_XYZ2RGB, _knee(f, _DELTA, lambda x: x * x * x, 3 * _DELTA**2))
    return _knee(lin, 0.0031308, lambda x: _pow(x, 1 / 2.4).mul_(1.055).sub_(0.055), 12.92)
