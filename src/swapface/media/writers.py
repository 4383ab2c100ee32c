"""One entry point for every kind of output a stage writes frames to.

Writers are plugins (:data:`WRITERS`), each with the file suffixes it writes.
:func:`open_writer` picks the writer from the file name, so a stage (convert) calls one
function and gets the same interface whatever the user asked for: a context manager
with ``write(image, pts=None, duration=None)`` and ``frames_written``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Protocol

import numpy as np

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.core.registry import NoOptions, Registry
from swapface.media.gif_writer import GifWriter
from swapface.media.timeline import Time
from swapface.media.video_writer import VideoWriter

log = logging.getLogger(__name__)

WRITERS: Registry[FrameWriter] = Registry("writer")
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")
GIF_SUFFIXES = (".gif",)
WRITER_SUFFIXES = VIDEO_SUFFIXES + GIF_SUFFIXES


class FrameWriter(Protocol):
    """What every writer offers (VideoWriter, GifWriter)."""

    frames_written: int

    def __enter__(self) -> FrameWriter: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...

    def write(self, image: np.ndarray, pts: Time | None = None,
              duration: Time | None = None) -> None: ...


@dataclass(frozen=True)
class VideoOptions:
    crf: int = option(18, help="H.264 quality (lower is better)")
    preset: str = option("medium", help="H.264 encoder preset (ultrafast ... veryslow)")


@WRITERS.register("video", options=VideoOptions, suffixes=VIDEO_SUFFIXES,
                  description="H.264 video with the input's audio and timing, tagged as synthetic")
def _video(options: VideoOptions, path: Path, fps: Fraction | float, audio_from: Path | None,
           audio_spans: Sequence[tuple[Time, Time]] | None, metadata: dict[str, str] | None
           ) -> FrameWriter:
    return VideoWriter(path, fps, audio_from=audio_from, audio_spans=audio_spans,
                       metadata=metadata, crf=options.crf, preset=options.preset)


@WRITERS.register("gif", suffixes=GIF_SUFFIXES,
                  description="animated GIF, one global palette, with a synthetic-media comment")
def _gif(options: NoOptions, path: Path, fps: Fraction | float, audio_from: Path | None,
         audio_spans: Sequence[tuple[Time, Time]] | None, metadata: dict[str, str] | None
         ) -> FrameWriter:
    if audio_from is not None:
        log.debug("%s: a GIF has no audio; not copying it from %s", path, audio_from)
    return GifWriter(path, fps, metadata=metadata, audio_spans=audio_spans)


def writer_for(path: str | Path) -> str | None:
    """The name of the writer plugin for ``path`` (by its suffix), or None."""
    suffix = Path(path).suffix.lower()
    return next((p.name for p in WRITERS if suffix in p.extra.get("suffixes", ())), None)


def is_writer_path(path: str | Path) -> bool:
    """True when :func:`open_writer` can write ``path`` (by its suffix)."""
    return writer_for(path) is not None


def open_writer(
    path: str | Path,
    fps: Fraction | float,
    *,
    audio_from: str | Path | None = None,
    audio_spans: Sequence[tuple[Time, Time]] | None = None,
    metadata: dict[str, str] | None = None,
    crf: int = 18,
    preset: str = "medium",
) -> FrameWriter:
    """A writer for ``path`` chosen by its suffix (:func:`writer_for`).

    Arguments mean the same for every writer; a GIF has no sound, so ``audio_from`` is
    ignored there (``audio_spans`` still maps frame times), as are ``crf`` and ``preset``.
    ``metadata`` becomes container tags in a video and a Comment Extension in a GIF.
    Use the result as a context manager.
    """
    name = writer_for(path)
    if name is None:
        raise ConfigError(
            f"cannot write {Path(path).name!r}: output must end in {', '.join(WRITER_SUFFIXES)}"
        )
    options = {"crf": crf, "preset": preset} if name == "video" else {}
    return WRITERS.create(name, options, path=Path(path), fps=fps,
                          audio_from=None if audio_from is None else Path(audio_from),
                          audio_spans=audio_spans, metadata=metadata)
