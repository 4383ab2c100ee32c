"""Progress and cancellation as objects that drivers pass into long library calls.

Library code never draws a bar, installs a signal handler or decides how often to print:
it reports through a :class:`Progress` (``with progress.task("convert", total, "frame") as
task: task.advance()``) and checks a :class:`CancelToken` between units of work. The
driver decides what that looks like — a bar on a terminal, one line every few seconds in a
log (both in :mod:`swapface.cli.progress`), events for a web job — and who may cancel:
Ctrl-C, SIGTERM or another thread calling :meth:`CancelToken.cancel`.

Every event carries the rate (units per second, smoothed) and the time left, computed
here once for every renderer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from swapface.core.errors import Cancelled


class CancelToken:
    """Thread-safe "please stop": set by a driver, checked by the library between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` once :meth:`cancel` was called."""
        if self._event.is_set():
            raise Cancelled(self.reason or "cancelled")

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as the token is cancelled."""
        return self._event.wait(seconds)


NEVER = CancelToken()  # the default for callers that cannot cancel; nothing ever sets it


@dataclass(frozen=True)
class ProgressEvent:
    task: str  # "extract", "train", ...
    state: str  # "start", "update" or "end"
    done: int
    total: int | None
    unit: str
    rate: float  # units per second (exponentially smoothed)
    elapsed: float  # seconds since the task started
    eta: float | None  # seconds left, when the total is known and the rate measured
    info: dict[str, Any] = field(default_factory=dict)  # latest figures (losses, faces, ...)

    @property
    def fraction(self) -> float | None:
        return None if not self.total else min(1.0, self.done / self.total)


Listener = Callable[[ProgressEvent], None]


class Progress:
    """A sink for progress events; the default (no listener) drops them."""

    def __init__(self, listener: Listener | None = None) -> None:
        self._listener = listener

    def emit(self, event: ProgressEvent) -> None:
        if self._listener is not None:
            self._listener(event)

    def task(self, name: str, total: int | None, unit: str = "it", initial: int = 0) -> Task:
        return Task(self, name, total, unit, initial)


SILENT = Progress()

_SMOOTHING = 0.3  # weight of the newest rate sample
_SAMPLE = 0.5  # seconds: work often finishes in bursts (a model batch), so rates are sampled


class Task:
    """One long step. Use as a context manager; ``advance`` after each unit of work."""

    def __init__(self, progress: Progress, name: str, total: int | None, unit: str,
                 initial: int = 0) -> None:
        self.progress, self.name, self.total, self.unit = progress, name, total, unit
        self.done = self._initial = initial
        self.info: dict[str, Any] = {}
        self._start = self._last = time.perf_counter()
        self._last_done = initial
        self._rate = 0.0
        self._closed = False
        self._deadline: float | None = None
        self._emit("start")

    def _emit(self, state: str) -> None:
        elapsed = time.perf_counter() - self._start
        eta = None
        if self.total is not None and self._rate > 0:
            eta = max(0.0, (self.total - self.done) / self._rate)
        if self._deadline is not None:  # a time budget ends the work first when it is shorter
            left = max(0.0, self._deadline - time.perf_counter())
            eta = left if eta is None else min(eta, left)
        self.progress.emit(ProgressEvent(self.name, state, self.done, self.total, self.unit,
                                         self._rate, elapsed, eta, dict(self.info)))

    def advance(self, n: int = 1, **info: Any) -> None:
        self.done += n
        self.info.update(info)
        now = time.perf_counter()
        if now - self._last >= _SAMPLE:
            sample = (self.done - self._last_done) / (now - self._last)
            self._rate = sample if self._rate == 0 else (
                _SMOOTHING * sample + (1 - _SMOOTHING) * self._rate)
            self._last, self._last_done = now, self.done
        elif self._rate == 0 and now > self._start:
            self._rate = (self.done - self._initial) / (now - self._start)
        self._emit("update")

    def set_total(self, total: int | None) -> None:
        self.total = total

    def set_time_limit(self, seconds: float | None) -> None:
        """The work stops after ``seconds`` from now at the latest (a training budget in
        minutes): the ETA is never longer than what is left of it."""
        self._deadline = None if seconds is None else time.perf_counter() + seconds

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            elapsed = time.perf_counter() - self._start
            if elapsed > 0:  # the final rate is the true average, not the smoothed one
                self._rate = (self.done - self._initial) / elapsed
            self._emit("end")

    def __enter__(self) -> Task:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


# ------------------------------------------------------------------ plain-text rendering
def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def figures_text(info: dict[str, Any]) -> str:
    parts = []
    for key, value in info.items():
        parts.append(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(parts)


def event_line(event: ProgressEvent) -> str:
    """One log line: ``convert: 500/1008 frame (49.6%), 29.3 frame/s, 0:17 left``."""
    total = f"/{event.total}" if event.total is not None else ""
    share = f" ({event.fraction:.1%})" if event.fraction is not None else ""
    timing = (f"{_clock(event.elapsed)} in all" if event.state == "end"
              else f"{_clock(event.eta)} left")
    figures = figures_text(event.info)
    return (f"{event.task}: {event.done}{total} {event.unit}{share}, {event.rate:.1f} "
            f"{event.unit}/s, {timing}" + (f" | {figures}" if figures else ""))
