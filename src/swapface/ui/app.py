"""The web UI's application: FastAPI routes over projects, the job queue and the swap engine.

:func:`create_app` builds it for one workspace; ``swapface ui`` (:mod:`swapface.ui.server`)
serves it with uvicorn and runs the job worker beside it. Every page asset is in
``static/`` inside the package: nothing is fetched from anywhere at run time.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from swapface import __version__
from swapface.core.errors import SwapfaceError
from swapface.project.jobs import JobQueue
from swapface.ui.security import Access, Guard, is_loopback

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
CONSENT = ("Swapped media made here is labelled as synthetic (a machine-readable label in every "
           "file). Only use the faces of people who have agreed to it.")
MB = 1 << 20


@dataclass
class Limits:
    upload_bytes: int = 2048 * MB  # one uploaded video or photo
    upload_pixels: int = 100_000_000  # one photo or video frame
    page_size: int = 500  # most faces in one grid page


@dataclass
class UiState:
    workspace: Path
    queue: JobQueue
    limits: Limits
    previewers: dict[str, Any] = field(default_factory=dict)  # project → (model stamp, previewer)
    grids: dict[str, Any] = field(default_factory=dict)  # store path → (stamp, face rows)
    live: dict[str, Any] = field(default_factory=dict)  # project → its server-source live session
    live_models: dict[str, Any] = field(default_factory=dict)  # project → (stamp, live model)
    lock: threading.Lock = field(default_factory=threading.Lock)


def state(request: Request) -> UiState:
    return request.app.state.ui  # type: ignore[no-any-return]


def create_app(workspace: str | Path, *, token: str | None = None, host: str = "127.0.0.1",
               limits: Limits | None = None) -> FastAPI:
    from swapface.ui import api_faces, api_live, api_projects, api_swap

    workspace = Path(workspace)
    workspace.mkdir(parents=True, exist_ok=True)
    app = FastAPI(title="swapface", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None)
    limits = limits or Limits()
    app.state.ui = UiState(workspace.resolve(), JobQueue(workspace), limits)
    app.state.access = access = Access(token, is_loopback(host))
    app.add_middleware(Guard, access=access, max_body=limits.upload_bytes + MB)  # + multipart

    @app.exception_handler(SwapfaceError)
    async def _user_error(_: Request, exc: SwapfaceError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, 400)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"error": f"bad request: {where}: {first.get('msg', 'invalid')}"}, 422)

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server log"},
                            500)

    @app.get("/api/info")
    def info(request: Request) -> dict[str, Any]:
        return {"version": __version__, "workspace": str(state(request).workspace),
                "consent": CONSENT, "limits": vars(state(request).limits)}

    app.include_router(api_projects.router)
    app.include_router(api_faces.router)
    app.include_router(api_swap.router)
    app.include_router(api_live.router)

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
