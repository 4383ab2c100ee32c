"""People: MediaPipe pose detection (``pose``, the default) and OpenCV's HOG people detector.

``pose`` is the legacy BlazePose graph bundled in the ``mediapipe`` 0.10.14 wheel (its
``full`` landmark model, the only one the wheel ships). BlazePose follows one person per
image, so several people are found in turns: each person found is blanked out (their
segmentation mask, dilated) and the image is searched again, until nobody is found or
``max_people`` are. The box is that of the person's segmentation mask near the landmarks
the model sees (visibility ≥ 0.5), so hair and clothes count; the score is the mean
visibility of the 33 landmarks (0-1).

``hog`` is Dalal & Triggs' HOG + linear SVM for upright, whole-body pedestrians (64 × 128 px
window) that OpenCV 4 has built in; OpenCV 5 moved it to the contrib modules, so the plugin
is listed as not installed under opencv-python-headless 5. Scores are SVM margins.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.objects.base import OBJECT_DETECTORS, ObjectDetection, clip_box, points_box
from swapface.objects.hands import mediapipe_installed
from swapface.objects.nms import iou_one_to_many, nms

_VISIBLE = 0.5  # BlazePose visibility above which a landmark counts as in view


@dataclass(frozen=True)
class PoseOptions:
    threshold: float = option(0.5, help="minimum person detection score (0-1)")
    max_people: int = option(6, help="most people per image (one pose pass each)")

    def validate(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError("pose: threshold must be in [0, 1]")
        if self.max_people < 1:
            raise ConfigError("pose: max_people must be at least 1")


@OBJECT_DETECTORS.register(
    "pose", options=PoseOptions, available=mediapipe_installed, classes=("person",),
    description="MediaPipe BlazePose, one person per pass, people blanked between passes "
                "(class person; score 0-1)")
class PoseDetector:
    """People with their 33 pose landmarks; thread-safe."""

    name = "pose"

    def __init__(self, options: PoseOptions | None = None, **context: Any) -> None:
        from swapface.faces.detectors.mediapipe_detector import load_mediapipe

        options = options or PoseOptions()
        load_mediapipe()
        from mediapipe.python.solutions import pose

        # model_complexity 1: the wheel bundles only pose_landmark_full.tflite (0 and 2
        # would be downloaded on first use). Segmentation gives the pixels to blank.
        self._pose = pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=True,
                               min_detection_confidence=options.threshold)
        self.max_people = options.max_people
        self._lock = threading.Lock()

    def _one(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None] | None:
        from swapface.faces.detectors.mediapipe_detector import quiet_protobuf, to_rgb

        with quiet_protobuf():
            result = self._pose.process(to_rgb(image))
        if result.pose_landmarks is None:
            return None
        h, w = image.shape[:2]
        points = np.array([(p.x * w, p.y * h, p.visibility) for p in result.pose_landmarks.landmark])
        return points, result.segmentation_mask

    def detect(self, image: np.ndarray) -> list[ObjectDetection]:
        h, w = image.shape[:2]
        work = image if image.ndim == 3 and image.shape[2] == 3 else image[..., :3]
        fill = np.asarray(cv2.mean(work)[:3], np.float64)
        found: list[ObjectDetection] = []
        with self._lock:
            for _ in range(self.max_people):
                one = self._one(work)
                if one is None:
                    break
                points, segmentation = one
                seen = points[points[:, 2] >= _VISIBLE, :2]
                if len(seen) < 2:
                    break
                box = _silhouette_box(segmentation, points_box(seen, 0.25, w, h)) or points_box(
                    seen, 0.1, w, h)
                if found and iou_one_to_many(np.array(box), np.array([d.box for d in found])).max() > 0.5:
                    break  # blanking failed and the same person came back
                found.append(ObjectDetection("person", float(points[:, 2].mean()), box, points[:, :2],
                                             self.name))
                if len(found) < self.max_people:
                    work = _blank(work, segmentation, box, fill)
        return found

    def close(self) -> None:
        self._pose.close()


def _silhouette_box(segmentation: np.ndarray | None, near: tuple[float, float, float, float]
                    ) -> tuple[float, float, float, float] | None:
    """The box of the person's segmented pixels near its landmarks (hair and clothes
    included, which the joints alone miss); None without a mask."""
    if segmentation is None:
        return None
    l, t, r, b = (round(v) for v in near)
    x, y, bw, bh = cv2.boundingRect((segmentation[t:b, l:r] > 0.5).astype(np.uint8))
    if bw < 2 or bh < 2:
        return None
    return float(l + x), float(t + y), float(l + x + bw), float(t + y + bh)


def _blank(image: np.ndarray, segmentation: np.ndarray | None, box: tuple[float, ...],
           fill: np.ndarray) -> np.ndarray:
    """A copy of ``image`` with one person painted over in its mean colour."""
    out = image.copy()
    if segmentation is not None:
        person = (segmentation > 0.5).astype(np.uint8)
        grow = max(3, int(0.03 * max(image.shape[:2])))
        person = cv2.dilate(person, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2))
        if person.any():
            out[person > 0] = fill
            return out
    l, t, r, b = (round(v) for v in box)  # no mask: blank the whole box
    out[t:b, l:r] = fill
    return out


def hog_available() -> bool:
    return hasattr(cv2, "HOGDescriptor")


@dataclass(frozen=True)
class HogPeopleOptions:
    threshold: float = option(0.0, help="minimum SVM margin (OpenCV's hit threshold)")
    stride: int = option(8, help="window step in pixels (smaller: slower, finds more)")
    scale: float = option(1.05, help="image pyramid step")
    max_size: int = option(800, help="detect on a copy whose long side is at most this (0: never)")
    iou: float = option(0.45, help="overlap above which the weaker of two boxes is dropped")

    def validate(self) -> None:
        if self.stride < 1 or self.scale <= 1.0 or self.max_size < 0 or not 0 < self.iou <= 1:
            raise ConfigError("hog: stride >= 1, scale > 1, max_size >= 0 and iou in (0, 1]")


@OBJECT_DETECTORS.register(
    "hog", options=HogPeopleOptions, available=hog_available, classes=("person",),
    description="OpenCV HOG + linear SVM pedestrians: upright whole bodies (class person; "
                "needs OpenCV 4, where it is built in)")
class HogPeopleDetector:
    """Upright whole-body people (OpenCV's default people SVM); thread-safe."""

    name = "hog"

    def __init__(self, options: HogPeopleOptions | None = None, **context: Any) -> None:
        if not hog_available():
            raise ConfigError("the hog people detector needs OpenCV 4 (cv2.HOGDescriptor); "
                              "use the pose person detector")
        self.options = options or HogPeopleOptions()
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def detect(self, image: np.ndarray) -> list[ObjectDetection]:
        o = self.options
        h, w = image.shape[:2]
        scale = o.max_size / max(h, w) if o.max_size and max(h, w) > o.max_size else 1.0
        small = cv2.resize(image, (round(w * scale), round(h * scale)),
                           interpolation=cv2.INTER_AREA) if scale != 1.0 else image
        rects, weights = self._hog.detectMultiScale(
            small, hitThreshold=o.threshold, winStride=(o.stride, o.stride), padding=(8, 8),
            scale=o.scale)
        if len(rects) == 0:
            return []
        rects = np.asarray(rects, np.float64).reshape(-1, 4) / scale
        boxes = np.column_stack([rects[:, 0], rects[:, 1], rects[:, 0] + rects[:, 2],
                                 rects[:, 1] + rects[:, 3]])
        scores = np.asarray(weights, np.float64).ravel()
        return [ObjectDetection("person", float(scores[i]), clip_box(tuple(boxes[i]), w, h),
                                source=self.name)
                for i in nms(boxes, scores, o.iou)]

    def close(self) -> None:
        pass
