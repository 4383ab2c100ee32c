"""Temporal stability: does the swap add flicker or shake the source did not have?

Two measures, each reported for both videos and as the ratio swapped ÷ source (1.0 = no
added flicker; a video compared with itself scores exactly 1.0):

* **Landmark jitter**: the mean size of the frame-to-frame second difference
  ``p[t+1] − 2 p[t] + p[t−1]`` of all 68 landmarks of a tracked face, in inter-ocular
  units. Smooth motion (a steady turn, a slow smile) has a small second difference;
  detector noise and a pasted face that shakes on the head have a large one. Both sides
  are mapped into the *source* face's aligned frame of that frame: that removes the head's
  own motion from both alike, while a swapped face that wobbles relative to the head still
  moves in that frame.
* **Masked frame-difference energy**: the mean squared grey-level change between
  consecutive frames inside the source faces' (dilated) landmark hull — flicker of
  colour, blending and texture that landmarks cannot see.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from swapface.align.landmarks import inter_ocular_distance
from swapface.align.transform import alignment_matrix, transform_points
from swapface.evaluate.pairing import FacePair, match_score
from swapface.faces.finder import FoundFace

MASK_GROW = 0.15  # the hull grows by about this fraction of its width on each side (seams count)


def face_region(shape: tuple[int, ...], faces: list[FoundFace]) -> np.ndarray:
    """Boolean mask: union of the faces' landmark hulls, grown about their centres."""
    mask = np.zeros(shape[:2], np.uint8)
    for face in faces:
        hull = cv2.convexHull(face.landmarks.astype(np.float32))[:, 0].astype(np.float64)
        centre = hull.mean(axis=0)
        grown = centre + (hull - centre) * (1.0 + 2.0 * MASK_GROW)
        cv2.fillConvexPoly(mask, np.round(grown).astype(np.int32), 255)
    return mask > 0


def diff_energy(prev: np.ndarray, cur: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared grey-level difference (0–255 scale) inside ``mask``."""
    a = cv2.cvtColor(prev, cv2.COLOR_BGR2GRAY).astype(np.float32)
    b = cv2.cvtColor(cur, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return float(np.square(b - a)[mask].mean()) if mask.any() else 0.0


def second_difference(track: list[np.ndarray]) -> float:
    """Mean point size of ``p[t] − 2 p[t−1] + p[t−2]`` over the last three entries."""
    a, b, c = track[-3:]
    return float(np.linalg.norm(c - 2 * b + a, axis=1).mean())


@dataclass
class _Track:
    source_face: FoundFace
    source: list[np.ndarray]  # aligned landmarks, last three frames
    swapped: list[np.ndarray]


@dataclass
class TemporalFigures:
    jitter_samples: int
    jitter_source: float | None  # inter-ocular units per frame²
    jitter_swapped: float | None
    jitter_ratio: float | None  # swapped ÷ source (1.0 = no added jitter)
    frame_diff_samples: int
    frame_diff_source: float | None  # mean squared grey change per masked pixel
    frame_diff_swapped: float | None
    frame_diff_ratio: float | None


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


@dataclass
class TemporalMetric:
    jitter: list[tuple[float, float]] = field(default_factory=list)
    energy: list[tuple[float, float]] = field(default_factory=list)
    _tracks: list[_Track] = field(default_factory=list)
    _prev: tuple[int, np.ndarray, np.ndarray] | None = None

    def add_frame(self, frame: int, source_image: np.ndarray, swapped_image: np.ndarray,
                  source_faces: list[FoundFace], pairs: list[FacePair]
                  ) -> tuple[float | None, float | None]:
        """Feed the next compared frame; returns this frame's (source, swapped) jitter or Nones.

        A gap in frame indices (``--frame-ranges``, a lost face) starts the tracks afresh.
        """
        consecutive = self._prev is not None and self._prev[0] == frame - 1
        if consecutive and source_faces:
            assert self._prev is not None
            mask = face_region(source_image.shape, source_faces)
            self.energy.append((diff_energy(self._prev[1], source_image, mask),
                                diff_energy(self._prev[2], swapped_image, mask)))
        self._prev = (frame, source_image, swapped_image)
        tracks, values = [], []
        for pair in pairs:
            to_aligned = alignment_matrix(pair.source.landmarks, 1, 1.0)
            src = transform_points(pair.source.landmarks, to_aligned)
            iod = max(inter_ocular_distance(src), 1e-6)
            swp = transform_points(pair.swapped.landmarks, to_aligned) / iod
            src = src / iod
            old = None
            if consecutive:
                old = max(self._tracks, key=lambda t: match_score(t.source_face, pair.source), default=None)
                if old is not None and match_score(old.source_face, pair.source) <= 0:
                    old = None
            track = _Track(pair.source, [*(old.source[-2:] if old else []), src],
                           [*(old.swapped[-2:] if old else []), swp])
            if len(track.source) == 3:
                values.append((second_difference(track.source), second_difference(track.swapped)))
            tracks.append(track)
        self._tracks = tracks
        self.jitter += values
        if not values:
            return None, None
        mean = np.mean(values, axis=0)
        return float(mean[0]), float(mean[1])

    def figures(self) -> TemporalFigures:
        j = np.asarray(self.jitter).reshape(-1, 2)
        e = np.asarray(self.energy).reshape(-1, 2)
        js, jw = (float(v) for v in j.mean(axis=0)) if len(j) else (None, None)
        es, ew = (float(v) for v in e.mean(axis=0)) if len(e) else (None, None)
        return TemporalFigures(
            len(j), js, jw, _ratio(jw, js) if js is not None and jw is not None else None,
            len(e), es, ew, _ratio(ew, es) if es is not None and ew is not None else None,
        )
