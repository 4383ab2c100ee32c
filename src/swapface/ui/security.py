"""What keeps the web UI from being a hole in the user's machine.

* **Paths**: a request names things (project, person, media, face ids, a file below a
  project), never a path; :func:`confined` resolves every path the server touches, links
  included, and refuses anything that is not strictly below its root.
* **Who**: loopback by default, with the ``Host`` header checked (DNS rebinding); on any
  other address every request needs the random access token printed at start (header
  ``X-Swapface-Token``, cookie ``swapface_token`` or ``?token=`` once, which sets the cookie).
* **CSRF**: a request that changes state is a POST with the header ``X-Swapface-CSRF: 1``
  (a cross-site form cannot set it, and a cross-site ``fetch`` with it needs a CORS
  preflight this server never grants) and, when the browser sends ``Origin``, that origin
  is this server. GET and HEAD never change state.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import HTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from swapface.core.fileio import contained

TOKEN_HEADER = "X-Swapface-Token"
TOKEN_COOKIE = "swapface_token"
CSRF_HEADER = "X-Swapface-CSRF"
SAFE_METHODS = ("GET", "HEAD")


def new_token() -> str:
    return secrets.token_urlsafe(24)


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def confined(root: str | os.PathLike[str], name: str) -> Path:
    """``root / name`` when it stays strictly below ``root`` with links resolved; else 404.

    Refused: absolute paths, ``..`` or empty parts, backslashes, NUL, and a link anywhere
    on the way that points out of ``root``. (Percent-encoded forms arrive here decoded.)
    """
    path = contained(root, name)
    if path is None:
        raise HTTPException(404, "not found")
    return path


class Guard(BaseHTTPMiddleware):
    """Token, Host, CSRF and method checks in front of every route."""

    def __init__(self, app: object, token: str | None, loopback: bool, max_body: int) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.token = token
        self.loopback = loopback
        self.max_body = max_body  # refused from Content-Length, before a byte is stored

    def _host_ok(self, request: Request) -> bool:
        host = (request.headers.get("host") or "").rsplit(":", 1)[0]
        return not self.loopback or is_loopback(host.strip("[]"))

    def _token_ok(self, request: Request) -> bool:
        if self.token is None:
            return True
        given = (request.headers.get(TOKEN_HEADER) or request.cookies.get(TOKEN_COOKIE)
                 or request.query_params.get("token") or "")
        return hmac.compare_digest(given.encode(), self.token.encode())

    @staticmethod
    def _origin_ok(request: Request) -> bool:
        origin = request.headers.get("origin")
        if not origin:
            return True
        parts = urlsplit(origin)
        return parts.netloc == request.headers.get("host", "")

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if not self._host_ok(request):
            return JSONResponse({"error": "unknown Host header"}, 400)
        if not self._token_ok(request):
            return JSONResponse({"error": "access token required (printed by `swapface ui`)"}, 401)
        if request.method not in SAFE_METHODS:
            if request.headers.get(CSRF_HEADER) != "1" or not self._origin_ok(request):
                return JSONResponse({"error": "cross-site request refused"}, 403)
            length = request.headers.get("content-length", "0")
            if not length.isdigit() or int(length) > self.max_body:
                return JSONResponse({"error": "request too large (upload limit "
                                              f"{self.max_body >> 20} MB)"}, 413)
        response = await call_next(request)
        if self.token is not None and request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
            "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
        return response
