"""The metadata every extracted face file carries, read and written in one place.

Extract embeds it as JSON in each face image (PNG ``iTXt`` chunk, JPEG comment; see
:mod:`swapface.core.images`), so a face folder can always be re-linked to its store, sorted by
pose without the store, and trained on with its landmarks. Field names are the store's:
``matrix`` maps frame pixels into the aligned face of ``size`` px, ``face_span`` is the
fraction of that face the mean face spans. Files written before those names existed carry
``warp_matrix`` and ``coverage``; they are read under the new names.

A file received from someone else may carry anything: :meth:`FaceFileMeta.read` returns
None for a file without usable metadata instead of raising, whatever the damage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from swapface import __version__
from swapface.align.records import FaceRecord
from swapface.align.transform import DEFAULT_FACE_SPAN, transform_points
from swapface.core.images import read_metadata

log = logging.getLogger(__name__)

_LEGACY = {"warp_matrix": "matrix", "coverage": "face_span"}
_INT_LIMIT = 2**31  # indices and sizes beyond this are damage, and SQLite could not store them


def _round(a: Any, digits: int) -> list[Any]:
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


def _finite(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape or not np.isfinite(arr).all() or np.abs(arr).max(initial=0) > 1e6:
        raise ValueError(f"{what} must be {shape} finite numbers within ±1e6")
    return arr


@dataclass
class FaceFileMeta:
    frame: str  # the source frame's name
    frame_index: int
    face_index: int
    landmarks: np.ndarray  # (68, 2) frame pixels
    matrix: np.ndarray  # (2, 3) frame pixels → aligned face of ``size`` px
    size: int
    face_span: float = DEFAULT_FACE_SPAN
    box: tuple[float, float, float, float] | None = None  # frame pixels
    source: str = ""  # the input extract read
    alignments: str = ""  # the alignments store the face belongs to
    version: str = __version__

    @property
    def key(self) -> tuple[int, int]:
        """(frame index, face index): what identifies the face in its store, whatever its name."""
        return self.frame_index, self.face_index

    def aligned_landmarks(self, size: int | None = None) -> np.ndarray:
        """The landmarks in aligned-face pixels, at ``size`` px (default: as written)."""
        points = transform_points(self.landmarks, self.matrix)
        return points if size is None else points * (size / self.size)

    @classmethod
    def from_record(cls, record: FaceRecord, frame: str, frame_index: int, source: str = "",
                    alignments: str = "") -> FaceFileMeta:
        return cls(frame=frame, frame_index=frame_index, face_index=record.face_index,
                   landmarks=np.asarray(record.landmarks, np.float64),
                   matrix=np.asarray(record.matrix, np.float64), size=int(record.size),
                   face_span=float(record.face_span), box=tuple(map(float, record.box)),  # type: ignore[arg-type]
                   source=source, alignments=alignments)

    def to_dict(self) -> dict[str, Any]:
        return {
            "swapface": self.version,
            "source": self.source,
            "frame": self.frame,
            "frame_index": int(self.frame_index),
            "face_index": int(self.face_index),
            "box": None if self.box is None else _round(self.box, 2),
            "landmarks": _round(self.landmarks, 3),
            "matrix": _round(self.matrix, 8),
            "size": int(self.size),
            "face_span": float(self.face_span),
            "alignments": self.alignments,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaceFileMeta:
        """Parse embedded metadata; ``ValueError`` says what is missing or malformed."""
        if not isinstance(data, dict):
            raise ValueError("metadata is not a JSON object")
        data = {_LEGACY.get(k, k): v for k, v in data.items()}
        try:
            frame_index, face_index, size = (data["frame_index"], data["face_index"], data["size"])
            if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < _INT_LIMIT
                       for v in (frame_index, face_index, size)) or size < 1:
                raise ValueError("frame_index, face_index and size must be whole numbers "
                                 f"from 0 to {_INT_LIMIT}")
            span = float(data.get("face_span") or DEFAULT_FACE_SPAN)
            box = data.get("box")
            return cls(
                frame=str(data.get("frame", "")), frame_index=frame_index, face_index=face_index,
                landmarks=_finite(data["landmarks"], (68, 2), "landmarks"),
                matrix=_finite(data["matrix"], (2, 3), "matrix"), size=size,
                face_span=span if 0.0 < span <= 1.0 else DEFAULT_FACE_SPAN,
                box=None if box is None else tuple(_finite(box, (4,), "box").tolist()),  # type: ignore[arg-type]
                source=str(data.get("source", "")), alignments=str(data.get("alignments", "")),
                version=str(data.get("swapface", "")),
            )
        except KeyError as exc:
            raise ValueError(f"metadata lacks {exc.args[0]!r}") from None
        except (TypeError, OverflowError) as exc:
            raise ValueError(f"malformed metadata: {exc}") from exc

    @classmethod
    def read(cls, path: str | Path) -> FaceFileMeta | None:
        """The face metadata of an image file; None when it has none or it is unusable."""
        try:
            data = read_metadata(path)
        except OSError as exc:
            log.debug("%s: unreadable (%s)", path, exc)
            return None
        if data is None:
            return None
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            log.debug("%s: face metadata ignored: %s", path, exc)
            return None
