"""How the commands show progress: a bar on a terminal, a line every few seconds in a log.

Library calls report :class:`~swapface.core.progress.ProgressEvent`\\ s; this renderer is the
only place that draws them. On a terminal each task is a tqdm bar (rate, ETA, the task's
latest figures); when stderr is a file, a pipe, CI or a web job's log, one plain line is
written every ``interval`` seconds and when the task ends, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from swapface.core.progress import Progress, ProgressEvent

_LOG_INTERVAL = 5.0  # seconds between log lines


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _figures(info: dict[str, Any]) -> str:
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
    figures = _figures(event.info)
    return (f"{event.task}: {event.done}{total} {event.unit}{share}, {event.rate:.1f} "
            f"{event.unit}/s, {timing}" + (f" | {figures}" if figures else ""))


class CliProgress(Progress):
    """Bars on a TTY, periodic lines otherwise, nothing with ``quiet``."""

    def __init__(self, quiet: bool = False, stream: IO[str] | None = None,
                 interval: float = _LOG_INTERVAL) -> None:
        super().__init__()
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.interval = interval
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bars: dict[str, Any] = {}
        self._last: dict[str, float] = {}

    def emit(self, event: ProgressEvent) -> None:
        if self.quiet:
            return
        if self.tty:
            self._bar(event)
            return
        now = time.monotonic()
        if event.state == "start":
            self._last[event.task] = now
            return
        if event.state == "end" or now - self._last.get(event.task, 0.0) >= self.interval:
            self._last[event.task] = now
            print(event_line(event), file=self.stream, flush=True)

    def _bar(self, event: ProgressEvent) -> None:
        from tqdm import tqdm

        bar = self._bars.get(event.task)
        if event.state == "start" or bar is None:
            if bar is not None:
                bar.close()
            bar = self._bars[event.task] = tqdm(
                total=event.total, desc=event.task, unit=event.unit, initial=event.done,
                dynamic_ncols=True, smoothing=0.1, file=self.stream)
            return
        bar.total = event.total
        bar.update(event.done - bar.n)
        if event.info:
            bar.set_postfix_str(_figures(event.info), refresh=False)
        if event.state == "end":
            bar.close()
            del self._bars[event.task]
