"""Stream-copying a reference's audio into a new video, following a :class:`Timeline`.

Packets are copied as they are (no decode, no re-encode: no quality loss, no codec to
configure); only their timestamps change. That makes every cut packet-granular:

* The first kept segment is placed exactly: packets keep their offset to the video, so
  sync is as good as the source's. The packet that straddles the segment's start is
  kept, and in MP4/MOV also the one before it, with negative timestamps the edit list
  hides — the AAC decoder needs it to prime. Containers that cannot start a stream
  before 0 (Matroska) start with the first whole packet instead.
* After a cut, audio continues with no gap and no overlap (players handle neither
  well): the next packet is the one whose middle lies past the point of the source
  that the audio clock has reached. So each later segment's audio starts within half a
  packet of its video (AAC at 44.1 kHz: 1024 samples, ±11.6 ms), far below what lip sync
  can show, and the error does not add up from cut to cut.
* A segment ends with the last packet whose middle lies inside it; the audio ends with
  the last packet that starts before the last frame ends. Each cut is thus off by at
  most one packet in length, and the audio of a cut segment may click once where the
  decoder joins two packets that were not neighbours.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

from swapface.media.timeline import Segment, Timeline
from swapface.media.video import open_input

log = logging.getLogger(__name__)


class AudioCopy:
    """The audio stream of ``reference``, copied into an output container on demand.

    ``negative_ts_ok``: the output container can hold packets before time 0 (MP4/MOV edit
    lists), used for the decoder-priming packet.
    """

    def __init__(self, reference: Path, *, negative_ts_ok: bool) -> None:
        self.reference = reference
        self.negative_ts_ok = negative_ts_ok
        self.packets_written = 0
        self.video_start = Fraction(0)  # reference time of its first video frame
        self._in: Any = open_input(reference)  # InputError for a missing / broken file
        self._src: Any = None
        self._out_stream: Any = None
        self._plan: Iterator[tuple[Any, int]] | None = None
        self._pending: tuple[Any, int] | None = None
        if not self._in.streams.audio:
            log.info("%s has no audio stream; writing video only", reference)
            self.close()
            return
        self._src = self._in.streams.audio[0]
        video = self._in.streams.video[0] if self._in.streams.video else None
        if video is not None and video.start_time is not None and video.time_base is not None:
            # Written frames start at the reference's first frame, so the audio is shifted
            # by the same amount (some files start video late, e.g. 0.85 s).
            self.video_start = Fraction(video.start_time) * video.time_base

    @property
    def available(self) -> bool:
        return self._src is not None

    def close(self) -> None:
        if self._in is not None:
            self._in.close()
            self._in = None
        self._src = None
        self._plan = None

    def add_stream(self, out: Any, timeline: Timeline, target: Path) -> None:
        """Add the audio stream to ``out`` and start copying along ``timeline``."""
        if self._src is None:
            return
        name = self._src.codec_context.name
        supported = getattr(out, "supported_codecs", None)
        if supported is not None and name not in supported:
            log.warning("audio codec %s of %s cannot be stored in %s; writing video only",
                        name, self.reference, target.suffix)
            self.close()
            return
        self._out_stream = out.add_stream_from_template(self._src)
        self._plan = self._planned(list(timeline.segments))

    def mux_until(self, out: Any, seconds: Fraction) -> None:
        """Mux the planned packets that start before ``seconds`` of output time."""
        while self._plan is not None:
            if self._pending is None:
                self._pending = next(self._plan, None)
                if self._pending is None:
                    self._plan = None
                    return
            packet, pts = self._pending
            if pts * packet.time_base >= seconds:
                return
            self._pending = None
            delta = pts - (packet.pts if packet.pts is not None else packet.dts)
            packet.pts = pts
            packet.dts += delta
            packet.stream = self._out_stream
            out.mux(packet)
            self.packets_written += 1

    def _planned(self, segments: list[Segment]) -> Iterator[tuple[Any, int]]:
        """(packet, output pts in the packet's time base) for every packet kept, in order."""
        k = 0
        cursor: int | None = None  # output pts where the last planned packet ends
        primer: tuple[Any, int] | None = None  # (packet, its pts) right before the start
        for packet in self._in.demux(self._src):
            if packet.dts is None or packet.time_base is None:  # the demuxer's flush packet
                continue
            tb = packet.time_base
            pts = packet.pts if packet.pts is not None else packet.dts
            start, half = Fraction(pts) * tb, Fraction(packet.duration or 0) * tb / 2
            while k < len(segments):
                seg = segments[k]
                if cursor is None:  # first audio of the output: exact offset to the video
                    shift = round((seg.ref_start - seg.out_start) / tb)
                    if start + 2 * half <= seg.ref_start:
                        primer = (packet, pts - shift)
                        break
                    out = pts - shift
                    if out < 0 and not self.negative_ts_ok:
                        break  # cannot start before 0: begin with the first whole packet
                else:  # after a cut: go on without a gap, from where the audio clock is
                    if start + half <= seg.ref_start + cursor * tb - seg.out_start:
                        break
                    out = cursor
                if seg.ref_end is not None and (
                    start + half >= seg.ref_end
                    or out * tb + half >= seg.out_start + seg.ref_end - seg.ref_start
                ):
                    k += 1
                    continue
                if cursor is None and primer is not None and self.negative_ts_ok \
                        and seg.out_start == 0:
                    yield primer  # primes the decoder; the edit list hides its samples
                primer = None
                cursor = out + (packet.duration or 0)  # now: muxing rescales the packet
                yield packet, out
                break
            else:
                return
