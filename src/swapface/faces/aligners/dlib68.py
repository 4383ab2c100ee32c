"""dlib's 68-point shape predictor (iBUG 300-W; model licence: non-commercial use)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from swapface.core.registry import NoOptions
from swapface.faces.aligners.base import ALIGNERS, box_from_landmarks
from swapface.faces.bundled import dlib_model_path
from swapface.faces.detectors.base import Detection


def _rect(box: tuple[float, float, float, float]):  # -> dlib.rectangle
    import dlib

    l, t, r, b = (round(v) for v in box)
    return dlib.rectangle(l, t, r - 1, b - 1)


@ALIGNERS.register("dlib68", description="dlib's 68-point shape predictor (iBUG 300-W; "
                   "non-commercial licence) — the default")
class Dlib68Aligner:
    name = "dlib68"

    def __init__(self, options: NoOptions | None = None, device: str = "cpu") -> None:
        import dlib

        self._predictor = dlib.shape_predictor(dlib_model_path("shape_predictor_68_face_landmarks.dat"))

    def _predict(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        shape = self._predictor(rgb, _rect(box))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def landmarks(
        self, image: np.ndarray, detections: Sequence[Detection], dlib_box_style: bool = True
    ) -> list[np.ndarray]:
        if not detections:
            return []
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        out = []
        for det in detections:
            lm = self._predict(rgb, det.box)
            if not dlib_box_style:
                # Boxes from other detectors frame the face differently; one refinement
                # pass with the box the predictor expects fixes the systematic error.
                lm = self._predict(rgb, box_from_landmarks(lm))
            out.append(lm)
        return out

