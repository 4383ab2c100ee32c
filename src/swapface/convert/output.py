"""Where converted frames go: a video (audio copied), an animated GIF, or a PNG folder.

Every output is labelled as synthetic media naming swapface: container tags for video, a
comment for GIF, a JSON text chunk in every PNG. Files are written under a temporary name
and renamed at the end, so an interrupted convert never leaves a complete-looking output.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from swapface import __version__
from swapface.convert.config import ConvertConfig
from swapface.core.errors import ConfigError
from swapface.core.images import write_image
from swapface.media.source import Frame, FrameSource

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov")
GIF_SUFFIX = ".gif"
SYNTHETIC_COMMENT = f"synthetic media: face swapped by swapface {__version__}"
SYNTHETIC_TAGS = {"comment": SYNTHETIC_COMMENT, "synthetic_media": "true", "generator": "swapface"}


class Output(Protocol):
    def write(self, item: tuple[Frame, np.ndarray]) -> None: ...


def is_file_output(path: Path) -> bool:
    return path.suffix.lower() in (*VIDEO_SUFFIXES, GIF_SUFFIX)


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
        if is_file_output(out):
            raise ConfigError(f"output {out} is a folder, not a {out.suffix} file")
        for old in out.glob("*.png"):  # only our own kind of file, never the whole folder
            old.unlink()
    elif not is_file_output(out):
        raise ConfigError(f"output {out} is a file; a frame folder needs a folder path")


class _FolderOutput:
    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path, self.meta = path, meta
        path.mkdir(parents=True, exist_ok=True)

    def write(self, item: tuple[Frame, np.ndarray]) -> None:
        frame, image = item
        write_image(self.path / f"{Path(frame.name).stem}.png", image, {**self.meta, "frame": frame.name})


class _VideoOutput:
    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def write(self, item: tuple[Frame, np.ndarray]) -> None:
        self.writer.write(item[1])


@contextlib.contextmanager
def open_output(cfg: ConvertConfig, source: FrameSource) -> Iterator[Output]:
    """The writer for ``cfg.output``, chosen by its suffix (a folder when it has none).

    Call :func:`check_output` first (before any long work).
    """
    if not is_file_output(cfg.output):
        yield _FolderOutput(cfg.output, {
            "synthetic": True, "generator": "swapface", "version": __version__,
            "source": cfg.input.name, "model": cfg.model_dir.name,
        })
        return
    from swapface.media.video import probe_video
    from swapface.media.video_writer import VideoWriter

    fps: Fraction | int = probe_video(cfg.input).fps if source.is_video else 30
    if cfg.discard_frames and source.is_video:
        log.warning("--discard-frames: audio is copied from the start of the input and "
                    "will not follow the dropped frames")
    with VideoWriter(cfg.output, fps, audio_from=cfg.input if source.is_video else None,
                     crf=cfg.crf, preset=cfg.preset, metadata=SYNTHETIC_TAGS) as writer:
        yield _VideoOutput(writer)
