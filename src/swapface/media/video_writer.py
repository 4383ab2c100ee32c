"""Writing video through PyAV: H.264, frame-exact, atomic, audio copied from a reference."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from swapface.core.errors import InputError
from swapface.core.fileio import atomic_path
from swapface.media.audio_copy import AudioCopy
from swapface.media.timeline import Time, Timeline, as_time

log = logging.getLogger(__name__)

# Tags the MP4/MOV muxer writes as ordinary (iTunes-style) atoms. Any other key is only
# kept when the muxer is told to write "mdta" keys (movflags=use_metadata_tags).
_MP4_STANDARD_TAGS = frozenset(
    {"title", "artist", "author", "album_artist", "album", "composer", "date", "comment",
     "genre", "copyright", "grouping", "lyrics", "description", "synopsis", "show",
     "episode_id", "network", "track", "disc", "encoder", "creation_time", "language"}
)


def timed_clock(fps: Fraction) -> Fraction:
    """Time base for frames that come with their own times (variable frame rate).

    The MPEG 90 kHz clock (any source time to within 6 µs), refined so that the nominal
    frame time is a whole number of ticks: a constant-rate source then keeps its exact
    rate (29.97 = 2997/100 fps needs 1/29 970 000 s; 30 and 30000/1001 fps need 90 kHz).
    An odd average rate of a variable-rate source that would need a clock past 100 MHz
    gets plain 90 kHz.
    """
    ticks = math.lcm(90000, fps.numerator)
    return Fraction(1, ticks if ticks <= 100_000_000 else 90000)


class VideoWriter:
    """H.264 (or any PyAV codec) writer, atomic, frame-exact, optional audio from a reference.

    Frames get consecutive timestamps at ``fps``, so the output has exactly as many frames
    as were written — or, when :meth:`write` gets each frame's source time (``pts``), those
    times, so a variable-frame-rate input keeps its timing. Audio packets from
    ``audio_from`` are copied (no re-encode), shifted so that the reference's first video
    frame lines up with the first written frame, and cut where the video ends (within one
    audio packet). ``audio_spans`` (seconds on the reference's clock, e.g. from
    :func:`swapface.media.timeline.kept_spans`) keeps only the audio of those spans, butted
    together like the frames that were kept (see :mod:`swapface.media.audio_copy` for the
    packet-granular precision). ``metadata`` becomes container tags (e.g. a synthetic-media
    label). Frames of odd width/height are padded to even sizes (edge pixels repeated) for
    ``yuv420p``, the pixel format every player accepts.
    """

    def __init__(
        self,
        path: str | Path,
        fps: Fraction | float,
        *,
        audio_from: str | Path | None = None,
        audio_spans: Sequence[tuple[Time, Time]] | None = None,
        codec: str = "libx264",
        crf: int = 18,
        preset: str = "medium",
        pix_fmt: str = "yuv420p",
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(1001000)
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.codec = codec
        self.options = {"crf": str(crf), "preset": preset} if codec == "libx264" else {}
        self.pix_fmt = pix_fmt
        self.metadata = metadata or {}
        self.audio_from = Path(audio_from) if audio_from else None
        self.timeline = Timeline(audio_spans)
        # The temp file ends in the real suffix so PyAV can pick the container format.
        self._atomic = atomic_path(self.path, suffix=".part" + self.path.suffix, durable=True)
        self._tmp: Path | None = None
        self._out: Any = None
        self._stream: Any = None
        self._size: tuple[int, int] | None = None  # (width, height) of the input frames
        self._audio: AudioCopy | None = None
        self._timed: bool | None = None  # frames come with their own times (pts)
        self._last_pts: int | None = None  # in the stream's time base
        self._step = 1  # duration of the latest frame, in ticks of the stream's time base
        self._durations: dict[int, int] = {}  # pts → duration of frames still in the encoder
        self._video_end = Fraction(0)  # output seconds where the last written frame ends
        self.frames_written = 0
        self.padded = False  # True when odd-sized frames were padded to even sizes

    @property
    def audio_packets_written(self) -> int:
        return self._audio.packets_written if self._audio is not None else 0

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> VideoWriter:
        self._tmp = self._atomic.__enter__()
        try:
            if self.audio_from is not None:
                self._audio = AudioCopy(
                    self.audio_from, negative_ts_ok=_format_for(self.path) in ("mp4", "mov")
                )
            self._out = av.open(
                str(self._tmp), mode="w", format=_format_for(self.path),
                options=self._container_options(),
            )
            for key, value in self.metadata.items():
                self._out.metadata[key] = str(value)
        except BaseException as exc:
            self._close_inputs()
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            if isinstance(exc, av.FFmpegError):
                raise InputError(f"cannot write video {self.path}: {exc}") from exc
            raise
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        failure: BaseException | None = exc
        if failure is None:
            try:
                if self._stream is None:
                    raise ValueError("no frames were written")
                self._mux_video(self._stream.encode())
                # Audio past the last frame is dropped so durations stay equal.
                self._mux_audio_until(self._video_end)
            except BaseException as err:
                failure = err
        try:
            self._out.close()
        except Exception as err:  # a failure already on its way matters more
            if failure is None:
                failure = err
            else:
                log.debug("closing %s after an error: %s", self._tmp, err)
        self._close_inputs()
        if failure is None:
            self._atomic.__exit__(None, None, None)  # rename the finished file into place
            return
        self._atomic.__exit__(type(failure), failure, failure.__traceback__)  # remove it
        if failure is not exc:
            raise failure

    def _close_inputs(self) -> None:
        if self._audio is not None:
            self._audio.close()

    def _container_options(self) -> dict[str, str]:
        if _format_for(self.path) not in ("mp4", "mov"):
            return {}
        flags = "+faststart"  # index first: streamable, and a cut-off copy stays readable
        if any(key not in _MP4_STANDARD_TAGS for key in self.metadata):
            flags += "+use_metadata_tags"
        return {"movflags": flags}

    def _mux_audio_until(self, seconds: Fraction) -> None:
        if self._audio is not None:
            self._audio.mux_until(self._out, seconds)

    # ------------------------------------------------------------------ video

    def _open_video_stream(self, width: int, height: int, first_pts: Time | None) -> None:
        stream = self._out.add_stream(self.codec, rate=self.fps, options=self.options)
        stream.width, stream.height = width, height
        stream.pix_fmt = self.pix_fmt
        ctx = stream.codec_context
        self._timed = first_pts is not None
        ctx.time_base = timed_clock(self.fps) if self._timed else 1 / self.fps
        self._step = round(1 / (self.fps * ctx.time_base))
        # Convert with BT.709 and say so in the stream: players then show the same colours
        # whatever the frame size (untagged SD and HD are guessed differently).
        ctx.colorspace = 1  # AVCOL_SPC_BT709
        ctx.color_primaries = 1
        ctx.color_trc = 1
        ctx.color_range = 1  # limited ("tv") range
        self._stream = stream
        # Without spans the output starts at the first frame: its own time when given,
        # else the reference's first video frame (the frames are the reference's frames).
        if first_pts is not None:
            self.timeline.start_at(first_pts)
        elif self._audio is not None:
            self.timeline.start_at(self._audio.video_start)
        if self._audio is not None:
            self._audio.add_stream(self._out, self.timeline, self.path)  # video is stream 0

    def _next_pts(self, pts: Time | None, duration: Time | None) -> int:
        """The stream timestamp of the next frame, in the codec's time base.

        Also sets ``_step``, the frame's duration in ticks: ``duration`` when given, else
        the interval from the frame before (the nominal frame time for the first).
        """
        if (pts is not None) != self._timed:
            raise ValueError("give every frame a pts, or none: the clock cannot change mid-video")
        tb = self._stream.codec_context.time_base
        if pts is None:
            ticks = self.frames_written
        else:
            ticks = round(self.timeline.to_output(as_time(pts)) / tb)
            if self._last_pts is not None:
                if ticks < self._last_pts:
                    raise ValueError(f"frame {self.frames_written}: pts "
                                     f"{float(as_time(pts)):.6f} s goes back in time")
                ticks = max(ticks, self._last_pts + 1)  # two times within one tick
                self._step = ticks - self._last_pts
        if duration is not None:
            self._step = max(1, round(as_time(duration) / tb))
        return ticks

    def _mux_video(self, packets: list[Any]) -> None:
        # Encoders give packets the nominal 1/fps; the muxer takes every duration but the
        # last from the next timestamp, and the last one sets where the video ends.
        for packet in packets:
            if packet.pts in self._durations:
                packet.duration = self._durations.pop(packet.pts)
            self._out.mux(packet)

    def write(self, image: np.ndarray, pts: Time | None = None,
              duration: Time | None = None) -> None:
        """Append one BGR frame (all frames must share the first frame's size).

        ``pts``: the frame's presentation time in seconds on the source's clock
        (:attr:`Frame.time <swapface.media.source.Frame.time>`), given for every frame or
        for none. Given, the output keeps those times (relative to the first frame, with
        ``audio_spans`` cut out and closed up), so a variable frame rate survives.
        ``duration`` (:attr:`Frame.duration`) only matters for the last frame, which ends
        the video; without it the last frame lasts as long as the one before (or 1/fps).
        """
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 BGR image, got shape {image.shape} {image.dtype}")
        height, width = image.shape[:2]
        if self._size is None:
            self._size = (width, height)
            out_w, out_h = width, height
            if self.pix_fmt in ("yuv420p", "yuvj420p", "nv12"):
                out_w, out_h = width + width % 2, height + height % 2
                self.padded = (out_w, out_h) != (width, height)
                if self.padded:
                    log.info("padding %dx%d frames to %dx%d for %s", width, height,
                             out_w, out_h, self.pix_fmt)
            self._open_video_stream(out_w, out_h, pts)
        elif (width, height) != self._size:
            raise ValueError(
                f"frame {self.frames_written} is {width}x{height}, "
                f"but the video is {self._size[0]}x{self._size[1]}"
            )
        frame_pts = self._next_pts(pts, duration)
        if self.padded:
            image = cv2.copyMakeBorder(
                image, 0, height % 2, 0, width % 2, cv2.BORDER_REPLICATE
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame = frame.reformat(
            format=self.pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG"
        ) if self.pix_fmt.startswith("yuv") else frame
        # Timestamps count frames (or clock ticks) in the codec's time base; the muxer
        # rescales them to whatever time base the container settles on.
        frame.pts = frame_pts
        frame.time_base = self._stream.codec_context.time_base
        self._durations[frame_pts] = self._step
        self._mux_video(self._stream.encode(frame))
        self._last_pts = frame_pts
        self.frames_written += 1
        self._video_end = (frame_pts + self._step) * frame.time_base
        self._mux_audio_until(self._video_end)


def _format_for(path: Path) -> str | None:
    formats = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
    return formats.get(path.suffix.lower())
