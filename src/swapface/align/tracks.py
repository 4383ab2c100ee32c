"""Face tracks across frames and zero-lag temporal smoothing of their landmarks.

Landmark detectors jitter by a pixel or two from frame to frame even on a still face; the
swapped face then shimmers. Smoothing along a track removes that, but a causal filter
(moving average of the past, one-euro) trails a moving head. Here every fit is *centred*
on the frame it corrects — a local quadratic (Savitzky–Golay) over frames on both sides —
so constant-velocity and constant-acceleration motion pass through unchanged: no lag.
Used by ``swapface alignments smooth`` (rewrites the store) and by convert (in memory).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

SMOOTH_METHODS = ("savgol", "average")


def box_iou(a: Iterable[float], b: Iterable[float]) -> float:
    """Intersection over union of two ``(left, top, right, bottom)`` boxes."""
    a0, a1, a2, a3 = a
    b0, b1, b2, b3 = b
    iw = max(0.0, min(a2, b2) - max(a0, b0))
    ih = max(0.0, min(a3, b3) - max(a1, b1))
    inter = iw * ih
    union = (a2 - a0) * (a3 - a1) + (b2 - b0) * (b3 - b1) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class TrackPoint:
    """One face of a track: its frame index, face index within the frame and box."""

    frame: int
    face_index: int
    box: tuple[float, float, float, float]


def link_tracks(points: Iterable[TrackPoint], *, min_iou: float = 0.3,
                max_gap: int = 2) -> list[list[int]]:
    """Group faces into tracks; returns lists of positions into ``points``.

    ``points`` must be ordered by frame. A face continues the track of the same
    ``face_index`` when the frames are at most ``max_gap`` apart and the boxes overlap by
    ``min_iou``: samples further apart (an every-10th-frame store) hold real motion, not
    jitter, and start a new track.
    """
    tracks: list[list[int]] = []
    last: dict[int, tuple[int, TrackPoint]] = {}  # face_index -> (track number, last point)
    for pos, point in enumerate(points):
        prev = last.get(point.face_index)
        number: int | None = None
        if prev is not None:
            gap = point.frame - prev[1].frame
            if 0 < gap <= max_gap and box_iou(prev[1].box, point.box) >= min_iou:
                number = prev[0]
        if number is None:
            number = len(tracks)
            tracks.append([])
        tracks[number].append(pos)
        last[point.face_index] = (number, point)
    return tracks


def smooth_point(t: np.ndarray, pts: np.ndarray, i: int, window: int, method: str) -> np.ndarray:
    """The centred fit of sample ``i`` of ``pts`` (n, k) at times ``t``.

    ``savgol``: local quadratic (Savitzky–Golay; handles uneven frame steps); ``average``:
    centred moving mean. Only samples ``max(0, i - window//2)`` to ``i + window//2`` are read
    once the track holds at least ``max(window, i + window//2 + 1)`` of them, so a streaming
    caller gets the same value as a whole-track pass from then on.
    """
    n, half = len(t), window // 2
    if method == "average":
        # Shrink the window symmetrically at the ends so a moving face is not pulled inwards.
        h = min(half, i, n - 1 - i)
        return pts[i - h:i + h + 1].mean(axis=0)
    # Near the ends the full window is shifted inside the track (scipy's mode="interp").
    lo = min(max(0, i - half), max(0, n - window))
    hi = min(n, lo + window)
    x = np.asarray(t[lo:hi], dtype=np.float64) - float(t[i])
    deg = min(2, hi - lo - 1)
    design = np.vander(x, deg + 1, increasing=True)
    coef, *_ = np.linalg.lstsq(design, pts[lo:hi], rcond=None)
    return coef[0]  # value of the fit at x = 0


def smooth_track(t: np.ndarray, pts: np.ndarray, window: int, method: str) -> np.ndarray:
    """Centred local fit over ``window`` samples of ``pts`` (n, k) at times ``t``: no lag."""
    if method not in SMOOTH_METHODS:
        raise ValueError(f"unknown smoothing method {method!r}; choose {', '.join(SMOOTH_METHODS)}")
    out = np.empty_like(pts, dtype=np.float64)
    for i in range(len(t)):
        out[i] = smooth_point(t, pts, i, window, method)
    return out
