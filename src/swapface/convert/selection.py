"""Which faces convert swaps: frame ranges, a cleaned face folder, reference identities.

``--input-aligned-dir``: users curate the face folder extract wrote (delete wrong people,
bad detections) and convert should only touch the faces still there. A face is kept when
its PNG's embedded metadata names its (frame index, face index), or, for images without
our metadata, when its file name matches the store's ``file`` column — so renames by
``swapface sort`` still count.

``--filter`` / ``--nfilter``: reference photos; a face is swapped only when its dlib
descriptor is within ``--ref-threshold`` of a ``--filter`` face and of no ``--nfilter``
face (faceswap declares these options for convert but ignores them). Stored descriptors are
used when extract ran with ``--identity``; otherwise one is computed from the frame.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from swapface.align.records import FaceRecord
from swapface.core.errors import InputError
from swapface.core.images import is_image_path, read_metadata

log = logging.getLogger(__name__)


def aligned_face_keys(folder: Path) -> tuple[set[tuple[int, int]], set[str]]:
    """((frame index, face index) of faces with metadata, file names of those without)."""
    if not folder.is_dir():
        raise InputError(f"--input-aligned-dir: folder not found: {folder}")
    keys: set[tuple[int, int]] = set()
    names: set[str] = set()
    for path in sorted(folder.iterdir()):
        if not (path.is_file() and is_image_path(path)):
            continue
        try:
            meta = read_metadata(path)
        except (OSError, ValueError):
            meta = None
        if meta and "frame_index" in meta and "face_index" in meta:
            keys.add((int(meta["frame_index"]), int(meta["face_index"])))
        else:
            names.add(path.name)
    if not keys and not names:
        raise InputError(f"--input-aligned-dir: no face images in {folder}")
    return keys, names


class FaceSelector:
    """Decides per face whether to swap it; counts what it rejected for the summary."""

    def __init__(self, aligned_dir: Path | None = None, identity: Any | None = None) -> None:
        self.keys: set[tuple[int, int]] | None = None
        self.names: set[str] = set()
        if aligned_dir is not None:
            self.keys, self.names = aligned_face_keys(aligned_dir)
        self.identity = identity  # IdentityFilter or None
        self._encoder: Any = None
        self.dropped_aligned = 0
        self.dropped_identity = 0

    @property
    def active(self) -> bool:
        return self.keys is not None or self.identity is not None

    def _in_folder(self, frame_index: int, face: FaceRecord) -> bool:
        if self.keys is None:
            return True
        if (frame_index, face.face_index) in self.keys:
            return True
        return face.file is not None and Path(face.file).name in self.names

    def _descriptor(self, image: np.ndarray, face: FaceRecord) -> np.ndarray:
        if face.identity is not None:
            return face.identity
        if self._encoder is None:
            from swapface.extract.identity import IdentityEncoder

            self._encoder = IdentityEncoder()
        return self._encoder.encode(image, np.asarray(face.landmarks, np.float64))

    def select(self, frame_index: int, image: np.ndarray, faces: list[FaceRecord]) -> list[FaceRecord]:
        """The faces of one frame that should be swapped."""
        kept = []
        for face in faces:
            if not self._in_folder(frame_index, face):
                self.dropped_aligned += 1
            elif self.identity is not None and not self.identity.accepts(self._descriptor(image, face)):
                self.dropped_identity += 1
            else:
                kept.append(face)
        return kept

    def lines(self) -> list[str]:
        out = []
        if self.keys is not None:
            out.append(f"skipped {self.dropped_aligned} faces not in --input-aligned-dir")
        if self.identity is not None:
            out.append(f"skipped {self.dropped_identity} faces rejected by --filter/--nfilter")
        return out
