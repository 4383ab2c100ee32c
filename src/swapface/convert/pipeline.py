"""``swapface convert`` as a Python API: swap faces in every frame and write the result.

Four stages overlap on threads (FFmpeg, OpenCV and PyTorch release the GIL): frames are
decoded ahead of use, faces are cropped and batched across frames through the encoder and
the target decoder, each frame's faces are colour-matched, masked and pasted back on a
small pool, and the encoder writes finished frames in order behind them. Frames without
faces, or outside ``--frame-ranges``, pass through byte for byte.

Landmarks are smoothed along face tracks before anything is cropped (centred fit, so no
lag), which keeps the swapped face from shimmering on a still head.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from swapface.align.records import FaceRecord, FrameRecord
from swapface.align.store import AlignmentsStore, default_store_path
from swapface.align.tracks import smooth_frames
from swapface.convert.blend import paste_face
from swapface.convert.color import adjust_color
from swapface.convert.config import COMPILE_MIN_FACES, ConvertConfig
from swapface.convert.masks import refine_mask
from swapface.convert.output import check_output, open_output
from swapface.convert.selection import FaceSelector
from swapface.convert.sharpen import SHARPEN_METHODS
from swapface.convert.swapper import Swapper, crop, model_mask, model_matrix
from swapface.core.concurrency import Sink, prefetch
from swapface.core.errors import InputError
from swapface.core.memory import retain_freed_memory
from swapface.core.progress import progress
from swapface.media.source import Frame, FrameSource, open_source

log = logging.getLogger(__name__)

_AHEAD = 16  # frames in flight between stages: enough to keep every stage busy, little memory


@dataclass
class ConvertSummary:
    input: str
    output: str
    frames_in: int = 0
    frames_out: int = 0
    frames_swapped: int = 0
    faces_swapped: int = 0
    frames_not_in_store: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    smoothing: str = "off"
    compiled: bool = False
    tuned: int = 0  # conv layers running a faster CPU algorithm than PyTorch's own
    problems: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        """Frames written per second, end to end (decode → swap → blend → encode)."""
        return self.frames_out / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        out = [
            f"input:  {self.input}",
            f"output: {self.output}",
            f"frames: {self.frames_in} read, {self.frames_out} written, {self.frames_swapped} swapped",
            f"faces:  {self.faces_swapped} swapped",
            f"smooth: {self.smoothing}",
            f"time:   {self.seconds:.1f} s ({self.fps:.1f} frames/s on {self.device}"
            f"{', compiled model' if self.compiled else ''}"
            f"{f', {self.tuned} conv layers tuned' if self.tuned else ''})",
        ]
        if self.frames_not_in_store:
            out.append(f"note:   {self.frames_not_in_store} frames are not in the alignments "
                       "store and were passed through unchanged")
        out += [f"problem: {p}" for p in self.problems]
        return out


@functools.cache
def window_taper(size: int, blur: int) -> np.ndarray:
    """1 inside the model's window, falling smoothly to 0 at its border.

    The model only sees (and produces) the coverage window; a mask that reaches past it
    (``extended`` at the forehead) would otherwise end in a hard straight seam there.
    """
    width = max(2, blur, size // 16)
    return refine_mask(np.ones((size, size), np.float32), erosion=width, blur=width)


# ------------------------------------------------------------------ inputs
def _store_for(cfg: ConvertConfig, source: FrameSource) -> Path:
    """The alignments store; extracted now (defaults of ``swapface extract``) when missing."""
    path = cfg.alignments if cfg.alignments is not None else default_store_path(
        cfg.input if source.is_video else source.path, source.is_video)
    if path.is_file():
        return path
    from swapface.extract.config import ExtractConfig
    from swapface.extract.run import run_extract

    log.warning("no alignments store at %s: extracting faces first", path)
    run_extract(ExtractConfig(input=cfg.input, alignments=cfg.alignments,
                              identity=bool(cfg.filter or cfg.nfilter)))
    if not path.is_file():
        raise InputError(f"extraction did not write {path}; run swapface extract with --alignments")
    return path


def _load_records(cfg: ConvertConfig, source: FrameSource, path: Path) -> dict[int, FrameRecord]:
    with AlignmentsStore(path, readonly=True) as store:
        known = store.get_meta("source_frames")
        if known is not None and int(known) != source.count:
            raise InputError(
                f"{path} was made from {known} frames but {cfg.input} has {source.count}; "
                "pass the matching --alignments"
            )
        return {r.index: r for r in store.frames(with_masks=True)}


def _selector(cfg: ConvertConfig) -> FaceSelector:
    identity = None
    if cfg.filter or cfg.nfilter:
        from swapface.extract.config import ExtractConfig
        from swapface.extract.run import identity_filter

        identity = identity_filter(ExtractConfig(input=cfg.input, filter=cfg.filter,
                                                 nfilter=cfg.nfilter, ref_threshold=cfg.ref_threshold))
    return FaceSelector(cfg.input_aligned_dir, identity)


# ------------------------------------------------------------------ per frame
@dataclass
class _Item:
    frame: Frame
    faces: list[FaceRecord]
    crops: list[np.ndarray] = field(default_factory=list)
    outputs: list[tuple[np.ndarray, np.ndarray | None]] = field(default_factory=list)


class _Converter:
    def __init__(self, cfg: ConvertConfig, swapper: Swapper, records: dict[int, FrameRecord],
                 selector: FaceSelector, summary: ConvertSummary) -> None:
        self.cfg, self.swapper, self.records = cfg, swapper, records
        self.selector, self.summary = selector, summary
        self.sharpen = SHARPEN_METHODS.create(cfg.sharpen)
        self.taper = window_taper(swapper.output_size, cfg.blur_size)

    def prepare(self, frame: Frame) -> _Item:
        record = self.records.get(frame.index)
        if record is None:
            self.summary.frames_not_in_store += 1
            return _Item(frame, [])
        height, width = frame.image.shape[:2]
        if (record.width, record.height) != (width, height) and record.width > 0:
            raise InputError(
                f"frame {frame.index} is {width}×{height} but the alignments store has "
                f"{record.width}×{record.height}: the store was made from another video; "
                "pass the matching --alignments"
            )
        faces = list(record.faces)
        if self.selector.active and faces:
            faces = self.selector.select(frame.index, frame.image, faces)
        item = _Item(frame, faces)
        size = self.swapper.input_size
        for face in faces:
            item.crops.append(crop(frame.image, model_matrix(face, self.swapper.coverage, size), size))
        return item

    def infer(self, items: list[_Item]) -> None:
        crops = [c for item in items for c in item.crops]
        faces: list[np.ndarray] = []
        masks: list[np.ndarray | None] = []
        step = self.cfg.batch_size
        for i in range(0, len(crops), step):
            f, m = self.swapper(crops[i:i + step])
            faces.extend(f)
            masks.extend(m if m is not None else [None] * len(f))
        k = 0
        for item in items:
            n = len(item.crops)
            item.outputs = list(zip(faces[k:k + n], masks[k:k + n], strict=True))
            item.crops = []
            k += n

    def blend(self, item: _Item) -> tuple[_Item, np.ndarray]:
        cfg, image, size = self.cfg, item.frame.image, self.swapper.output_size
        for face, (new_face, predicted) in zip(item.faces, item.outputs, strict=True):
            m_out = model_matrix(face, self.swapper.coverage, size)
            old_face = crop(image, m_out, size)
            mask = model_mask(cfg.mask_type, face, self.swapper.coverage, size, predicted)
            new_face = adjust_color(cfg.color, new_face, old_face, mask)
            new_face = self.sharpen(new_face)
            mask = refine_mask(mask, cfg.erosion, cfg.blur_size, cfg.mask_threshold) * self.taper
            image = paste_face(image, new_face, mask, m_out)
        return item, image


def _finished(value: tuple[_Item, np.ndarray | None]) -> Future[tuple[_Item, np.ndarray | None]]:
    future: Future[tuple[_Item, np.ndarray | None]] = Future()
    future.set_result(value)
    return future


def _converted(conv: _Converter, frames: Iterator[Frame]) -> Iterator[tuple[_Item, np.ndarray | None]]:
    """(item, output image) in input order, ``None`` for a discarded frame.

    Model batches span frames; a run of faceless frames is handed on without waiting for
    a batch to fill, so memory stays bounded by ``_AHEAD`` frames.
    """
    cfg = conv.cfg
    pending: list[_Item] = []
    queued = 0
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="blend") as pool:
        ready: deque[Future[tuple[_Item, np.ndarray | None]]] = deque()

        def submit_pending() -> None:
            conv.infer(pending)
            for item in pending:
                ready.append(pool.submit(conv.blend, item) if item.outputs
                             else _finished((item, item.frame.image)))
            pending.clear()

        for frame in frames:
            if not cfg.in_ranges(frame.index):
                item = _Item(frame, [])
                if cfg.discard_frames:
                    submit_pending()  # keep the order of what was queued before it
                    ready.append(_finished((item, None)))
                else:
                    pending.append(item)
            else:
                pending.append(conv.prepare(frame))
                queued += len(pending[-1].crops)
            if queued >= cfg.batch_size or len(pending) >= _AHEAD:
                submit_pending()
                queued = 0
            while ready and (ready[0].done() or len(ready) > _AHEAD):
                yield ready.popleft().result()
        submit_pending()
        while ready:
            yield ready.popleft().result()


def run_convert(cfg: ConvertConfig, show_progress: bool = True) -> ConvertSummary:
    """Swap the faces of ``cfg.input`` with the model in ``cfg.model_dir``; write ``cfg.output``."""
    retain_freed_memory()  # frames and model batches reuse freed memory (no page faults)
    source = open_source(cfg.input)
    check_output(cfg)
    store_path = _store_for(cfg, source)
    records = _load_records(cfg, source, store_path)
    swapper = Swapper(cfg.model_dir, cfg.swap_model, cfg.cpu, cfg.coverage)
    summary = ConvertSummary(str(cfg.input), str(cfg.output), device=swapper.device)
    if cfg.smooth if cfg.smooth is not None else source.is_video:
        stats = smooth_frames([records[i] for i in sorted(records)], window=cfg.smooth_window)
        summary.smoothing = (f"{stats.faces} faces on {stats.tracks} tracks, mean shift "
                             f"{stats.mean_shift:.2f} px (window {cfg.smooth_window})")
    faces = sum(len(r.faces) for i, r in records.items() if cfg.in_ranges(i))
    if cfg.cpu_conv == "tuned":
        summary.tuned = sum(a != "native" for a in swapper.tune(cfg.batch_size).values())
    # Compiling pays on long jobs with PyTorch's kernels; tuned layers are faster without it
    # (woman_a, 1008 frames: 37.6 s tuned eager, 54.0 s tuned + compile).
    if cfg.compile if cfg.compile is not None else (faces >= COMPILE_MIN_FACES and not summary.tuned):
        summary.compiled = swapper.compile(cfg.batch_size)
    conv = _Converter(cfg, swapper, records, _selector(cfg), summary)
    start = time.perf_counter()
    bar = progress(source.count, "convert", unit="frame", disable=not show_progress)
    try:
        with open_output(cfg, source) as output, Sink(output.write, depth=_AHEAD, name="encode") as sink:
            frames = prefetch(source.frames(), _AHEAD, "decode")
            for item, image in _converted(conv, frames):
                summary.frames_in += 1
                bar.update(1)
                if image is None:
                    continue
                sink.put((item.frame, image))
                summary.frames_out += 1
                if item.outputs:
                    summary.frames_swapped += 1
                    summary.faces_swapped += len(item.outputs)
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - start
    summary.problems += source.problems + conv.selector.lines()
    return summary
