"""Detector plugins; importing this package registers every built-in one."""

from swapface.faces.detectors import dlib_detectors, mediapipe_detector, mtcnn  # noqa: F401
from swapface.faces.detectors.base import DETECTORS, Detection, Detector

__all__ = ["DETECTORS", "Detection", "Detector"]
