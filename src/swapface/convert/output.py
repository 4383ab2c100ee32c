"""Where converted frames go: a video (audio copied), an animated GIF, or a PNG folder.

Every output is labelled as synthetic media naming swapface: container tags for video, a
comment for GIF, a JSON text chunk in every PNG. Files are written under a temporary name
and renamed at the end, so an interrupted convert never leaves a complete-looking output.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from swapface import __version__
from swapface.convert.config import ConvertConfig
from swapface.core.errors import ConfigError
from swapface.core.images import write_image
from swapface.media import FrameWriter, is_writer_path, kept_spans, open_writer, probe_video
from swapface.media.source import Frame, FrameSource

SYNTHETIC_COMMENT = f"synthetic media: face swapped by swapface {__version__}"
SYNTHETIC_TAGS = {"comment": SYNTHETIC_COMMENT, "synthetic_media": "true", "generator": "swapface"}


class Output(Protocol):
    def write(self, item: tuple[Frame, np.ndarray]) -> None: ...


def check_output(cfg: ConvertConfig) -> None:
    """Refuse to clobber anything unless ``--overwrite``; never delete what is not ours."""
    out = cfg.output
    if out.resolve() == cfg.input.resolve():
        raise ConfigError("output must differ from the input")
    if not out.exists():
        return
    if not cfg.overwrite:
        raise ConfigError(f"output exists: {out} (pass --overwrite to replace it)")
    if out.is_dir():
        if is_writer_path(out):
            raise ConfigError(f"output {out} is a folder, not a {out.suffix} file")
        for old in out.glob("*.png"):  # only our own kind of file, never the whole folder
            old.unlink()
    elif not is_writer_path(out):
        raise ConfigError(f"output {out} is a file; a frame folder needs a folder path")


class _FolderOutput:
    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path, self.meta = path, meta
        path.mkdir(parents=True, exist_ok=True)

    def write(self, item: tuple[Frame, np.ndarray]) -> None:
        frame, image = item
        write_image(self.path / f"{Path(frame.name).stem}.png", image, {**self.meta, "frame": frame.name})


class _WriterOutput:
    """A video or GIF writer fed with each frame's own timing (variable frame rates survive)."""

    def __init__(self, writer: FrameWriter) -> None:
        self.writer = writer

    def write(self, item: tuple[Frame, np.ndarray]) -> None:
        frame, image = item
        self.writer.write(image, pts=frame.time, duration=frame.duration)


@contextlib.contextmanager
def open_output(cfg: ConvertConfig, source: FrameSource) -> Iterator[Output]:
    """The writer for ``cfg.output``, chosen by its suffix (a folder when it has none).

    Call :func:`check_output` first (before any long work). With ``--discard-frames`` the
    copied audio keeps only the spans of the kept frames, so the sound stays in sync.
    """
    if not is_writer_path(cfg.output):
        yield _FolderOutput(cfg.output, {
            "synthetic": True, "generator": "swapface", "version": __version__,
            "source": cfg.input.name, "model": cfg.model_dir.name,
        })
        return
    fps: Fraction | int = probe_video(cfg.input).fps if source.is_video else 30
    spans = kept_spans(cfg.input, cfg.ranges) if cfg.discard_frames and source.is_video else None
    with open_writer(cfg.output, fps, audio_from=cfg.input if source.is_video else None,
                     audio_spans=spans or None, metadata=SYNTHETIC_TAGS,
                     crf=cfg.crf, preset=cfg.preset) as writer:
        yield _WriterOutput(writer)
