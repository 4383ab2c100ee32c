"""Which stretches of a source's timeline an output keeps, and where they land in it.

A convert that drops frames (``--frame-ranges 10-50 90-100 --discard-frames``) keeps a few
*spans* of the input's timeline — (start, end) in seconds on the input file's clock, the
same clock as :attr:`swapface.media.source.Frame.time` — and butts them together in the
output. Video frames and audio packets both go through the same :class:`Timeline`, so a
kept segment's sound stays under its pictures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from swapface.media.video import frame_times

Time = Fraction | float | int
Span = tuple[Fraction, Fraction]

# Slack when matching a frame time to a span: float timestamps (Frame.timestamp) are
# within a microsecond of the exact ones that spans are usually built from.
_EPS = Fraction(1, 1_000_000)


def as_time(value: Time) -> Fraction:
    """Seconds as an exact Fraction; floats are taken to the nanosecond."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    return Fraction(value).limit_denominator(1_000_000_000)


def normalise_spans(spans: Iterable[tuple[Time, Time]]) -> list[Span]:
    """Exact, validated spans; touching neighbours are merged into one.

    Spans must be in increasing order and must not overlap: they describe which parts of
    one timeline are kept, and a part cannot be kept twice.
    """
    out: list[Span] = []
    for raw_start, raw_end in spans:
        start, end = as_time(raw_start), as_time(raw_end)
        if end <= start:
            raise ValueError(f"audio span ({float(start):g}, {float(end):g}) ends before it starts")
        if out and start < out[-1][1] - _EPS:
            raise ValueError(
                f"audio spans must be in order and not overlap: ({float(start):g}, "
                f"{float(end):g}) starts before {float(out[-1][1]):g}"
            )
        if out and start <= out[-1][1] + _EPS:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    if not out:
        raise ValueError("audio_spans is empty; pass None to keep the whole timeline")
    return out


def kept_spans(reference: str | Path, ranges: Iterable[tuple[int, int]]) -> list[Span]:
    """Time spans of the frames ``ranges`` (inclusive index pairs) of a video.

    Each span runs from the first kept frame's start to the last kept frame's end, taken
    from the packets' timestamps (so variable frame rates are exact). Indices past the
    end are clipped; overlapping or touching ranges are merged.
    """
    times = frame_times(reference)
    picked = sorted({i for lo, hi in ranges for i in range(max(lo, 0), min(hi, len(times) - 1) + 1)})
    spans: list[tuple[Time, Time]] = []
    previous = -2
    for i in picked:
        start, end = times[i]
        if i == previous + 1:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
        previous = i
    return normalise_spans(spans) if spans else []


@dataclass(frozen=True)
class Segment:
    """One kept span: ``ref_start``–``ref_end`` of the source lands at ``out_start``."""

    ref_start: Fraction
    ref_end: Fraction | None  # None: runs to the end of whatever is written
    out_start: Fraction

    @property
    def out_end(self) -> Fraction | None:
        return None if self.ref_end is None else self.out_start + self.ref_end - self.ref_start


class Timeline:
    """Maps source times to output times, cutting out everything between the spans.

    Without spans the whole source is kept and the output starts at ``origin`` (set once,
    by the writer: the first frame's time, or the reference video's start for audio).
    """

    def __init__(self, spans: Sequence[tuple[Time, Time]] | None = None) -> None:
        self.segments: list[Segment] = []
        if spans is not None:
            out = Fraction(0)
            for start, end in normalise_spans(spans):
                self.segments.append(Segment(start, end, out))
                out += end - start

    def start_at(self, origin: Time) -> None:
        """Keep everything from ``origin`` on (no-op when spans were given or already set)."""
        if not self.segments:
            self.segments.append(Segment(as_time(origin), None, Fraction(0)))

    def to_output(self, time: Time) -> Fraction:
        """Output time of source time ``time``; ValueError when no span keeps it."""
        t = as_time(time)
        for seg in self.segments:
            if t < seg.ref_start - _EPS:
                break
            if seg.ref_end is None or t < seg.ref_end - _EPS:
                return max(seg.out_start, seg.out_start + t - seg.ref_start)
        kept = ", ".join(
            f"{float(s.ref_start):.3f}-{'end' if s.ref_end is None else f'{float(s.ref_end):.3f}'}"
            for s in self.segments
        )
        raise ValueError(f"frame time {float(t):.6f} s is outside the kept spans ({kept})")
