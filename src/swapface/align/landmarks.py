"""The iBUG 68-point layout and its reductions."""

from __future__ import annotations

import numpy as np

JAW = slice(0, 17)
RIGHT_BROW = slice(17, 22)  # subject's right = image left
LEFT_BROW = slice(22, 27)
NOSE_BRIDGE = slice(27, 31)
NOSE = slice(27, 36)
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
MOUTH = slice(48, 68)
OUTER_MOUTH = slice(48, 60)
NOSE_TIP = 30
MOUTH_RIGHT, MOUTH_LEFT = 48, 54


def to_five_points(landmarks: np.ndarray) -> np.ndarray:
    """68 points → (right eye centre, left eye centre, nose tip, right/left mouth corner).

    The order matches the mean face: image-left eye first, then image-right eye.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {lm.shape}")
    return np.stack(
        [
            lm[RIGHT_EYE].mean(axis=0),
            lm[LEFT_EYE].mean(axis=0),
            lm[NOSE_TIP],
            lm[MOUTH_RIGHT],
            lm[MOUTH_LEFT],
        ]
    )


def inter_ocular_distance(landmarks: np.ndarray) -> float:
    """Distance between the outer eye corners (points 36 and 45) — the usual normaliser."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return float(np.linalg.norm(lm[36] - lm[45]))


def bounding_box(points: np.ndarray) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of a point set."""
    p = np.asarray(points, dtype=np.float64)
    return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())


_INNER_LIPS = ((61, 67), (62, 66), (63, 65))  # upper ↔ lower inner lip
_LIDS = ((37, 41), (38, 40), (43, 47), (44, 46))  # upper ↔ lower eyelid, both eyes


def _gap(lm: np.ndarray, pairs: tuple[tuple[int, int], ...]) -> float:
    return float(np.mean([np.linalg.norm(lm[i] - lm[j]) for i, j in pairs]))


def mouth_opening(landmarks: np.ndarray) -> float:
    """Mean inner-lip gap ÷ inter-ocular distance (0 = closed)."""
    lm = np.asarray(landmarks, np.float64)
    return _gap(lm, _INNER_LIPS) / max(inter_ocular_distance(lm), 1e-6)


def eye_opening(landmarks: np.ndarray) -> float:
    """Mean eyelid gap of both eyes ÷ inter-ocular distance."""
    lm = np.asarray(landmarks, np.float64)
    return _gap(lm, _LIDS) / max(inter_ocular_distance(lm), 1e-6)
