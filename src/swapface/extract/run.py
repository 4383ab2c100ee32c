"""``swapface extract`` as a Python API: paths, store, worker pool, progress, summary."""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing as mp
import os
import shutil
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from swapface import __version__
from swapface.align.store import AlignmentsStore, default_store_path
from swapface.core.config import to_dict
from swapface.core.errors import InputError
from swapface.core.fileio import is_writable_dir
from swapface.core.images import ImageReadError, read_image
from swapface.core.progress import progress
from swapface.extract.config import DEFAULT_EXPORT, ExtractConfig
from swapface.extract.identity import IdentityEncoder, IdentityFilter
from swapface.extract.processor import (
    FrameProcessor,
    FrameResult,
    ProcessorSetup,
    init_worker,
    process_chunk,
)
from swapface.media.source import Frame, FrameSource, open_source

log = logging.getLogger(__name__)

CHUNK = 24  # frames per worker task: long enough for tracking to pay off, short for progress


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
            + (f", {self.faces_rotated} found rotated" if self.faces_rotated else ""),
            f"store:  {self.alignments}",
            f"time:   {self.seconds:.1f} s ({self.fps:.1f} frames/s)",
        ]
        if self.frames_processed and not self.faces_written:
            out.append("no faces were found in the input")
        out += [f"warning: {p}" for p in self.problems[:10]]
        if len(self.problems) > 10:
            out.append(f"... and {len(self.problems) - 10} more problems")
        return out


def _input_base(source: FrameSource, given: Path) -> Path:
    """$path: the input without its video extension (a folder stays itself)."""
    return given.with_suffix("") if source.is_video else source.path


def resolve_outputs(cfg: ExtractConfig, source: FrameSource) -> tuple[Path, Path]:
    """(face folder, alignments store). Falls back to the working directory when the
    input lives somewhere read-only (a shared dataset, a mounted card)."""
    base = _input_base(source, cfg.input)
    store = default_store_path(cfg.input if source.is_video else source.path, source.is_video)
    export = Path(cfg.export_path.replace("$path", str(base)))
    readonly = not is_writable_dir(base.parent if source.is_video else base)
    if readonly and cfg.export_path == DEFAULT_EXPORT:
        export = Path.cwd() / base.name / "face_images"
    if cfg.alignments is not None:
        store = cfg.alignments
    if readonly and (cfg.alignments is None or cfg.export_path == DEFAULT_EXPORT):
        log.warning("input folder is read-only; writing outputs under %s", Path.cwd())
    return export, store


def identity_filter(cfg: ExtractConfig) -> IdentityFilter:
    """Descriptors of the --filter / --nfilter reference images (largest face of each)."""
    if not (cfg.filter or cfg.nfilter):
        return IdentityFilter(np.zeros((0, 128), np.float32), np.zeros((0, 128), np.float32))
    proc = FrameProcessor(ProcessorSetup(cfg, Path("."), "", "", track=False, device="cpu"))
    encoder = proc.encoder or IdentityEncoder()

    def describe(paths: list[Path]) -> np.ndarray:
        out = [np.zeros((0, 128), np.float32)]
        for path in paths:
            try:
                image = read_image(path)
            except ImageReadError as exc:
                raise InputError(f"reference image: {exc}") from exc
            faces = proc.finder.find(image)
            if not faces:
                raise InputError(f"no face found in reference image {path}")
            biggest = max(faces, key=lambda f: f.detection.width * f.detection.height)
            out.append(encoder.encode(image, biggest.landmarks)[None])
        return np.concatenate(out)

    return IdentityFilter(describe(cfg.filter), describe(cfg.nfilter), cfg.ref_threshold)


def _device(cfg: ExtractConfig) -> str:
    if cfg.cpu or cfg.detector not in ("mtcnn",):
        return "cpu"
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def _chunks(frames: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    chunk: list[Frame] = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _backup(store: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = store.with_name(f"{store.stem}.{stamp}.bak{store.suffix}")
    with AlignmentsStore(store):  # checkpoint the WAL so the copy is complete
        pass
    shutil.move(store, backup)
    return backup


def run_extract(cfg: ExtractConfig, show_progress: bool = True) -> ExtractSummary:
    source = open_source(cfg.input)
    export_dir, store_path = resolve_outputs(cfg, source)
    export_dir.mkdir(parents=True, exist_ok=True)
    summary = ExtractSummary(str(cfg.input), str(export_dir), str(store_path))
    summary.frames_total = (source.count + cfg.every_n - 1) // cfg.every_n

    if store_path.exists() and not cfg.skip_existing:
        backup = _backup(store_path)
        log.warning("existing alignments store moved to %s (use --skip-existing to resume)", backup)
    flt = identity_filter(cfg)
    device = _device(cfg)
    # Tracking pays on the CPU; on a GPU a batched detector is faster on whole frames.
    track = source.is_video and device == "cpu" if cfg.track is None else cfg.track
    setup = ProcessorSetup(cfg, export_dir, str(cfg.input), str(store_path), track,
                           device, flt if flt.active else None)

    with AlignmentsStore(store_path) as store:
        _check_same_source(store, source)
        with store.transaction():
            store.set_meta("source", str(cfg.input.resolve()))
            store.set_meta("source_kind", "video" if source.is_video else "images")
            store.set_meta("source_frames", source.count)
            store.set_meta("export_dir", str(export_dir.resolve()))
            store.set_meta("extract_config", to_dict(cfg))
            store.set_meta("swapface_version", __version__)
        done = store.frame_indices() if cfg.skip_existing else set()
        wanted = {i for i in done if i % cfg.every_n == 0}
        summary.frames_skipped = len(wanted)
        start = time.perf_counter()
        bar = progress(max(0, summary.frames_total - len(wanted)), "extract", unit="frame",
                       disable=not show_progress)
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
                bar.update(len(results))
                bar.set_postfix(faces=summary.faces_written, refresh=False)
        finally:
            bar.close()
            summary.seconds = time.perf_counter() - start
            summary.problems = [str(p) for p in source.problems]
            summary.problems += [f"not an image, ignored: {p.name}" for p in source.skipped_files]
    return summary


def _check_same_source(store: AlignmentsStore, source: FrameSource) -> None:
    known = store.get_meta("source")
    if known and Path(known).name != source.path.name and store.count_frames():
        raise InputError(
            f"{store.path} belongs to {known}, not {source.path}; pass --alignments for a new store"
        )


def _workers(requested: int) -> int:
    return requested if requested > 0 else max(1, min(os.cpu_count() or 1, 8))


def _run_chunks(setup: ProcessorSetup, frames: Iterator[Frame], workers: int) -> Iterator[list[FrameResult]]:
    """Chunks of results in input order; at most 2 chunks per worker in flight (bounded memory)."""
    n = _workers(workers)
    if n == 1:
        processor = FrameProcessor(setup)
        for chunk in _chunks(frames, CHUNK):
            yield processor.process(chunk)
        return
    ctx = mp.get_context("spawn")  # fork would copy torch/OpenMP state into the children
    pool = cf.ProcessPoolExecutor(n, mp_context=ctx, initializer=init_worker, initargs=(setup, True))
    pending: deque[cf.Future[list[FrameResult]]] = deque()
    try:
        for chunk in _chunks(frames, CHUNK):
            pending.append(pool.submit(process_chunk, chunk))
            if len(pending) >= 2 * n:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
