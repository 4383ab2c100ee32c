"""Faces as objects: any face detector plugin of :data:`swapface.faces.detectors.DETECTORS`.

The same detectors extract uses (``hog`` by default), run on a copy downscaled to at most
``max_size`` px as extract does; scores are the chosen detector's own scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.objects.base import OBJECT_DETECTORS, ObjectDetection, clip_box


@dataclass(frozen=True)
class FaceObjectOptions:
    detector: str = option("hog", help="face detector plugin (swapface plugins detector)")
    upsample: int = option(1, help="detector upsampling (each step halves the smallest face found)")
    threshold: float | None = option(None, help="minimum detector score (the plugin's scale)")
    max_size: int = option(1280, help="detect on a copy whose long side is at most this (0: never)")

    def validate(self) -> None:
        from swapface.faces.detectors import DETECTORS

        DETECTORS.get(self.detector)  # unknown names fail here, before any long work
        if not 0 <= self.upsample <= 4 or self.max_size < 0:
            raise ConfigError("faces: upsample must be 0-4 and max_size >= 0")


@OBJECT_DETECTORS.register(
    "faces", options=FaceObjectOptions, classes=("face",),
    description="any face detector plugin (dlib HOG by default), as extract runs it (class face)")
class FaceObjectDetector:
    """Face boxes (and the detector's 5 keypoints when it has them)."""

    name = "faces"

    def __init__(self, options: FaceObjectOptions | None = None, device: str = "cpu",
                 **context: Any) -> None:
        from swapface.faces.detectors import DETECTORS

        self.options = options = options or FaceObjectOptions()
        self._detector = DETECTORS.create(
            options.detector, {"upsample": options.upsample, "threshold": options.threshold},
            device=device)
        self.source = f"faces:{options.detector}"

    def detect(self, image: np.ndarray) -> list[ObjectDetection]:
        from swapface.faces.finder import dedupe

        h, w = image.shape[:2]
        limit = self.options.max_size
        scale = limit / max(h, w) if limit and max(h, w) > limit else 1.0
        small = cv2.resize(image, (round(w * scale), round(h * scale)),
                           interpolation=cv2.INTER_AREA) if scale != 1.0 else image
        found = dedupe([d.mapped(scale) for d in self._detector.detect([small])[0]])
        return [ObjectDetection("face", d.score, clip_box(d.box, w, h), d.points5, self.source)
                for d in sorted(found, key=lambda d: d.center[0])]

    def close(self) -> None:
        close = getattr(self._detector, "close", None)
        if callable(close):
            close()
