"""SIGKILL at random moments: each command is killed again and again, resumed by running the
same command line, and finally let finish; its result must equal an uninterrupted run's.

After every kill the state on disk is checked (a store that opens and holds no duplicate
rows, a checkpoint that loads and never goes back, an output that is absent or whole, a
face folder that still holds every face exactly once).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.robustness_common import Workspace, cli, popen
from swapface.core.images import is_image_path


@dataclass
class Chain:
    name: str
    args: list
    reset: Callable[[], None]
    after_kill: Callable[[], str | None]
    result: Callable[[], Any]
    final_check: Callable[[], str | None] = lambda: None


@dataclass
class ChainOutcome:
    name: str
    tried: int = 0
    survived: int = 0
    finished_early: int = 0
    lost: int = 0
    tracebacks: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _kill(proc) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_chain(chain: Chain, kills: int, rng: random.Random, cwd: Path) -> ChainOutcome:
    out = ChainOutcome(chain.name)
    start = time.perf_counter()
    chain.reset()
    ref = cli(chain.args, cwd, timeout=600)
    if ref.rc != 0:
        out.problems.append(f"uninterrupted run failed: {ref.err.strip()[-300:]}")
        out.seconds = time.perf_counter() - start
        return out
    reference, span = chain.result(), ref.seconds
    chain.reset()
    attempts, fresh = 0, True
    while out.tried < kills and attempts < kills * 6:
        attempts += 1
        proc = popen(chain.args, cwd)
        began = time.perf_counter()
        deadline = began + rng.uniform(min(0.3, span / 3), max(0.2, span))
        while proc.poll() is None and time.perf_counter() < deadline:
            time.sleep(0.02)
        if proc.poll() is not None:  # it finished first: check it, start over fresh
            if fresh:  # aim the next kills inside the time a whole run takes now
                span = min(span, 0.9 * (time.perf_counter() - began))
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            out.tracebacks += "Traceback (most recent call last)" in err
            out.finished_early += 1
            if proc.returncode == 0 and chain.result() != reference:
                out.lost += 1
                out.problems.append("a resumed run that finished differs from the clean one")
            chain.reset()
            fresh = True
            continue
        _kill(proc)
        fresh = False
        out.tried += 1
        problem = chain.after_kill()
        if problem:
            out.problems.append(f"after kill {out.tried}: {problem}")
        else:
            out.survived += 1
    final = cli(chain.args, cwd, timeout=600)
    out.tracebacks += final.traceback
    if final.rc != 0:
        out.lost += 1
        out.problems.append(f"resume after the last kill failed: {final.err.strip()[-300:]}")
    elif chain.result() != reference:
        out.lost += 1
        out.problems.append("the resumed result differs from the uninterrupted run")
    else:
        problem = chain.final_check()
        if problem:
            out.lost += 1
            out.problems.append(problem)
    if out.lost:
        out.survived = 0
    out.seconds = time.perf_counter() - start
    return out


# ------------------------------------------------------------------ what a run leaves
def _rm(*paths: Path) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _store_state(db: Path) -> tuple | None:
    if not db.exists():
        return None
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        frames = [r[0] for r in conn.execute("SELECT idx FROM frames ORDER BY idx")]
        faces = sorted(conn.execute(
            "SELECT fr.idx, f.face_index, f.file FROM faces f JOIN frames fr ON fr.id=f.frame_id"))
    return frames, faces


def _store_problem(db: Path) -> str | None:
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                return "store fails integrity_check"
            dup = conn.execute("SELECT COUNT(*) FROM (SELECT frame_id, face_index FROM faces"
                               " GROUP BY frame_id, face_index HAVING COUNT(*) > 1)").fetchone()[0]
    except sqlite3.Error as exc:
        return f"store unreadable: {exc}"
    return f"{dup} duplicated faces" if dup else None


def _hidden_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if p.is_file() and (
        ".part" in p.name or p.name.startswith((".sorttmp_", ".rename-"))))


def _video_result(path: Path) -> tuple | None:
    from swapface.media.video import probe_video

    if not path.exists():
        return None
    info = probe_video(path)
    import av

    with av.open(str(path)) as container:
        tags = dict(container.metadata)
    return info.frame_count, info.has_audio, "synthetic" in json.dumps(tags).lower()


def _video_problem(path: Path) -> str | None:
    if not path.exists():
        return None
    try:
        _video_result(path)
    except Exception as exc:
        return f"output exists but is not a readable video: {exc}"
    return None


def _faces_on_disk(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and is_image_path(p) and "masks" not in p.parts
                  and not p.name.startswith("."))


def _contents(folder: Path) -> Counter:
    return Counter(hashlib.blake2b(p.read_bytes(), digest_size=8).hexdigest()
                   for p in folder.iterdir() if p.is_file() and is_image_path(p))


# ------------------------------------------------------------------ the chains
def extract_chain(ws: Workspace, work: Path) -> Chain:
    faces, db = work / "faces", work / "a.db"
    args = ["extract", ws.clip_b, "--faces", faces, "--alignments", db, "--size", "64",
            "--workers", "1", "--skip-existing", "-q"]
    seen = {"frames": 0}

    def reset() -> None:
        _rm(faces, db, Path(f"{db}-wal"), Path(f"{db}-shm"))
        seen["frames"] = 0

    def after_kill() -> str | None:
        problem = _store_problem(db)
        state = _store_state(db)
        frames = len(state[0]) if state else 0
        if frames < seen["frames"]:
            return f"committed frames went from {seen['frames']} to {frames}"
        seen["frames"] = frames
        return problem

    def result() -> Any:
        state = _store_state(db)
        missing = [f for _, _, f in (state[1] if state else []) if f and not (faces / f).is_file()]
        return state, _faces_on_disk(faces), missing

    return Chain("extract", args, reset, after_kill, result)


def train_chain(ws: Workspace, work: Path) -> Chain:
    model = work / "model"
    args = ["train", "-A", ws.faces_a, "-B", ws.faces_b, "-m", model, "--model", "lightweight",
            "--iterations", "40", "--batch-size", "4", "--save-interval", "5",
            "--cpu-conv", "native", "--no-tensorboard", "-q"]
    seen = {"iteration": 0}

    def loaded() -> tuple[int, list] | None:
        import torch

        from swapface.models.checkpoint import load_checkpoint

        checkpoint = load_checkpoint(model)
        if checkpoint is None:
            return None
        finite = all(bool(torch.isfinite(t).all()) for t in checkpoint.model.values())
        shapes = sorted((k, tuple(t.shape)) for k, t in checkpoint.model.items())
        return int(checkpoint.state["iteration"]), [finite, shapes]

    def reset() -> None:
        _rm(model)
        seen["iteration"] = 0

    def after_kill() -> str | None:
        try:
            got = loaded()
        except Exception as exc:
            return f"checkpoint does not load: {exc}"
        iteration = got[0] if got else 0
        if iteration < seen["iteration"]:
            return f"saved iteration went back from {seen['iteration']} to {iteration}"
        seen["iteration"] = iteration
        return None

    return Chain("train", args, reset, after_kill, loaded,
                 lambda: "; ".join(_hidden_leftovers(model)) or None)


def convert_chain(ws: Workspace, work: Path) -> Chain:
    out = work / "out.mp4"
    args = ["convert", ws.clip_a, "-m", ws.model, "--alignments", ws.store_a, "-o", out,
            "--overwrite", "-q"]
    return Chain("convert", args, lambda: _rm(out), lambda: _video_problem(out),
                 lambda: _video_result(out),
                 lambda: "; ".join(_hidden_leftovers(work)) or None)


def sort_chain(ws: Workspace, work: Path) -> Chain:
    faces = work / "faces"
    args = ["sort", faces, "--by", "blur", "--no-cache", "-q"]
    original: dict[str, Counter] = {}

    def reset() -> None:
        _rm(faces)
        faces.mkdir(parents=True)
        for copy in range(6):  # 6 × the clip's faces: the rename phase is long enough to hit
            for path in sorted(ws.faces_b.glob("*.png")):
                shutil.copy(path, faces / f"c{copy}_{path.name}")
        original["contents"] = _contents(faces)
        original["names"] = Counter(p.name for p in faces.iterdir())

    def after_kill() -> str | None:
        now = _contents(faces)
        return None if now == original["contents"] else "faces lost or duplicated in the folder"

    def result() -> Any:
        return sorted((p.name, hashlib.blake2b(p.read_bytes(), digest_size=8).hexdigest())
                      for p in faces.iterdir() if p.is_file() and is_image_path(p))

    def undo_restores() -> str | None:
        if _hidden_leftovers(faces):
            return f"temp files left: {_hidden_leftovers(faces)[:3]}"
        # Every sort that renamed something, newest first, as a user would undo them.
        logs = sorted(faces.glob("sort_log_*.json"), key=lambda p: p.stat().st_mtime_ns)
        for log in reversed(logs):
            payload = json.loads(log.read_text())
            if payload.get("state") != "done" or not payload.get("renames"):
                continue
            ran = cli(["sort", "--undo", log], work)
            if ran.rc != 0:
                return f"undo of {log.name} failed: {ran.err.strip()[-200:]}"
        names = Counter(p.name for p in faces.iterdir() if is_image_path(p))
        want = Counter(n for n in original["names"] if is_image_path(Path(n)))
        return None if names == want else "undo did not restore the original names"

    return Chain("sort", args, reset, after_kill, result, undo_restores)


def run_chain_command(ws: Workspace, work: Path) -> Chain:
    out, project = work / "out.mp4", work / "project"
    args = ["run", ws.clip_a, ws.clip_b, "-o", out, "--project", project, "--size", "64",
            "--iterations", "20", "--minutes", "2", "--batch-size", "4", "-q"]

    def after_kill() -> str | None:
        pj = project / "project.json"
        if pj.exists():
            try:
                json.loads(pj.read_text())
            except ValueError:
                return "project.json is damaged"
        stores = sorted(project.glob("persons/*/alignments/*.db"))
        return _video_problem(out) or next(filter(None, map(_store_problem, stores)), None)

    def result() -> Any:
        stages = json.loads((project / "project.json").read_text())["run"]["stages"]
        return _video_result(out), sorted(k for k, v in stages.items() if v.get("done"))

    return Chain("run", args, lambda: _rm(out, project), after_kill, result,
                 lambda: "; ".join(_hidden_leftovers(work)) or None)


CHAINS = {"extract": extract_chain, "train": train_chain, "convert": convert_chain,
          "sort": sort_chain, "run": run_chain_command}
