"""Temporal smoothing of landmarks along face tracks, behind one streaming interface.

Landmark detectors jitter by a pixel or two from frame to frame even on a still face; the
swapped face then shimmers. Both strategies link faces into tracks the same way (the same
``face_index`` in frames at most ``max_gap`` apart whose boxes overlap) and take frames in
order through :meth:`Smoother.push`, handing back the frames whose faces are final:

* :class:`Centred` — a local quadratic fit centred on each frame (Savitzky–Golay): constant
  velocity and acceleration pass unchanged, so no lag on fast motion. It needs frames on
  both sides, so a frame comes back ``window // 2`` frames later (``max_gap + 1`` more when
  a track may just have ended). The offline zero-lag fit convert has always used.
* :class:`Causal` — for live input: only the past is used (a One-Euro filter, Casiez et al.
  2012: a low-pass whose cut-off rises with the face's speed), so every frame comes back at
  once. Still faces stay still; a fast head trails by a fraction of a frame.

A changed face gets its matrix recomputed and loses its stored masks (they were drawn from
the old landmarks; the swap redraws the same shapes from the new ones).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from swapface.align.records import FaceRecord, FrameRecord
from swapface.align.tracks import SMOOTH_METHODS, box_iou, smooth_point
from swapface.align.transform import alignment_matrix

_MOVED = 1e-4  # px: a landmark that moved less than this counts as unchanged


@dataclass
class SmoothStats:
    tracks: int = 0
    faces: int = 0  # faces whose landmarks moved
    mean_shift: float = 0.0  # mean landmark displacement, px
    max_shift: float = 0.0
    _sum: float = field(default=0.0, repr=False)
    _count: int = field(default=0, repr=False)

    def add(self, shift: np.ndarray) -> None:
        self.faces += 1
        self._sum += float(shift.sum())
        self._count += len(shift)
        self.mean_shift = self._sum / self._count
        self.max_shift = max(self.max_shift, float(shift.max()))


class Smoother(Protocol):
    stats: SmoothStats

    def push(self, frame: FrameRecord) -> list[FrameRecord]:
        """Take the next frame (in index order); return the frames now final, in order."""
        ...

    def flush(self) -> list[FrameRecord]:
        """The input has ended: every frame still held, in order."""
        ...


def _apply(face: FaceRecord, landmarks: np.ndarray, stats: SmoothStats) -> None:
    shift = np.linalg.norm((landmarks.reshape(-1) - face.landmarks.reshape(-1)).reshape(-1, 2), axis=1)
    if shift.max() <= _MOVED:
        return
    face.landmarks = landmarks.reshape(-1, 2)
    face.matrix = alignment_matrix(face.landmarks, face.size, face.face_span)
    face.masks = {}
    stats.add(shift)


class _Linker:
    """Assigns each face to a track, exactly as :func:`swapface.align.tracks.link_tracks`."""

    def __init__(self, min_iou: float, max_gap: int) -> None:
        self.min_iou, self.max_gap = min_iou, max_gap
        self.last: dict[int, tuple[int, int, tuple[float, float, float, float]]] = {}
        self.count = 0

    def link(self, frame: int, face: FaceRecord) -> tuple[int, int | None]:
        """(track number, the track this face ended, if any)."""
        prev = self.last.get(face.face_index)
        ended = None
        if prev is not None:
            gap = frame - prev[1]
            if 0 < gap <= self.max_gap and box_iou(prev[2], face.box) >= self.min_iou:
                self.last[face.face_index] = (prev[0], frame, face.box)
                return prev[0], None
            ended = prev[0]
        number = self.count
        self.count += 1
        self.last[face.face_index] = (number, frame, face.box)
        return number, ended


@dataclass
class _Track:
    number: int
    times: list[int] = field(default_factory=list)
    faces: list[FaceRecord] = field(default_factory=list)
    raw: list[np.ndarray] = field(default_factory=list)  # landmarks as pushed, flattened
    done: int = 0  # faces [0, done) have their final landmarks
    closed: bool = False
    last_frame: int = -1


class Centred:
    """Zero-lag centred fit; results equal a whole-video pass (``window`` odd, ≥ 3)."""

    def __init__(self, window: int = 5, method: str = "savgol", min_iou: float = 0.3,
                 max_gap: int = 2) -> None:
        if window < 3 or window % 2 == 0:
            raise ValueError(f"window must be an odd number ≥ 3, got {window}")
        if method not in SMOOTH_METHODS:
            raise ValueError(f"unknown smoothing method {method!r}; choose {', '.join(SMOOTH_METHODS)}")
        self.window, self.method = window, method
        self.stats = SmoothStats()
        self._linker = _Linker(min_iou, max_gap)
        self._tracks: dict[int, _Track] = {}
        self._pending: deque[tuple[FrameRecord, list[tuple[_Track, int]]]] = deque()
        self._last_index: int | None = None

    @property
    def delay(self) -> int:
        """Frames a result may come back after its input (when a track may have just ended)."""
        return self.window // 2 + self._linker.max_gap + 1

    def push(self, frame: FrameRecord) -> list[FrameRecord]:
        if self._last_index is not None and frame.index <= self._last_index:
            raise ValueError(f"frames must come in index order: {frame.index} after {self._last_index}")
        self._last_index = frame.index
        slots = []
        for face in frame.faces:
            number, ended = self._linker.link(frame.index, face)
            if ended is not None and ended in self._tracks:
                self._close(self._tracks[ended])
            track = self._tracks.get(number)
            if track is None:
                track = self._tracks[number] = _Track(number)
                self.stats.tracks += 1
            track.times.append(frame.index)
            track.faces.append(face)
            track.raw.append(np.asarray(face.landmarks, np.float64).reshape(-1))
            track.last_frame = frame.index
            slots.append((track, len(track.faces) - 1))
        self._pending.append((frame, slots))
        for track in list(self._tracks.values()):
            if frame.index - track.last_frame > self._linker.max_gap:
                self._close(track)  # no later face can join it
            else:
                self._advance(track)
        return self._ready()

    def flush(self) -> list[FrameRecord]:
        for track in list(self._tracks.values()):
            self._close(track)
        out = self._ready()
        assert not self._pending
        return out

    def _close(self, track: _Track) -> None:
        if not track.closed:
            track.closed = True
            self._advance(track)

    def _advance(self, track: _Track) -> None:
        n, half = len(track.faces), self.window // 2
        if track.closed and n < 3:  # too short to fit: left as it is
            track.done = n
        else:
            # Sample i is final once the track holds max(window, i + half + 1) samples.
            final = n if track.closed else (n - half if n >= self.window else 0)
            if track.done < final:
                t = np.asarray(track.times)
                pts = np.stack(track.raw)
                for i in range(track.done, final):
                    _apply(track.faces[i], smooth_point(t, pts, i, self.window, self.method), self.stats)
                track.done = final
        if track.closed and track.done == n:
            self._tracks.pop(track.number, None)

    def _ready(self) -> list[FrameRecord]:
        out = []
        while self._pending and all(i < track.done for track, i in self._pending[0][1]):
            out.append(self._pending.popleft()[0])
        return out


class _OneEuro:
    """One-Euro state of one track: the last filtered landmarks and their speed."""

    def __init__(self, time: float, value: np.ndarray) -> None:
        self.time, self.value = time, value
        self.speed = 0.0  # filtered mean landmark speed, px/s


def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class Causal:
    """One-Euro filter along tracks: past frames only, no delay.

    ``min_cutoff`` (Hz) sets the smoothing of a still face, ``beta`` how fast the cut-off
    rises with speed (per px/s), ``d_cutoff`` (Hz) smooths the speed estimate. Frame times
    are frame index / ``fps``. One cut-off per face keeps its shape: the landmarks move
    together.
    """

    def __init__(self, fps: float = 30.0, min_cutoff: float = 1.0, beta: float = 0.05,
                 d_cutoff: float = 1.0, min_iou: float = 0.3, max_gap: int = 2) -> None:
        if fps <= 0 or min_cutoff <= 0 or beta < 0 or d_cutoff <= 0:
            raise ValueError("fps, min_cutoff and d_cutoff must be positive and beta ≥ 0")
        self.fps, self.min_cutoff, self.beta, self.d_cutoff = fps, min_cutoff, beta, d_cutoff
        self.stats = SmoothStats()
        self._linker = _Linker(min_iou, max_gap)
        self._state: dict[int, _OneEuro] = {}
        self.delay = 0

    def push(self, frame: FrameRecord) -> list[FrameRecord]:
        now = frame.index / self.fps
        for face in frame.faces:
            number, ended = self._linker.link(frame.index, face)
            if ended is not None:
                self._state.pop(ended, None)
            raw = np.asarray(face.landmarks, np.float64).reshape(-1)
            state = self._state.get(number)
            if state is None:
                self.stats.tracks += 1
                self._state[number] = _OneEuro(now, raw)
                continue
            dt = max(now - state.time, 1e-6)
            speed = float(np.linalg.norm((raw - state.value).reshape(-1, 2), axis=1).mean()) / dt
            state.speed += _alpha(self.d_cutoff, dt) * (speed - state.speed)
            a = _alpha(self.min_cutoff + self.beta * state.speed, dt)
            state.value = state.value + a * (raw - state.value)
            state.time = now
            _apply(face, state.value.copy(), self.stats)
        # Tracks nobody can continue any more: forget them (bounded memory on a long stream).
        for face_index, (number, last, _) in list(self._linker.last.items()):
            if frame.index - last > self._linker.max_gap:
                self._state.pop(number, None)
                del self._linker.last[face_index]
        return [frame]

    def flush(self) -> list[FrameRecord]:
        return []
