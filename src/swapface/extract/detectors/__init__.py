"""Detector plugins; importing this package registers every built-in one."""

from swapface.extract.detectors import dlib_detectors, mediapipe_detector, mtcnn  # noqa: F401
from swapface.extract.detectors.base import DETECTORS, Detection, Detector

__all__ = ["DETECTORS", "Detection", "Detector"]
