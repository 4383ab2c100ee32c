"""dlib's HOG + linear SVM detector (``hog``) and its MMOD CNN detector (``cnn``)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from swapface.faces.bundled import dlib_model_path
from swapface.faces.detectors.base import DETECTORS, Detection, DetectorOptions


@DETECTORS.register("hog", options=DetectorOptions,
                    description="dlib HOG + linear SVM: frontal faces, fast on a CPU (default)")
class HogDetector:
    """dlib frontal-face HOG detector. Scores are SVM margins (0 = dlib's default cut)."""

    name = "hog"
    dlib_box_style = True

    def __init__(self, options: DetectorOptions | None = None, device: str = "cpu") -> None:
        import dlib

        options = options or DetectorOptions()
        self._detector = dlib.get_frontal_face_detector()
        self.upsample = options.upsample
        self.threshold = 0.0 if options.threshold is None else options.threshold

    def detect(self, images: Sequence[np.ndarray], upsample: int | None = None) -> list[list[Detection]]:
        up = self.upsample if upsample is None else upsample
        out = []
        for image in images:
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            rects, scores, _ = self._detector.run(rgb, up, self.threshold)
            out.append([
                Detection((r.left(), r.top(), r.right() + 1, r.bottom() + 1), float(s))
                for r, s in zip(rects, scores, strict=True)
            ])
        return out


@DETECTORS.register("cnn", options=DetectorOptions,
                    description="dlib MMOD CNN: more pose-robust than hog, ~100x slower on a CPU")
class CnnDetector:
    """dlib MMOD CNN detector: more pose-robust than HOG, ~100× slower on CPU."""

    name = "cnn"
    dlib_box_style = False  # MMOD boxes are tighter than HOG's; the aligner adjusts them

    def __init__(self, options: DetectorOptions | None = None, device: str = "cpu") -> None:
        import dlib

        options = options or DetectorOptions()
        self._detector = dlib.cnn_face_detection_model_v1(dlib_model_path("mmod_human_face_detector.dat"))
        self.upsample = options.upsample
        self.threshold = 0.0 if options.threshold is None else options.threshold

    def detect(self, images: Sequence[np.ndarray], upsample: int | None = None) -> list[list[Detection]]:
        up = self.upsample if upsample is None else upsample
        rgbs = [cv2.cvtColor(im, cv2.COLOR_BGR2RGB) for im in images]
        same_shape = len({im.shape for im in rgbs}) == 1
        batches = self._detector(rgbs, up) if same_shape and len(rgbs) > 1 else [
            self._detector(im, up) for im in rgbs
        ]
        out = []
        for dets in batches:
            out.append([
                Detection((d.rect.left(), d.rect.top(), d.rect.right() + 1, d.rect.bottom() + 1),
                          float(d.confidence))
                for d in dets if d.confidence >= self.threshold
            ])
        return out

