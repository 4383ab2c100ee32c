"""Routes: the Live page — the browser's camera over a WebSocket, or a source on the server
shown as MJPEG — with settings that change while it runs.

**Browser camera** (``/api/projects/NAME/live/socket``): the page sends camera frames as
binary messages (a 4-byte big-endian frame id, then a JPEG) and receives each swapped frame
the same way (id, then the JPEG), plus a JSON text message with the server's figures about
once a second. The page keeps at most two frames in flight and skips camera frames while
it waits; the server keeps only the newest unprocessed frame (a one-slot box, like
:class:`~swapface.live.pipeline.Mailbox`), so a slow machine drops stale frames instead of
building a queue. Text messages from the page are settings (``{"swap": false}``,
``{"options": {...}}``), applied from the next frame on.

**Server source** (``POST …/live/start`` with a camera number, ``/dev/videoN``, a stream URL
or one of person A's videos): :class:`~swapface.live.pipeline.LiveSwap` runs on a thread of
this process and ``…/live/stream.mjpg`` streams its newest frame.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from fastapi import APIRouter, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from swapface.core.errors import SwapfaceError
from swapface.core.progress import CancelToken
from swapface.live.outputs import BOUNDARY
from swapface.live.pipeline import LiveStats, LiveSwap, SwapStep, draw_badge
from swapface.project.project import Project
from swapface.project.stages import project_swap_options
from swapface.swap.options import SwapOptions
from swapface.ui.api_projects import project_of
from swapface.ui.app import state

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api")
FRAME_BYTES = 8 << 20  # one camera JPEG
JPEG_QUALITY = 80
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "srt")
_CAMERA = re.compile(r"^(\d{1,2}|/dev/video\d{1,3})$")


# ---------------------------------------------------------------------- shared
def swap_options(p: Project, values: Any) -> SwapOptions:
    """Swap options from the page: no file paths (``face_filter`` means the project's references)."""
    if not isinstance(values, dict):
        raise SwapfaceError("options must be an object")
    values = dict(values)
    face_filter = bool(values.pop("face_filter", False))
    options = project_swap_options(p, values)
    if face_filter:
        options.filter = p.references(p.person("a"))
    return options


def new_step(conn: HTTPConnection, p: Project, options: SwapOptions, fps: float = 30.0) -> SwapStep:
    """A live step over the project's model (loaded once per checkpoint, shared with previews)."""
    from swapface.faces import FaceFinder
    from swapface.faces.finder import FinderOptions
    from swapface.swap import Causal, FrameSwapper

    model = _live_model(conn, p)
    # Camera faces are large: full detections without upsampling, tracked in between.
    finder = FaceFinder.create(FinderOptions(detector="hog", track=True, upsample=0, redetect_every=8))
    return SwapStep(finder, FrameSwapper(model, options, identity=_identity(options)), Causal(fps))


def _live_model(conn: HTTPConnection, p: Project) -> Any:
    """The project's model for live swaps, reloaded when training saved a newer checkpoint.

    ``auto`` runs it on ONNX Runtime on a CPU (exported once per checkpoint into the model
    folder: 2.7× faster than PyTorch per face at batch 1 for ``lightweight``, see
    ``swap.loading``), unlike the one-frame preview, which swaps too few faces to pay for it.
    """
    from swapface.models.checkpoint import LATEST
    from swapface.swap import load_inference

    ui = state(conn)  # type: ignore[arg-type]
    latest = p.model_dir / LATEST
    if not latest.is_file():
        raise HTTPException(409, "no trained model yet: train first")
    stamp = latest.stat().st_mtime_ns
    with ui.lock:
        cached = ui.live_models.get(p.name)
    if cached is None or cached[0] != stamp:
        cached = (stamp, load_inference(p.model_dir, "auto"))
        with ui.lock:
            ui.live_models[p.name] = cached
    return cached[1]


def _identity(options: SwapOptions) -> Any:  # -> IdentityFilter | None
    if not options.uses_identity:
        return None
    from swapface.faces import FaceFinder, IdentityFilter, shared_encoder

    return IdentityFilter.from_references(options.filter, options.nfilter, FaceFinder.create(),
                                          shared_encoder(), options.ref_threshold)


def apply_settings(step: SwapStep, p: Project, message: dict[str, Any]) -> None:
    """``{"swap": bool, "options": {...}}`` from the page, from the next frame on."""
    if "options" in message:
        options = swap_options(p, message["options"])
        step.set_options(options, _identity(options))
    if "swap" in message:
        step.enabled = bool(message["swap"])


def _encode(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise SwapfaceError("could not encode the frame")
    return data.tobytes()


# ---------------------------------------------------------------------- browser camera
@dataclass
class SocketFigures:
    received: int = 0
    swapped: int = 0
    dropped: int = 0  # frames replaced by a newer one before the server got to them
    seconds: list[float] = field(default_factory=list)  # server time per frame (decode → encode)

    def to_dict(self) -> dict[str, Any]:
        recent = sorted(self.seconds[-100:])
        median = recent[len(recent) // 2] * 1000 if recent else None
        return {"received": self.received, "swapped": self.swapped, "dropped": self.dropped,
                "server_ms": None if median is None else round(median, 1)}


def _swap_frame(step: SwapStep, data: bytes, index: int, max_pixels: int, badge: bool) -> bytes:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise SwapfaceError("a camera frame is not a JPEG image")
    if image.shape[0] * image.shape[1] > max_pixels:
        raise SwapfaceError("a camera frame is larger than the pixel limit")
    out = step(image, index)
    return _encode(draw_badge(out.copy()) if badge else out)


@router.websocket("/projects/{name}/live/socket")
async def live_socket(ws: WebSocket, name: str) -> None:
    if not ws.app.state.access.socket_ok(ws):
        await ws.close(code=1008)  # policy violation: another site, or no token
        return
    await ws.accept()
    try:
        p = project_of(ws, name)  # type: ignore[arg-type]
        step = await run_in_threadpool(new_step, ws, p, SwapOptions())
    except (HTTPException, SwapfaceError) as exc:
        await ws.send_json({"error": getattr(exc, "detail", None) or str(exc)})
        await ws.close(code=1011)
        return
    figures, badge = SocketFigures(), True
    box: list[tuple[int, bytes]] = []  # the newest frame not yet swapped (at most one)
    ready = asyncio.Event()
    max_pixels = state(ws).limits.upload_pixels  # type: ignore[arg-type]

    async def swap_loop() -> None:
        last_report = 0.0
        while True:
            await ready.wait()
            ready.clear()
            if not box:
                continue
            index, data = box.pop()
            began = time.perf_counter()
            try:
                out = await run_in_threadpool(_swap_frame, step, data, index, max_pixels, badge)
            except SwapfaceError as exc:
                await ws.send_json({"error": str(exc)})
                continue
            except Exception as exc:  # a bug: said on the page and logged, the socket goes on
                log.exception("live frame failed")
                await ws.send_json({"error": f"internal error ({type(exc).__name__}); see the server log"})
                continue
            figures.seconds.append(time.perf_counter() - began)
            figures.swapped += 1
            await ws.send_bytes(struct.pack(">I", index) + out)
            if time.monotonic() - last_report > 1:
                last_report = time.monotonic()
                await ws.send_json({"stats": figures.to_dict()})

    task = asyncio.create_task(swap_loop())
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("bytes") is not None:
                data = message["bytes"]
                if len(data) < 5 or len(data) > FRAME_BYTES:
                    await ws.send_json({"error": "a camera frame must be 4 id bytes and a JPEG "
                                                 f"under {FRAME_BYTES >> 20} MB"})
                    continue
                figures.received += 1
                if box:
                    figures.dropped += 1
                    box.clear()
                box.append((struct.unpack(">I", data[:4])[0], data[4:]))
                ready.set()
            elif message.get("text") is not None:
                try:
                    settings = json.loads(message["text"])
                    if not isinstance(settings, dict):
                        raise SwapfaceError("settings must be a JSON object")
                    badge = bool(settings.get("badge", badge))
                    apply_settings(step, p, settings)
                    await ws.send_json({"settings": "applied"})
                except (ValueError, SwapfaceError) as exc:
                    await ws.send_json({"error": f"settings not applied: {exc}"})
    except WebSocketDisconnect:
        pass
    finally:
        task.cancel()


# ---------------------------------------------------------------------- server source
class ServerLive:
    """A :class:`LiveSwap` over a source of the server, on its own thread, newest frame kept."""

    def __init__(self, live: LiveSwap, source_name: str) -> None:
        self.live, self.source_name = live, source_name
        self.cancel = CancelToken()
        self.jpeg: bytes | None = None
        self.seq = 0
        self.error: str | None = None
        self.stats: LiveStats | None = None
        self.thread = threading.Thread(target=self._run, name="ui-live", daemon=True)

    def emit(self, image: np.ndarray, _captured: Any) -> None:
        self.jpeg, self.seq = _encode(image), self.seq + 1

    def _run(self) -> None:
        try:
            self.stats = self.live.run(self.cancel)
        except Exception as exc:  # a camera unplugged mid-run: shown on the page, not a crash
            self.error = str(exc) or type(exc).__name__

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def to_dict(self) -> dict[str, Any]:
        stats = self.live.stats if self.running else (self.stats or self.live.stats)
        return {"running": self.running, "source": self.source_name, "error": self.error,
                "swap": self.live.step.enabled, "stats": stats.to_dict()}


class LiveStart(BaseModel):
    source: str
    options: dict[str, Any] = {}


def _open_server_source(p: Project, name: str) -> tuple[Any, bool]:
    """(frame source, paced) for a camera, a stream URL or one of person A's videos — never an
    arbitrary path of the server."""
    from swapface.media.source import open_source

    name = name.strip()
    scheme = name.split("://", 1)[0].lower() if "://" in name else ""
    if _CAMERA.match(name) or scheme in STREAM_SCHEMES:
        return open_source(name), False
    media = {m["name"] for m in p.status()["persons"]["a"]["media"] if m["kind"] == "video"}
    if name in media:
        return open_source(p.media_path(p.person("a"), name)), True
    raise HTTPException(400, "source must be a camera (0, /dev/video0), a stream URL "
                             f"({', '.join(STREAM_SCHEMES)}) or one of {p.person('a')}'s videos")


def _server_live(request: Request, name: str) -> ServerLive | None:
    return state(request).live.get(name)


@router.post("/projects/{name}/live/start")
def live_start(request: Request, name: str, body: LiveStart) -> dict[str, Any]:
    p = project_of(request, name)
    ui = state(request)
    with ui.lock:
        current = ui.live.get(name)
        if current is not None and current.running:
            raise HTTPException(409, "live is already running for this project: stop it first")
    source, paced = _open_server_source(p, body.source)
    fps = float(getattr(source, "fps", None) or 30)
    step = new_step(request, p, swap_options(p, body.options), fps)
    session = ServerLive(LiveSwap(source, step, lambda *_: None, realtime=paced), body.source)
    session.live.emit = session.emit
    with ui.lock:
        ui.live[name] = session
    session.thread.start()
    return session.to_dict()


@router.post("/projects/{name}/live/stop")
def live_stop(request: Request, name: str) -> dict[str, Any]:
    session = _server_live(request, name)
    if session is None:
        raise HTTPException(404, "live is not running for this project")
    session.cancel.cancel("stopped from the page")
    session.thread.join(5)
    return session.to_dict()


@router.get("/projects/{name}/live")
def live_state(request: Request, name: str) -> dict[str, Any]:
    project_of(request, name)
    session = _server_live(request, name)
    return session.to_dict() if session is not None else {"running": False}


@router.post("/projects/{name}/live/settings")
def live_settings(request: Request, name: str, body: dict[str, Any]) -> dict[str, Any]:
    p = project_of(request, name)
    session = _server_live(request, name)
    if session is None or not session.running:
        raise HTTPException(409, "live is not running for this project")
    apply_settings(session.live.step, p, body)
    return session.to_dict()


@router.get("/projects/{name}/live/stream.mjpg")
async def live_stream(request: Request, name: str) -> StreamingResponse:
    session = _server_live(request, name)
    if session is None:
        raise HTTPException(404, "live is not running for this project")

    async def frames() -> Any:
        seen = -1
        while session.running or session.seq != seen:
            if await request.is_disconnected():
                return
            if session.seq == seen or session.jpeg is None:
                await asyncio.sleep(0.01)
                continue
            seen, jpeg = session.seq, session.jpeg
            yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                   ).encode() + jpeg + b"\r\n"

    return StreamingResponse(frames(), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                             headers={"Cache-Control": "no-store"})
