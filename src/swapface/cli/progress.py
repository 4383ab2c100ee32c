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

from swapface.core.progress import Progress, ProgressEvent, event_line, figures_text

_LOG_INTERVAL = 5.0  # seconds between log lines


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
            bar.set_postfix_str(figures_text(event.info), refresh=False)
        if event.state == "end":
            bar.close()
            del self._bars[event.task]
