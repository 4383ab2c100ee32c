"""Plain data records for frames and faces, shared by the store and every stage."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from swapface.align.masks import StoredMask


@dataclass
class FaceRecord:
    face_index: int
    box: tuple[float, float, float, float]  # left, top, right, bottom in frame pixels
    confidence: float
    landmarks: np.ndarray  # (68, 2) frame pixels
    matrix: np.ndarray  # (2, 3) frame → aligned face of `size` px
    size: int
    face_span: float  # fraction of the aligned face that the mean face spans (extract's padding)
    detector: str = ""
    identity: np.ndarray | None = None  # (128,) dlib descriptor
    blur: float | None = None
    file: str | None = None  # face image path relative to the face folder
    thumbnail: bytes | None = None  # small JPEG of the aligned face
    masks: dict[str, StoredMask] = field(default_factory=dict)
    id: int | None = None  # row id in the alignments store it was read from (None: not stored)


@dataclass
class FrameRecord:
    index: int
    name: str
    timestamp: float | None
    width: int
    height: int
    faces: list[FaceRecord] = field(default_factory=list)
