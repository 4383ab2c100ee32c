"""Colour adjusters: make the swapped face's colours match the face it replaces.

Every adjuster has one signature, ``adjust(new_face, old_face, mask) -> uint8 BGR``:

* ``new_face`` — the model's output face, uint8 BGR ``[s, s, 3]``, in aligned space;
* ``old_face`` — the original aligned crop from the frame, same shape and space;
* ``mask`` — float ``[s, s]`` in ``[0, 1]`` (a uint8 0/255 mask is accepted too).

Statistics are computed only where ``mask > 0.5``. The statistics-based methods
(``avg-color``, ``match-hist``, ``color-transfer``) apply their mapping to the *whole*
image, so pixels outside the mask change too; the blend step masks them away anyway.
``border`` measures only a band along the mask's edge, where the new face meets the frame,
and fits a smooth colour field there (a shift, plus a linear gradient by default) that gives
way to one whole-face shift towards the middle, so a face lit from the other side or a darker
cheek meets the skin around it on every side (the default since 2026-12-07).
``seamless-clone`` returns the old face with the new face Poisson-cloned into the mask:
outside the mask it is exactly the old face. With an empty mask there is nothing to
measure: the statistics methods return the new face unchanged, ``seamless-clone`` the old
face.

Look methods up by name: ``COLOR_METHODS.create("color-transfer")(new, old, mask)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.core.registry import NoOptions, Registry

ColorAdjust = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

COLOR_METHODS: Registry[ColorAdjust] = Registry("colour method")

_EPS = 1e-6


def _check(new_face: np.ndarray, old_face: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Validate the inputs and return the boolean statistics region (``mask > 0.5``)."""
    if new_face.dtype != np.uint8 or old_face.dtype != np.uint8:
        raise TypeError(f"faces must be uint8, got {new_face.dtype} and {old_face.dtype}")
    if new_face.ndim != 3 or new_face.shape[2] != 3 or new_face.shape != old_face.shape:
        raise ValueError(f"faces must be matching [h, w, 3] BGR, got {new_face.shape} and {old_face.shape}")
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.shape != new_face.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match face shape {new_face.shape[:2]}")
    threshold = 127.5 if mask.dtype == np.uint8 else 0.5
    return np.ascontiguousarray(mask > threshold)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------ methods


def adjust_none(new_face: np.ndarray, old_face: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Identity: the new face, untouched (a copy)."""
    _check(new_face, old_face, mask)
    return new_face.copy()


def adjust_avg_color(new_face: np.ndarray, old_face: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shift each channel so its mean inside the mask equals the old face's."""
    region = _check(new_face, old_face, mask)
    if not region.any():
        return new_face.copy()
    region8 = region.view(np.uint8)
    shift = np.subtract(cv2.mean(old_face, mask=region8)[:3], cv2.mean(new_face, mask=region8)[:3])
    # A per-channel constant shift is a per-channel lookup table.
    lut = _to_uint8(np.arange(256, dtype=np.float64)[:, None] + shift).reshape(256, 1, 3)
    return cv2.LUT(new_face, lut)


def _histogram(image: np.ndarray, channel: int, region8: np.ndarray) -> np.ndarray:
    return cv2.calcHist([image], [channel], region8, [256], [0, 256]).reshape(-1).astype(np.float64)


def _match_lut(src_counts: np.ndarray, tmpl_counts: np.ndarray) -> np.ndarray:
    """256-entry LUT mapping levels with histogram ``src_counts`` onto ``tmpl_counts``'s CDF."""
    src_cdf = np.cumsum(src_counts) / src_counts.sum()
    present = np.flatnonzero(tmpl_counts)
    tmpl_cdf = np.cumsum(tmpl_counts[present]) / tmpl_counts.sum()
    # Same construction as skimage.exposure.match_histograms: each source level goes to the
    # template level at the same quantile, linearly interpolated between template levels.
    return np.interp(src_cdf, tmpl_cdf, present.astype(np.float64))


def adjust_match_hist(new_face: np.ndarray, old_face: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-channel histogram matching of the new face onto the old one, inside the mask."""
    region = _check(new_face, old_face, mask)
    if not region.any():
        return new_face.copy()
    region8 = region.view(np.uint8)
    luts = [_match_lut(_histogram(new_face, c, region8), _histogram(old_face, c, region8)) for c in range(3)]
    lut = _to_uint8(np.stack(luts, axis=1)).reshape(256, 1, 3)
    return cv2.LUT(new_face, lut)


def _bgr_to_lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image.astype(np.float32) * np.float32(1.0 / 255.0), cv2.COLOR_BGR2LAB)


def adjust_color_transfer(new_face: np.ndarray, old_face: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reinhard et al. 2001, "Color Transfer between Images": L*a*b* mean/std transfer.

    Means and standard deviations are measured inside the mask; float32 L*a*b* (L in
    [0, 100]) keeps the conversion free of 8-bit quantisation.
    """
    region = _check(new_face, old_face, mask)
    if not region.any():
        return new_face.copy()
    new_lab, old_lab = _bgr_to_lab(new_face), _bgr_to_lab(old_face)
    region8 = region.view(np.uint8)
    new_mean, new_std = (v[:, 0] for v in cv2.meanStdDev(new_lab, mask=region8))
    old_mean, old_std = (v[:, 0] for v in cv2.meanStdDev(old_lab, mask=region8))
    # A flat channel in the new face (std ≈ 0) has no contrast to scale: only shift it.
    scale = np.where(new_std > _EPS, old_std / np.maximum(new_std, _EPS), 1.0)
    out = (new_lab - new_mean.astype(np.float32)) * scale.astype(np.float32) + old_mean.astype(np.float32)
    bgr = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2BGR)
    return _to_uint8(bgr * 255.0)


@dataclass(frozen=True)
class BorderOptions:
    band: float = option(0.1, help="depth of the measured band inside the mask edge, as a "
                         "fraction of the face size")
    order: int = option(1, help="colour field fitted on the band: 0 one shift, 1 plus a linear "
                        "gradient, 2 plus curvature", choices=[0, 1, 2])
    fade: float = option(0.25, help="depth (fraction of the face size) over which the border's "
                         "field gives way to one shift measured on the whole face (0: the "
                         "border's field everywhere)")

    def validate(self) -> None:
        if not 0.0 < self.band <= 0.5:
            raise ConfigError(f"border band must be in (0, 0.5], got {self.band}")
        if not 0.0 <= self.fade <= 1.0:
            raise ConfigError(f"border fade must be in [0, 1], got {self.fade}")


def _poly_basis(xs: np.ndarray, ys: np.ndarray, size: int, order: int) -> np.ndarray:
    u, v = np.broadcast_arrays(xs / size - 0.5, ys / size - 0.5)
    terms = [np.ones_like(u)]
    if order >= 1:
        terms += [u, v]
    if order >= 2:
        terms += [u * u, u * v, v * v]
    return np.stack(terms, axis=-1)


_MAX_FIT_PIXELS = 3000  # a few coefficients need no more; keeps a 256 px face at ~1 ms of fitting


def adjust_border(new_face: np.ndarray, old_face: np.ndarray, mask: np.ndarray,
                  options: BorderOptions | None = None) -> np.ndarray:
    """Match the new face to the old one along the mask's edge with a smooth L*a*b* field.

    The difference old − new on the band (``band`` × size deep inside ``mask > 0.5``) is
    fitted per channel by least squares with a polynomial of ``order`` in x, y; pixels whose
    residual exceeds 2.5 robust deviations (hair, a glasses rim in one face only) are dropped
    and the fit repeated (three fits in all). Hundreds of pixels go into a few coefficients,
    so the field moves smoothly from frame to frame. At the edge the field is added as
    fitted; deeper in, over ``fade`` × size, it gives way to one L*a*b* shift measured on the
    whole mask (what ``avg-color`` does), so the border meets the frame on every side while
    the middle of the face keeps its own tone (fitted all the way in, a blushed cheek on the
    band reddened the whole face).
    """
    opts = options or BorderOptions()
    region = _check(new_face, old_face, mask)
    size = new_face.shape[0]
    # Padded with zeros: where the mask runs into the crop's edge (the model's window), the
    # face meets the frame too, so that edge belongs to the band.
    depth = cv2.distanceTransform(np.pad(region.view(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    band = region & (depth <= max(1.0, opts.band * size))
    if not band.any():
        return new_face.copy()
    order = opts.order if band.sum() >= 50 else 0  # too few pixels for a gradient
    new_lab, old_lab = _bgr_to_lab(new_face), _bgr_to_lab(old_face)
    ys, xs = np.nonzero(band)
    step = max(1, len(ys) // _MAX_FIT_PIXELS)  # an even spread over the band, not a random one
    ys, xs = ys[::step], xs[::step]
    basis = _poly_basis(xs.astype(np.float64), ys.astype(np.float64), size, order)
    diff = (old_lab[ys, xs] - new_lab[ys, xs]).astype(np.float64)
    keep = np.ones(len(diff), bool)
    for _ in range(3):
        coef = np.linalg.lstsq(basis[keep], diff[keep], rcond=None)[0]
        residual = np.linalg.norm(diff - basis @ coef, axis=1)
        spread = 1.4826 * np.median(np.abs(residual - np.median(residual))) + 1e-3
        keep = residual <= np.median(residual) + 2.5 * spread
        if keep.sum() < basis.shape[1] * 10:
            break
    grid = np.arange(size, dtype=np.float32)
    field = _poly_basis(grid[None, :], grid[:, None], size, order) @ coef.astype(np.float32)
    if opts.fade > 0:
        region8 = region.view(np.uint8)
        shift = np.subtract(cv2.mean(old_lab, mask=region8)[:3],
                            cv2.mean(new_lab, mask=region8)[:3]).astype(np.float32)
        edge = np.clip(1.0 - depth / np.float32(opts.fade * size), 0.0, 1.0)[..., None] ** 2
        field = shift + edge * (field - shift)
    bgr = cv2.cvtColor((new_lab + field).astype(np.float32), cv2.COLOR_LAB2BGR)
    return _to_uint8(bgr * 255.0)


def adjust_seamless_clone(new_face: np.ndarray, old_face: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """OpenCV Poisson blending (``cv2.seamlessClone``, NORMAL_CLONE) of new into old.

    The mask is binarised at 0.5. OpenCV refuses masks whose bounding box reaches the
    image edge (and zeroes the outermost mask pixels), so images and mask are padded
    with reflected borders first and cropped back after. Pixels outside the binary mask
    are copied from ``old_face`` verbatim.
    """
    region = _check(new_face, old_face, mask)
    if not region.any():
        return old_face.copy()
    pad = 2
    binary = np.pad(region.astype(np.uint8) * 255, pad)
    src = cv2.copyMakeBorder(new_face, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    dst = cv2.copyMakeBorder(old_face, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    x, y, w, h = cv2.boundingRect(binary)
    if w < 3 or h < 3:
        # OpenCV solves over the mask's bounding box with that box's outline as the fixed
        # (old-face) boundary; a box under 3 px has no interior, so the answer is the old
        # face, and OpenCV's solver would crash on it.
        return old_face.copy()
    # OpenCV places the mask's bounding box centred at `center` (integer halves), so this
    # centre puts the cloned patch exactly where it came from.
    center = (x + w // 2, y + h // 2)
    cloned = cv2.seamlessClone(src, dst, binary, center, cv2.NORMAL_CLONE)
    cloned = cloned[pad:-pad, pad:-pad]
    return np.where(region[..., None], cloned, old_face)


# ------------------------------------------------------------------------------ registry
def _plugin(name: str, adjust: ColorAdjust, description: str) -> None:
    @COLOR_METHODS.register(name, description=description)
    def factory(options: NoOptions) -> ColorAdjust:
        return adjust


_plugin("none", adjust_none, "no colour matching: the model's face as it is")
_plugin("avg-color", adjust_avg_color, "shift each channel so its mean inside the mask matches "
        "the original face")
_plugin("match-hist", adjust_match_hist, "per-channel histogram matching inside the mask")
_plugin("color-transfer", adjust_color_transfer, "Reinhard L*a*b* mean/std transfer inside the mask")


@COLOR_METHODS.register("border", options=BorderOptions,
                        description="match along the mask's edge: a shift plus a linear gradient "
                        "fitted on a band inside it, fading to one shift in the middle (a side-lit "
                        "or darker cheek meets the skin; default)")
def _border(options: BorderOptions) -> ColorAdjust:
    options.validate()

    def adjust(new_face: np.ndarray, old_face: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return adjust_border(new_face, old_face, mask, options)

    return adjust


_plugin("seamless-clone", adjust_seamless_clone, "OpenCV Poisson blending into the original face")


def adjust_color(method: str, new_face: np.ndarray, old_face: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Convenience: look ``method`` up in :data:`COLOR_METHODS` and apply it."""
    return COLOR_METHODS.create(method)(new_face, old_face, mask)
