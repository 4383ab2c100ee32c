"""Writing animated GIFs through PyAV: one palette, atomic, labelled as synthetic.

A GIF has at most 256 colours per frame. One global palette for the whole animation keeps
colours from flickering between frames (per-frame palettes re-pick the colours of every
frame), so the palette is built once with FFmpeg's ``palettegen`` from the first
``palette_frames`` frames — a colour histogram, so common colours get their own entry —
and every frame is mapped onto it by ``paletteuse`` with error-diffusion dithering,
redone only inside the rectangle that changed since the previous frame (``diff_mode``),
which keeps still backgrounds still. Only those first frames are held in memory: a long
clip streams. Colours that appear only later are approximated by dithering.

GIF stores frame delays in centiseconds: frames keep their times to 10 ms, the frame
count is exact, and above 50 fps players slow the animation down (they treat delays
under 2 cs as 10 cs).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from swapface.core.errors import InputError
from swapface.core.fileio import atomic_path
from swapface.media.gif_format import add_comment, metadata_comment
from swapface.media.timeline import Time, Timeline, as_time

log = logging.getLogger(__name__)

CENTISECOND = Fraction(1, 100)
_PALETTE_BYTES = 256 * 2**20  # cap on frames held back for the palette


class GifWriter:
    """Animated GIF writer with the interface of :class:`~swapface.media.VideoWriter`.

    Use as a context manager; :meth:`write` appends BGR frames (optionally with their
    source time ``pts``), ``frames_written`` counts them. ``metadata`` is written as a
    GIF Comment Extension, one ``key=value`` per line (read it back with
    :func:`swapface.media.gif_format.read_gif_comment`). ``audio_spans`` only maps frame
    times (a GIF has no sound), exactly as in ``VideoWriter``. The file appears at
    ``path`` only when complete.
    """

    def __init__(
        self,
        path: str | Path,
        fps: Fraction | float,
        *,
        metadata: dict[str, str] | None = None,
        audio_spans: Sequence[tuple[Time, Time]] | None = None,
        palette_frames: int = 64,
        dither: str = "sierra2_4a",
    ) -> None:
        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(1001000)
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if self.fps > 50:
            log.warning("%s: %g fps is faster than GIF players show (50 fps at most); the "
                        "animation will play slower", self.path.name, float(self.fps))
        self.metadata = metadata or {}
        self.timeline = Timeline(audio_spans)
        self.palette_frames = max(1, palette_frames)
        self.dither = dither
        self._atomic = atomic_path(self.path, suffix=".part.gif", durable=True)
        self._tmp: Path | None = None
        self._out: Any = None
        self._stream: Any = None
        self._size: tuple[int, int] | None = None
        self._held: list[Any] = []  # frames waiting for the palette
        self._held_bytes = 0
        self._mapper: tuple[Any, Any, Any] | None = None  # (graph, frame source, sink)
        self._timed: bool | None = None
        self._last_pts: int | None = None
        self.frames_written = 0

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> GifWriter:
        self._tmp = self._atomic.__enter__()
        try:
            self._out = av.open(str(self._tmp), mode="w", format="gif")
        except BaseException as exc:
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            if isinstance(exc, av.FFmpegError):
                raise InputError(f"cannot write GIF {self.path}: {exc}") from exc
            raise
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        failure: BaseException | None = exc
        if failure is None:
            try:
                if self._stream is None:
                    raise ValueError("no frames were written")
                self._release_held()
                self._map(None)
                self._mux(self._stream.encode())
            except BaseException as err:
                failure = err
        try:
            self._out.close()
            if failure is None and self.metadata:
                assert self._tmp is not None
                self._tmp.write_bytes(add_comment(self._tmp.read_bytes(),
                                                  metadata_comment(self.metadata)))
        except Exception as err:
            if failure is None:
                failure = err
            else:
                log.debug("closing %s after an error: %s", self._tmp, err)
        if failure is None:
            self._atomic.__exit__(None, None, None)
            return
        self._atomic.__exit__(type(failure), failure, failure.__traceback__)
        if failure is not exc:
            raise failure

    # ------------------------------------------------------------------ frames

    def write(self, image: np.ndarray, pts: Time | None = None,
              duration: Time | None = None) -> None:
        """Append one BGR frame; ``pts``/``duration`` as in :meth:`VideoWriter.write`.

        ``duration`` is accepted for the same call shape; the GIF muxer ends the last
        frame after the delay of the one before it.
        """
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 BGR image, got shape {image.shape} {image.dtype}")
        height, width = image.shape[:2]
        if self._size is None:
            self._size = (width, height)
            self._timed = pts is not None
            if pts is not None:
                self.timeline.start_at(pts)
            stream = self._out.add_stream("gif", rate=self.fps)
            stream.width, stream.height = width, height
            stream.pix_fmt = "pal8"
            stream.codec_context.time_base = CENTISECOND
            self._stream = stream
        elif (width, height) != self._size:
            raise ValueError(f"frame {self.frames_written} is {width}x{height}, "
                             f"but the GIF is {self._size[0]}x{self._size[1]}")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = self._next_pts(pts)
        frame.time_base = CENTISECOND
        self.frames_written += 1
        if self._mapper is None:
            self._held.append(frame)
            self._held_bytes += image.nbytes
            if len(self._held) >= self.palette_frames or self._held_bytes >= _PALETTE_BYTES:
                self._release_held()
        else:
            self._map(frame)

    def _next_pts(self, pts: Time | None) -> int:
        if (pts is not None) != self._timed:
            raise ValueError("give every frame a pts, or none: the clock cannot change mid-video")
        if pts is None:
            cs = round(self.frames_written / (self.fps * CENTISECOND))
        else:
            cs = round(self.timeline.to_output(as_time(pts)) / CENTISECOND)
        if self._last_pts is not None:
            if pts is not None and cs < self._last_pts:
                raise ValueError(f"frame {self.frames_written}: pts "
                                 f"{float(as_time(pts)):.6f} s goes back in time")
            cs = max(cs, self._last_pts + 1)  # GIF cannot show two frames within 10 ms
        self._last_pts = cs
        return cs

    # ------------------------------------------------------------------ palette

    def _release_held(self) -> None:
        """Build the palette from the held frames, then map and encode them."""
        if self._mapper is not None or not self._held:
            return
        self._mapper = self._palette_mapper(self._palette(self._held))
        held, self._held = self._held, []
        self._held_bytes = 0
        for frame in held:
            self._map(frame)

    def _palette(self, frames: list[Any]) -> Any:
        width, height = self._size or (0, 0)
        graph = av.filter.Graph()
        src = graph.add_buffer(width=width, height=height, format="bgr24", time_base=CENTISECOND)
        gen = graph.add("palettegen", "max_colors=256:stats_mode=full")
        sink = graph.add("buffersink")
        src.link_to(gen)
        gen.link_to(sink)
        graph.configure()
        for frame in frames:
            src.push(frame)
        src.push(None)
        palette = sink.pull()
        palette.pts = 0
        return palette

    def _palette_mapper(self, palette: Any) -> tuple[Any, Any, Any]:
        width, height = self._size or (0, 0)
        graph = av.filter.Graph()
        frames = graph.add_buffer(width=width, height=height, format="bgr24",
                                  time_base=CENTISECOND)
        pal = graph.add_buffer(width=palette.width, height=palette.height,
                               format=palette.format, time_base=CENTISECOND)
        use = graph.add("paletteuse", f"dither={self.dither}:diff_mode=rectangle")
        sink = graph.add("buffersink")
        frames.link_to(use, 0, 0)
        pal.link_to(use, 0, 1)
        use.link_to(sink)
        graph.configure()
        pal.push(palette)
        pal.push(None)  # one palette for every frame
        return graph, frames, sink

    def _map(self, frame: Any) -> None:
        """Push a frame (None: the end) through paletteuse and encode what comes out."""
        if self._mapper is None:
            return
        _, src, sink = self._mapper
        src.push(frame)
        while True:
            try:
                mapped = sink.pull()
            except (BlockingIOError, av.error.EOFError):
                return
            self._mux(self._stream.encode(mapped))

    def _mux(self, packets: list[Any]) -> None:
        for packet in packets:
            self._out.mux(packet)
