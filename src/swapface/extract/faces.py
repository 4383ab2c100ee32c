"""Extract's debug images: boxes and landmarks on the frame, landmarks on the aligned face."""

from __future__ import annotations

import cv2
import numpy as np

from swapface.align.records import FaceRecord
from swapface.align.transform import transform_points
from swapface.faces.finder import FoundFace


def draw_debug(image: np.ndarray, faces: list[FoundFace]) -> tuple[np.ndarray, np.ndarray]:
    """(frame with boxes, frame with landmarks) as the seed script's debug images."""
    boxes, points = image.copy(), image.copy()
    thick = max(1, round(max(image.shape[:2]) / 400))
    for f in faces:
        l, t, r, b = (round(v) for v in f.detection.box)
        cv2.rectangle(boxes, (l, t), (r, b), (0, 255, 0), thick)
        cv2.putText(boxes, f"{f.detection.score:.2f}", (l, max(0, t - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, (0, 255, 0), thick)
        for x, y in f.landmarks:
            cv2.circle(points, (round(x), round(y)), thick + 1, (0, 0, 255), -1)
    return boxes, points


def draw_aligned_debug(face: np.ndarray, record: FaceRecord) -> np.ndarray:
    out = face.copy()
    for x, y in transform_points(record.landmarks, record.matrix):
        cv2.circle(out, (round(x), round(y)), 2, (0, 0, 255), -1)
    return out
