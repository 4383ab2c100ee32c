"""Does a refactor change what ``swapface convert`` writes? Old and new code, same inputs.

Run (old code from a git worktree of the revision before the change):

    git worktree add /tmp/old <rev>
    .venv/bin/python benchmarks/convert_regression.py --old-src /tmp/old/src \\
        --input ../shared/data/video/woman_a.mp4 -m MODEL --alignments STORE \\
        [-- --mask-type components --color color-transfer ...]

Both versions run ``swapface convert`` in their own process (same interpreter, same torch) to
a folder of PNG frames; the script prints how many frames differ and by how many grey levels
at most. A refactor passes with a maximum of 1 grey level.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def convert(src: Path, args: list[str], out: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "swapface.cli.main", "convert", *args, "-o", str(out),
                    "-q"], env=env, check=True)
    return time.perf_counter() - began


def compare(a: Path, b: Path) -> tuple[int, int, int]:
    """(frames, frames that differ, max grey-level difference)."""
    names_a = sorted(p.name for p in a.glob("*.png"))
    names_b = sorted(p.name for p in b.glob("*.png"))
    if names_a != names_b:
        raise SystemExit(f"different frame files: {len(names_a)} vs {len(names_b)}")
    differ = worst = 0
    for name in names_a:
        x = cv2.imread(str(a / name), cv2.IMREAD_UNCHANGED).astype(np.int16)
        y = cv2.imread(str(b / name), cv2.IMREAD_UNCHANGED).astype(np.int16)
        diff = int(np.abs(x - y).max())
        differ += diff > 0
        worst = max(worst, diff)
    return len(names_a), differ, worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-src", type=Path, required=True, help="src/ of the old revision")
    parser.add_argument("--input", required=True)
    parser.add_argument("-m", "--model", required=True)
    parser.add_argument("--alignments", required=True)
    parser.add_argument("--work", type=Path, help="keep the frames here (default: a temp dir)")
    parser.add_argument("options", nargs="*", help="convert options after --")
    args = parser.parse_args()
    common = [args.input, "-m", args.model, "--alignments", args.alignments, *args.options]
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        old_s = convert(args.old_src.resolve(), common, work / "old")
        new_s = convert(REPO / "src", common, work / "new")
        frames, differ, worst = compare(work / "old", work / "new")
    print("| frames | differing | max diff (grey levels) | old s | new s |")
    print("|---|---|---|---|---|")
    print(f"| {frames} | {differ} | {worst} | {old_s:.1f} | {new_s:.1f} |")
    return 0 if worst <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
