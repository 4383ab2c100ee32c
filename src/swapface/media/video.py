"""Reading video through PyAV: probing and frame-exact decoding with timestamps."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import av
import numpy as np

from swapface.core.errors import InputError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts",
     ".gif"}
)

# Demuxers that turn text into pictures; a file they claim is not a video for us.
_TEXT_DEMUXERS = frozenset({"tty", "srt", "ass", "webvtt", "subviewer", "microdvd"})


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: Fraction
    frame_count: int  # from the container; may be an estimate for some formats
    duration: float
    codec: str
    pix_fmt: str
    has_audio: bool
    audio_codec: str | None
    frame_count_exact: bool = True  # False: frame_count estimated from duration x fps

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "width": self.width,
            "height": self.height,
            "fps": float(self.fps),
            "fps_fraction": f"{self.fps.numerator}/{self.fps.denominator}",
            "frame_count": self.frame_count,
            "frame_count_exact": self.frame_count_exact,
            "duration": round(self.duration, 3),
            "codec": self.codec,
            "pix_fmt": self.pix_fmt,
            "has_audio": self.has_audio,
            "audio_codec": self.audio_codec,
        }


def _mp4_without_index(path: Path) -> bool:
    """True for an MP4/MOV whose top-level boxes have media data but no ``moov`` index.

    That is what a recording or copy cut off before the end looks like when the muxer
    writes the index last: the frames are in the file, but nothing can decode them.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[4:8] != b"ftyp":
                return False
            fh.seek(0)
            size_total = path.stat().st_size
            pos, kinds = 0, set()
            while pos + 8 <= size_total:
                fh.seek(pos)
                box = fh.read(16)
                size, kind = int.from_bytes(box[:4], "big"), box[4:8]
                if size == 1 and len(box) == 16:
                    size = int.from_bytes(box[8:16], "big")
                kinds.add(kind)
                if size < 8:
                    break
                pos += size
            return b"moov" not in kinds and b"mdat" in kinds
    except OSError:
        return False


def open_input(path: Path) -> av.container.InputContainer:
    """Open a media file for reading; every failure becomes an :class:`InputError`."""
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a video file")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is an empty file")
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        if _mp4_without_index(path):
            raise InputError(
                f"cannot open video {path}: the file is truncated before its index "
                "(MP4 'moov' box missing), so no frame can be decoded"
            ) from exc
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(f"cannot open video {path}: {reason}") from exc


def _open(path: Path) -> av.container.InputContainer:
    container = open_input(path)
    if not container.streams.video:
        container.close()
        raise InputError(f"{path} has no video stream")
    if container.format.name in _TEXT_DEMUXERS:
        # FFmpeg renders text files as "ANSI art" video; nobody means that.
        container.close()
        raise InputError(f"{path} is a text file, not a video")
    return container


def probe_video(path: str | Path) -> VideoInfo:
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        fps = Fraction(stream.average_rate or stream.guessed_rate or 25)
        start = 0.0
        if stream.start_time is not None and stream.time_base is not None:
            start = max(0.0, float(stream.start_time * stream.time_base))
        tagged = _parse_clock(stream.metadata.get("DURATION") or stream.metadata.get("duration"))
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif tagged is not None:  # Matroska/WebM keep per-stream durations as tags
            duration = max(0.0, tagged - start)
        elif container.duration is not None:
            duration = max(0.0, container.duration / av.time_base - start)
        else:
            duration = 0.0
        exact = bool(stream.frames)
        frames = stream.frames or round(duration * fps)
        audio = container.streams.audio[0] if container.streams.audio else None
        ctx = stream.codec_context
        return VideoInfo(
            path=path,
            width=ctx.width,
            height=ctx.height,
            fps=fps,
            frame_count=frames,
            duration=duration,
            codec=ctx.name,
            pix_fmt=str(ctx.pix_fmt),
            has_audio=audio is not None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            frame_count_exact=exact,
        )


def _parse_clock(text: str | None) -> float | None:
    """'00:00:11.823000000' → 11.823 (None when absent or malformed)."""
    if not text:
        return None
    try:
        hours, minutes, seconds = text.strip().split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


class TimedFrame(NamedTuple):
    index: int
    time: Fraction | None  # presentation time, seconds (pts × time base), exact
    duration: Fraction | None  # how long it shows (its packet's duration), when known
    image: np.ndarray  # uint8 BGR


def iter_video(
    path: str | Path, problems: list[str] | None = None
) -> Iterator[tuple[int, float | None, np.ndarray]]:
    """Yield (index, timestamp seconds, BGR frame) for every decoded frame, in order.

    Timestamps are presentation times on the file's clock (a stream may start later than
    0). A stream that breaks off (truncated file, corrupt packet at the end) stops the
    iteration with a warning instead of an exception: what was decoded stays usable, and
    the reason is appended to ``problems`` when a list is given.
    """
    for frame in iter_video_timed(path, problems):
        yield frame.index, (float(frame.time) if frame.time is not None else None), frame.image


def iter_video_timed(path: str | Path, problems: list[str] | None = None) -> Iterator[TimedFrame]:
    """:func:`iter_video` with exact times and each frame's duration.

    Writers take these to reproduce a variable frame rate to the tick and to end the
    video where the source ends; audio spans built with :func:`frame_times` match these
    times exactly, with no float rounding.
    """
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threading: decoding is never the bottleneck
        index = 0
        frames = container.decode(stream)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except (av.FFmpegError, OSError) as exc:
                log.warning("%s: video decoding stopped after %d frames: %s", path, index, exc)
                if problems is not None:
                    problems.append(f"{path.name}: decoding stopped after {index} frames: {exc}")
                break
            time = duration = None
            if frame.time_base is not None:
                if frame.pts is not None:
                    time = Fraction(frame.pts) * frame.time_base
                if frame.duration:
                    duration = Fraction(frame.duration) * frame.time_base
            yield TimedFrame(index, time, duration, frame.to_ndarray(format="bgr24"))
            index += 1
    finally:
        container.close()


def frame_times(path: str | Path) -> list[tuple[Fraction, Fraction]]:
    """(start, end) presentation time of every frame, in order, without decoding.

    Read from the packets' timestamps (sorted: packets come in decode order), so a whole
    clip takes milliseconds. A frame ends where the next one starts; the last one lasts
    its packet's duration (or the nominal frame time when the container gives none).
    Entries line up with :func:`iter_video` indices for every file whose packets all
    carry timestamps; packets the demuxer marks to discard are left out, as the decoder
    does. Raises :class:`InputError` when the timestamps are missing.
    """
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        stamps: list[tuple[int, int]] = []
        for packet in container.demux(stream):
            if packet.dts is None and packet.pts is None:
                continue  # the demuxer's flush packet
            if packet.pts is None or tb is None:
                raise InputError(f"{path}: video packets without timestamps")
            if not packet.is_discard:
                stamps.append((packet.pts, packet.duration or 0))
        fps = Fraction(stream.average_rate or stream.guessed_rate or 25)
    stamps.sort()
    times = [Fraction(pts) * tb for pts, _ in stamps]
    out = list(itertools.pairwise(times))
    if stamps:
        last = Fraction(stamps[-1][1]) * tb if stamps[-1][1] else 1 / fps
        out.append((times[-1], times[-1] + last))
    return out


def read_video_frame(path: str | Path, index: int) -> TimedFrame | None:
    """Frame ``index`` of a video (the ``index``-th frame :func:`iter_video` yields), or None.

    Seeks to the key frame before it and decodes from there, so frame 500 of a clip costs
    a few dozen decoded frames, not 500. The frame is found by its presentation time, read
    from the packets (:func:`frame_times`); a file without packet times is decoded from
    the start instead.
    """
    path = Path(path)
    try:
        times = frame_times(path)
    except InputError:
        times = []
    if index < 0 or (times and index >= len(times)):
        return None
    if not times:  # no timestamps to seek by: the long way
        for frame in iter_video_timed(path):
            if frame.index == index:
                return frame
        return None
    target = times[index][0]
    container = _open(path)
    try:
        stream = container.streams.video[0]
        tb = stream.time_base
        container.seek(int(target / tb), stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            time = Fraction(frame.pts) * frame.time_base
            if time < target:
                continue
            if time > target:  # the seek landed past it (a broken index): start over
                break
            duration = Fraction(frame.duration) * frame.time_base if frame.duration else None
            return TimedFrame(index, time, duration, frame.to_ndarray(format="bgr24"))
    except (av.FFmpegError, OSError) as exc:
        log.warning("%s: seeking to frame %d failed (%s); decoding from the start", path, index, exc)
    finally:
        container.close()
    for frame in iter_video_timed(path):
        if frame.index == index:
            return frame
    return None
