"""Object detection beyond faces: hands, people, faces and user-supplied YOLO ONNX models.

Detectors are plugins of :data:`OBJECT_DETECTORS` (importing this package registers the
built-in ones: ``hands``, ``pose``, ``hog``, ``faces``, ``yolo``); :func:`draw_detections`
draws them and :func:`swapface.objects.run.run_detect` is ``swapface detect``.
"""

from swapface.objects import faces, hands, people, yolo  # noqa: F401  (registers the plugins)
from swapface.objects.base import OBJECT_DETECTORS, ObjectDetection, ObjectDetector
from swapface.objects.draw import draw_detections

__all__ = ["OBJECT_DETECTORS", "ObjectDetection", "ObjectDetector", "draw_detections"]
