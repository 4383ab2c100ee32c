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


def write_y4m(video: Path, out: Path, frames: int) -> Path:
    """The first ``frames`` frames of ``video`` as a y4m file: what Chromium's fake camera plays
    (``--use-file-for-fake-video-capture``), looping."""
    import av

    from swapface.media.video import iter_video, probe_video

    info = probe_video(video)
    with av.open(str(out), "w", format="yuv4mpegpipe") as container:
        stream = container.add_stream("rawvideo", rate=round(float(info.fps or 30)))
        stream.width, stream.height, stream.pix_fmt = info.width, info.height, "yuv420p"
        for index, _, image in iter_video(video):
            if index >= frames:
                break
            frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return out
