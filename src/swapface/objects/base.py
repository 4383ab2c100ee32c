"""The object detector interface and registry: boxes of any class, not only faces.

An object detector takes one BGR image and returns :class:`ObjectDetection` s (class label,
score, box in the image's pixels, optional landmarks). Plugins register in
:data:`OBJECT_DETECTORS` the same way face detectors do in
:data:`swapface.faces.detectors.DETECTORS`: ``factory(options, **context)`` with a typed
options dataclass. Scores keep each plugin's own scale (see each plugin).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from swapface.core.registry import Registry

Box = tuple[float, float, float, float]  # left, top, right, bottom in image pixels


@dataclass
class ObjectDetection:
    label: str  # "hand", "person", "face" or a YOLO model's label
    score: float
    box: Box
    landmarks: np.ndarray | None = None  # (K, 2) image pixels (a hand's 21 points, ...)
    source: str = ""  # the plugin that found it, e.g. "hands" or "yolo"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: class, score, box [l, t, r, b] (pixels) and landmarks when known."""
        out: dict[str, Any] = {"class": self.label, "score": round(float(self.score), 4),
                               "box": [round(float(v), 2) for v in self.box]}
        if self.landmarks is not None:
            out["landmarks"] = np.round(np.asarray(self.landmarks, np.float64), 2).tolist()
        if self.source:
            out["detector"] = self.source
        return out


class ObjectDetector(Protocol):
    """An object detector plugin; not thread-safe unless it says so."""

    name: str

    def detect(self, image: np.ndarray) -> list[ObjectDetection]: ...

    def close(self) -> None: ...


OBJECT_DETECTORS: Registry[ObjectDetector] = Registry(
    "object detector", "see the README, 'Detect objects'")


def clip_box(box: Box, width: int, height: int) -> Box:
    """``box`` inside a ``width`` × ``height`` image."""
    l, t, r, b = box
    return (min(max(l, 0.0), width), min(max(t, 0.0), height),
            min(max(r, 0.0), width), min(max(b, 0.0), height))


def points_box(points: np.ndarray, pad: float, width: int, height: int) -> Box:
    """Bounding box of ``points`` grown by ``pad`` × its longer side, clipped to the image.

    Landmarks are joint centres; the skin and clothes around them reach a little further.
    """
    pts = np.asarray(points, np.float64)
    l, t = pts.min(axis=0)
    r, b = pts.max(axis=0)
    grow = pad * max(r - l, b - t)
    return clip_box((l - grow, t - grow, r + grow, b + grow), width, height)
