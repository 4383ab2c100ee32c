"""The worker process: claims queued jobs one at a time and runs them.

``python -m swapface.project.worker --workspace DIR`` (``swapface ui`` starts it). It owns
its process like any driver: SIGTERM/SIGINT stop the running job at its next safe point (the
stage saves what it finished) and put it back in the queue, so the next worker resumes it;
a cancel asked through the queue ends it as ``cancelled``. Progress events go to the queue
(for the pages) and, one line every few seconds, to the job's log.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from swapface.core.errors import Cancelled, SwapfaceError
from swapface.core.progress import CancelToken, Progress, ProgressEvent, event_line
from swapface.project.jobs import Job, JobQueue
from swapface.project.project import open_project

log = logging.getLogger(__name__)
SHUTDOWN = "shutdown"
_PUBLISH_EVERY = 0.5  # seconds between progress rows written to the queue
_LOG_EVERY = 5.0  # seconds between progress lines in the job's log
PREVIEW_EVERY = 25  # iterations between training previews the page refreshes (~0.1 s each)


class _QueueProgress(Progress):
    """Progress events → the job's row (throttled) and its log file."""

    def __init__(self, queue: JobQueue, job_id: int, log_stream: Any) -> None:
        super().__init__()
        self.queue, self.job_id, self.log = queue, job_id, log_stream
        self._last = self._logged = 0.0

    def emit(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        if event.state == "end" or (event.state == "update" and now - self._logged >= _LOG_EVERY):
            self._logged = now
            print(event_line(event), file=self.log, flush=True)
        if event.state == "update" and now - self._last < _PUBLISH_EVERY:
            return
        self._last = now
        info = {k: v for k, v in event.info.items() if isinstance(v, int | float | str)}
        self.queue.set_progress(self.job_id, {
            "task": event.task, "state": event.state, "done": event.done, "total": event.total,
            "unit": event.unit, "rate": event.rate, "elapsed": event.elapsed, "eta": event.eta,
            "fraction": event.fraction, "info": info, "at": time.time()})


def run_job(workspace: Path, job: Job, progress: Progress, cancel: CancelToken) -> dict[str, Any]:
    """Run one job's stage; its small result for the queue."""
    project = open_project(workspace, job.project)
    p = job.params
    if job.kind == "extract":
        person = p.get("person")
        persons = [str(person)] if person else None
        return {"faces": project.preprocess(progress, cancel, persons=persons,
                                            size=int(p.get("size", 256)))}
    if job.kind == "train":
        return project.train(progress, cancel, model=str(p.get("model", "lightweight")),
                             minutes=float(p.get("minutes", 5.0)),
                             iterations=int(p.get("iterations", 100_000)),
                             batch_size=int(p.get("batch_size", 16)),
                             options=[str(o) for o in p.get("model_option", [])],
                             preview_every=PREVIEW_EVERY)
    if job.kind == "convert":
        out = project.convert(str(p["video"]), progress, cancel,
                              face_filter=bool(p.get("face_filter", False)),
                              photos=bool(p.get("photos", False)), swap=dict(p.get("swap", {})))
        return {"output": str(out.relative_to(project.dir))}
    if job.kind == "evaluate":
        from swapface.project.stages import evaluate_output

        summary = evaluate_output(project, str(p["video"]), progress)
        return {"report": summary["report"]}
    raise SwapfaceError(f"unknown job kind {job.kind!r}")


def _watch_cancel(queue: JobQueue, job_id: int, token: CancelToken, done: threading.Event,
                  stop: CancelToken) -> None:
    """Turn a shutdown of the worker, or a cancel asked through the queue, into the job's."""
    while not done.wait(0.25):
        if stop.cancelled:
            token.cancel(SHUTDOWN)
            return
        if queue.cancel_requested(job_id):
            token.cancel("cancelled by user")
            return


def work_one(queue: JobQueue, job: Job, stop: CancelToken) -> str:
    """Run ``job`` to an end state (or back to queued when ``stop`` is cancelled); that state."""
    token = CancelToken()
    with open(queue.log_path(job.id), "a", encoding="utf-8") as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logging.getLogger("swapface").addHandler(handler)
        print(f"== job {job.id}: {job.kind} {job.project} {job.params} (attempt {job.attempts})",
              file=stream, flush=True)
        done = threading.Event()
        watcher = threading.Thread(target=_watch_cancel, args=(queue, job.id, token, done, stop),
                                   daemon=True, name=f"job-{job.id}-cancel")
        watcher.start()
        began = time.perf_counter()
        try:
            result = run_job(queue.workspace, job, _QueueProgress(queue, job.id, stream), token)
            state, error = "done", None
        except Cancelled:
            result = None
            if token.reason == SHUTDOWN:
                state, error = "queued", None  # resumed by the next worker
            else:
                state, error = "cancelled", token.reason
        except SwapfaceError as exc:
            result, state, error = None, "failed", str(exc)
        except Exception as exc:  # a bug: the job fails with the reason, the worker goes on
            traceback.print_exc(file=stream)
            result, state, error = None, "failed", f"{type(exc).__name__}: {exc}"
        finally:
            done.set()
            logging.getLogger("swapface").removeHandler(handler)
        print(f"== job {job.id}: {state} in {time.perf_counter() - began:.1f} s"
              + (f": {error}" if error else ""), file=stream, flush=True)
    queue.finish(job.id, state, error, result)
    return state


def serve(workspace: Path, stop: CancelToken, once: bool = False, poll: float = 0.5) -> int:
    """Run jobs until ``stop`` is cancelled (or, with ``once``, the queue is empty); jobs run."""
    queue = JobQueue(workspace)
    resumed = queue.requeue_orphans()
    if resumed:
        log.warning("%d interrupted job(s) queued again", resumed)
    ran = 0
    while not stop.cancelled:
        job = queue.claim()
        if job is None:
            if once:
                break
            stop.wait(poll)
            continue
        work_one(queue, job, stop)
        ran += 1
    return ran


def main(argv: list[str] | None = None) -> int:
    from swapface.core.runtime import cancel_on_signals, configure_process

    configure_process()
    parser = argparse.ArgumentParser(prog="swapface-worker", description=__doc__)
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--once", action="store_true", help="exit when the queue is empty")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="worker: %(levelname)s: %(message)s")
    stop = CancelToken()
    with cancel_on_signals(stop):
        serve(args.workspace, stop, once=args.once)
    return 0


if __name__ == "__main__":
    sys.exit(main())
