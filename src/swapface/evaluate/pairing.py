"""Faces on both sides of a swap, found the same way, and paired frame by frame.

Why detect on both sides instead of reading the source's alignments store: the swapped
video has no store, so its landmarks must come from a detector; running the *same*
detector and aligner on the source makes every metric symmetric — a video compared with
itself scores exactly zero error (and ratio 1.0) because both sides see identical landmark
noise, while store landmarks (possibly smoothed or hand-edited) would bias the comparison.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from swapface.evaluate.config import EvaluateConfig
from swapface.faces.finder import FaceFinder, FinderOptions, FoundFace
from swapface.media.source import Frame, FrameSource

MIN_IOU = 0.3  # boxes of the same face on both sides overlap far more than this
MAX_CENTRE = 0.5  # ... or their centres lie within half a face width


@dataclass
class FacePair:
    """One face of a compared frame: the source face and the swapped face at its place."""

    position: int  # index among the compared frames
    frame: int  # source frame index
    source: FoundFace
    swapped: FoundFace


def make_finders(cfg: EvaluateConfig) -> tuple[FaceFinder, FaceFinder]:
    """Two finders (one per side, each with its own tracking) on one set of loaded models."""
    names = [f.name for f in dataclasses.fields(FinderOptions)]
    first = FaceFinder.create(FinderOptions(**{n: getattr(cfg, n) for n in names}))
    return first, first.spawn()


def _box(face: FoundFace) -> tuple[float, float, float, float]:
    return face.detection.box


def match_score(a: FoundFace, b: FoundFace) -> float:
    """IoU of the boxes, or (when they barely overlap) a small score from centre distance."""
    (al, at, ar, ab), (bl, bt, br, bb) = _box(a), _box(b)
    iw, ih = max(0.0, min(ar, br) - max(al, bl)), max(0.0, min(ab, bb) - max(at, bt))
    inter = iw * ih
    union = (ar - al) * (ab - at) + (br - bl) * (bb - bt) - inter
    iou = inter / union if union > 0 else 0.0
    if iou >= MIN_IOU:
        return iou
    (ax, ay), (bx, by) = a.detection.center, b.detection.center
    width = max(1.0, (a.detection.width + b.detection.width) / 2)
    dist = float(np.hypot(ax - bx, ay - by)) / width
    return (MIN_IOU * (1.0 - dist / MAX_CENTRE)) if dist < MAX_CENTRE else 0.0


def pair_faces(source: list[FoundFace], swapped: list[FoundFace]
               ) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Greedy best-first pairing: (pairs (i_source, j_swapped), unpaired source, unpaired swapped)."""
    scores = [(match_score(s, w), i, j) for i, s in enumerate(source) for j, w in enumerate(swapped)]
    used_s: set[int] = set()
    used_w: set[int] = set()
    pairs = []
    for score, i, j in sorted(scores, reverse=True):
        if score <= 0.0 or i in used_s or j in used_w:
            continue
        pairs.append((i, j))
        used_s.add(i)
        used_w.add(j)
    return (sorted(pairs), [i for i in range(len(source)) if i not in used_s],
            [j for j in range(len(swapped)) if j not in used_w])


def compared_frames(cfg: EvaluateConfig, source: FrameSource, swapped: FrameSource
                    ) -> Iterator[tuple[Frame, Frame]]:
    """(source frame, swapped frame) in order; stops at the end of the shorter side.

    The swapped side's n-th frame belongs to the n-th source frame inside ``--frame-ranges``
    (convert ``--discard-frames`` writes exactly those, in order).
    """
    if cfg.samples:  # both videos hold every frame: read the same sample of each
        last = max(hi for _, hi in cfg.samples)
        skip = {i for i in range(min(source.count, last + 1)) if not cfg.sampled(i)}
        for pair in zip(source.frames(skip=skip), swapped.frames(skip=skip), strict=False):
            if pair[0].index > last:  # past the sample: stop decoding the rest of both
                return
            yield pair
        return
    if not cfg.ranges:
        yield from zip(source.frames(), swapped.frames(), strict=False)
        return
    last = max(hi for _, hi in cfg.ranges)
    skip = {i for i in range(min(source.count, last + 1)) if not cfg.in_ranges(i)}

    def inside() -> Iterator[Frame]:
        for frame in source.frames(skip=skip):
            if frame.index > last:  # past the last range: stop decoding the rest of the video
                return
            yield frame

    yield from zip(inside(), swapped.frames(), strict=False)


def expected_source_frames(cfg: EvaluateConfig, source: FrameSource) -> int:
    """How many source frames the swapped side should hold."""
    if cfg.samples:
        return sum(1 for i in range(source.count) if cfg.sampled(i))
    if not cfg.ranges:
        return source.count
    return sum(1 for i in range(source.count) if cfg.in_ranges(i))
