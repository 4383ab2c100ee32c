"""Frame sources: a video file, a folder of images, a camera or network stream.

Every source offers the same :class:`FrameSource` interface, so no stage asks what kind of
input it has: it iterates :meth:`~FrameSource.frames`, reads one frame with
:meth:`~FrameSource.read`, and asks the source where its outputs go by default
(:meth:`~FrameSource.default_store`, :attr:`~FrameSource.output_base`), whether its frames
follow each other in time (:attr:`~FrameSource.sequential`: tracking and smoothing pay
there), what its frame rate is and where its sound comes from.

Streams (``/dev/video0`` through PyAV's ``v4l2`` input, ``0`` for the first camera,
``rtsp://``/``http://``/``udp://`` URLs) have no known length (``count`` is None) and
cannot be read twice.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from swapface.core.errors import InputError
from swapface.core.fileio import is_writable_dir, natural_key
from swapface.core.images import ImageReadError, check_pixels, is_image_path, read_image
from swapface.media.timeline import Span, kept_spans
from swapface.media.video import (
    VIDEO_EXTENSIONS,
    iter_video_timed,
    probe_video,
    read_video_frame,
)

log = logging.getLogger(__name__)

# Files swapface itself keeps inside a frames folder; not worth a warning.
_OWN_FILES = re.compile(
    r"(alignments.*\.(db|sqlite|json)(-journal|-wal|-shm)?|frames\.json|\..*)$", re.I
)
_STREAM_URL = re.compile(r"^(rtsp|rtmp|http|https|udp|tcp|srt)://", re.I)


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
    path: Path | None = None  # the image file the frame was read from (folders only)
    # What names this frame's face files: the name without its suffix, unless another file
    # of the folder has the same stem (a.png and a.jpg): then "a_png" and "a_jpg".
    face_stem: str | None = None


def default_store_path(input_root: Path, is_video: bool) -> Path:
    """Where extract puts a store by default and later stages look for it.

    ``input_root`` is the video file or the frames folder. Next to a video it is
    ``<stem>_alignments.db``, inside a frames folder ``alignments.db``; when that place is
    read-only (a shared dataset) the same name under the working directory.
    """
    base = input_root.with_suffix("") if is_video else input_root
    store = base.parent / f"{base.name}_alignments.db" if is_video else base / "alignments.db"
    if is_writable_dir(store.parent):
        return store
    return Path.cwd() / store.name if is_video else readonly_output_dir(base) / "alignments.db"


def readonly_output_dir(folder: Path) -> Path:
    """Where outputs of a read-only input folder go: a folder of its name under the working
    directory, or ``<name>_swapface`` when that would be the input itself (run from its
    parent)."""
    here = Path.cwd() / folder.name
    if here.resolve() == folder.resolve():
        here = Path.cwd() / f"{folder.name}_swapface"
    return here


class FrameSource(Protocol):
    """An input to process. Problems (unreadable images, a broken stream) are collected."""

    path: Path  # the video file, the images folder, or the device / URL as given
    kind: str  # "video", "images" or "stream" — for stores and messages, never for branching
    count: int | None  # frames expected; None for a live stream
    count_exact: bool  # False when ``count`` is estimated (duration × fps)
    fps: Fraction | None  # the nominal frame rate (None for images)
    sequential: bool  # frames follow each other in time (tracking and smoothing pay)
    audio: Path | None  # where the sound is, for outputs that keep it
    problems: list[str]
    skipped_files: list[Path]  # non-image files in a folder
    decoded: int | None  # frames actually decoded by the last full pass

    @property
    def stem(self) -> str: ...

    @property
    def output_base(self) -> Path:
        """``$path`` of extract's face folder: the input without its extension."""
        ...

    def frame_name(self, index: int) -> str: ...

    def frames(self, every_n: int = 1, skip: set[int] | None = None) -> Iterator[Frame]:
        """Every ``every_n``-th frame whose index is not in ``skip``."""
        ...

    def read(self, index: int) -> Frame | None:
        """Frame ``index`` alone (seeking where it can), or None when there is none."""
        ...

    def default_store(self) -> Path:
        """Where extract puts the alignments store by default and later stages look for it."""
        ...

    def outputs_writable(self) -> bool:
        """True when outputs can go next to the input (not a read-only dataset)."""
        ...

    def kept_spans(self, ranges: list[tuple[int, int]]) -> list[Span] | None:
        """Presentation-time spans of the frames in ``ranges`` (inclusive indices), for
        outputs that keep only those frames and the sound under them; None without times."""
        ...


def _check_every_n(every_n: int) -> None:
    if every_n < 1:
        raise ValueError(f"every_n must be at least 1, got {every_n}")


@dataclass
class VideoFileSource:
    """A video file (anything FFmpeg reads)."""

    path: Path
    count: int = 0
    count_exact: bool = True
    fps: Fraction | None = None
    has_audio: bool = False
    problems: list[str] = field(default_factory=list)
    skipped_files: list[Path] = field(default_factory=list)
    decoded: int | None = None
    kind: str = "video"
    sequential: bool = True

    @classmethod
    def open(cls, path: Path) -> VideoFileSource:
        info = probe_video(path)
        try:
            check_pixels(info.width, info.height, path.name)
        except ImageReadError as exc:
            raise InputError(str(exc)) from None
        return cls(path, info.frame_count, info.frame_count_exact, info.fps, info.has_audio)

    @property
    def audio(self) -> Path | None:
        return self.path if self.has_audio else None

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def output_base(self) -> Path:
        return self.path.with_suffix("")

    def frame_name(self, index: int) -> str:
        return f"{self.stem}_{index:06d}"

    def frames(self, every_n: int = 1, skip: set[int] | None = None) -> Iterator[Frame]:
        """Video frames in ``skip`` are still decoded (H.264 needs it) but not returned."""
        _check_every_n(every_n)
        skip = skip or set()
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

    def read(self, index: int) -> Frame | None:
        found = read_video_frame(self.path, index)
        if found is None:
            return None
        ts = float(found.time) if found.time is not None else None
        return Frame(index, self.frame_name(index), ts, found.image, found.time, found.duration)

    def default_store(self) -> Path:
        return default_store_path(self.path, True)

    def outputs_writable(self) -> bool:
        return is_writable_dir(self.path.parent)

    def kept_spans(self, ranges: list[tuple[int, int]]) -> list[Span] | None:
        return kept_spans(self.path, ranges)


@dataclass
class ImageFolderSource:
    """A folder of images (or one image), in natural name order; frames are its files."""

    path: Path
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped_files: list[Path] = field(default_factory=list)
    decoded: int | None = None
    kind: str = "images"
    sequential: bool = False
    _shared_stems: set[str] | None = field(default=None, repr=False)
    count_exact: bool = True
    fps: Fraction | None = None
    audio: Path | None = None

    @classmethod
    def open(cls, folder: Path) -> ImageFolderSource:
        files, skipped = [], []
        for entry in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
            if not entry.is_file():
                continue
            if is_image_path(entry):
                files.append(entry)
            elif not _OWN_FILES.match(entry.name):
                skipped.append(entry)
        if skipped:
            log.warning("%s: ignoring %d non-image file(s), e.g. %s", folder, len(skipped),
                        skipped[0].name)
        return cls(folder, files, skipped_files=skipped)

    @property
    def count(self) -> int:
        return len(self.files)

    @property
    def stem(self) -> str:
        return self.path.name

    @property
    def output_base(self) -> Path:
        return self.path

    def frame_name(self, index: int) -> str:
        return self.files[index].name

    def face_stem(self, index: int) -> str:
        file = self.files[index]
        if self._shared_stems is None:
            counts = Counter(f.stem.lower() for f in self.files)
            self._shared_stems = {stem for stem, n in counts.items() if n > 1}
        if file.stem.lower() in self._shared_stems:
            return f"{file.stem}_{file.suffix[1:].lower()}"
        return file.stem

    def _load(self, index: int) -> Frame | None:
        file = self.files[index]
        try:
            image = read_image(file)
        except ImageReadError as exc:
            self.problems.append(str(exc))
            log.warning("skipping unreadable image: %s", exc)
            return None
        return Frame(index, file.name, None, image, path=file, face_stem=self.face_stem(index))

    def frames(self, every_n: int = 1, skip: set[int] | None = None) -> Iterator[Frame]:
        """Skipped image files are never read."""
        _check_every_n(every_n)
        skip = skip or set()
        for index in range(len(self.files)):
            if index % every_n or index in skip:
                continue
            frame = self._load(index)
            if frame is not None:
                yield frame

    def read(self, index: int) -> Frame | None:
        return self._load(index) if 0 <= index < len(self.files) else None

    def default_store(self) -> Path:
        return default_store_path(self.path, False)

    def outputs_writable(self) -> bool:
        return is_writable_dir(self.path)

    def kept_spans(self, ranges: list[tuple[int, int]]) -> list[Span] | None:
        return None


@dataclass
class StreamSource:
    """A camera or network stream read live through PyAV; it has no end known in advance.

    ``url`` is a device (``/dev/video0``, read with ``format="v4l2"``), a camera number
    (``0`` → ``/dev/video0``) or a network URL. ``options`` go to FFmpeg (e.g.
    ``{"video_size": "640x480", "framerate": "30"}``).
    """

    url: str
    format: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    name: str = "stream"
    problems: list[str] = field(default_factory=list)
    skipped_files: list[Path] = field(default_factory=list)
    decoded: int | None = None
    kind: str = "stream"
    sequential: bool = True
    count: int | None = None
    count_exact: bool = False
    fps: Fraction | None = None
    audio: Path | None = None

    @property
    def path(self) -> Path:
        return Path(self.url)

    @property
    def stem(self) -> str:
        return self.name

    @property
    def output_base(self) -> Path:
        return Path.cwd() / self.name

    def frame_name(self, index: int) -> str:
        return f"{self.name}_{index:06d}"

    def _container(self) -> Any:
        import av

        try:
            return av.open(self.url, format=self.format, options=self.options or None)
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise InputError(f"cannot open stream {self.url}: "
                             f"{getattr(exc, 'strerror', None) or exc}") from exc

    def frames(self, every_n: int = 1, skip: set[int] | None = None) -> Iterator[Frame]:
        import av

        _check_every_n(every_n)
        skip = skip or set()
        container = self._container()
        try:
            if not container.streams.video:
                raise InputError(f"{self.url} has no video stream")
            stream = container.streams.video[0]
            if stream.average_rate:
                self.fps = Fraction(stream.average_rate)
            index = 0
            try:
                for packet_frame in container.decode(stream):
                    if index % every_n == 0 and index not in skip:
                        time = None
                        if packet_frame.pts is not None and packet_frame.time_base is not None:
                            time = Fraction(packet_frame.pts) * packet_frame.time_base
                        yield Frame(index, self.frame_name(index),
                                    None if time is None else float(time),
                                    packet_frame.to_ndarray(format="bgr24"), time)
                    index += 1
            except (av.FFmpegError, OSError) as exc:
                self.problems.append(f"{self.url}: the stream stopped after {index} frames: {exc}")
            self.decoded = index
        finally:
            container.close()

    def read(self, index: int) -> Frame | None:
        for frame in self.frames():
            if frame.index == index:
                return frame
        return None

    def default_store(self) -> Path:
        return Path.cwd() / f"{self.name}_alignments.db"

    def outputs_writable(self) -> bool:
        return False

    def kept_spans(self, ranges: list[tuple[int, int]]) -> list[Span] | None:
        return None


def is_stream(text: str) -> bool:
    """True for what :func:`open_source` opens as a live stream."""
    return text.isdigit() or text.startswith("/dev/video") or bool(_STREAM_URL.match(text))


def open_stream(text: str) -> StreamSource:
    if text.isdigit():
        text = f"/dev/video{int(text)}"
    if text.startswith("/dev/video"):
        if not Path(text).exists():
            raise InputError(f"no camera at {text} (is it connected, and may this user read it?)")
        return StreamSource(text, format="v4l2", name=Path(text).name)
    return StreamSource(text, name=re.sub(r"[^A-Za-z0-9]+", "_", text.split("://", 1)[-1])[:40] or "stream")


def open_source(path: str | Path) -> FrameSource:
    """Open a video file, an image folder (or one image), or a stream; clear errors otherwise."""
    text = str(path)
    if not isinstance(path, Path) and is_stream(text) and not Path(text).is_file():
        return open_stream(text)
    path = Path(path)
    if not path.exists():
        if text.startswith("/dev/video"):
            return open_stream(text)
        raise InputError(f"input not found: {path}")
    if path.is_dir():
        return ImageFolderSource.open(path)
    if path.is_char_device() or text.startswith("/dev/video"):
        return open_stream(text)
    if path.suffix.lower() in VIDEO_EXTENSIONS or not is_image_path(path):
        return VideoFileSource.open(path)
    # A single image file: a one-image folder.
    return ImageFolderSource(path.parent, [path])


__all__ = ["Frame", "FrameSource", "ImageFolderSource", "StreamSource", "VideoFileSource",
           "default_store_path", "is_stream", "natural_key", "open_source", "open_stream"]
