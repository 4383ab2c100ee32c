"""Rebuilding a store from the metadata embedded in a face folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2

from swapface.align.landmarks import bounding_box
from swapface.align.masks import MASK_TYPES, build_mask
from swapface.align.records import FaceRecord, FrameRecord
from swapface.align.store import AlignmentsStore, backup_store
from swapface.core.errors import InputError
from swapface.core.images import encode_image, read_image
from swapface.curate.jobs.common import face_files
from swapface.faces.meta import FaceFileMeta


# ------------------------------------------------------------------------------ from-faces
@dataclass
class FromFacesSummary:
    out: Path
    frames: int = 0
    faces: int = 0
    skipped: list[str] = field(default_factory=list)  # files without usable metadata
    backup: Path | None = None


def from_faces(faces_dir: str | Path, out_path: str | Path, *,
               thumbnails: bool = True) -> FromFacesSummary:
    """Rebuild a store from the metadata embedded in a face folder's images.

    Frame sizes are not in the metadata and are stored as 0; confidence is 0 and the
    detector empty. An existing store is backed up and its frames with the same index are
    replaced.
    """
    from swapface.faces.aligned import THUMB_SIZE

    faces_dir = Path(faces_dir)
    if not faces_dir.is_dir():
        raise InputError(f"face folder not found: {faces_dir}")
    out_path = Path(out_path)
    summary = FromFacesSummary(out_path)
    frames: dict[int, FrameRecord] = {}
    source = alignments = None
    for path in face_files(faces_dir):
        rel = path.relative_to(faces_dir).as_posix()
        meta = FaceFileMeta.read(path)
        if meta is None or not meta.frame:
            summary.skipped.append(rel)
            continue
        index, name, face_index = meta.frame_index, meta.frame, meta.face_index
        source = source or meta.source
        alignments = alignments or meta.alignments
        lm = meta.landmarks
        record = FaceRecord(
            face_index=face_index, box=meta.box or bounding_box(lm), confidence=0.0,
            landmarks=lm, matrix=meta.matrix, size=meta.size, face_span=meta.face_span, file=rel,
            masks={kind: build_mask(lm, kind) for kind in MASK_TYPES},
        )
        if thumbnails:
            try:
                face = cv2.resize(read_image(path), (THUMB_SIZE, THUMB_SIZE), interpolation=cv2.INTER_AREA)
                record.thumbnail = encode_image(face, ".jpg", jpg_quality=80)
            except Exception:  # a thumbnail is optional; the landmarks are what matter
                record.thumbnail = None
        frame = frames.setdefault(index, FrameRecord(index, name, None, 0, 0))
        if any(f.face_index == face_index for f in frame.faces):
            summary.skipped.append(rel)  # a second copy of the same face
            continue
        frame.faces.append(record)
    if out_path.exists():
        summary.backup = backup_store(out_path)
    with AlignmentsStore(out_path) as store, store.transaction():
        if source:
            store.set_meta("source", source)
        store.set_meta("rebuilt_from_faces", str(faces_dir.resolve()))
        if alignments:
            store.set_meta("original_alignments", alignments)
        for index in sorted(frames):
            frame = frames[index]
            frame.faces.sort(key=lambda f: f.face_index)
            store.put_frame(frame)
            summary.frames += 1
            summary.faces += len(frame.faces)
    return summary
