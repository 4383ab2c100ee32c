"""Colour adjusters: make the swapped face's colours match the face it replaces.

Every adjuster has one signature, ``adjust(new_face, old_face, mask) -> uint8 BGR``:

* ``new_face`` — the model's output face, uint8 BGR ``[s, s, 3]``, in aligned space;
* ``old_face`` — the original aligned crop from the frame, same shape and space;
* ``mask`` — float ``[s, s]`` in ``[0, 1]`` (a uint8 0/255 mask is accepted too).

Statistics are computed only where ``mask > 0.5``. The statistics-based methods
(``avg-color``, ``match-hist``, ``color-transfer``) apply their mapping to the *whole*
image, so pixels outside the mask change too; the blend step masks them away anyway.
``seamless-clone`` returns the old face with the new face Poisson-cloned into the mask:
outside the mask it is exactly the old face. With an empty mask there is nothing to
measure: the statistics methods return the new face unchanged, ``seamless-clone`` the old
face.

Look methods up by name: ``COLOR_METHODS.create("color-transfer")(new, old, mask)``.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

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
        "the original face (default)")
_plugin("match-hist", adjust_match_hist, "per-channel histogram matching inside the mask")
_plugin("color-transfer", adjust_color_transfer, "Reinhard L*a*b* mean/std transfer inside the mask")
_plugin("seamless-clone", adjust_seamless_clone, "OpenCV Poisson blending into the original face")


def adjust_color(method: str, new_face: np.ndarray, old_face: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Convenience: look ``method`` up in :data:`COLOR_METHODS` and apply it."""
    return COLOR_METHODS.create(method)(new_face, old_face, mask)
