"""Progress bars with rate and ETA (tqdm), quiet when not attached to a terminal in tests."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def progress(total: int | None, desc: str, unit: str = "it", **kwargs: Any) -> tqdm:
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        dynamic_ncols=True,
        smoothing=0.1,
        file=sys.stderr,
        **kwargs,
    )
