"""Extract speed on a real clip: every available detector pipeline vs a seed-style loop.

Run: .venv/bin/python benchmarks/extract_speed.py [--clip PATH] [--workers N]

Each pipeline does the full job: detect + 68 landmarks + align + masks + faces written
(+ store). The seed-style loop is what the original scripts did: dlib HOG with upsample 1
and the 68-point predictor on every frame, one frame at a time, one process, then the
Umeyama-aligned face written with cv2.imwrite. All figures come from this one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2

from swapface.align.transform import alignment_matrix, warp_face
from swapface.extract.config import ExtractConfig
from swapface.extract.run import run_extract
from swapface.faces.detectors import DETECTORS
from swapface.media.video import iter_video, probe_video
from swapface.media.video_writer import VideoWriter

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    return Path(os.environ.get("SWAPFACE_TEST_DATA", REPO.parent / "shared" / "data"))


def seed_loop(clip: Path, out: Path, limit: int | None) -> tuple[int, int, float]:
    import dlib

    from swapface.faces.bundled import dlib_model_path

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(dlib_model_path("shape_predictor_68_face_landmarks.dat"))
    out.mkdir(parents=True, exist_ok=True)
    frames = faces = 0
    start = time.perf_counter()
    for index, _, bgr in iter_video(clip):
        if limit is not None and index >= limit:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        for i, rect in enumerate(detector(rgb, 1)):
            shape = predictor(rgb, rect)
            import numpy as np

            lm = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
            face = warp_face(bgr, alignment_matrix(lm, 256), 256)
            cv2.imwrite(str(out / f"{index:06d}_{i}.png"), face)
            faces += 1
        frames += 1
    return frames, faces, time.perf_counter() - start


def pipeline(clip: Path, out: Path, **options: object) -> tuple[int, int, float]:
    cfg = ExtractConfig(input=clip, faces=str(out / "faces"),
                        alignments=out / "alignments.db", **options)  # type: ignore[arg-type]
    start = time.perf_counter()
    summary = run_extract(cfg)
    return summary.frames_processed, summary.faces_written, time.perf_counter() - start


def first_frames(clip: Path, n: int, dst: Path) -> Path:
    """A short copy of the clip for detectors too slow to run on all of it."""
    info = probe_video(clip)
    with VideoWriter(dst, info.fps, crf=12) as writer:
        for index, _, frame in iter_video(clip):
            if index >= n:
                break
            writer.write(frame)
    return dst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=data_dir() / "video" / "woman_a.mp4")
    parser.add_argument("--workers", type=int, default=0, help="0 = one per core")
    parser.add_argument("--slow-frames", type=int, default=60,
                        help="frames for the slow neural CPU pipelines (cnn)")
    args = parser.parse_args()
    if not args.clip.is_file():
        print(f"clip not found: {args.clip}", file=sys.stderr)
        return 2
    info = probe_video(args.clip)
    print(f"clip: {args.clip.name} {info.width}x{info.height} {info.frame_count} frames; "
          f"{os.cpu_count()} CPU cores; workers={args.workers or os.cpu_count()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        short = first_frames(args.clip, args.slow_frames, tmp_path / "short.mp4")
        frames, faces, secs = seed_loop(args.clip, tmp_path / "seed", None)
        seed_fps = frames / secs
        rows.append(("seed-style loop (hog up1, 1 process)", frames, faces, secs))
        w = args.workers
        runs = [
            ("hog + tracking (default)", args.clip, {"workers": w}),
            ("hog, detect every frame", args.clip, {"workers": w, "track": False}),
            ("hog + tracking, 1 process", args.clip, {"workers": 1}),
        ]
        if DETECTORS.is_available("mtcnn"):
            runs.append(("mtcnn + tracking", args.clip, {"workers": w, "detector": "mtcnn"}))
            runs.append(("mtcnn, detect every frame", args.clip,
                         {"workers": w, "detector": "mtcnn", "track": False}))
        if DETECTORS.is_available("mediapipe"):
            runs.append(("mediapipe + mesh + tracking", args.clip,
                         {"workers": w, "detector": "mediapipe"}))
            runs.append(("mediapipe + dlib68 + tracking", args.clip,
                         {"workers": w, "detector": "mediapipe", "aligner": "dlib68"}))
        runs.append((f"cnn (mmod) + tracking, first {args.slow_frames} frames", short,
                     {"workers": w, "detector": "cnn"}))
        for i, (name, clip, opts) in enumerate(runs):
            rows.append((name, *pipeline(clip, tmp_path / f"run{i}", **opts)))
    print(f"{'pipeline':48s} {'frames':>6s} {'faces':>6s} {'sec':>7s} {'fps':>7s} {'× seed':>7s}")
    for name, frames, faces, secs in rows:
        fps = frames / secs
        print(f"{name:48s} {frames:6d} {faces:6d} {secs:7.1f} {fps:7.1f} {fps / seed_fps:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
