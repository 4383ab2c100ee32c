"""The job queue: extract / train / convert / evaluate jobs of the workspace's projects.

One SQLite file (``<workspace>/jobs.db``, WAL) holds every job with its state, parameters,
latest progress event and error; each job's log is ``<workspace>/logs/<id>.log``. States::

    queued → running → done | failed | cancelled
       ↑________| (interrupted by a shutdown: queued again, resumed at the next start)

The web server only writes rows (submit, cancel request, retry); a worker process
(:mod:`swapface.project.worker`) claims and runs them, so a heavy job never blocks a page.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swapface.core.errors import ConfigError

KINDS = ("extract", "train", "convert", "evaluate")
STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")
QUEUE_FILE = "jobs.db"
LOG_DIR = "logs"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    project TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'queued',
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    progress TEXT,
    result TEXT,
    error TEXT,
    cancel INTEGER NOT NULL DEFAULT 0,
    pid INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, id);
"""


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    project: str
    params: dict[str, Any]
    state: str
    created: float
    started: float | None
    finished: float | None
    progress: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None
    cancel: bool
    pid: int | None
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobQueue:
    """The queue in ``workspace/jobs.db``; each call opens its own connection (thread-safe)."""

    def __init__(self, workspace: str | os.PathLike[str]) -> None:
        self.workspace = Path(workspace)
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.path = self.workspace / QUEUE_FILE
        (self.workspace / LOG_DIR).mkdir(exist_ok=True)
        with closing(self._connect()) as conn, conn:
            conn.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def log_path(self, job_id: int) -> Path:
        return self.workspace / LOG_DIR / f"{int(job_id)}.log"

    @staticmethod
    def _job(row: tuple[Any, ...]) -> Job:
        (jid, kind, project, params, state, created, started, finished, progress, result, error,
         cancel, pid, attempts) = row
        return Job(jid, kind, project, json.loads(params or "{}"), state, created, started,
                   finished, json.loads(progress) if progress else None,
                   json.loads(result) if result else None, error, bool(cancel), pid, attempts)

    _COLS = ("id, kind, project, params, state, created, started, finished, progress, result, "
             "error, cancel, pid, attempts")

    # ------------------------------------------------------------------ the server's side
    def submit(self, kind: str, project: str, params: dict[str, Any] | None = None) -> int:
        if kind not in KINDS:
            raise ConfigError(f"unknown job kind {kind!r} (one of {', '.join(KINDS)})")
        with closing(self._connect()) as conn:
            cur = conn.execute("INSERT INTO jobs (kind, project, params, created) VALUES (?,?,?,?)",
                               (kind, project, json.dumps(params or {}), time.time()))
            return int(cur.lastrowid or 0)

    def get(self, job_id: int) -> Job | None:
        with closing(self._connect()) as conn:
            row = conn.execute(f"SELECT {self._COLS} FROM jobs WHERE id=?", (int(job_id),)).fetchone()
        return None if row is None else self._job(row)

    def list(self, project: str | None = None, limit: int = 100) -> list[Job]:
        sql, args = f"SELECT {self._COLS} FROM jobs", []
        if project is not None:
            sql, args = sql + " WHERE project=?", [project]
        with closing(self._connect()) as conn:
            rows = conn.execute(sql + " ORDER BY id DESC LIMIT ?", [*args, int(limit)]).fetchall()
        return [self._job(r) for r in rows]

    def cancel(self, job_id: int) -> str:
        """A queued job is cancelled at once; a running one is asked to stop (it saves first)."""
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute("SELECT state FROM jobs WHERE id=?", (int(job_id),)).fetchone()
            if row is None:
                conn.execute("ROLLBACK")
                raise ConfigError(f"no job {job_id}")
            state = row[0]
            if state == "queued":
                conn.execute("UPDATE jobs SET state='cancelled', finished=? WHERE id=?",
                             (time.time(), job_id))
                state = "cancelled"
            elif state == "running":
                conn.execute("UPDATE jobs SET cancel=1 WHERE id=?", (job_id,))
            conn.execute("COMMIT")
            return state

    def retry(self, job_id: int) -> None:
        with closing(self._connect()) as conn:
            cur = conn.execute(
                "UPDATE jobs SET state='queued', cancel=0, error=NULL, finished=NULL, progress=NULL"
                " WHERE id=? AND state IN ('failed', 'cancelled')", (int(job_id),))
            if cur.rowcount == 0:
                raise ConfigError(f"job {job_id} is not failed or cancelled: nothing to retry")

    def active(self, project: str) -> list[Job]:
        return [j for j in self.list(project) if j.state in ("queued", "running")]

    # ------------------------------------------------------------------ the worker's side
    def requeue_orphans(self) -> int:
        """Jobs left 'running' by a worker that died: queued again (every stage resumes)."""
        with closing(self._connect()) as conn:
            rows = conn.execute("SELECT id, pid FROM jobs WHERE state='running'").fetchall()
            dead = [jid for jid, pid in rows if not _alive(pid) or pid == os.getpid()]
            for jid in dead:
                conn.execute("UPDATE jobs SET state='queued', pid=NULL WHERE id=?", (jid,))
            return len(dead)

    def claim(self) -> Job | None:
        """The oldest queued job, now running under this process; None when there is none."""
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute("SELECT id FROM jobs WHERE state='queued' ORDER BY id LIMIT 1").fetchone()
            if row is None:
                conn.execute("ROLLBACK")
                return None
            conn.execute("UPDATE jobs SET state='running', pid=?, started=COALESCE(started, ?),"
                         " attempts=attempts+1 WHERE id=?", (os.getpid(), time.time(), row[0]))
            conn.execute("COMMIT")
        return self.get(row[0])

    def set_progress(self, job_id: int, event: dict[str, Any]) -> None:
        with closing(self._connect()) as conn:
            conn.execute("UPDATE jobs SET progress=? WHERE id=?", (json.dumps(event), int(job_id)))

    def cancel_requested(self, job_id: int) -> bool:
        with closing(self._connect()) as conn:
            row = conn.execute("SELECT cancel FROM jobs WHERE id=?", (int(job_id),)).fetchone()
        return bool(row and row[0])

    def finish(self, job_id: int, state: str, error: str | None = None,
               result: dict[str, Any] | None = None) -> None:
        if state not in STATES:
            raise ValueError(state)
        finished = time.time() if state in FINISHED else None
        with closing(self._connect()) as conn:
            conn.execute("UPDATE jobs SET state=?, error=?, result=?, finished=?, pid=NULL"
                         " WHERE id=?", (state, error, json.dumps(result) if result else None,
                                         finished, int(job_id)))
