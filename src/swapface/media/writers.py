"""One entry point for every kind of output a stage writes frames to.

:func:`open_writer` picks the writer from the file name, so a stage (convert) calls one
function and gets the same interface whatever the user asked for: a context manager
with ``write(image, pts=None, duration=None)`` and ``frames_written``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Protocol

import numpy as np

from swapface.core.errors import ConfigError
from swapface.media.gif_writer import GifWriter
from swapface.media.timeline import Time
from swapface.media.video_writer import VideoWriter

log = logging.getLogger(__name__)

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


def is_writer_path(path: str | Path) -> bool:
    """True when :func:`open_writer` can write ``path`` (by its suffix)."""
    return Path(path).suffix.lower() in WRITER_SUFFIXES


def open_writer(
    path: str | Path,
    fps: Fraction | float,
    *,
    audio_from: str | Path | None = None,
    audio_spans: Sequence[tuple[Time, Time]] | None = None,
    metadata: dict[str, str] | None = None,
    crf: int = 18,
    preset: str = "medium",
) -> VideoWriter | GifWriter:
    """A writer for ``path``: :class:`GifWriter` for ``.gif``, else :class:`VideoWriter`.

    Arguments mean the same for both; a GIF has no sound, so ``audio_from`` is ignored
    there (``audio_spans`` still maps frame times), as are ``crf`` and ``preset``.
    ``metadata`` becomes container tags in a video and a Comment Extension in a GIF.
    Use the result as a context manager.
    """
    suffix = Path(path).suffix.lower()
    if suffix in GIF_SUFFIXES:
        if audio_from is not None:
            log.debug("%s: a GIF has no audio; not copying it from %s", path, audio_from)
        return GifWriter(path, fps, metadata=metadata, audio_spans=audio_spans)
    if suffix in VIDEO_SUFFIXES:
        return VideoWriter(path, fps, audio_from=audio_from, audio_spans=audio_spans,
                           metadata=metadata, crf=crf, preset=preset)
    raise ConfigError(
        f"cannot write {Path(path).name!r}: output must end in {', '.join(WRITER_SUFFIXES)}"
    )
