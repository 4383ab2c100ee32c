"""``swapface extract`` as a Python API: paths, store, worker pool, progress, summary.

Progress goes to the :class:`~swapface.core.progress.Progress` given, and a
:class:`~swapface.core.progress.CancelToken` stops the run between chunks: every finished
chunk is in the store, so ``--skip-existing`` resumes exactly there.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import logging
import multiprocessing as mp
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from swapface import __version__
from swapface.align.store import AlignmentsStore, backup_store
from swapface.core.config import to_dict
from swapface.core.errors import InputError
from swapface.core.fileio import sweep_partials
from swapface.core.progress import NEVER, SILENT, CancelToken, Progress
from swapface.core.runtime import memory_budget
from swapface.extract.config import DEFAULT_FACES, ExtractConfig
from swapface.extract.processor import (
    FrameProcessor,
    FrameResult,
    ProcessorSetup,
    init_worker,
    process_chunk,
)
from swapface.extract.resume import STALE_DIR, check_resume, run_definition, sweep_stale
from swapface.faces import FaceFinder, IdentityFilter, shared_encoder
from swapface.media.source import Frame, FrameSource, open_source, readonly_output_dir

log = logging.getLogger(__name__)

CHUNK = 24  # frames per worker task: long enough for tracking to pay off, short for progress
IN_FLIGHT_CEILING = 2 * 1024**3  # decoded frames waiting for or inside workers, at most
IN_FLIGHT_FRACTION = 0.25  # ... and at most this share of the available RAM


def chunk_size(frame_bytes: int, workers: int) -> int:
    """Frames per task such that the 2 tasks per worker in flight fit the memory budget
    (24 frames of 480p, fewer of 4K on many cores; never fewer than one)."""
    budget = memory_budget(IN_FLIGHT_FRACTION, IN_FLIGHT_CEILING)
    return max(1, min(CHUNK, budget // max(1, 2 * workers * frame_bytes)))


@dataclass
class ExtractSummary:
    input: str
    export_dir: str
    alignments: str
    frames_total: int = 0
    frames_processed: int = 0
    frames_skipped: int = 0  # already in the store (--skip-existing)
    frames_without_face: int = 0
    faces_written: int = 0
    faces_filtered: int = 0
    faces_blurry: int = 0
    faces_rotated: int = 0
    faces_stale: int = 0  # left by an earlier extract of this input, moved to stale/
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames_processed / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        out = [
            f"frames: {self.frames_processed} processed, {self.frames_skipped} skipped (existing), "
            f"{self.frames_without_face} without a face",
            f"faces:  {self.faces_written} written to {self.export_dir}"
            + (f", {self.faces_filtered} filtered out" if self.faces_filtered else "")
            + (f", {self.faces_blurry} in blurry/" if self.faces_blurry else "")
            + (f", {self.faces_rotated} found rotated" if self.faces_rotated else "")
            + (f", {self.faces_stale} old ones moved to {STALE_DIR}/" if self.faces_stale else ""),
            f"store:  {self.alignments}",
            f"time:   {self.seconds:.1f} s ({self.fps:.1f} frames/s)",
        ]
        if self.frames_processed and not self.faces_written:
            out.append("no faces were found in the input")
        out += [f"warning: {p}" for p in self.problems[:10]]
        if len(self.problems) > 10:
            out.append(f"... and {len(self.problems) - 10} more problems")
        return out


def resolve_outputs(cfg: ExtractConfig, source: FrameSource) -> tuple[Path, Path]:
    """(face folder, alignments store). Falls back to the working directory when the
    input lives somewhere read-only (a shared dataset, a mounted card)."""
    base = source.output_base
    export = Path(cfg.faces.replace("$path", str(base)))
    readonly = not source.outputs_writable()
    if readonly and cfg.faces == DEFAULT_FACES:
        export = readonly_output_dir(base) / "face_images"
    store = cfg.alignments if cfg.alignments is not None else source.default_store()
    if readonly and (cfg.alignments is None or cfg.faces == DEFAULT_FACES):
        log.warning("input folder is read-only; writing outputs under %s", Path.cwd())
    return export, store


def identity_filter(cfg: ExtractConfig) -> IdentityFilter:
    """Descriptors of the --filter / --nfilter reference images (largest face of each)."""
    if not (cfg.filter or cfg.nfilter):
        return IdentityFilter.none()
    finder = FaceFinder.create(cfg.finder_options(track=False))
    return IdentityFilter.from_references(cfg.filter, cfg.nfilter, finder, shared_encoder(),
                                          cfg.ref_threshold)


def _chunks(frames: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    chunk: list[Frame] = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _set_aside(store: Path) -> Path:
    """Back the store up (SQLite's backup API: commits still in the WAL included), then
    remove it so the extract starts a fresh one."""
    backup = backup_store(store)
    for part in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
        part.unlink(missing_ok=True)
    return backup


def run_extract(cfg: ExtractConfig, progress: Progress = SILENT,
                cancel: CancelToken = NEVER) -> ExtractSummary:
    """Extract ``cfg.input``; raises :class:`~swapface.core.errors.Cancelled` when cancelled
    (what was finished is in the store)."""
    source = open_source(cfg.input)
    if source.count is None:
        raise InputError(f"{cfg.input} is a live stream; extract reads files and folders")
    export_dir, store_path = resolve_outputs(cfg, source)
    export_dir.mkdir(parents=True, exist_ok=True)
    for folder in (export_dir, export_dir / "masks", export_dir / "blurry"):
        sweep_partials(folder)  # face files a killed extract left half-written
    summary = ExtractSummary(str(cfg.input), str(export_dir), str(store_path))
    summary.frames_total = (source.count + cfg.every_n - 1) // cfg.every_n

    if store_path.exists() and not cfg.skip_existing:
        backup = _set_aside(store_path)
        log.warning("existing alignments store moved to %s (use --skip-existing to resume)", backup)
    flt = identity_filter(cfg)
    # Tracking pays on the CPU; on a GPU a batched detector is faster on whole frames.
    on_cpu = cfg.finder_options(False).device == "cpu"
    track = source.sequential and on_cpu if cfg.track is None else cfg.track
    setup = ProcessorSetup(cfg, export_dir, str(cfg.input), str(store_path.resolve()), track,
                           flt if flt.active else None)

    definition = run_definition(cfg, export_dir)
    with AlignmentsStore(store_path) as store:
        check_resume(store, source, definition, cfg.skip_existing)
        with store.transaction():
            store.set_meta("source", str(cfg.input.resolve()))
            store.set_meta("source_kind", source.kind)
            store.set_meta("source_frames", source.count)
            store.set_meta("export_dir", str(export_dir.resolve()))
            store.set_meta("extract_config", to_dict(cfg))
            store.set_meta("run_definition", definition)
            store.set_meta("swapface_version", __version__)
        done = store.frame_indices() if cfg.skip_existing else set()
        wanted = {i for i in done if i % cfg.every_n == 0}
        summary.frames_skipped = len(wanted)
        start = time.perf_counter()
        task = progress.task("extract", max(0, summary.frames_total - len(wanted)), "frame")
        try:
            for results in _run_chunks(setup, source.frames(cfg.every_n, done), cfg.workers):
                with store.transaction():  # a chunk's frames land together, or not at all
                    for res in results:
                        store.put_frame(res.record)
                for res in results:
                    summary.frames_processed += 1
                    summary.faces_written += len(res.record.faces)
                    summary.frames_without_face += not res.record.faces
                    summary.faces_filtered += res.filtered
                    summary.faces_blurry += res.blurry
                    summary.faces_rotated += res.rotated
                task.advance(len(results), faces=summary.faces_written)
                cancel.check()
            summary.faces_stale = sweep_stale(store, export_dir)
        finally:
            task.close()
            summary.seconds = time.perf_counter() - start
            summary.problems = [str(p) for p in source.problems]
            summary.problems += [f"not an image, ignored: {p.name}" for p in source.skipped_files]
    return summary


def _workers(requested: int) -> int:
    return requested if requested > 0 else max(1, min(os.cpu_count() or 1, 8))


def _run_chunks(setup: ProcessorSetup, frames: Iterator[Frame], workers: int) -> Iterator[list[FrameResult]]:
    """Chunks of results in input order; at most 2 chunks per worker in flight (bounded memory)."""
    n = _workers(workers)
    first = next(frames, None)
    if first is None:
        return
    size = chunk_size(first.image.nbytes, n)
    frames = itertools.chain([first], frames)
    if n == 1:
        processor = FrameProcessor(setup)
        for chunk in _chunks(frames, size):
            yield processor.process(chunk)
        return
    ctx = mp.get_context("spawn")  # fork would copy torch/OpenMP state into the children
    pool = cf.ProcessPoolExecutor(n, mp_context=ctx, initializer=init_worker, initargs=(setup,))
    pending: deque[cf.Future[list[FrameResult]]] = deque()
    try:
        for chunk in _chunks(frames, size):
            pending.append(pool.submit(process_chunk, chunk))
            if len(pending) >= 2 * n:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
