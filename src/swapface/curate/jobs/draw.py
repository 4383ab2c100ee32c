"""Landmarks and boxes drawn onto the source frames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from swapface.align.records import FaceRecord
from swapface.align.store import AlignmentsStore
from swapface.core.images import write_image


# ------------------------------------------------------------------------------ draw
def annotate(image: np.ndarray, faces: list[FaceRecord], mask: str | None = None) -> np.ndarray:
    """A copy of ``image`` with each face's box (green), landmarks (red), index and, with
    ``mask``, its stored mask of that kind tinted blue."""
    image = image.copy()
    thick = max(1, round(max(image.shape[:2]) / 400))
    for face in faces:
        stored = face.masks.get(mask) if mask else None
        if stored is not None:
            full = cv2.warpAffine(stored.decode(), stored.matrix, image.shape[1::-1],
                                  flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)
            alpha = full[..., None].astype(np.float32) / 255 * 0.45
            image = (image * (1 - alpha) + np.array([255, 120, 0], np.float32) * alpha).astype(np.uint8)
        l, t, r, b = (round(v) for v in face.box)
        cv2.rectangle(image, (l, t), (r, b), (0, 255, 0), thick)
        cv2.putText(image, str(face.face_index), (l, max(0, t - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick, (0, 255, 0), thick)
        for x, y in face.landmarks:
            cv2.circle(image, (round(x), round(y)), thick + 1, (0, 0, 255), -1)
    return image


@dataclass
class DrawSummary:
    out_dir: Path
    written: int = 0


def draw_alignments(store_path: str | Path, source_path: str | Path,
                    out_dir: str | Path) -> DrawSummary:
    """One JPEG per frame with faces: boxes (green), landmarks (red), face index."""
    from swapface.media.source import open_source

    out_dir = Path(out_dir)
    with AlignmentsStore(store_path, readonly=True) as store:
        frames = {f.index: f for f in store.frames() if f.faces}
    summary = DrawSummary(out_dir)
    if not frames:
        return summary
    source = open_source(source_path)
    last = max(frames)
    skip = set(range(last + 1)) - set(frames)
    for frame in source.frames(skip=skip):
        record = frames.get(frame.index)
        if record is None:
            if frame.index > last:
                break
            continue
        image = annotate(frame.image, record.faces)
        write_image(out_dir / f"{Path(record.name).stem}.jpg", image)
        summary.written += 1
    return summary
