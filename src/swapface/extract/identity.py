"""128-d dlib face descriptors and the reference filter built on them."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from swapface.extract.models import dlib_model_path

SAME_PERSON = 0.6  # dlib's published threshold for its ResNet descriptor (99.38 % on LFW)


class IdentityEncoder:
    """dlib's ResNet face descriptor, computed from the 68 landmarks (no re-detection)."""

    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._model = dlib.face_recognition_model_v1(
            dlib_model_path("dlib_face_recognition_resnet_model_v1.dat")
        )

    def encode(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        dlib = self._dlib
        pts = [dlib.point(round(x), round(y)) for x, y in landmarks]
        xs, ys = landmarks[:, 0], landmarks[:, 1]
        rect = dlib.rectangle(int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
        shape = dlib.full_object_detection(rect, pts)
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return np.asarray(self._model.compute_face_descriptor(rgb, shape), dtype=np.float32)


@dataclass
class IdentityFilter:
    """Keep faces near any ``keep`` reference (if given) and far from every ``drop`` one."""

    keep: np.ndarray  # (n, 128)
    drop: np.ndarray  # (m, 128)
    threshold: float = SAME_PERSON

    @property
    def active(self) -> bool:
        return len(self.keep) > 0 or len(self.drop) > 0

    def accepts(self, descriptor: np.ndarray) -> bool:
        if len(self.keep) and np.linalg.norm(self.keep - descriptor, axis=1).min() > self.threshold:
            return False
        return not (
            len(self.drop) and np.linalg.norm(self.drop - descriptor, axis=1).min() <= self.threshold
        )
