"""Boxes, labels and landmarks drawn on a copy of a frame."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import cv2
import numpy as np

from swapface.objects.base import ObjectDetection
from swapface.objects.hands import HAND_BONES

# BGR. The built-in classes keep one colour each, so videos and stills read the same.
_COLOURS = {"face": (60, 60, 230), "hand": (60, 200, 60), "person": (230, 140, 40)}
_PALETTE = ((0, 190, 255), (200, 80, 200), (255, 200, 0), (80, 160, 255), (150, 230, 120),
            (120, 120, 255), (255, 120, 160), (40, 220, 220))


def colour_for(label: str) -> tuple[int, int, int]:
    """A class's colour: fixed for the built-in classes, a stable pick for any other label."""
    if label in _COLOURS:
        return _COLOURS[label]
    return _PALETTE[zlib.crc32(label.encode()) % len(_PALETTE)]


def draw_detections(image: np.ndarray, detections: Sequence[ObjectDetection]) -> np.ndarray:
    """A copy of ``image`` (BGR) with each detection's box, ``label score`` and landmarks."""
    out = np.ascontiguousarray(image[..., :3]).copy()
    h, w = out.shape[:2]
    thick = max(2, round(min(h, w) / 320))  # 1 px lines vanish in 4:2:0 video
    font = max(0.4, min(h, w) / 1000)
    for det in detections:
        colour = colour_for(det.label)
        l, t, r, b = (round(v) for v in det.box)
        cv2.rectangle(out, (l, t), (r, b), colour, thick, cv2.LINE_AA)
        if det.landmarks is not None:
            _landmarks(out, det, colour, thick)
        text = f"{det.label} {det.score:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
        y = t - base - 2 if t - th - base - 4 >= 0 else t + th + 2  # inside the box at the top edge
        cv2.rectangle(out, (l, y - th - 2), (l + tw + 4, y + base), colour, -1)
        cv2.putText(out, text, (l + 2, y), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), thick,
                    cv2.LINE_AA)
    return out


def _landmarks(out: np.ndarray, det: ObjectDetection, colour: tuple[int, int, int], thick: int) -> None:
    pts = np.round(np.asarray(det.landmarks)).astype(np.int32)
    if det.label == "hand" and len(pts) == 21:
        for a, b in HAND_BONES:
            cv2.line(out, tuple(pts[a]), tuple(pts[b]), (255, 255, 255), thick, cv2.LINE_AA)
    h, w = out.shape[:2]
    for x, y in pts:
        if 0 <= x < w and 0 <= y < h:
            cv2.circle(out, (int(x), int(y)), thick + 1, colour, -1, cv2.LINE_AA)
