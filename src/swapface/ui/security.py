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
from starlette.requests import HTTPConnection, Request
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


class Access:
    """Who may talk to this server: the Host, token and Origin checks shared by every HTTP
    request (:class:`Guard`) and the live page's WebSocket (which no HTTP middleware sees)."""

    def __init__(self, token: str | None, loopback: bool) -> None:
        self.token = token
        self.loopback = loopback

    def host_ok(self, conn: HTTPConnection) -> bool:
        host = (conn.headers.get("host") or "").rsplit(":", 1)[0]
        return not self.loopback or is_loopback(host.strip("[]"))

    def token_ok(self, conn: HTTPConnection) -> bool:
        if self.token is None:
            return True
        given = (conn.headers.get(TOKEN_HEADER) or conn.cookies.get(TOKEN_COOKIE)
                 or conn.query_params.get("token") or "")
        return hmac.compare_digest(given.encode(), self.token.encode())

    @staticmethod
    def origin_ok(conn: HTTPConnection, required: bool = False) -> bool:
        origin = conn.headers.get("origin")
        if not origin:
            return not required
        return urlsplit(origin).netloc == conn.headers.get("host", "")

    def socket_ok(self, conn: HTTPConnection) -> bool:
        """A WebSocket: browsers always send ``Origin`` on one, and no CORS rule protects it,
        so it must be this server's (cross-site WebSocket hijacking)."""
        return self.host_ok(conn) and self.token_ok(conn) and self.origin_ok(conn, required=True)


class Guard(BaseHTTPMiddleware):
    """Token, Host, CSRF and method checks in front of every route."""

    def __init__(self, app: object, access: Access, max_body: int) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.access = access
        self.max_body = max_body  # refused from Content-Length, before a byte is stored

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        access = self.access
        if not access.host_ok(request):
            return JSONResponse({"error": "unknown Host header"}, 400)
        if not access.token_ok(request):
            return JSONResponse({"error": "access token required (printed by `swapface ui`)"}, 401)
        if request.method not in SAFE_METHODS:
            if request.headers.get(CSRF_HEADER) != "1" or not access.origin_ok(request):
                return JSONResponse({"error": "cross-site request refused"}, 403)
            length = request.headers.get("content-length", "0")
            if not length.isdigit() or int(length) > self.max_body:
                return JSONResponse({"error": "request too large (upload limit "
                                              f"{self.max_body >> 20} MB)"}, 413)
        response = await call_next(request)
        if access.token is not None and request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, access.token, httponly=True, samesite="strict")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
            "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
        return response
