"""``swapface ui``: the web server and its job worker(s), as one driver.

The server process serves pages and answers quick requests (the face grid, one-frame
previews with a model it keeps loaded); heavy jobs run in worker processes started here,
each one job at a time. A worker is tied to the server's life (Linux ``PR_SET_PDEATHSIG``):
when the server dies, even by SIGKILL, its workers get SIGTERM, save and put their job
back in the queue, and the next ``swapface ui`` resumes it.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.ui.security import is_loopback, new_token

_PR_SET_PDEATHSIG = 1


@dataclass
class UiConfig:
    workspace: Path = option(Path("swapface_workspace"),
                             help="folder of projects and the job queue (created)")
    host: str = option("127.0.0.1", help="address to listen on; any other than loopback needs "
                                         "the access token printed at start")
    port: int = option(8765, help="port (0: any free port)")
    workers: int = option(1, help="job worker processes (heavy jobs run one per worker)")
    max_upload_mb: int = option(2048, help="largest upload in MB")

    def __post_init__(self) -> None:
        if not 0 <= self.port < 65536:
            raise ConfigError("--port must be 0-65535")
        if self.workers < 0:
            raise ConfigError("--workers must be at least 0")
        if self.max_upload_mb < 1:
            raise ConfigError("--max-upload-mb must be at least 1")


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: workers outlive a killed server
        pass


def start_workers(workspace: Path, count: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-m", "swapface.project.worker",
                              "--workspace", str(workspace)], preexec_fn=_die_with_parent)
            for _ in range(count)]


def stop_workers(workers: list[subprocess.Popen[bytes]], timeout: float = 60.0) -> None:
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)  # the job saves and goes back to the queue
    deadline = time.monotonic() + timeout
    for w in workers:
        try:
            w.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            w.kill()


def serve(cfg: UiConfig) -> int:
    import socket

    import uvicorn

    from swapface.ui.app import MB, Limits, create_app

    token = None if is_loopback(cfg.host) else new_token()
    app = create_app(cfg.workspace, token=token, host=cfg.host,
                     limits=Limits(upload_bytes=cfg.max_upload_mb * MB))
    sock = socket.socket(socket.AF_INET6 if ":" in cfg.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((cfg.host, cfg.port))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror}") from None
    sock.listen(128)  # connections wait in the backlog from now on, so the URL printed works
    port = sock.getsockname()[1]
    workers = start_workers(cfg.workspace, cfg.workers)
    shown = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    print(f"swapface ui: {url}", flush=True)
    print(f"swapface ui: workspace {cfg.workspace.resolve()}, {cfg.workers} job worker(s); "
          "Ctrl-C stops (running jobs save and resume at the next start)", file=sys.stderr,
          flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    try:
        server.run(sockets=[sock])
    finally:
        stop_workers(workers)
    return 0
