"""Hands: MediaPipe palm detection + 21 hand landmarks (``mediapipe.solutions.hands``).

The legacy Hands graph bundled in the ``mediapipe`` 0.10.14 wheel (palm detector, then the
lite or full landmark model on each palm); nothing is downloaded. It runs in static-image
mode (``use_prev_landmarks`` off): every image on its own, so a frame's hands never depend
on the frames before it and the same frame always gives the same hands.

The score is the palm detector's probability; the landmark model's hand-presence score is
a second gate (``presence``). Both landmark models sometimes take a nose and mouth for a
hand (full on man_a.mp4, lite on woman_b.mp4 of the test media); a higher ``presence``
removes those at the cost of hands seen edge-on.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.objects.base import OBJECT_DETECTORS, ObjectDetection, points_box

_GRAPH = "mediapipe/modules/hand_landmark/hand_landmark_tracking_cpu.binarypb"
_MODELS = {"lite": 0, "full": 1}
_PALM = (0, 5, 9, 13, 17)  # wrist and the four knuckles: what the palm detector boxes
#: Bones between the 21 landmarks, for drawing (MediaPipe's HAND_CONNECTIONS).
HAND_BONES = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10),
              (10, 11), (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17),
              (17, 18), (18, 19), (19, 20))


def mediapipe_installed() -> bool:
    return importlib.util.find_spec("mediapipe") is not None


@dataclass(frozen=True)
class HandOptions:
    model: str = option("lite", help="hand landmark model: lite (faster, the default) or full",
                        choices=list(_MODELS))
    threshold: float = option(0.5, help="minimum palm detection score (0-1)")
    presence: float = option(
        0.7, help="minimum hand-presence score of the landmark model (0-1); higher drops "
                  "hand-like face parts, and hands seen edge-on")
    max_hands: int = option(4, help="most hands per image")

    def validate(self) -> None:
        if not (0.0 <= self.threshold <= 1.0 and 0.0 <= self.presence <= 1.0):
            raise ConfigError("hands: threshold and presence must be in [0, 1]")
        if self.max_hands < 1:
            raise ConfigError("hands: max_hands must be at least 1")


@OBJECT_DETECTORS.register(
    "hands", options=HandOptions, available=mediapipe_installed, classes=("hand",),
    description="MediaPipe palm detection + 21 hand landmarks (class hand; score 0-1)")
class HandDetector:
    """Hands with their 21 landmarks; thread-safe (one MediaPipe graph behind a lock)."""

    name = "hands"

    def __init__(self, options: HandOptions | None = None, **context: Any) -> None:
        from swapface.faces.detectors.mediapipe_detector import load_mediapipe

        options = options or HandOptions()
        load_mediapipe()
        from mediapipe.python.solution_base import SolutionBase

        self._graph = SolutionBase(
            binary_graph_path=_GRAPH,
            side_inputs={"model_complexity": _MODELS[options.model], "num_hands": options.max_hands,
                         "use_prev_landmarks": False},
            calculator_params={
                "palmdetectioncpu__TensorsToDetectionsCalculator.min_score_thresh": options.threshold,
                "handlandmarkcpu__ThresholdingCalculator.threshold": options.presence},
            outputs=["multi_hand_landmarks", "palm_detections"])
        self._lock = threading.Lock()  # MediaPipe graphs take one image at a time

    def hands(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """(21 landmarks in image pixels, palm score) for each hand in a BGR image."""
        from swapface.faces.detectors.mediapipe_detector import quiet_protobuf, to_rgb

        h, w = image.shape[:2]
        rgb = to_rgb(image)
        with self._lock, quiet_protobuf():
            result = self._graph.process({"image": rgb})
        palms = []
        for det in result.palm_detections or []:
            rel = det.location_data.relative_bounding_box
            palms.append(((rel.xmin + rel.width / 2) * w, (rel.ymin + rel.height / 2) * h,
                          float(det.score[0])))
        out = []
        for hand in result.multi_hand_landmarks or []:
            points = np.array([(p.x * w, p.y * h) for p in hand.landmark], np.float64)
            out.append((points, _palm_score(points, palms)))
        return out

    def detect(self, image: np.ndarray) -> list[ObjectDetection]:
        h, w = image.shape[:2]
        return [ObjectDetection("hand", score, points_box(points, 0.1, w, h), points, self.name)
                for points, score in self.hands(image)]

    def close(self) -> None:
        self._graph.close()


def _palm_score(points: np.ndarray, palms: list[tuple[float, float, float]]) -> float:
    """The score of the palm detection nearest this hand's palm (the one it grew from).

    The graph reports palms and hands as separate lists (a palm whose hand failed the
    presence gate has no hand), so they are matched by where the palm is.
    """
    if not palms:
        return 0.0
    cx, cy = points[list(_PALM)].mean(axis=0)
    return min(palms, key=lambda p: (p[0] - cx) ** 2 + (p[1] - cy) ** 2)[2]
