"""Expression: is the mouth as open, are the eyes as open, are lips and lids in the same place?

Every figure is in inter-ocular units (outer eye corners 36–45), so it means the same on a
face of any size. Opening ratios are similarity-invariant and read straight off the frame
landmarks; landmark positions are compared in each face's own aligned frame (Umeyama to
the mean face), which removes head position, size and in-plane rotation and leaves the
shape of mouth and eyes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from swapface.align.landmarks import (
    LEFT_EYE,
    MOUTH,
    RIGHT_EYE,
    eye_opening,
    inter_ocular_distance,
    mouth_opening,
)
from swapface.align.transform import alignment_matrix, transform_points
from swapface.faces.finder import FoundFace

_SHAPE = np.r_[np.arange(68)[RIGHT_EYE], np.arange(68)[LEFT_EYE], np.arange(68)[MOUTH]]


def aligned(landmarks: np.ndarray) -> np.ndarray:
    """All 68 landmarks in the face's own aligned frame (mean-face units)."""
    return transform_points(landmarks, alignment_matrix(landmarks, 1, 1.0))


def shape_error(source: np.ndarray, swapped: np.ndarray) -> float:
    """Mean distance of the eye and mouth points, each face aligned on its own, in the
    source's inter-ocular units."""
    a, b = aligned(source), aligned(swapped)
    return float(np.linalg.norm(a[_SHAPE] - b[_SHAPE], axis=1).mean()
                 / max(inter_ocular_distance(a), 1e-6))


@dataclass
class ExpressionFigures:
    faces: int
    mouth_open_error: float | None  # mean |Δ mouth opening|, inter-ocular units
    eye_open_error: float | None  # mean |Δ eye opening|
    position_error: float | None  # mean distance of the 32 eye/mouth points, aligned frame
    error: float | None  # mean of the three above


@dataclass
class ExpressionMetric:
    rows: list[tuple[float, float, float]] = field(default_factory=list)

    def add(self, source: FoundFace, swapped: FoundFace) -> float:
        """Score one face pair; returns its expression error (mean of the three parts)."""
        s, w = source.landmarks, swapped.landmarks
        row = (abs(mouth_opening(s) - mouth_opening(w)), abs(eye_opening(s) - eye_opening(w)),
               shape_error(s, w))
        self.rows.append(row)
        return float(np.mean(row))

    def figures(self) -> ExpressionFigures:
        if not self.rows:
            return ExpressionFigures(0, None, None, None, None)
        r = np.asarray(self.rows)
        mouth, eye, pos = (float(v) for v in r.mean(axis=0))
        return ExpressionFigures(len(r), mouth, eye, pos, float(r.mean()))
