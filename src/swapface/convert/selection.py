"""Which faces convert swaps by the face folder: only the faces still in a cleaned folder.

``--faces DIR`` (``--input-aligned-dir``): users curate the face folder extract wrote
(delete wrong people, bad detections) and convert should only touch the faces still there.
A face is kept when a file's embedded metadata names its (frame index, face index), or,
for images without our metadata, when its file name matches the store's ``file`` column —
so renames by ``swapface sort`` still count. Reference photos (``--filter``/``--nfilter``)
are the swap engine's own selection (:meth:`swapface.swap.FrameSwapper.select`).
"""

from __future__ import annotations

from pathlib import Path

from swapface.align.records import FaceRecord
from swapface.core.errors import InputError
from swapface.core.images import is_image_path
from swapface.faces.meta import FaceFileMeta


def aligned_face_keys(folder: Path) -> tuple[set[tuple[int, int]], set[str]]:
    """((frame index, face index) of faces with metadata, file names of those without)."""
    if not folder.is_dir():
        raise InputError(f"--faces: folder not found: {folder}")
    keys: set[tuple[int, int]] = set()
    names: set[str] = set()
    for path in sorted(folder.iterdir()):
        if not (path.is_file() and is_image_path(path)):
            continue
        meta = FaceFileMeta.read(path)
        if meta is not None:
            keys.add(meta.key)
        else:
            names.add(path.name)
    if not keys and not names:
        raise InputError(f"--faces: no face images in {folder}")
    return keys, names


class FaceFolderFilter:
    """Keeps the faces that are still in a face folder; counts the others."""

    def __init__(self, folder: Path) -> None:
        self.keys, self.names = aligned_face_keys(folder)
        self.dropped = 0

    def keep(self, frame_index: int, faces: list[FaceRecord]) -> list[FaceRecord]:
        kept = [f for f in faces if (frame_index, f.face_index) in self.keys
                or (f.file is not None and Path(f.file).name in self.names)]
        self.dropped += len(faces) - len(kept)
        return kept
