"""The landmark aligner interface and registry: boxes in, 68 iBUG points out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from swapface.core.registry import Registry
from swapface.faces.detectors.base import Detection

# dlib's HOG boxes relative to the 68 points they produce, fitted on the hand-labelled
# dlib_faces set (43 faces): centre shifted up 3 % of the landmark width, side 1.09×.
_BOX_SCALE = 1.09
_BOX_DY = -0.031


def box_from_landmarks(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """A dlib-HOG-style square box around 68 landmarks (for tracking and box refinement)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    width = float(lm[:, 0].max() - lm[:, 0].min())
    cx, cy = lm.mean(axis=0)
    cy += _BOX_DY * width
    half = _BOX_SCALE * width / 2
    return cx - half, cy - half, cx + half, cy + half


class Aligner(Protocol):
    name: str

    def landmarks(
        self, image: np.ndarray, detections: Sequence[Detection], dlib_box_style: bool = True
    ) -> list[np.ndarray]:
        """(68, 2) float landmarks in ``image`` pixels for each detection (BGR image)."""
        ...


ALIGNERS: Registry[Aligner] = Registry("aligner", "see the README, 'Bundled pretrained models'")
