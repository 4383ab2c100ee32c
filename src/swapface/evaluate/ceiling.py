"""How sharp can B's face be on A's frames? B's own footage's detail ÷ A's, at A's face scale.

The sharpness ratio compares the swapped face with the source face it replaced, so even a
perfect copy of B cannot score above what B's video holds: a softer clip, a face without
make-up or wrinkles has less band-pass energy than A's. :func:`detail_ceiling` measures that
with the sharpness figure's own bands and region: each stored face of each clip is rescaled
so its inter-ocular distance equals A's median, its band energies taken inside the eroded
landmark hull and averaged per clip; each band's B ÷ A ratio is capped at 1, then averaged
(as the sharpness ratio is). On the training pairs: woman 0.41 (woman_a wears eyeliner in a
sharper clip), man 1.00.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from swapface.align.landmarks import inter_ocular_distance
from swapface.align.store import AlignmentsStore
from swapface.evaluate.detail import INNER_ERODE, FaceRegion, band_energies
from swapface.media.video import iter_video


def _first_faces(store: Path) -> dict[int, np.ndarray]:
    with AlignmentsStore(store, readonly=True) as db:
        return {f.index: np.asarray(f.faces[0].landmarks, np.float64) for f in db.frames() if f.faces}


def footage_detail(video: Path, store: Path, iod: float | None = None, every: int = 5
                   ) -> tuple[np.ndarray, float]:
    """Mean band energies of the clip's faces (the first face of every ``every``-th stored
    frame) rescaled to inter-ocular distance ``iod`` (default: the clip's own median), and
    that median."""
    faces = _first_faces(store)
    if not faces:
        return np.full(2, np.nan), float("nan")
    median_iod = float(np.median([inter_ocular_distance(lm) for lm in faces.values()]))
    target = iod or median_iod
    wanted = sorted(faces)[::max(1, every)]
    last, rows, keep = wanted[-1], [], set(wanted)
    for index, _, image in iter_video(video):
        if index > last:
            break
        if index not in keep:
            continue
        scale = target / inter_ocular_distance(faces[index])
        resized = cv2.resize(image, None, fx=scale, fy=scale,
                             interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        region = FaceRegion.of(faces[index] * scale, resized.shape)
        if region is None:
            continue
        grey = cv2.cvtColor(region.cut(resized), cv2.COLOR_BGR2GRAY).astype(np.float32)
        rows.append(band_energies(grey, region.depth >= INNER_ERODE))
    return (np.mean(rows, axis=0) if rows else np.full(2, np.nan)), median_iod


def detail_ceiling(a_video: Path, a_store: Path, b_video: Path, b_store: Path, every: int = 5
                   ) -> float:
    """The sharpness ratio a perfect copy of B would reach on A's frames (0–1; NaN: no faces)."""
    a, iod = footage_detail(a_video, a_store, None, every)
    b, _ = footage_detail(b_video, b_store, iod, every)
    return ceiling_of(a, b)


def ceiling_of(a: np.ndarray, b: np.ndarray) -> float:
    """Band energies of A's and B's footage → the ceiling (each band's B ÷ A capped at 1,
    averaged); NaN when either clip had no faces."""
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))) or np.any(a <= 1e-9):
        return float("nan")
    return float(np.mean(np.minimum(1.0, b / a)))
