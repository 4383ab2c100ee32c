"""``swapface live``: capture → find faces (tracked) → Causal smoothing → FrameSwapper → outputs.

Each stage runs on its own thread and hands over through a one-slot mailbox that keeps only
the newest item: when the machine falls behind, stale frames are dropped (and counted)
instead of queueing, so latency stays bounded by one frame per stage. Latency is measured
from a frame's capture time to the moment its swapped frame is handed to the outputs.

A video file with ``realtime`` plays at its own frame rate — the stand-in for a camera in
tests and benchmarks; without it every frame is processed as fast as possible.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from swapface.align.records import FrameRecord
from swapface.core.progress import NEVER, CancelToken
from swapface.media.source import FrameSource

log = logging.getLogger(__name__)
BADGE = "SYNTHETIC"


class Mailbox:
    """A one-slot hand-over: ``put`` replaces an unread item (counted as dropped)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Any = None
        self._closed = False
        self.dropped = 0

    def put(self, item: Any) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify()

    def get(self, timeout: float = 0.5) -> Any:
        """The newest item, or None when closed (or nothing came within ``timeout``)."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def items(self, cancel: CancelToken) -> Iterator[Any]:
        """Each newest item until the box is closed and empty, or ``cancel``."""
        while not cancel.cancelled:
            item = self.get()
            if item is not None:
                yield item
            elif self.closed:
                return

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed and self._item is None


@dataclass
class Captured:
    index: int
    image: np.ndarray
    at: float  # time.monotonic() when the frame was captured (or was due, for a file)


@dataclass
class LiveStats:
    captured: int = 0
    swapped: int = 0
    emitted: int = 0
    dropped: int = 0
    faces: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, capture → emitted
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    @property
    def fps(self) -> float:
        return self.emitted / self.seconds if self.seconds > 0 else 0.0

    def latency(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def to_dict(self) -> dict[str, Any]:
        med, p95 = self.latency(0.5), self.latency(0.95)
        return {"captured": self.captured, "emitted": self.emitted, "dropped": self.dropped,
                "faces": self.faces, "seconds": round(self.seconds, 2), "fps": round(self.fps, 2),
                "latency_median_ms": None if med is None else round(med * 1000, 1),
                "latency_p95_ms": None if p95 is None else round(p95 * 1000, 1)}

    def lines(self) -> list[str]:
        d = self.to_dict()
        return [f"frames:  {d['captured']} captured, {d['emitted']} shown, {d['dropped']} dropped "
                f"(stale), {d['faces']} faces swapped",
                f"speed:   {d['fps']:.1f} frames/s sustained over {d['seconds']:.1f} s",
                f"latency: median {d['latency_median_ms']} ms, p95 {d['latency_p95_ms']} ms "
                "(capture → output)"]


def draw_badge(image: np.ndarray, text: str = BADGE) -> np.ndarray:
    """A small visible label in the top-left corner (live output is synthetic media too)."""
    scale = max(0.4, image.shape[0] / 900)
    thick = max(1, round(scale * 2))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    cv2.rectangle(image, (6, 6), (14 + w, 14 + h + base), (0, 0, 0), -1)
    cv2.putText(image, text, (10, 10 + h), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick,
                cv2.LINE_AA)
    return image


def draw_stats(image: np.ndarray, stats: LiveStats) -> np.ndarray:
    """fps, latency and drops in the bottom-left corner (``--stats-overlay``)."""
    recent = sorted(stats.latencies[-30:])
    latency = f"{recent[len(recent) // 2] * 1000:.0f} ms" if recent else "-"
    text = f"{stats.fps:.1f} fps  {latency}  {stats.dropped} dropped"
    scale = max(0.4, image.shape[0] / 1000)
    thick = max(1, round(scale * 2))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    y = image.shape[0] - 8
    cv2.rectangle(image, (6, y - h - base - 6), (14 + w, y), (0, 0, 0), -1)
    cv2.putText(image, text, (10, y - base - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                thick, cv2.LINE_AA)
    return image


class SwapStep:
    """One live frame in, its faces found (tracked), smoothed and swapped: the work every live
    path shares (the threaded :class:`LiveSwap` and the web page's camera socket).

    ``enabled`` and :meth:`set_options` are the hot settings: they take effect on the next
    frame. A new :class:`FrameSwapper` is built for new options (it precomputes its colour,
    sharpen and mask plugins; the model is shared), so a frame never sees half-changed options.
    """

    def __init__(self, finder: Any, swapper: Any, smoother: Any, largest_only: bool = True) -> None:
        self.finder, self.swapper, self.smoother = finder, swapper, smoother
        self.largest_only = largest_only
        self.enabled = True
        self.faces = 0  # faces swapped so far
        self.swapped = 0  # frames with at least one face swapped

    def set_options(self, options: Any, identity: Any = None) -> None:
        """Swap with ``options`` (a SwapOptions) and ``identity`` (an IdentityFilter or None)
        from the next frame on; bad options raise here, and the old ones stay."""
        self.swapper = type(self.swapper)(self.swapper.model, options, identity=identity)

    def __call__(self, image: np.ndarray, index: int) -> np.ndarray:
        if not self.enabled:
            return image
        faces = self.finder.records(image)
        if self.largest_only and len(faces) > 1:
            faces = [max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))]
        h, w = image.shape[:2]
        record = FrameRecord(index, str(index), None, w, h, faces)
        smoothed = self.smoother.push(record) if self.smoother is not None else [record]
        faces = smoothed[0].faces if smoothed else faces
        if not faces:
            return image
        self.faces += len(faces)
        self.swapped += 1
        return self.swapper.swap(image, faces)


class LiveSwap:
    """The threaded live pipeline over a frame source, a face finder and a swapper.

    ``emit(image, captured)`` is called on the output thread for every frame shown.
    ``step`` (:class:`SwapStep`) holds the hot settings (swap on/off, options).
    """

    def __init__(self, source: FrameSource, step: SwapStep,
                 emit: Callable[[np.ndarray, Captured], None], *, realtime: bool, badge: bool = True,
                 max_frames: int | None = None, stats_overlay: bool = False) -> None:
        self.source, self.step = source, step
        self.emit, self.realtime, self.badge, self.max_frames = emit, realtime, badge, max_frames
        self.stats_overlay = stats_overlay
        self.skipped = 0  # file frames the capture itself was too late for
        self.stats = LiveStats()
        self._frames, self._done = Mailbox(), Mailbox()

    def _capture(self, cancel: CancelToken) -> None:
        fps = float(getattr(self.source, "fps", None) or 30)
        start = time.monotonic()
        try:
            for frame in self.source.frames():
                if cancel.cancelled or (self.max_frames and frame.index >= self.max_frames):
                    break
                due = start + frame.index / fps
                if self.realtime and self.source.kind == "video":
                    wait = due - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    elif -wait > 1 / fps:  # decoding fell behind: a camera would have moved on
                        self.skipped += 1
                        continue
                    at = due  # when a camera would have delivered it
                else:
                    at = time.monotonic()
                self.stats.captured += 1
                self._frames.put(Captured(frame.index, frame.image, at))
        finally:
            self._frames.close()

    def _process(self, cancel: CancelToken) -> None:
        try:
            for item in self._frames.items(cancel):
                image = self.step(item.image, item.index)
                self.stats.faces, self.stats.swapped = self.step.faces, self.step.swapped
                self._done.put(Captured(item.index, image, item.at))
        finally:
            self._done.close()

    def _output(self, cancel: CancelToken) -> None:
        for item in self._done.items(cancel):
            image = draw_badge(item.image.copy()) if self.badge else item.image
            if self.stats_overlay:
                image = draw_stats(image if self.badge else image.copy(), self.stats)
            self.emit(image, item)
            self.stats.emitted += 1
            self.stats.dropped = self._frames.dropped + self._done.dropped + self.skipped
            self.stats.latencies.append(time.monotonic() - item.at)

    def run(self, cancel: CancelToken = NEVER) -> LiveStats:
        """Run until the source ends, ``max_frames`` are captured or ``cancel``; the stats."""
        self.stats = LiveStats()
        self.skipped = 0
        self.step.faces = self.step.swapped = 0
        threads = [threading.Thread(target=fn, args=(cancel,), name=f"live-{name}", daemon=True)
                   for name, fn in (("capture", self._capture), ("process", self._process),
                                    ("output", self._output))]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.2)
        self.stats.dropped = self._frames.dropped + self._done.dropped + self.skipped
        self.stats.faces, self.stats.swapped = self.step.faces, self.step.swapped
        self.stats.ended = time.monotonic()
        return self.stats


