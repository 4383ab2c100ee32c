"""A side-by-side still (source frame | swapped frame) for people to judge a convert at a glance."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from swapface import __version__
from swapface.core.images import write_image
from swapface.media.source import open_source


def _frame(path: Path, index: int) -> np.ndarray | None:
    for frame in open_source(path).frames():
        if frame.index == index:
            return frame.image
    return None


def side_by_side(source: Path, swapped: Path, out: Path, index: int, height: int = 360) -> Path:
    """Write frame ``index`` of ``source`` and of ``swapped`` next to each other as a PNG.

    Both are scaled to ``height``; the PNG carries the synthetic-media label like every
    other output, since half of it is swapped.
    """
    left, right = _frame(source, index), _frame(swapped, index)
    if left is None or right is None:
        raise ValueError(f"frame {index} is missing from {source if left is None else swapped}")
    tiles = [cv2.resize(img, (round(img.shape[1] * height / img.shape[0]), height),
                        interpolation=cv2.INTER_AREA) for img in (left, right)]
    gap = np.full((height, 8, 3), 255, np.uint8)
    write_image(out, np.hstack([tiles[0], gap, tiles[1]]),
                {"synthetic": True, "generator": "swapface", "version": __version__,
                 "content": f"left: frame {index} of {source.name}; right: the same frame swapped"})
    return out
