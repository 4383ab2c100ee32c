"""Umeyama similarity alignment to the mean face and the affine warps built on it."""

from __future__ import annotations

import cv2
import numpy as np

from swapface.align.landmarks import to_five_points

# Seed mean face: eye centres, nose tip, mouth corners in unit coordinates.
MEAN_FACE = np.array(
    [[0.25, 0.22], [0.75, 0.22], [0.50, 0.51], [0.26, 0.78], [0.74, 0.78]], dtype=np.float64
)
DEFAULT_FACE_SPAN = 0.6  # seed: MEAN_FACE * (size * 0.6) + size * 0.2


def umeyama(src: np.ndarray, dst: np.ndarray, estimate_scale: bool = True) -> np.ndarray:
    """Least-squares similarity transform (3×3) mapping ``src`` points onto ``dst``.

    Umeyama, "Least-squares estimation of transformation parameters between two point
    patterns", PAMI 1991. Hand-written (20 lines of NumPy) because skimage's version costs
    ~10× more per call through its class machinery and we call it once per face.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    num, dim = src.shape
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / num
    d = np.ones(dim)
    if np.linalg.det(cov) < 0:
        d[-1] = -1
    u, s, vt = np.linalg.svd(cov)
    rank = np.linalg.matrix_rank(cov)
    t = np.eye(dim + 1)
    if rank == 0:
        return t * np.nan
    if rank == dim - 1:
        if np.linalg.det(u) * np.linalg.det(vt) > 0:
            t[:dim, :dim] = u @ vt
        else:
            s_ = d[-1]
            d[-1] = -1
            t[:dim, :dim] = u @ np.diag(d) @ vt
            d[-1] = s_
    else:
        t[:dim, :dim] = u @ np.diag(d) @ vt
    scale = 1.0 / src_c.var(axis=0).sum() * (s @ d) if estimate_scale else 1.0
    t[:dim, dim] = dst_mean - scale * (t[:dim, :dim] @ src_mean)
    t[:dim, :dim] *= scale
    return t


def mean_face_points(size: int, face_span: float = DEFAULT_FACE_SPAN) -> np.ndarray:
    """Mean-face 5 points in an aligned image of ``size`` px with the given face_span.

    ``face_span`` is the fraction of the output the mean face spans; the rest is padding
    split evenly (seed: 0.6 → ×0.6 + 0.2).
    """
    if not 0.1 <= face_span <= 1.0:
        raise ValueError(f"face_span must be in [0.1, 1.0], got {face_span}")
    return MEAN_FACE * (size * face_span) + size * (1.0 - face_span) / 2.0


def alignment_matrix(landmarks: np.ndarray, size: int, face_span: float = DEFAULT_FACE_SPAN) -> np.ndarray:
    """2×3 affine mapping frame pixels to the aligned ``size``×``size`` face."""
    return umeyama(to_five_points(landmarks), mean_face_points(size, face_span))[:2]


def warp_face(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Aligned face crop; area outside the frame is replicated, not black (no hard edges)."""
    interp = cv2.INTER_LINEAR if _scale(matrix) < 1.0 else cv2.INTER_CUBIC
    return cv2.warpAffine(image, matrix, (size, size), flags=interp,
                          borderMode=cv2.BORDER_REPLICATE)


def _scale(matrix: np.ndarray) -> float:
    return float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def invert(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def rescale(matrix: np.ndarray, factor: float) -> np.ndarray:
    """The same alignment for an output ``factor`` times larger."""
    return np.asarray(matrix, dtype=np.float64) * factor
