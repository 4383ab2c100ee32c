"""Where live frames go: an MJPEG stream on 127.0.0.1 (OBS, VLC and browsers open it) and a
recorded file (labelled as synthetic media like every output).

The MJPEG server is the standard library's threading HTTP server: one small page and one
``multipart/x-mixed-replace`` stream that always sends the newest frame (a slow viewer
skips frames instead of slowing the pipeline).
"""

from __future__ import annotations

import json
import threading
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from swapface.core.errors import ConfigError

BOUNDARY = "swapfaceframe"
_PAGE = """<!doctype html><meta charset="utf-8"><title>swapface live</title>
<body style="margin:0;background:#111;color:#eee;font:14px sans-serif">
<p style="margin:.5rem">swapface live: synthetic media; only show people who agreed to it.</p>
<img src="/stream.mjpg" alt="live" style="max-width:100%">
<p id="stats" style="margin:.5rem;font:13px monospace">…</p>
<script>
setInterval(async () => {
  try {
    const d = await (await fetch("/stats.json")).json();
    document.getElementById("stats").textContent = `${(d.fps || 0).toFixed(1)} fps · latency median `
      + `${d.latency_median_ms} ms, p95 ${d.latency_p95_ms} ms · ${d.dropped} dropped · ${d.faces} faces`;
  } catch (e) { document.getElementById("stats").textContent = "stopped"; }
}, 1000);
</script></body>"""


class MjpegServer:
    """Serves the newest frame as MJPEG at ``http://HOST:PORT/stream.mjpg``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8766, quality: int = 80) -> None:
        self.quality = quality
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._seq = 0
        self._closed = False
        self.stats: dict[str, Any] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # no access log on stderr
                pass

            def do_GET(self) -> None:
                if self.path == "/stream.mjpg":
                    owner._stream(self)
                elif self.path == "/stats.json":
                    body = json.dumps(owner.stats).encode()
                    self._reply(body, "application/json")
                elif self.path == "/":
                    self._reply(_PAGE.encode(), "text/html; charset=utf-8")
                else:
                    self.send_error(404)

            def _reply(self, body: bytes, kind: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        try:
            self.httpd = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise ConfigError(f"cannot serve MJPEG on {host}:{port}: {exc.strerror}") from None
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}/stream.mjpg"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="mjpeg", daemon=True)
        self._thread.start()

    def push(self, image: np.ndarray, index: int = 0) -> None:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if ok:
            with self._cond:
                self._jpeg, self._seq = buf.tobytes(), self._seq + 1
                self._cond.notify_all()

    def _stream(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        handler.send_header("Cache-Control", "no-store")
        handler.end_headers()
        seen = -1
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda last=seen: self._seq != last or self._closed, timeout=5)
                    if self._closed:
                        return
                    jpeg, seen = self._jpeg, self._seq
                if jpeg is None:
                    continue
                handler.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                    f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            return

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()


class Recorder:
    """The shown frames as a video file, at the source's frame rate, with the synthetic label."""

    def __init__(self, path: Path, fps: float) -> None:
        self.fps = Fraction(fps).limit_denominator(1001)
        from swapface.convert.output import SYNTHETIC_TAGS
        from swapface.media.writers import open_writer

        self._cm = open_writer(path, fps, metadata=SYNTHETIC_TAGS, preset="ultrafast", crf=20)
        self.writer = self._cm.__enter__()

    def push(self, image: np.ndarray, index: int = 0) -> None:
        """Each frame at its capture time, so dropped frames leave the timing intact."""
        self.writer.write(image, pts=index / self.fps, duration=1 / self.fps)

    def close(self, failed: bool = False) -> None:
        if failed:
            self._cm.__exit__(RuntimeError, RuntimeError("stopped"), None)  # no half file
        else:
            self._cm.__exit__(None, None, None)


LOOPBACK_HELP = ("load the v4l2loopback kernel module first (sudo modprobe v4l2loopback "
                 "exclusive_caps=1 card_label=swapface), then pass its /dev/videoN")


class VirtualCamera:
    """The shown frames as a camera other programs (video calls, OBS) can pick: a v4l2loopback
    device written through pyvirtualcam. Opened at the first frame, whose size it takes."""

    def __init__(self, device: str, fps: float) -> None:
        if device != "auto" and not Path(device).exists():
            raise ConfigError(f"virtual camera {device} does not exist: {LOOPBACK_HELP}")
        if device == "auto" and not any(Path("/dev").glob("video*")):
            raise ConfigError(f"no v4l2loopback virtual camera on this machine: {LOOPBACK_HELP}")
        try:
            import pyvirtualcam  # noqa: F401
        except ImportError:
            raise ConfigError("the virtual camera needs pyvirtualcam (pip install pyvirtualcam)") from None
        self.device, self.fps = device, fps
        self._cam: Any = None
        self.error: str | None = None

    def _open(self, width: int, height: int) -> None:
        import pyvirtualcam

        try:
            self._cam = pyvirtualcam.Camera(width=width, height=height, fps=self.fps,
                                            backend="v4l2loopback",
                                            device=None if self.device == "auto" else self.device)
        except RuntimeError as exc:  # a real camera, not a loopback; or the device is busy
            self.error = f"virtual camera not opened ({exc}); {LOOPBACK_HELP}"

    def push(self, image: np.ndarray, index: int = 0) -> None:
        if self._cam is None and self.error is None:
            self._open(image.shape[1], image.shape[0])
        if self._cam is not None:
            self._cam.send(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))

    def close(self) -> None:
        if self._cam is not None:
            self._cam.close()
