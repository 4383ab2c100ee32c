"""Occluders: what stays in front of the swapped face (a hand over the mouth).

An occlusion plugin (registry :data:`OCCLUSIONS`) turns a frame into a float32 frame-size
mask in [0, 1] of the pixels that must keep the original frame, or None when there is
nothing in front. :class:`~swapface.swap.engine.FrameSwapper` asks once per frame, only
when the frame has faces to swap, and multiplies each face's paste mask by
``1 − occlusion`` (:func:`face_occlusion`), so those pixels are never painted over — in
convert, the preview, live mode and the web UI alike.

``hands`` rasterises each MediaPipe hand as the filled convex hull of its 21 landmarks,
dilated by ``grow`` × the hand's size (the landmarks are joint centres: the fingers' edges
lie up to half a finger width outside their hull), then fading out over about as much
again, so the whole hand is kept and the swap fades in around it. Its
hand-presence gate is stricter than ``swapface detect``'s: a false hand (MediaPipe sometimes
takes a nose and mouth for one) would leave the original face showing through the swap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.core.registry import Registry
from swapface.objects.hands import HandDetector, HandOptions, mediapipe_installed

Occluder = Callable[[np.ndarray], "np.ndarray | None"]
OCCLUSIONS: Registry[Occluder | None] = Registry("occlusion", "see the README, 'Convert'")

OCCLUSIONS.register_value("none", None, description="nothing is kept in front of the face (default)")


@dataclass(frozen=True)
class HandOcclusionOptions:
    model: str = option("lite", help="hand landmark model: lite or full", choices=["lite", "full"])
    threshold: float = option(0.5, help="minimum palm detection score (0-1)")
    presence: float = option(0.9, help="minimum hand-presence score (0-1); lower finds more hands "
                                       "and more false ones")
    grow: float = option(0.1, help="dilate each hand's landmark hull by this × the hand's size")

    def validate(self) -> None:
        HandOptions(self.model, self.threshold, self.presence).validate()
        if not 0.0 <= self.grow <= 1.0:
            raise ConfigError("occlusion hands: grow must be in [0, 1]")


@OCCLUSIONS.register("hands", options=HandOcclusionOptions, available=mediapipe_installed,
                     description="keep hands in front of the face (MediaPipe hand landmarks)")
class HandOcclusion:
    """Frame → mask of its hands (thread-safe: the detector serialises its graph)."""

    def __init__(self, options: HandOcclusionOptions | None = None) -> None:
        options = options or HandOcclusionOptions()
        self.grow = options.grow
        self._hands = HandDetector(HandOptions(options.model, options.threshold, options.presence))

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        hands = self._hands.hands(image)
        if not hands:
            return None
        return hand_mask(image.shape[:2], [points for points, _ in hands], self.grow)

    def close(self) -> None:
        self._hands.close()


def hand_mask(shape: tuple[int, ...], hands: list[np.ndarray], grow: float = 0.1,
              feather: bool = True) -> np.ndarray:
    """float32 mask of ``shape``: 1 on each hand's hull grown by ``grow`` × its size, then
    (``feather``) fading to 0 over about as much again outside it."""
    out = np.zeros(shape[:2], np.float32)
    for points in hands:
        pts = np.asarray(points, np.float64)
        grow_px = max(1, round(grow * float(np.ptp(pts, axis=0).max())))
        fade = max(1, (grow_px + 1) // 2) if feather else 0
        reach = grow_px + fade
        # Only the hand's neighbourhood is drawn: a few ms on any frame size.
        pad = reach + fade + 2
        x0, y0 = np.maximum(np.floor(pts.min(axis=0)).astype(int) - pad, 0)
        x1, y1 = np.minimum(np.ceil(pts.max(axis=0)).astype(int) + pad + 1, (shape[1], shape[0]))
        if x0 >= x1 or y0 >= y1:
            continue  # wholly off the frame
        hand = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(hand, cv2.convexHull(np.round(pts - (x0, y0)).astype(np.int32)), 255)
        hand = cv2.dilate(hand, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2))
        soft = hand.astype(np.float32) / np.float32(255)
        if fade:  # a blur of radius ``fade`` leaves all within grow_px of the hull at exactly 1
            soft = cv2.GaussianBlur(soft, (2 * fade + 1,) * 2, sigmaX=fade / 2.0)
            soft[soft > 0.9999] = 1.0  # the kernel sums to 1 only within float rounding
        np.maximum(out[y0:y1, x0:x1], soft, out=out[y0:y1, x0:x1])
    return out


def face_occlusion(occlusion: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """A frame-space occlusion mask seen in a face's ``size`` px space (``matrix``: frame → face)."""
    return cv2.warpAffine(occlusion, np.asarray(matrix, np.float64), (size, size),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
