"""Peak memory and time of ``swapface sort`` on a 30k-face folder built from real faces.

Run: .venv/bin/python benchmarks/sort_memory.py [--faces 30000] [--work DIR]

Real faces are extracted once (with identity descriptors) from ``woman_a.mp4`` and
``woman_b.mp4``; the folder is then filled with augmented copies (small shift, brightness
change, horizontal flip) whose PNG metadata points to ONE benchmark alignments store. That
store holds one row per copy carrying the original's landmarks, matrix and identity
descriptor plus a little noise, so ``sort --by identity`` reads every descriptor from it.
``sort --by identity`` and ``sort --by hist`` then each run in a child process (in-place
renames) and the child's own peak RSS (``os.wait4``) and wall time are printed against the
1.5 GB budget.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from swapface.align.records import FaceRecord, FrameRecord
from swapface.align.store import AlignmentsStore
from swapface.core.images import _png_with_meta, read_image, read_metadata
from swapface.curate.sort import list_faces
from swapface.extract.config import ExtractConfig
from swapface.extract.run import run_extract

REPO = Path(__file__).resolve().parents[1]
BUDGET_MB = 1536.0
FRAME_FACES = 100  # benchmark store rows per frame


def data_dir() -> Path:
    return Path(os.environ.get("SWAPFACE_TEST_DATA", REPO.parent / "shared" / "data"))


def extract_real(work: Path, size: int, every_n: int) -> list[tuple[Path, Path]]:
    """(face folder, store) per clip; reuses an earlier extract in ``work``."""
    out = []
    for clip in ("woman_a", "woman_b"):
        folder, store = work / clip / "faces", work / clip / "alignments.db"
        if not (store.is_file() and folder.is_dir() and list_faces(folder)):
            t0 = time.perf_counter()
            cfg = ExtractConfig(input=data_dir() / "video" / f"{clip}.mp4", identity=True,
                                size=size, every_n=every_n, faces=str(folder),
                                alignments=store)
            summary = run_extract(cfg)
            print(f"extract {clip}: {summary.faces_written} faces in "
                  f"{time.perf_counter() - t0:.1f} s")
        out.append((folder, store))
    return out


def load_real(sources: list[tuple[Path, Path]]) -> list[tuple[np.ndarray, dict, FaceRecord]]:
    """(image, metadata, store record) of every real face that has an identity descriptor."""
    reals = []
    for folder, store_path in sources:
        with AlignmentsStore(store_path, readonly=True) as store:
            records = {rec.file: rec for _, _, rec in store.faces() if rec.file}
        for path in list_faces(folder):
            rec = records.get(path.name)
            meta = read_metadata(path)
            if rec is None or rec.identity is None or meta is None:
                continue
            reals.append((read_image(path), meta, rec))
    return reals


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    dx, dy = rng.integers(-3, 4, size=2)
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    out = cv2.warpAffine(image, shift, image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
    out = cv2.convertScaleAbs(out, alpha=1.0, beta=float(rng.uniform(-15, 15)))
    return cv2.flip(out, 1) if rng.random() < 0.5 else out


def build_folder(folder: Path, store_path: Path, reals: list, count: int, seed: int = 0) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(reals), size=count)
    names = [f"f{i:05d}_{reals[k][1]['frame']}_{reals[k][2].face_index}.png"
             for i, k in enumerate(picks)]
    noise = rng.normal(0, 0.005, size=(count, 128)).astype(np.float32)
    with AlignmentsStore(store_path) as store, store.transaction():
        for start in range(0, count, FRAME_FACES):
            frame = FrameRecord(start // FRAME_FACES, f"bench_{start // FRAME_FACES:05d}",
                                None, 1280, 720)
            for j, i in enumerate(range(start, min(start + FRAME_FACES, count))):
                rec = reals[picks[i]][2]
                frame.faces.append(FaceRecord(
                    face_index=j, box=rec.box, confidence=rec.confidence,
                    landmarks=rec.landmarks, matrix=rec.matrix, size=rec.size,
                    face_span=rec.face_span, detector=rec.detector,
                    identity=rec.identity + noise[i], blur=rec.blur, file=names[i]))
            store.put_frame(frame)
    alignments = str(store_path.resolve())

    def write(i: int) -> None:
        image, meta, _ = reals[picks[i]]
        local = np.random.default_rng(seed * 1_000_003 + i)
        ok, buf = cv2.imencode(".png", augment(image, local), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        assert ok
        frame_meta = {**meta, "alignments": alignments, "frame": f"bench_{i // FRAME_FACES:05d}",
                      "frame_index": i // FRAME_FACES, "face_index": i % FRAME_FACES}
        (folder / names[i]).write_bytes(_png_with_meta(buf.tobytes(), frame_meta))

    with cf.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(write, range(count), chunksize=256))


def run_sort(folder: Path, method: str) -> tuple[float, float, str]:
    """(seconds, peak RSS MB, output) of ``swapface sort FOLDER --by METHOD`` in a child."""
    cmd = [sys.executable, "-c", "import sys; from swapface.cli.main import main; "
           "sys.exit(main(sys.argv[1:]))", "sort", str(folder), "--by", method]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"sort --by {method} failed ({proc.returncode}):\n{output}")
    return seconds, usage.ru_maxrss / 1024.0, output  # ru_maxrss is KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=30000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--every-n", type=int, default=3)
    ap.add_argument("--work", type=Path, default=None,
                    help="keep the real extract here (reused on the next run)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sort_memory_"))
    work = args.work or tmp
    try:
        reals = load_real(extract_real(work, args.size, args.every_n))
        print(f"real faces with identity: {len(reals)}")
        folder, store = tmp / "bench" / "faces", tmp / "bench" / "alignments.db"
        t0 = time.perf_counter()
        build_folder(folder, store, reals, args.faces)
        print(f"built {args.faces} faces in {time.perf_counter() - t0:.1f} s")
        results = []
        for method in ("identity", "hist"):
            seconds, rss, output = run_sort(folder, method)
            faces = re.search(r"sorted (\d+) faces", output)
            line = (f"sort --by {method:8s}: {faces.group(1) if faces else '?'} faces, "
                    f"{seconds:6.1f} s, peak RSS {rss:7.1f} MB "
                    f"{'PASS' if rss <= BUDGET_MB else 'FAIL'} (budget {BUDGET_MB:.0f} MB)")
            if method == "identity":
                cached = re.search(r"(\d+) cached", output)
                found = re.search(r"identity: (\d+) descriptors read", output)
                from_store = int(found.group(1)) if found else 0
                encoded = (int(faces.group(1)) - int(cached.group(1)) - from_store
                           if faces and cached else "?")
                line += f"; descriptors: {from_store} from store, {encoded} computed"
            results.append(line)
            print(line, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
