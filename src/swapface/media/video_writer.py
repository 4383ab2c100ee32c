"""Writing video through PyAV: H.264, frame-exact, atomic, audio copied from a reference."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from swapface.core.errors import InputError
from swapface.core.fileio import atomic_path
from swapface.media.video import open_input

log = logging.getLogger(__name__)

# Tags the MP4/MOV muxer writes as ordinary (iTunes-style) atoms. Any other key is only
# kept when the muxer is told to write "mdta" keys (movflags=use_metadata_tags).
_MP4_STANDARD_TAGS = frozenset(
    {"title", "artist", "author", "album_artist", "album", "composer", "date", "comment",
     "genre", "copyright", "grouping", "lyrics", "description", "synopsis", "show",
     "episode_id", "network", "track", "disc", "encoder", "creation_time", "language"}
)


class VideoWriter:
    """H.264 (or any PyAV codec) writer, atomic, frame-exact, optional audio from a reference.

    Frames get consecutive timestamps at ``fps``, so the output has exactly as many frames
    as were written. Audio packets from ``audio_from`` are copied (no re-encode), shifted
    so that the reference's first video frame lines up with the first written frame, and
    cut where the video ends (within one audio packet). ``metadata`` becomes container tags
    (e.g. a synthetic-media label). Frames of odd width/height are padded to even sizes
    (edge pixels repeated) for ``yuv420p``, the pixel format every player accepts.
    """

    def __init__(
        self,
        path: str | Path,
        fps: Fraction | float,
        *,
        audio_from: str | Path | None = None,
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
        # The temp file ends in the real suffix so PyAV can pick the container format.
        self._atomic = atomic_path(self.path, suffix=".part" + self.path.suffix)
        self._tmp: Path | None = None
        self._out: Any = None
        self._stream: Any = None
        self._size: tuple[int, int] | None = None  # (width, height) of the input frames
        self._audio_in: Any = None
        self._audio_src: Any = None
        self._audio_out: Any = None
        self._audio_packets: Iterator[Any] | None = None
        self._pending_audio: Any = None
        self._audio_offset = Fraction(0)  # reference time of its first video frame
        self._primer: Any = None  # last audio packet before that time
        # MP4/MOV store audio that starts before the video with an edit list.
        self._negative_ts_ok = _format_for(self.path) in ("mp4", "mov")
        self.frames_written = 0
        self.audio_packets_written = 0
        self.padded = False  # True when odd-sized frames were padded to even sizes

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> VideoWriter:
        self._tmp = self._atomic.__enter__()
        try:
            if self.audio_from is not None:
                self._open_audio_reference(self.audio_from)
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
                for packet in self._stream.encode():
                    self._out.mux(packet)
                # Audio past the last frame is dropped so durations stay equal.
                self._mux_audio_until(self.frames_written / self.fps)
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
        if self._audio_in is not None:
            self._audio_in.close()
            self._audio_in = None
        self._audio_packets = None

    def _container_options(self) -> dict[str, str]:
        if _format_for(self.path) not in ("mp4", "mov"):
            return {}
        flags = "+faststart"  # index first: streamable, and a cut-off copy stays readable
        if any(key not in _MP4_STANDARD_TAGS for key in self.metadata):
            flags += "+use_metadata_tags"
        return {"movflags": flags}

    # ------------------------------------------------------------------ audio

    def _open_audio_reference(self, path: Path) -> None:
        src = open_input(path)
        if not src.streams.audio:
            log.info("%s has no audio stream; writing video only", path)
            src.close()
            return
        self._audio_in = src
        self._audio_src = src.streams.audio[0]
        video = src.streams.video[0] if src.streams.video else None
        if video is not None and video.start_time is not None and video.time_base is not None:
            # The written frames are the reference's frames from its first one on, so the
            # audio is shifted by the same amount (some files start video late, e.g. 0.85 s).
            self._audio_offset = Fraction(video.start_time) * video.time_base

    def _add_audio_stream(self) -> None:
        if self._audio_src is None:
            return
        name = self._audio_src.codec_context.name
        supported = getattr(self._out, "supported_codecs", None)
        if supported is not None and name not in supported:
            log.warning(
                "audio codec %s of %s cannot be stored in %s; writing video only",
                name, self.audio_from, self.path.suffix,
            )
            self._close_inputs()
            return
        self._audio_out = self._out.add_stream_from_template(self._audio_src)
        self._audio_packets = self._audio_in.demux(self._audio_src)

    def _mux_audio_until(self, seconds: float | Fraction) -> None:
        """Copy audio packets that start before ``seconds`` of output time."""
        while self._audio_packets is not None:
            packet = self._pending_audio
            self._pending_audio = None
            if packet is None:
                packet = next(self._audio_packets, None)
            if packet is None:
                self._audio_packets = None
                return
            if packet.dts is None or packet.time_base is None:  # flush packet from the demuxer
                continue
            tb = packet.time_base
            start = Fraction(packet.pts if packet.pts is not None else packet.dts) * tb
            end = start + Fraction(packet.duration or 0) * tb
            if end <= self._audio_offset:
                # Before the first frame. Keep only the packet right before it (below),
                # which primes the decoder; the MP4 edit list hides its samples.
                self._primer = packet
                continue
            if start < self._audio_offset and not self._negative_ts_ok:
                # Matroska & co. cannot start a stream before 0: the muxer would shift
                # every stream instead. Start the audio with the first whole packet.
                continue
            if start - self._audio_offset >= seconds:
                self._pending_audio = packet
                return
            if self._primer is not None and self._negative_ts_ok:
                self._mux_audio_packet(self._primer)
            self._primer = None
            self._mux_audio_packet(packet)

    def _mux_audio_packet(self, packet: Any) -> None:
        shift = round(self._audio_offset / packet.time_base)
        if packet.pts is not None:
            packet.pts -= shift
        packet.dts -= shift
        packet.stream = self._audio_out
        self._out.mux(packet)
        self.audio_packets_written += 1

    # ------------------------------------------------------------------ video

    def _open_video_stream(self, width: int, height: int) -> None:
        stream = self._out.add_stream(self.codec, rate=self.fps, options=self.options)
        stream.width, stream.height = width, height
        stream.pix_fmt = self.pix_fmt
        ctx = stream.codec_context
        ctx.time_base = Fraction(1, 1) / self.fps
        # Convert with BT.709 and say so in the stream: players then show the same colours
        # whatever the frame size (untagged SD and HD are guessed differently).
        ctx.colorspace = 1  # AVCOL_SPC_BT709
        ctx.color_primaries = 1
        ctx.color_trc = 1
        ctx.color_range = 1  # limited ("tv") range
        self._stream = stream
        self._add_audio_stream()  # after the video, so video is stream 0

    def write(self, image: np.ndarray) -> None:
        """Append one BGR frame (all frames must share the first frame's size)."""
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
            self._open_video_stream(out_w, out_h)
        elif (width, height) != self._size:
            raise ValueError(
                f"frame {self.frames_written} is {width}x{height}, "
                f"but the video is {self._size[0]}x{self._size[1]}"
            )
        if self.padded:
            image = cv2.copyMakeBorder(
                image, 0, height % 2, 0, width % 2, cv2.BORDER_REPLICATE
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame = frame.reformat(
            format=self.pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG"
        ) if self.pix_fmt.startswith("yuv") else frame
        # Timestamps count frames in the codec's time base (1/fps); the muxer rescales
        # them to whatever time base the container settles on.
        frame.pts = self.frames_written
        frame.time_base = self._stream.codec_context.time_base
        for packet in self._stream.encode(frame):
            self._out.mux(packet)
        self.frames_written += 1
        self._mux_audio_until(self.frames_written / self.fps)


def _format_for(path: Path) -> str | None:
    formats = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
    return formats.get(path.suffix.lower())
