"""Paste a swapped aligned face back into its frame: inverse warp of the face's ROI, alpha blend.

Only the frame's bounding box of the mask's support is touched: the face and its mask are
warped back (``WARP_INVERSE_MAP`` with the frame → face matrix, translated to the ROI) into
that box alone, and ``out = frame·(1 − m) + face·m`` is computed there as
``frame + (face − frame)·m``, so every pixel with ``m == 0`` keeps its exact bytes.

Any face size works as long as the matrix maps frame pixels to that face: to paste a model
output directly, compose the face matrix with the inverse of
:func:`swapface.swap.masks.window_matrix` and pass model-size face and mask.
"""

from __future__ import annotations

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 pixels, half-open


def mask_support(mask: np.ndarray) -> Box | None:
    """Half-open box (x0, y0, x1, y1) of a mask's nonzero pixels; None for an empty mask."""
    x, y, w, h = cv2.boundingRect((np.asarray(mask) > 0).astype(np.uint8))
    return None if w == 0 or h == 0 else (x, y, x + w, y + h)


def roi_of(
    matrix: np.ndarray, size: int, frame_shape: tuple[int, ...], support: Box | None = None
) -> Box | None:
    """Frame box (half-open, clipped) holding the face square of ``size`` px; None if off-frame.

    ``matrix`` maps frame pixels to the face. The box takes in every frame pixel whose
    centre maps to face coordinates in (x0 − 1, x1) × (y0 − 1, y1) — all that bilinear
    sampling can reach from face pixels ``support`` (default the whole face,
    ``(0, 0, size, size)``; pass :func:`mask_support` to cover only the mask).
    """
    fx0, fy0, fx1, fy1 = (0, 0, size, size) if support is None else support
    to_frame = cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))
    corners = np.array([[fx0 - 1, fy0 - 1], [fx1, fy0 - 1], [fx0 - 1, fy1], [fx1, fy1]], np.float64)
    pts = corners @ to_frame[:, :2].T + to_frame[:, 2]
    height, width = frame_shape[:2]
    x0 = max(int(np.floor(pts[:, 0].min())), 0)
    y0 = max(int(np.floor(pts[:, 1].min())), 0)
    x1 = min(int(np.ceil(pts[:, 0].max())) + 1, width)
    y1 = min(int(np.ceil(pts[:, 1].max())) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, y0, x1, y1


def roi_matrix(matrix: np.ndarray, roi: Box) -> np.ndarray:
    """The frame → face matrix for coordinates relative to the ROI's top-left corner."""
    m = np.asarray(matrix, dtype=np.float64).copy()
    m[:, 2] += m[:, :2] @ np.array([roi[0], roi[1]], dtype=np.float64)
    return m


def _scale(matrix: np.ndarray) -> float:
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix, dtype=np.float64)[:, :2]))))


def paste_face(frame: np.ndarray, face: np.ndarray, mask: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """A copy of ``frame`` (uint8 BGR) with ``face`` (s×s×3 BGR, uint8 or float 0–255) blended in.

    ``mask`` is s×s, float in [0, 1] (uint8 is read as 0–255); ``matrix`` maps frame pixels to
    the face at s px. Frame pixels where the warped mask is 0 are returned byte-identical.
    """
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be uint8 H×W×3, got {frame.dtype} {frame.shape}")
    size = face.shape[0]
    if face.shape[:2] != (size, size) or mask.shape[:2] != (size, size):
        raise ValueError(f"face {face.shape} and mask {mask.shape} must be the same square size")
    out = frame.copy()
    if mask.dtype == np.uint8:
        mask = mask.astype(np.float32) / np.float32(255)
    mask = np.ascontiguousarray(mask, dtype=np.float32)
    support = mask_support(mask)
    roi = None if support is None else roi_of(matrix, size, frame.shape, support)
    if roi is None:
        return out
    x0, y0, x1, y1 = roi
    dsize = (x1 - x0, y1 - y0)
    m = roi_matrix(matrix, roi)
    warped_mask = cv2.warpAffine(mask, m, dsize, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    # Bilinear weights are non-negative, so an input in [0, 1] stays there and m == 0 off the mask.
    # Face shrinks back into the frame (face px per frame px > 1): linear; enlarges: cubic.
    interp = cv2.INTER_LINEAR if _scale(matrix) > 1.0 else cv2.INTER_CUBIC
    face = np.ascontiguousarray(face, dtype=np.float32)
    warped_face = cv2.warpAffine(face, m, dsize, flags=interp | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_REPLICATE)
    region = out[y0:y1, x0:x1]
    base = region.astype(np.float32)
    # In place: face ← base + (face − base)·m, rounded; exactly base (an integer) where m == 0.
    warped_face -= base
    warped_face *= warped_mask[..., None]
    warped_face += base
    np.clip(warped_face, 0.0, 255.0, out=warped_face)
    warped_face += 0.5
    region[...] = warped_face.astype(np.uint8)
    return out
