"""``swapface convert`` as a Python API: the video driver around the swap engine.

decode → faces from the alignments store (smoothed along tracks) → :class:`FrameSwapper`
→ writer. Five stages overlap on threads (FFmpeg, SQLite, OpenCV and PyTorch release the
GIL): frames are decoded ahead of use and the store's records read and smoothed ahead in
step with them, faces are cropped and batched across frames through the model, each frame
is colour-matched, masked and pasted back on a small pool, and the encoder writes finished
frames in order behind them. Frames without faces, or outside ``--frame-ranges``, pass
through byte for byte.

Landmarks are smoothed with :class:`~swapface.swap.Centred` (a centred fit, so no lag),
which keeps the swapped face from shimmering on a still head. Records stream from the
store: memory stays bounded by a few dozen frames whatever the length of the video.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from swapface.align.records import FrameRecord
from swapface.align.store import AlignmentsStore
from swapface.convert.config import COMPILE_MIN_FACES, ConvertConfig
from swapface.convert.output import check_output, open_output
from swapface.convert.selection import FaceFolderFilter
from swapface.core.concurrency import Sink, prefetch
from swapface.core.errors import InputError
from swapface.core.progress import NEVER, SILENT, CancelToken, Progress
from swapface.media.source import Frame, FrameSource, open_source
from swapface.models.conv_tuning import TUNING_FILE
from swapface.swap import Centred, FrameSwapper, Prepared, SmoothStats, TorchModel, load_inference

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
    engine: str = "torch"  # or "onnxruntime"
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
            f"{', onnxruntime' if self.engine == 'onnxruntime' else ''}"
            f"{', compiled model' if self.compiled else ''}"
            f"{f', {self.tuned} conv layers tuned' if self.tuned else ''})",
        ]
        if self.frames_not_in_store:
            out.append(f"note:   {self.frames_not_in_store} frames are not in the alignments "
                       "store and were passed through unchanged")
        out += [f"problem: {p}" for p in self.problems]
        return out


# ------------------------------------------------------------------ inputs
def store_for(cfg: ConvertConfig, source: FrameSource, progress: Progress = SILENT,
              cancel: CancelToken = NEVER) -> Path:
    """The alignments store; extracted now (defaults of ``swapface extract``) when missing."""
    path = cfg.alignments if cfg.alignments is not None else source.default_store()
    if path.is_file():
        return path
    from swapface.extract.config import ExtractConfig
    from swapface.extract.run import run_extract

    log.warning("no alignments store at %s: extracting faces first", path)
    run_extract(ExtractConfig(input=cfg.input, alignments=cfg.alignments,
                              identity=cfg.swap.uses_identity), progress, cancel)
    if not path.is_file():
        raise InputError(f"extraction did not write {path}; run swapface extract with --alignments")
    return path


def _check_store(cfg: ConvertConfig, source: FrameSource, path: Path) -> int:
    """Faces the run will swap at most; refuses a store made from another video."""
    with AlignmentsStore(path, readonly=True) as store:
        known = store.get_meta("source_frames")
        if known is not None and int(known) != source.count:
            raise InputError(
                f"{path} was made from {known} frames but {cfg.input} has {source.count}; "
                "pass the matching --alignments"
            )
        made_from = store.get_meta("source")
        if made_from and _other_file(Path(made_from), cfg.input):
            raise InputError(f"{path} was made from {made_from}, not {cfg.input}; "
                             "pass the matching --alignments")
        return sum(1 for ref in store.face_refs() if cfg.in_ranges(ref.frame_index))


def _other_file(recorded: Path, given: Path) -> bool:
    """True when the store's recorded input still exists and is another file than ``given``
    (a renamed or moved input, whose old path is gone, is accepted)."""
    try:
        return recorded.exists() and not recorded.samefile(given)
    except OSError:
        return False


def _smoothed_records(path: Path, smoother: Centred | None) -> Iterator[FrameRecord]:
    """The store's frames in order, smoothed; opened here, in the thread that reads it."""
    with AlignmentsStore(path, readonly=True) as store:
        for record in store.frames(with_masks=True):
            yield from smoother.push(record) if smoother is not None else (record,)
    if smoother is not None:
        yield from smoother.flush()


def identity_filter(cfg: ConvertConfig):  # -> IdentityFilter | None
    """The --filter/--nfilter of ``cfg`` (None without references): convert and preview."""
    if not cfg.swap.uses_identity:
        return None
    from swapface.faces import FaceFinder, IdentityFilter, shared_encoder

    return IdentityFilter.from_references(cfg.swap.filter, cfg.swap.nfilter, FaceFinder.create(),
                                          shared_encoder(), cfg.swap.ref_threshold)


# ------------------------------------------------------------------ per frame
class _Converter:
    def __init__(self, cfg: ConvertConfig, swapper: FrameSwapper, records: Iterator[FrameRecord],
                 folder: FaceFolderFilter | None, summary: ConvertSummary) -> None:
        self.cfg, self.swapper, self.folder, self.summary = cfg, swapper, folder, summary
        self._records = records
        self._next: FrameRecord | None = None

    def _record(self, index: int) -> FrameRecord | None:
        """The store's record of frame ``index`` (records and frames both come in order)."""
        while self._next is None or self._next.index < index:
            self._next = next(self._records, None)
            if self._next is None:
                return None
        return self._next if self._next.index == index else None

    def drain(self) -> None:
        """Read the records left (so the smoothing figures cover the whole store)."""
        for _ in self._records:
            pass

    def prepare(self, frame: Frame) -> Prepared:
        record = self._record(frame.index)
        if record is None:
            self.summary.frames_not_in_store += 1
            return Prepared(frame.image, [])
        height, width = frame.image.shape[:2]
        if (record.width, record.height) != (width, height) and record.width > 0:
            raise InputError(
                f"frame {frame.index} is {width}×{height} but the alignments store has "
                f"{record.width}×{record.height}: the store was made from another video; "
                "pass the matching --alignments"
            )
        faces = record.faces
        if self.folder is not None and faces:
            faces = self.folder.keep(frame.index, faces)
        return self.swapper.prepare(frame.image, faces)


def _finished(value: tuple[Frame, np.ndarray | None, int]) -> Future[tuple[Frame, np.ndarray | None, int]]:
    future: Future[tuple[Frame, np.ndarray | None, int]] = Future()
    future.set_result(value)
    return future


Done = tuple[Frame, np.ndarray | None, int]  # frame, output image (None: discarded), faces swapped


def _converted(conv: _Converter, frames: Iterator[Frame]) -> Iterator[Done]:
    """(frame, output image, faces swapped) in input order.

    Model batches span frames; a run of faceless frames is handed on without waiting for
    a batch to fill, so memory stays bounded by ``_AHEAD`` frames.
    """
    cfg, swapper = conv.cfg, conv.swapper
    pending: list[tuple[Frame, Prepared]] = []
    queued = 0

    def blend(frame: Frame, item: Prepared) -> Done:
        return frame, swapper.blend(item), len(item.faces)

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="blend") as pool:
        ready: deque[Future[Done]] = deque()

        def submit_pending() -> None:
            swapper.infer([item for _, item in pending])
            for frame, item in pending:
                ready.append(pool.submit(blend, frame, item) if item.outputs
                             else _finished((frame, frame.image, 0)))
            pending.clear()

        for frame in frames:
            if not cfg.in_ranges(frame.index):
                if cfg.discard_frames:
                    submit_pending()  # keep the order of what was queued before it
                    ready.append(_finished((frame, None, 0)))
                else:
                    pending.append((frame, Prepared(frame.image, [])))
            else:
                pending.append((frame, conv.prepare(frame)))
                queued += len(pending[-1][1].crops)
            if queued >= cfg.batch_size or len(pending) >= _AHEAD:
                submit_pending()
                queued = 0
            while ready and (ready[0].done() or len(ready) > _AHEAD):
                yield ready.popleft().result()
        submit_pending()
        while ready:
            yield ready.popleft().result()


def _speed_up(cfg: ConvertConfig, model: TorchModel, faces: int, summary: ConvertSummary) -> None:
    """Tune the CPU convolutions (or compile) for this run's side and batch size."""
    side = cfg.swap.side
    if cfg.cpu_conv == "tuned":
        chosen = model.tune(cfg.batch_size, side, cache_file=cfg.model_dir / TUNING_FILE)
        summary.tuned = sum(a != "native" for a in chosen.values())
    # Compiling pays on long jobs with PyTorch's kernels; tuned layers are faster without it
    # (woman_a, 1008 frames: 37.6 s tuned eager, 54.0 s tuned + compile).
    if cfg.compile if cfg.compile is not None else (faces >= COMPILE_MIN_FACES and not summary.tuned):
        summary.compiled = model.compile(cfg.batch_size, side)


def _smoothing_line(stats: SmoothStats, window: int) -> str:
    return (f"{stats.faces} faces on {stats.tracks} tracks, mean shift {stats.mean_shift:.2f} px "
            f"(window {window})")


def run_convert(cfg: ConvertConfig, progress: Progress = SILENT,
                cancel: CancelToken = NEVER) -> ConvertSummary:
    """Swap the faces of ``cfg.input`` with the model in ``cfg.model_dir``; write ``cfg.output``.

    ``cancel`` stops between frames (:class:`~swapface.core.errors.Cancelled`); the output,
    written under a temporary name, is then removed, never left half-written.
    """
    source = open_source(cfg.input)
    if source.count is None:
        raise InputError(f"{cfg.input} is a live stream: use `swapface live` for streams")
    check_output(cfg)
    store_path = store_for(cfg, source, progress, cancel)
    faces = _check_store(cfg, source, store_path)
    model = load_inference(cfg.model_dir, cfg.engine, cfg.cpu, cfg.swap.coverage, side=cfg.swap.side,
                           faces=faces)
    summary = ConvertSummary(str(cfg.input), str(cfg.output), device=model.device)
    if isinstance(model, TorchModel):
        _speed_up(cfg, model, faces, summary)
    else:  # ONNX Runtime plans its own kernels; tuning and compiling are torch's
        summary.engine = "onnxruntime"
        if cfg.compile:
            log.warning("--compile applies to the torch engine only; ONNX Runtime runs the model")
    swapper = FrameSwapper(model, cfg.swap, identity=identity_filter(cfg), batch_size=cfg.batch_size)
    smoother = Centred(cfg.smooth_window) if (
        cfg.smooth if cfg.smooth is not None else source.sequential) else None
    folder = FaceFolderFilter(cfg.faces) if cfg.faces is not None else None
    start = time.perf_counter()
    with (contextlib.closing(prefetch(_smoothed_records(store_path, smoother), _AHEAD, "records"))
          as records, contextlib.closing(prefetch(source.frames(), _AHEAD, "decode")) as frames,
          progress.task("convert", source.count, "frame") as task):
        conv = _Converter(cfg, swapper, records, folder, summary)
        with open_output(cfg, source) as output, Sink(output.write, depth=_AHEAD, name="encode") as sink:
            for frame, image, swapped in _converted(conv, frames):
                cancel.check()
                summary.frames_in += 1
                task.advance(1)
                if image is None:
                    continue
                sink.put((frame, image))
                summary.frames_out += 1
                if swapped:
                    summary.frames_swapped += 1
                    summary.faces_swapped += swapped
        conv.drain()
    summary.seconds = time.perf_counter() - start
    if smoother is not None:
        summary.smoothing = _smoothing_line(smoother.stats, cfg.smooth_window)
    summary.problems += source.problems
    if folder is not None:
        summary.problems.append(f"skipped {folder.dropped} faces not in --faces")
    if swapper.identity is not None:
        summary.problems.append(f"skipped {swapper.rejected_by_identity} faces rejected by "
                                "--filter/--nfilter")
    return summary
