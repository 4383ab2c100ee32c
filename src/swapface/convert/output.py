"""Where converted frames go: a video (audio copied), an animated GIF, or a PNG folder.

Every output is labelled as synthetic media naming swapface: container tags for video, a
comment for GIF, a JSON text chunk in every PNG. Files are written under a temporary name
and renamed at the end, so an interrupted convert never leaves a complete-looking output.
A frame folder given with ``--overwrite`` loses only the PNG frames swapface wrote there
before (they carry its synthetic-media metadata) and only once the new frames are written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from swapface import __version__
from swapface.convert.config import ConvertConfig
from swapface.core.errors import ConfigError
from swapface.core.fileio import sweep_partials
from swapface.core.images import is_image_path, read_metadata, write_image
from swapface.media import FrameWriter, is_writer_path, open_writer
from swapface.media.source import Frame, FrameSource
from swapface.media.writers import WRITER_SUFFIXES

SYNTHETIC_COMMENT = f"synthetic media: face swapped by swapface {__version__}"
SYNTHETIC_TAGS = {"comment": SYNTHETIC_COMMENT, "synthetic_media": "true", "generator": "swapface"}


def synthetic_label(**extra: Any) -> dict[str, Any]:
    """The metadata every swapped still or frame file carries."""
    return {"synthetic": True, "generator": "swapface", "version": __version__, **extra}


class Output(Protocol):
    def write(self, item: tuple[Frame, np.ndarray]) -> None: ...


def check_output(cfg: ConvertConfig) -> None:
    """Refuse to clobber anything unless ``--overwrite``; never delete what is not ours."""
    out = cfg.output
    if out.resolve() == cfg.input.resolve():
        raise ConfigError("output must differ from the input")
    media = out.suffix.lower() in _MEDIA_SUFFIXES or is_image_path(out)
    if media and not is_writer_path(out) and not out.is_dir():
        raise ConfigError(
            f"cannot write {out.name}: a video output ends in {', '.join(WRITER_SUFFIXES)}; "
            "frames go to a folder (a path without a media suffix)")
    if not out.exists():
        return
    if not cfg.overwrite:
        raise ConfigError(f"output exists: {out} (pass --overwrite to replace it)")
    if out.is_dir():
        if is_writer_path(out):
            raise ConfigError(f"output {out} is a folder, not a {out.suffix} file")
    elif not is_writer_path(out):
        raise ConfigError(f"output {out} is a file; a frame folder needs a folder path")


# Containers people expect a video in that the writers do not make: refused, not a folder.
_MEDIA_SUFFIXES = frozenset({".avi", ".wmv", ".flv", ".webm", ".mpg", ".mpeg", ".ts", ".3gp",
                             ".ogv", ".mxf", ".apng"})


def _is_ours(path: Path) -> bool:
    try:
        meta = read_metadata(path)
    except OSError:
        return False
    return bool(meta and meta.get("synthetic") is True and meta.get("generator") == "swapface")


class _FolderOutput:
    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path, self.meta = path, meta
        self.written: set[str] = set()
        path.mkdir(parents=True, exist_ok=True)
        sweep_partials(path)  # frames a killed convert left half-written

    def write(self, item: tuple[Frame, np.ndarray]) -> None:
        frame, image = item
        name = f"{frame.face_stem or Path(frame.name).stem}.png"  # a.png + a.jpg: two files
        write_image(self.path / name, image, {**self.meta, "frame": frame.name})
        self.written.add(name)

    def remove_stale(self) -> None:
        """Frames of an earlier convert into this folder that this one did not write."""
        for old in self.path.glob("*.png"):
            if old.name not in self.written and _is_ours(old):
                old.unlink()


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
        folder = _FolderOutput(cfg.output, synthetic_label(source=cfg.input.name,
                                                           model=cfg.model_dir.name))
        yield folder
        folder.remove_stale()
        return
    spans = source.kept_spans(cfg.ranges) if cfg.discard_frames else None
    with open_writer(cfg.output, source.fps or 30, audio_from=source.audio, audio_spans=spans or None,
                     metadata=SYNTHETIC_TAGS, crf=cfg.crf, preset=cfg.preset) as writer:
        yield _WriterOutput(writer)
