"""The loss log: ``loss_log.csv`` in the model folder, and TensorBoard events beside it.

TensorBoard is optional (``torch.utils.tensorboard`` needs the ``tensorboard`` package, in the
``dev`` extra): without it only the CSV is written. Both are cut back to the checkpoint's
iteration on resume, so a resumed run never logs an iteration twice.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

from swapface.core.fileio import atomic_write_bytes

_FLUSH_EVERY = 2.0  # seconds: the loss chart of a running job stays current


class LossLog:
    """loss_log.csv, trimmed on resume to the checkpoint's iteration (no duplicate rows)."""

    def __init__(self, path: Path, start_iteration: int, tensorboard: bool = False) -> None:
        self.path = path
        self._fields: list[str] | None = None
        rows: list[dict[str, str]] = []
        if path.is_file():
            with open(path, newline="") as fh:
                reader = csv.DictReader(fh)
                self._fields = list(reader.fieldnames or []) or None
                rows = [r for r in reader if int(r.get("iteration", 0) or 0) <= start_iteration]
            buf = io.StringIO()
            if self._fields:
                writer = csv.DictWriter(buf, self._fields)
                writer.writeheader()
                writer.writerows(rows)
            atomic_write_bytes(path, buf.getvalue().encode())
        self._fh = open(path, "a", newline="")  # noqa: SIM115 - kept open for the whole run
        self._writer: csv.DictWriter[str] | None = None
        self._tb: Any = None
        self._flushed = time.monotonic()
        if tensorboard:
            try:  # optional: only when the tensorboard package is installed
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(path.parent / "tensorboard"), purge_step=start_iteration + 1)
            except ImportError:
                pass

    def append(self, iteration: int, seconds: float, parts: dict[str, float]) -> None:
        row = {"iteration": iteration, "seconds": round(seconds, 3),
               **{k: round(v, 6) for k, v in parts.items()}}
        if self._writer is None:
            self._fields = self._fields or list(row)
            self._writer = csv.DictWriter(self._fh, self._fields, extrasaction="ignore")
            if self._fh.tell() == 0:
                self._writer.writeheader()
        self._writer.writerow(row)
        if time.monotonic() - self._flushed > _FLUSH_EVERY:  # readers (the web UI) see it
            self.flush()
        if self._tb is not None:
            for key, value in parts.items():
                self._tb.add_scalar(key, value, iteration)

    def flush(self) -> None:
        self._flushed = time.monotonic()
        self._fh.flush()
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        self._fh.close()
        if self._tb is not None:
            self._tb.close()
