"""How sharp can B's face be on A's frames? B's own detail ÷ A's, at the same face scale.

Prints :func:`swapface.evaluate.ceiling.detail_ceiling` for the training pairs, from the
stores that ``benchmarks/quality.py`` wrote:

    python benchmarks/detail_ceiling.py --work /tmp/qwork --pairs woman man

(``--work``: the folder of ``benchmarks/quality.py``, whose ``PAIR/{a,b}/alignments.db`` are
read, and the clips from ``../shared/data/video``.)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from swapface.evaluate.ceiling import ceiling_of, footage_detail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--pairs", nargs="*", default=["woman", "man"])
    parser.add_argument("--every", type=int, default=5, help="use every N-th stored frame")
    args = parser.parse_args()
    data = Path(os.environ.get("SWAPFACE_TEST_DATA", Path(__file__).parents[2] / "shared" / "data"))
    print("| pair | A's IOD px | B's IOD px | A band energies | B's at A's scale | ceiling (B ÷ A, capped) |")
    print("|---|---|---|---|---|---|")
    for pair in args.pairs:
        side = {s: (data / "video" / f"{pair}_{s}.mp4", args.work / pair / s / "alignments.db") for s in "ab"}
        e_a, iod_a = footage_detail(*side["a"], None, args.every)
        e_b, iod_b = footage_detail(*side["b"], iod_a, args.every)
        ceiling = ceiling_of(e_a, e_b)
        print(f"| {pair} | {iod_a:.0f} | {iod_b:.0f} | {', '.join(f'{v:.1f}' for v in e_a)} | "
              f"{', '.join(f'{v:.1f}' for v in e_b)} | {ceiling:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
