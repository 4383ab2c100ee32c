"""Detector recall, false detections and landmark error on hand-labelled stills.

Run: .venv/bin/python benchmarks/detector_accuracy.py

Uses ../shared/data/stills/dlib_faces (43 labelled faces, mostly 37-60 px) and
../shared/data/negatives (no faces). A face counts as found when a detection's centre lies
in the labelled box and its width is within a factor of 2. Landmark error is the mean
point distance over the inter-ocular distance (outer eye corners).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from swapface.align.landmarks import inter_ocular_distance
from swapface.core.images import is_image_path, read_image
from swapface.faces.aligners import ALIGNERS
from swapface.faces.detectors import DETECTORS
from swapface.faces.finder import FaceFinder

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.landmark_xml import read_labelled_faces  # noqa: E402


def evaluate(detector: str, aligner: str, upsample: int, data: Path) -> tuple[int, int, float, int, float]:
    finder = FaceFinder(DETECTORS.create(detector, {"upsample": upsample}), ALIGNERS.create(aligner))
    labelled = read_labelled_faces(data / "stills" / "dlib_faces")
    by_image: dict[str, list] = {}
    for face in labelled:
        by_image.setdefault(face.image, []).append(face)
    found = false = 0
    errors = []
    start = time.perf_counter()
    for name, faces in by_image.items():
        detected = finder.find(read_image(data / "stills" / "dlib_faces" / name))
        used = set()
        for face in faces:
            l, t, r, b = face.box
            for i, det in enumerate(detected):
                cx, cy = det.detection.center
                ratio = det.detection.width / (r - l)
                if i not in used and l <= cx <= r and t <= cy <= b and 0.5 <= ratio <= 2:
                    used.add(i)
                    found += 1
                    err = np.linalg.norm(det.landmarks - face.landmarks, axis=1).mean()
                    errors.append(err / inter_ocular_distance(face.landmarks))
                    break
        false += len(detected) - len(used)
    seconds = time.perf_counter() - start
    negatives = sum(len(finder.find(read_image(p))) for p in sorted((data / "negatives").iterdir())
                    if is_image_path(p))
    return found, false, float(np.mean(errors)) if errors else float("nan"), negatives, seconds


def main() -> int:
    data = Path(os.environ.get("SWAPFACE_TEST_DATA", REPO.parent / "shared" / "data"))
    runs = [("hog", "dlib68", 0), ("hog", "dlib68", 1), ("hog", "dlib68", 2), ("cnn", "dlib68", 1)]
    if DETECTORS.is_available("mtcnn"):
        runs += [("mtcnn", "dlib68", 1), ("mtcnn", "dlib68", 2)]
    if DETECTORS.is_available("mediapipe"):
        runs += [("mediapipe", "dlib68", 1), ("mediapipe", "mediapipe", 1)]
    print(f"{'detector':10s} {'aligner':10s} {'up':>3s} {'found':>7s} {'false':>6s} "
          f"{'NME':>6s} {'neg FP':>7s} {'sec':>6s}")
    for detector, aligner, up in runs:
        found, false, nme, neg, secs = evaluate(detector, aligner, up, data)
        print(f"{detector:10s} {aligner:10s} {up:3d} {found:4d}/43 {false:6d} {nme:6.3f} {neg:7d} "
              f"{secs:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
