"""Starting ``swapface ui`` as a real process for tests, and waiting on it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def start_ui(ws: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """``swapface ui`` on a free port; (process, base URL) once it printed its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "swapface.cli.main", "ui", "--workspace", str(ws),
                             "--port", "0", *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    line = proc.stdout.readline()  # type: ignore[union-attr]
    match = re.search(r"(http://\S+)/", line)
    assert match, line
    return proc, match.group(1)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")
