"""Warp to landmarks (dfaker's idea, faceswap's ``warp_to_landmarks``) as batched tensor ops.

faceswap replaces the random 5×5 warp of each *input* by a warp that moves the face's 68
aligned landmarks onto those of a similar face — one drawn at random from the 10 closest by
landmark distance among the *other* identity's faces — jittered by N(0, 2 px per 256 px);
8 anchors (the crop's corners and edge midpoints) stay put, and jaw points that fall inside
the inner face (points 17–67 of either set) are dropped. It then warps piecewise-affinely over
the Delaunay triangulation (``scipy.interpolate.griddata`` + ``cv2.remap``, one face at a
time). The target stays the plain, unwarped face: the model learns to undo a change of shape.

Here the same correspondences define a thin-plate spline instead: every sample's
(N+3)×(N+3) system is solved in one batched :func:`torch.linalg.solve` and evaluated on a
lattice of at most 65×65 points, which is interpolated to the output pixels, so the whole
batch costs a few small tensor ops on the training device, CPU or GPU. The spline passes
exactly through the kept points and anchors and is smooth where the piecewise-affine map
creases along triangle edges. Unlike a piecewise-affine map it swings far past two points
that nearly meet in one face and not in the other, so such points are dropped too
(:func:`strained`). Dropped points are removed from the system exactly (their rows become the
identity), which keeps a batch's shapes fixed whatever each sample drops.

Partner pools (:func:`nearest_faces`) are computed once per face set, in chunks, so 30,000
faces need ~64 MB of distances at a time, not 3.6 GB.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

NEAREST = 10  # faceswap draws the partner among the 10 closest faces
JAW = slice(0, 17)  # faceswap tests [:18] against a hull that contains point 17; 0–16 is the jaw
_CORE = slice(17, 68)  # brows, nose, eyes, mouth: the inner face
_DIRECTIONS = 90  # support directions of the inner-face hull test (over-estimate ≤ 0.06 %)
# No kept pair may change its offset by more than its distance: then no pair swaps order
# (⟨Δsrc, Δdst⟩ > 0). On real faces warped to the other identity this drops ~6 of 68 points.
MAX_STRAIN = 1.0
_MAX_LATTICE = 64  # lattice cells per side at most: the spline bends sharply (log r) at its points
_RIDGE = 1e-7  # in units of the output size²: keeps coincident points from making L singular
_CHUNK_BYTES = 64 * 1024**2  # distance block size of nearest_faces


class LandmarkBatch(NamedTuple):
    """A batch's landmarks in stored-face pixels, cv2 convention (pixel centres at integers,
    as extract writes them), scaled to the face size the batch is served at."""

    own: Tensor  # [B,68,2]; NaN for a face without landmarks
    partners: Tensor  # [B,K,68,2] the closest faces' landmarks; rows past ``count`` are padding
    count: Tensor  # [B] int: usable partners per face (0 = leave that face unwarped)

    def to(self, device: torch.device | str) -> LandmarkBatch:
        return LandmarkBatch(*(t.to(device) for t in self))


def nearest_faces(query: np.ndarray, pool: np.ndarray, k: int = NEAREST,
                  exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Indices [Nq, k'] of each query face's k closest pool faces by landmark L2 distance
    (closest first; k' = min(k, usable pool)), and how many of them are usable per query.

    ``query`` [Nq,68,2] and ``pool`` [Np,68,2] may hold NaN rows (faces without landmarks):
    those are never chosen, and such a query gets a count of 0. ``exclude_self`` (the pool is
    the query set) keeps a face from being its own partner. Distances are computed in blocks
    of ~64 MB with one matmul each, so a 30k-face set stays light.
    """
    q_ok = np.flatnonzero(np.isfinite(query).all(axis=(1, 2)))
    p_ok = np.flatnonzero(np.isfinite(pool).all(axis=(1, 2)))
    kk = max(0, min(k, len(p_ok) - (1 if exclude_self else 0)))
    index = np.zeros((len(query), max(kk, 1)), np.int64)
    count = np.zeros(len(query), np.int64)
    if kk == 0 or len(q_ok) == 0:
        return index, count
    # Centred on the pool's mean shape, so |q|² + |p|² − 2 q·p cancels little in float32.
    mean = pool[p_ok].reshape(len(p_ok), -1).astype(np.float64).mean(0)
    p = torch.from_numpy((pool[p_ok].reshape(len(p_ok), -1) - mean).astype(np.float32))
    p_ids = torch.from_numpy(p_ok)
    p_sq = (p * p).sum(1)
    rows = max(1, _CHUNK_BYTES // (4 * len(p_ok)))
    for start in range(0, len(q_ok), rows):
        ids = q_ok[start:start + rows]
        q = torch.from_numpy((query[ids].reshape(len(ids), -1) - mean).astype(np.float32))
        # Squared distances via |q|² + |p|² − 2 q·p: one matmul per block (ranking only).
        d = (q * q).sum(1, keepdim=True) + p_sq[None] - 2.0 * q @ p.T
        if exclude_self:
            d[p_ids[None] == torch.from_numpy(ids)[:, None]] = math.inf
        order = d.topk(kk, dim=1, largest=False).indices  # sorted, closest first
        index[ids] = p_ok[order.numpy()]
        count[ids] = kk
    return index, count


def choose_partners(landmarks: LandmarkBatch, pick: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
    """(source, destination) points [B,68,2] in stored-face px, pixel-edge convention (the
    augmenter's): each face's own landmarks and its ``floor(pick·count)``-th partner's plus
    ``noise``. Faces without a partner get NaN destinations, i.e. no warp."""
    own, partners, count = landmarks
    slot = (pick * count).long().clamp(max=partners.shape[1] - 1)
    chosen = partners[torch.arange(len(slot), device=slot.device), slot]
    dst = torch.where((count > 0)[:, None, None], chosen + noise, math.nan)
    return own + 0.5, dst + 0.5


def edge_anchors(size: float) -> Tensor:
    """The 8 fixed points of faceswap: the output window's corners and edge midpoints."""
    lo, mid, hi = 0.0, size / 2, float(size)
    return torch.tensor([[lo, lo], [hi, lo], [hi, hi], [lo, hi], [mid, lo], [hi, mid], [mid, hi], [lo, mid]])


def jaw_inside_core(src: Tensor, dst: Tensor) -> Tensor:
    """[B,17] bool: jaw point i of ``src`` or ``dst`` lies in the convex hull of both sets'
    inner-face points (faceswap drops those: the jaw line would cross the face and fold).

    A point is in a convex hull iff no direction separates it: ⟨p, u⟩ ≤ max_s ⟨s, u⟩ for all u.
    Testing 90 directions is batched and over-estimates the hull by at most 1/cos(π/90) − 1."""
    angles = torch.arange(_DIRECTIONS, device=src.device, dtype=src.dtype) * (2 * math.pi / _DIRECTIONS)
    u = torch.stack([angles.cos(), angles.sin()], -1)  # [D,2]
    core = torch.cat([src[:, _CORE], dst[:, _CORE]], 1)
    support = (core @ u.T).amax(1)  # [B,D]
    inside = [((pts[:, JAW] @ u.T) <= support[:, None]).all(-1) for pts in (src, dst)]
    return inside[0] | inside[1]


def strained(src: Tensor, dst: Tensor, keep: Tensor) -> Tensor:
    """[B,N] bool: landmarks to drop so that no pair of kept points (anchors included) changes
    its offset by more than ``MAX_STRAIN`` times its distance in ``dst``.

    Where two points nearly meet in one set and not in the other — a mouth or an eye open in
    one face and closed in the other, a jaw point next to an anchor — a piecewise-affine warp
    squashes one thin triangle, but an interpolating spline swings far past both points (tens
    of pixels on real faces). Of such a landmark pair the later index goes (inner lips after
    outer, lower lids after upper); next to an anchor, the landmark goes. ``src``/``dst`` are
    [B,N+A,2] with the A anchors last (never dropped); ``keep`` says which points take part.
    """
    n = keep.shape[1] - edge_anchors(1.0).shape[0]
    offsets = (src[:, :, None] - src[:, None]) - (dst[:, :, None] - dst[:, None])
    spacing = (dst[:, :, None] - dst[:, None]).norm(dim=-1)
    bad = offsets.norm(dim=-1) > MAX_STRAIN * spacing
    bad &= keep[:, :, None] & keep[:, None]
    later = torch.ones(n, n, dtype=torch.bool, device=keep.device).triu(1)
    return (bad[:, :n, :n] & later).any(1) | bad[:, :n, n:].any(2)


def _kernel(a: Tensor, b: Tensor) -> Tensor:
    """TPS radial basis r² log r² between point sets [B,M,2] and [B,N,2] → [B,M,N].
    r² = |a|² + |b|² − 2a·b in one batched matmul-add, no [B,M,N,2] difference tensor (in
    window units every r² ≤ 2, and the cancellation costs < 0.002 px in float32)."""
    sq = a.square().sum(-1)[:, :, None] + b.square().sum(-1)[:, None]
    r2 = torch.baddbmm(sq, a, b.transpose(1, 2), alpha=-2.0).clamp_(min=1e-30)
    return r2.log().mul_(r2)  # r² log r², → 0 at r = 0 (xlogy is ~3× slower on CPU)


def _affine_basis(points: Tensor) -> Tensor:
    return torch.cat([torch.ones_like(points[..., :1]), points], -1)  # [.., 3]: 1, x, y


def solve_tps(ctrl: Tensor, values: Tensor, keep: Tensor) -> tuple[Tensor, Tensor]:
    """Thin-plate spline through ``values`` [B,N,2] at ``ctrl`` [B,N,2] using only the points
    where ``keep`` [B,N]; returns radial weights [B,N,2] (0 for dropped points) and the affine
    part [B,3,2]. Solved in float64: the system is tiny and its condition number is not."""
    dtype = torch.float64
    c, v, m = ctrl.to(dtype), values.to(dtype), keep.to(dtype)
    c, v = torch.nan_to_num(c) * m[..., None], torch.nan_to_num(v) * m[..., None]
    n = c.shape[1]
    # A dropped point's row and column become the identity's, with a zero right-hand side:
    # its weight is exactly 0 and the rest is exactly the spline through the kept points.
    k = _kernel(c, c) * (m[:, :, None] * m[:, None]) + torch.diag_embed(1.0 - m + _RIDGE)
    p = _affine_basis(c) * m[..., None]
    top = torch.cat([k, p], 2)
    bottom = torch.cat([p.transpose(1, 2), c.new_zeros(c.shape[0], 3, 3)], 2)
    rhs = torch.cat([v, c.new_zeros(c.shape[0], 3, 2)], 1)
    sol = torch.linalg.solve(torch.cat([top, bottom], 1), rhs)
    return sol[:, :n], sol[:, n:]


def eval_tps(ctrl: Tensor, weights: Tensor, affine: Tensor, points: Tensor, keep: Tensor) -> Tensor:
    """The spline of :func:`solve_tps` at ``points`` ([M,2] shared by the batch, or [B,M,2])."""
    c = torch.nan_to_num(ctrl.to(weights.dtype)) * keep.to(weights.dtype)[..., None]
    pts = points.to(weights.dtype).expand(ctrl.shape[0], -1, -1)
    return _kernel(pts, c) @ weights + _affine_basis(pts) @ affine


class Spline(NamedTuple):
    """A fitted batch of thin-plate splines in window units (see :func:`fit_landmark_spline`)."""

    ctrl: Tensor  # [B,N+8,2] the destination points, anchors last
    weights: Tensor  # [B,N+8,2]
    affine: Tensor  # [B,3,2]
    keep: Tensor  # [B,N+8] bool: the points it passes through
    scale: float  # output pixels per window unit

    def __call__(self, points: Tensor) -> Tensor:
        """Where output points ([M,2] or [B,M,2], output px) read the unwarped image."""
        return eval_tps(self.ctrl, self.weights, self.affine, points / self.scale, self.keep) * self.scale


def fit_landmark_spline(src: Tensor, dst: Tensor, size: int) -> Spline:
    """The backward warp taking ``dst`` [B,68,2] to ``src`` [B,68,2] and the 8 anchors to
    themselves, in output pixels of a ``size``-px window (pixel-edge convention; NaN = no
    such point), through the landmarks that are neither missing, nor jaw points inside the
    face, nor too strained. Solved in float64, returned in the points' dtype."""
    b = src.shape[0]
    scale = float(size)  # solve in units of the window: the spline is scale-invariant
    anchors = edge_anchors(1.0).to(src.device, src.dtype).expand(b, -1, -1)
    keep = torch.isfinite(src).all(-1) & torch.isfinite(dst).all(-1)
    src, dst = torch.nan_to_num(src) / scale, torch.nan_to_num(dst) / scale
    keep[:, JAW] &= ~jaw_inside_core(src, dst)
    ctrl, values = torch.cat([dst, anchors], 1), torch.cat([src, anchors], 1)
    keep = torch.cat([keep, keep.new_ones(b, anchors.shape[1])], 1)
    keep[:, :src.shape[1]] &= ~strained(values, ctrl, keep)
    weights, affine = (t.to(src.dtype) for t in solve_tps(ctrl, values, keep))  # evaluated in fp32
    return Spline(ctrl, weights, affine, keep, scale)


def landmark_field(src: Tensor, dst: Tensor, size: int) -> Tensor:
    """Backward map [B,2,size,size] of the warp moving ``src`` [B,68,2] onto ``dst`` [B,68,2]
    (output pixels, pixel-edge convention; NaN = no such point): at each output pixel centre,
    where to read in the unwarped image (:func:`fit_landmark_spline`).

    The spline is evaluated on a lattice over [0, size] (a pixel's spacing up to 64 px, then
    coarser: ≲ 0.1 px off at 64 px, ≲ 1 px at 256) and interpolated bilinearly to the pixel
    centres.
    """
    spline = fit_landmark_spline(src, dst, size)
    b, cells = src.shape[0], min(size, _MAX_LATTICE)
    ticks = torch.linspace(0.0, float(size), cells + 1, device=src.device, dtype=src.dtype)
    lattice = torch.stack(torch.meshgrid(ticks, ticks, indexing="xy"), -1).reshape(-1, 2)  # rows = y
    coarse = spline(lattice).reshape(b, cells + 1, cells + 1, 2).permute(0, 3, 1, 2)
    # Hat-function weights from the lattice to the pixel centres (the Augmenter's interpolation).
    t = (torch.arange(size, device=src.device, dtype=src.dtype) + 0.5) * (cells / size)
    hat = (1 - (t[:, None] - torch.arange(cells + 1, device=src.device, dtype=src.dtype)).abs()).clamp(min=0)
    return torch.einsum("ik,bckl,jl->bcij", hat, coarse, hat)
