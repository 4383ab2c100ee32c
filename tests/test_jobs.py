"""The job queue and its worker: states, cancel, retry, and a server killed mid-extract."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import httpx
import pytest

from swapface.align.store import AlignmentsStore
from swapface.core.errors import ConfigError
from swapface.core.progress import CancelToken
from swapface.project.jobs import JobQueue
from swapface.project.project import Project
from swapface.project.worker import serve
from tests.extract_helpers import cut_clip
from tests.ui_helpers import start_ui, wait_for

KILL_FRAMES = 80


def test_queue_states_cancel_and_retry(tmp_path: Path):
    q = JobQueue(tmp_path)
    first = q.submit("extract", "demo", {"person": "alice"})
    second = q.submit("train", "demo", {"minutes": 1})
    with pytest.raises(ConfigError):
        q.submit("format-disk", "demo")
    assert q.cancel(second) == "cancelled"  # queued: at once
    claimed = q.claim()
    assert claimed is not None and claimed.id == first and claimed.state == "running"
    assert q.claim() is None  # the cancelled one is not run
    assert q.cancel(first) == "running" and q.cancel_requested(first)  # asked; the job stops itself
    q.finish(first, "failed", "boom")
    q.retry(first)
    job = q.get(first)
    assert job is not None and job.state == "queued" and job.error is None and not job.cancel
    with pytest.raises(ConfigError):
        q.retry(first)  # only failed / cancelled jobs
    # A worker that died leaves 'running' behind: the next one queues it again.
    q.claim()
    with q._connect() as conn:
        conn.execute("UPDATE jobs SET pid=999999999 WHERE id=?", (first,))
    assert q.requeue_orphans() == 1 and q.get(first).state == "queued"


def test_the_worker_runs_a_job_and_a_user_cancel_ends_it(data_dir: Path, tmp_path: Path):
    ws = tmp_path / "ws"
    p = Project.create(ws, "demo", "alice", "bob")
    p.add("alice", data_dir / "stills" / "obama.jpg")
    p.add("bob", data_dir / "video" / "woman_b.mp4")
    q = JobQueue(ws)
    done = q.submit("extract", "demo", {"person": "alice", "size": 64})
    assert serve(ws, CancelToken(), once=True) == 1
    job = q.get(done)
    assert job.state == "done" and job.result == {"faces": {"alice/obama.jpg": 1}}
    assert job.progress["task"] == "extract" and job.progress["state"] == "end"
    assert "== job" in q.log_path(done).read_text()

    long = q.submit("extract", "demo", {"person": "bob", "size": 64})
    threading.Timer(4.0, q.cancel, args=(long,)).start()
    serve(ws, CancelToken(), once=True)
    job = q.get(long)
    assert job.state == "cancelled" and job.error == "cancelled by user"
    assert job.progress["done"] < 354


def _store_state(store: Path) -> tuple[list[int], list[tuple[int, int, str | None]]]:
    with AlignmentsStore(store, readonly=True) as db:
        frames = sorted(db.frame_indices())
        faces = sorted((r.frame_index, r.face_index, r.file) for r in db.face_refs())
    return frames, faces


def test_a_server_killed_mid_extract_resumes_the_job_to_a_clean_result(data_dir: Path, tmp_path: Path):
    clip = cut_clip(data_dir / "video" / "woman_a.mp4", tmp_path / "clip.mp4", KILL_FRAMES)
    ws = tmp_path / "ws"
    Project.create(ws, "demo", "alice", "bob").add("alice", clip)
    proc, url = start_ui(ws)
    csrf = {"X-Swapface-CSRF": "1"}
    try:
        job = httpx.post(f"{url}/api/projects/demo/jobs", headers=csrf,
                         json={"kind": "extract", "params": {"person": "alice", "size": 64}}).json()
        seen = wait_for(lambda: (httpx.get(f"{url}/api/jobs/{job['id']}").json().get("progress") or {}
                              ).get("done", 0) >= 20, 120, "extract progress")
        assert seen
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # the server alone; its worker must notice
        proc.wait()
    q = JobQueue(ws)
    state = wait_for(lambda: q.get(job["id"]).state == "queued" and q.get(job["id"]), 60,
                  "the orphaned worker to hand the job back")
    assert state.progress["done"] < KILL_FRAMES  # it really was stopped part-way
    store = Project.open(ws / "demo").store_path("alice", "clip.mp4")
    partial = len(_store_state(store)[0])
    assert 0 < partial < KILL_FRAMES

    proc, url = start_ui(ws)
    try:
        final = wait_for(lambda: (j := httpx.get(f"{url}/api/jobs/{job['id']}").json())["state"]
                      in ("done", "failed") and j, 240, "the resumed job")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert final["state"] == "done" and final["attempts"] == 2

    clean = Project.create(tmp_path / "clean", "demo", "alice", "bob")
    clean.add("alice", clip)
    clean.preprocess(persons=["alice"], size=64)
    assert _store_state(store) == _store_state(clean.store_path("alice", "clip.mp4"))
    names = {f.name for f in Project.open(ws / "demo").faces_dir("alice").glob("*.png")}
    assert names == {f.name for f in clean.faces_dir("alice").glob("*.png")}
    assert len(names) == KILL_FRAMES
