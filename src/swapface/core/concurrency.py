"""Small thread pipelines: keep decode, compute and encode busy at the same time.

Video decoding (FFmpeg), OpenCV and PyTorch kernels release the GIL, so plain threads
overlap them without the cost of pickling frames between processes. Errors raised in a
worker thread are re-raised in the caller; leaving early (an exception, Ctrl-C) stops the
worker instead of leaving it blocked on a full queue.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(items: Iterable[T], depth: int = 8, name: str = "prefetch") -> Iterator[T]:
    """Iterate ``items`` in a background thread, up to ``depth`` items ahead of the caller."""
    q: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        source = iter(items)
        try:
            for item in source:
                if not put(item):
                    return
        except BaseException as exc:
            put(_Failure(exc))
            return
        finally:
            # A generator abandoned early is closed here, in the thread that ran it: its
            # cleanup (closing a SQLite connection, a container) must not run on another.
            close = getattr(source, "close", None)
            if close is not None:
                close()
        put(_DONE)

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=5)


class Sink(Generic[T]):
    """Hands items to ``consume`` on a background thread, in order, ``depth`` at most queued.

    ``close()`` waits for the queue to drain and re-raises the worker's error; as a context
    manager an exception in the body abandons the queued items instead.
    """

    def __init__(self, consume: Callable[[T], None], depth: int = 8, name: str = "sink") -> None:
        self._consume = consume
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._abandon = threading.Event()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE or self._abandon.is_set():
                return
            if self._error is not None:
                continue  # drain so put() never blocks after a failure
            try:
                self._consume(item)  # type: ignore[arg-type]
            except BaseException as exc:
                self._error = exc

    def put(self, item: T) -> None:
        if self._error is not None:
            raise self._error
        while True:
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    raise RuntimeError("sink worker stopped") from self._error

    def close(self) -> None:
        self._queue.put(_DONE)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abandon(self) -> None:
        self._abandon.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_DONE)
        self._thread.join(timeout=30)

    def __enter__(self) -> Sink[T]:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()
