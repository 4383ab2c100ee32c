"""Sharpness of a face: the variance of the Laplacian, measured at one fixed size."""

from __future__ import annotations

import cv2
import numpy as np

_BLUR_SIZE = 128  # measured at a fixed size so thresholds do not depend on the face size


def blur_score(face: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Variance of the Laplacian over the face (higher = sharper); inside ``mask`` when given."""
    gray = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
    gray = cv2.resize(gray, (_BLUR_SIZE, _BLUR_SIZE), interpolation=cv2.INTER_AREA)
    lap = cv2.Laplacian(gray, cv2.CV_64F)
    if mask is not None:
        m = cv2.resize(mask, (_BLUR_SIZE, _BLUR_SIZE), interpolation=cv2.INTER_NEAREST) > 127
        m = cv2.erode(m.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # skip the mask edge
        if m.sum() > 50:
            return float(lap[m].var())
    return float(lap.var())
