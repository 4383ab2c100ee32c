"""``swapface convert`` as a Python API: swap faces in every frame and write the result.

Each stored face is cropped straight from the frame into the model's input with one
``warpAffine``: the centred ``coverage`` window of the aligned face (the crop the model was
trained on) mapped to model pixels. Faces are batched across frames through the encoder
and the target decoder; each output is colour-matched to the same crop of the frame,
sharpened, masked and pasted back with :func:`~swapface.convert.blend.paste_face`. Frames
without faces, or outside ``--frame-ranges``, pass through byte for byte.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from swapface import __version__
from swapface.align.records import FaceRecord, FrameRecord
from swapface.align.store import AlignmentsStore, default_store_path
from swapface.convert.blend import paste_face
from swapface.convert.color import adjust_color
from swapface.convert.config import ConvertConfig
from swapface.convert.masks import build, centre_window, refine_mask, window_matrix
from swapface.convert.sharpen import SHARPEN_METHODS
from swapface.core.errors import ConfigError, InputError
from swapface.core.images import write_image
from swapface.core.progress import progress
from swapface.media.source import Frame, FrameSource, open_source

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov")
SYNTHETIC_COMMENT = f"synthetic media: face swapped by swapface {__version__}"


@dataclass
class ConvertSummary:
    input: str
    output: str
    frames_in: int = 0
    frames_out: int = 0
    frames_swapped: int = 0
    faces_swapped: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    problems: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames_in / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        out = [
            f"input:  {self.input}",
            f"output: {self.output}",
            f"frames: {self.frames_in} read, {self.frames_out} written, {self.frames_swapped} swapped",
            f"faces:  {self.faces_swapped} swapped",
            f"time:   {self.seconds:.1f} s ({self.fps:.1f} frames/s on {self.device})",
        ]
        out += [f"problem: {p}" for p in self.problems]
        return out


# ------------------------------------------------------------------ geometry
def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """2×3 affine ``outer ∘ inner``."""
    o = np.vstack([np.asarray(outer, np.float64), [0.0, 0.0, 1.0]])
    i = np.vstack([np.asarray(inner, np.float64), [0.0, 0.0, 1.0]])
    return (o @ i)[:2]


def model_matrix(face: FaceRecord, coverage: float, model_size: int) -> np.ndarray:
    """Frame → model pixels: the centred ``coverage`` window of the aligned face at ``model_size``."""
    window = centre_window(face.size, coverage)
    to_model = cv2.invertAffineTransform(window_matrix(window, model_size))
    return compose(to_model, face.matrix)


def crop(frame: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    return cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_AREA
                          if np.sqrt(abs(np.linalg.det(matrix[:, :2]))) < 1.0 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def model_mask(kind: str, face: FaceRecord, coverage: float, size: int,
               predicted: np.ndarray | None) -> np.ndarray:
    """The ``kind`` mask in model-output space (``size`` px covering the coverage window)."""
    window = centre_window(face.size, coverage)
    mask = build(kind, face, face.size, window=window, predicted=predicted)
    to_model = cv2.invertAffineTransform(window_matrix(window, size))
    return cv2.warpAffine(mask, to_model, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


# ------------------------------------------------------------------ model
class Swapper:
    """The trained model, loaded for inference."""

    def __init__(self, model_dir: Path, swap_model: bool, cpu: bool) -> None:
        import torch

        from swapface.train.checkpoint import load_checkpoint, read_architecture
        from swapface.train.models import build_model

        self.torch = torch
        arch = read_architecture(model_dir)
        self.device = "cuda" if torch.cuda.is_available() and not cpu else "cpu"
        model = build_model(arch["model"], arch.get("options", {}))
        checkpoint = load_checkpoint(model_dir, self.device)
        if checkpoint is None:
            raise InputError(f"{model_dir} has no checkpoint yet; train the model first")
        model.load_state_dict(checkpoint.model)
        self.model = model.to(self.device).eval()
        self.input_size = int(arch.get("input_size", model.input_size))
        self.output_size = int(arch.get("output_size", model.output_size))
        self.side = "a" if swap_model else "b"

    def __call__(self, crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """BGR uint8 crops → (BGR uint8 faces [N,o,o,3], masks float [N,o,o] or None)."""
        torch = self.torch
        batch = np.stack(crops)[..., ::-1].astype(np.float32) / 255.0
        x = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).to(self.device)
        with torch.inference_mode():
            rgb, mask = self.model.decode(self.model.encode(x), self.side)
            faces = (rgb.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1)
            faces_np = np.ascontiguousarray(faces.cpu().numpy()[..., ::-1])
            masks_np = None if mask is None else mask[:, 0].float().clamp(0, 1).cpu().numpy()
        return faces_np, masks_np


# ------------------------------------------------------------------ paths and writers
def _is_video_output(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


class _FolderWriter:
    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path, self.meta = path, meta
        path.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, image: np.ndarray) -> None:
        write_image(self.path / f"{Path(name).stem}.png", image, {**self.meta, "frame": name})


def _check_output(cfg: ConvertConfig) -> None:
    out = cfg.output
    if out.resolve() == cfg.input.resolve():
        raise ConfigError("output must differ from the input")
    if out.exists():
        if not cfg.overwrite:
            raise ConfigError(f"output exists: {out} (pass --overwrite to replace it)")
        if out.is_dir():
            if _is_video_output(out):
                raise ConfigError(f"output {out} is a folder, not a video file")
            for old in out.glob("*.png"):  # only our own kind of file, never the whole folder
                old.unlink()
        elif not _is_video_output(out):
            raise ConfigError(f"output {out} is a file; a frame folder needs a folder path")


# ------------------------------------------------------------------ main loop
@dataclass
class _Pending:
    frame: Frame
    faces: list[FaceRecord]
    swap: bool
    crops: list[np.ndarray] = field(default_factory=list)
    outputs: list[tuple[np.ndarray, np.ndarray | None]] = field(default_factory=list)


@functools.cache
def window_taper(size: int, blur: int) -> np.ndarray:
    """1 inside the model's window, falling smoothly to 0 at its border.

    The model only sees (and produces) the coverage window; a mask that reaches past it
    (``extended`` at the forehead) would otherwise end in a hard straight seam there.
    """
    width = max(2, blur, size // 16)
    return refine_mask(np.ones((size, size), np.float32), erosion=width, blur=width)


def _swap_frame(cfg: ConvertConfig, item: _Pending, out_size: int, sharpen: Any) -> np.ndarray:
    image = item.frame.image
    taper = window_taper(out_size, cfg.blur_size)
    for face, (new_face, predicted) in zip(item.faces, item.outputs, strict=True):
        m_out = model_matrix(face, cfg.coverage, out_size)
        old_face = crop(image, m_out, out_size)
        mask = model_mask(cfg.mask_type, face, cfg.coverage, out_size, predicted)
        new_face = adjust_color(cfg.color, new_face, old_face, mask)
        new_face = sharpen(new_face)
        mask = refine_mask(mask, cfg.erosion, cfg.blur_size, cfg.mask_threshold) * taper
        image = paste_face(image, new_face, mask, m_out)
    return image


def run_convert(cfg: ConvertConfig, show_progress: bool = True) -> ConvertSummary:
    source = open_source(cfg.input)
    store_path = cfg.alignments if cfg.alignments is not None else default_store_path(
        cfg.input if source.is_video else source.path, source.is_video)
    if not store_path.is_file():
        raise InputError(f"no alignments store at {store_path}; run extract first or pass --alignments")
    _check_output(cfg)
    with AlignmentsStore(store_path, readonly=True) as store:
        known = store.get_meta("source_frames")
        if known is not None and int(known) != source.count:
            raise InputError(
                f"{store_path} was made from {known} frames but {cfg.input} has {source.count}; "
                "pass the matching --alignments"
            )
        records: dict[int, FrameRecord] = {r.index: r for r in store.frames(with_masks=True)}
    swapper = Swapper(cfg.model_dir, cfg.swap_model, cfg.cpu)
    sharpen = SHARPEN_METHODS.create(cfg.sharpen)
    summary = ConvertSummary(str(cfg.input), str(cfg.output), device=swapper.device)
    meta = {"synthetic": True, "generator": "swapface", "version": __version__,
            "source": cfg.input.name, "model": cfg.model_dir.name}
    start = time.perf_counter()
    bar = progress(source.count, "convert", unit="frame", disable=not show_progress)
    try:
        if _is_video_output(cfg.output):
            from swapface.media.video import probe_video
            from swapface.media.video_writer import VideoWriter

            fps: Any = probe_video(cfg.input).fps if source.is_video else 30
            if cfg.discard_frames and source.is_video:
                log.warning("--discard-frames: audio is copied from the start of the input and "
                            "will not follow the dropped frames")
            tags = {"comment": SYNTHETIC_COMMENT, "synthetic_media": "true", "generator": "swapface"}
            with VideoWriter(cfg.output, fps, audio_from=cfg.input if source.is_video else None,
                             crf=cfg.crf, preset=cfg.preset, metadata=tags) as writer:
                for _, image in _converted(cfg, source, records, swapper, sharpen, summary, bar):
                    writer.write(image)
                    summary.frames_out += 1
        else:
            folder = _FolderWriter(cfg.output, meta)
            for name, image in _converted(cfg, source, records, swapper, sharpen, summary, bar):
                folder.write(name, image)
                summary.frames_out += 1
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - start
    summary.problems += source.problems
    return summary


def _converted(cfg: ConvertConfig, source: FrameSource, records: dict[int, FrameRecord],
               swapper: Swapper, sharpen: Any, summary: ConvertSummary,
               bar: Any) -> Iterator[tuple[str, np.ndarray]]:
    """(frame name, output image) in source order, faces batched across frames."""
    pending: list[_Pending] = []
    queued = 0

    def flush() -> Iterator[tuple[str, np.ndarray]]:
        crops = [c for item in pending for c in item.crops]
        if crops:
            faces, masks = [], []
            for i in range(0, len(crops), cfg.batch_size):
                f, m = swapper(crops[i:i + cfg.batch_size])
                faces.extend(f)
                masks.extend(m if m is not None else [None] * len(f))
            k = 0
            for item in pending:
                n = len(item.crops)
                item.outputs = list(zip(faces[k:k + n], masks[k:k + n], strict=True))
                k += n
        for item in pending:
            image = item.frame.image
            if item.outputs:
                image = _swap_frame(cfg, item, swapper.output_size, sharpen)
                summary.frames_swapped += 1
                summary.faces_swapped += len(item.outputs)
            bar.update(1)
            yield item.frame.name, image
        pending.clear()

    for frame in source.frames():
        summary.frames_in += 1
        inside = cfg.in_ranges(frame.index)
        if not inside and cfg.discard_frames:
            bar.update(1)
            continue
        record = records.get(frame.index)
        faces = list(record.faces) if record is not None and inside else []
        item = _Pending(frame, faces, inside)
        for face in faces:
            m_in = model_matrix(face, cfg.coverage, swapper.input_size)
            item.crops.append(crop(frame.image, m_in, swapper.input_size))
        pending.append(item)
        queued += len(faces)
        if queued >= cfg.batch_size:
            yield from flush()
            queued = 0
    yield from flush()
