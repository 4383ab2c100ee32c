"""Frame sources: a video file or a folder of images, behind one iterable interface."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from swapface.core.errors import InputError
from swapface.core.images import ImageReadError, is_image_path, read_image
from swapface.media.video import VIDEO_EXTENSIONS, iter_video_timed, probe_video

log = logging.getLogger(__name__)

# Files swapface itself keeps inside a frames folder; not worth a warning.
_OWN_FILES = re.compile(
    r"(alignments.*\.(db|sqlite|json)(-journal|-wal|-shm)?|frames\.json|\..*)$", re.I
)


@dataclass
class Frame:
    index: int  # position in the source (decode order for video, sorted order for folders)
    name: str  # stable frame name: "<stem>_<index:06d>" for video, file name for folders
    timestamp: float | None  # presentation time in seconds (float, for stores and manifests)
    image: np.ndarray  # uint8 BGR
    # The same presentation time, exact (pts × time base), and how long the frame shows.
    # Pass both to a writer, ``write(image, pts=frame.time, duration=frame.duration)``, to
    # keep a variable frame rate and the source's length. None for images.
    time: Fraction | None = None
    duration: Fraction | None = None


def natural_key(name: str) -> list[object]:
    """'frame2' < 'frame10' — the order people number frames in."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


@dataclass
class FrameSource:
    """An input to process. Iterating yields :class:`Frame`s; problems are collected."""

    path: Path
    is_video: bool
    count: int  # frames expected (container count for video; image files for folders)
    files: list[Path] = field(default_factory=list)
    skipped_files: list[Path] = field(default_factory=list)  # non-image files in a folder
    problems: list[str] = field(default_factory=list)  # unreadable images, broken streams
    decoded: int | None = None  # video frames actually decoded by the last full pass
    count_exact: bool = True  # False when ``count`` is estimated (duration x fps)

    @property
    def stem(self) -> str:
        return self.path.stem if self.is_video else self.path.name

    def frame_name(self, index: int) -> str:
        return f"{self.stem}_{index:06d}" if self.is_video else self.files[index].name

    def frames(self, every_n: int = 1, skip: set[int] | None = None) -> Iterator[Frame]:
        """Every ``every_n``-th frame whose index is not in ``skip``.

        Video frames in ``skip`` are still decoded (H.264 needs it) but not returned;
        skipped image files are never read.
        """
        if every_n < 1:
            raise ValueError(f"every_n must be at least 1, got {every_n}")
        skip = skip or set()
        if self.is_video:
            decoded = 0
            errors: list[str] = []
            for index, time, duration, image in iter_video_timed(self.path, problems=errors):
                decoded = index + 1
                if index % every_n == 0 and index not in skip:
                    ts = float(time) if time is not None else None
                    yield Frame(index, self.frame_name(index), ts, image, time, duration)
            self.decoded = decoded
            # An estimated count (Matroska, WebM) can be a frame or two off the truth.
            slack = 0 if self.count_exact else max(2, self.count // 100)
            if errors or decoded < self.count - slack:
                reason = f" ({errors[0].rsplit(' frames: ', 1)[-1]})" if errors else ""
                self.problems.append(
                    f"{self.path.name}: stream ended at frame {decoded} of {self.count}{reason} "
                    "(truncated or damaged video); frames decoded so far were processed"
                )
            return
        for index, file in enumerate(self.files):
            if index % every_n or index in skip:
                continue
            try:
                image = read_image(file)
            except ImageReadError as exc:
                self.problems.append(str(exc))
                log.warning("skipping unreadable image: %s", exc)
                continue
            yield Frame(index, file.name, None, image)


def open_source(path: str | Path) -> FrameSource:
    """Open a video file or an image folder; raises :class:`InputError` with a clear reason."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if path.is_dir():
        files, skipped = [], []
        for entry in sorted(path.iterdir(), key=lambda p: natural_key(p.name)):
            if not entry.is_file():
                continue
            if is_image_path(entry):
                files.append(entry)
            elif not _OWN_FILES.match(entry.name):
                skipped.append(entry)
        if skipped:
            log.warning(
                "%s: ignoring %d non-image file(s), e.g. %s", path, len(skipped), skipped[0].name
            )
        return FrameSource(path, False, len(files), files, skipped)
    if path.suffix.lower() in VIDEO_EXTENSIONS or not is_image_path(path):
        info = probe_video(path)
        return FrameSource(path, True, info.frame_count, count_exact=info.frame_count_exact)
    # A single image file: treat as a one-image folder.
    return FrameSource(path.parent, False, 1, [path])
