"""How sharp can B's face be on A's frames? B's own detail ÷ A's, at the same face scale.

The sharpness ratio of ``swapface evaluate`` compares the swapped face with the source face
it replaced. Even a perfect copy of B cannot score above what B's video holds: a softer
video, a face without make-up or fewer wrinkles has less band-pass energy than A's. This
measures that ceiling with evaluate's own bands and region: every frame's face (landmarks
from the extract store), rescaled so its inter-ocular distance equals A's median, band
energies inside the eroded hull; the ratio of B's mean to A's (each band capped at 1, then
averaged, as evaluate does).

    python benchmarks/detail_ceiling.py --work /tmp/qwork --pairs woman man

(``--work``: the folder of ``benchmarks/quality.py``, whose ``PAIR/{a,b}/alignments.db`` are
read, and the clips from ``../shared/data/video``.)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from swapface.align.landmarks import inter_ocular_distance
from swapface.align.store import AlignmentsStore
from swapface.evaluate.detail import INNER_ERODE, FaceRegion, band_energies
from swapface.media.video import iter_video


def energies(video: Path, store: Path, scale_to: float | None, every: int) -> tuple[np.ndarray, float]:
    """Mean band energies of the video's faces (every ``every``-th frame) and the median IOD."""
    with AlignmentsStore(store, readonly=True) as db:
        landmarks = {f.index: f.faces[0].landmarks for f in db.frames() if f.faces}
    iods = [inter_ocular_distance(np.asarray(lm, np.float64)) for lm in landmarks.values()]
    median_iod = float(np.median(iods))
    target = scale_to or median_iod
    rows = []
    for index, _, image in iter_video(video):
        if index % every or index not in landmarks:
            continue
        lm = np.asarray(landmarks[index], np.float64)
        s = target / inter_ocular_distance(lm)
        scaled = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1
                            else cv2.INTER_CUBIC)
        region = FaceRegion.of(lm * s, scaled.shape)
        if region is None:
            continue
        grey = cv2.cvtColor(region.cut(scaled), cv2.COLOR_BGR2GRAY).astype(np.float32)
        rows.append(band_energies(grey, region.depth >= INNER_ERODE))
    return np.mean(rows, axis=0), median_iod


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--pairs", nargs="*", default=["woman", "man"])
    parser.add_argument("--every", type=int, default=5, help="use every N-th frame")
    args = parser.parse_args()
    data = Path(os.environ.get("SWAPFACE_TEST_DATA", Path(__file__).parents[2] / "shared" / "data"))
    print("| pair | A's IOD px | B's IOD px | A band energies | B's at A's scale | ceiling (B ÷ A, capped) |")
    print("|---|---|---|---|---|---|")
    for pair in args.pairs:
        e_a, iod_a = energies(data / "video" / f"{pair}_a.mp4", args.work / pair / "a" / "alignments.db",
                              None, args.every)
        e_b, iod_b = energies(data / "video" / f"{pair}_b.mp4", args.work / pair / "b" / "alignments.db",
                              iod_a, args.every)
        ceiling = float(np.mean(np.minimum(1.0, e_b / e_a)))
        print(f"| {pair} | {iod_a:.0f} | {iod_b:.0f} | {', '.join(f'{v:.1f}' for v in e_a)} | "
              f"{', '.join(f'{v:.1f}' for v in e_b)} | {ceiling:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
