"""Writing faces from a store again (``alignments extract``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from swapface.align.store import AlignmentsStore
from swapface.core.errors import InputError
from swapface.curate.jobs.common import native_size


# ------------------------------------------------------------------------------ extract
@dataclass
class ExtractFacesSummary:
    out_dir: Path
    frames: int = 0  # store frames visited
    written: list[str] = field(default_factory=list)
    too_small: int = 0  # faces skipped by ``large``


def extract_faces(store_path: str | Path, source_path: str | Path, out_dir: str | Path, *,
                  every_n: int = 1, size: int = 256, large: bool = False, jpg: bool = False,
                  masks: bool = True) -> ExtractFacesSummary:
    """Write the store's faces again from the source frames, every ``every_n``-th frame.

    Faces are re-warped from the stored landmarks at ``size`` px (same face_span), with the
    same embedded metadata as ``swapface extract``. ``large`` keeps only faces whose native
    size in the frame is at least ``size`` (no upscaling).
    """
    from swapface.faces import Detection, FaceFileMeta, FoundFace, align_face, write_face_files
    from swapface.media.source import open_source

    if every_n < 1:
        raise InputError("--every-n must be at least 1")
    if size < 16:
        raise InputError("--size must be at least 16")
    out_dir = Path(out_dir)
    with AlignmentsStore(store_path, readonly=True) as store:
        frames = {f.index: f for f in store.frames() if f.index % every_n == 0}
    summary = ExtractFacesSummary(out_dir)
    if not frames:
        return summary
    source = open_source(source_path)
    ext = ".jpg" if jpg else ".png"
    skip = set(range(0, max(frames) + 1, every_n)) - set(frames)
    for frame in source.frames(every_n=every_n, skip=skip):
        record = frames.get(frame.index)
        if record is None:
            if frame.index > max(frames):
                break
            continue
        summary.frames += 1
        stem = Path(record.name).stem
        for face in record.faces:
            if large and native_size(face) < size:
                summary.too_small += 1
                continue
            found = FoundFace(Detection(face.box, face.confidence), np.asarray(face.landmarks))
            out = align_face(frame.image, found, face.face_index, size, face.face_span, face.detector)
            name = f"{stem}_{face.face_index}{ext}"
            meta = FaceFileMeta.from_record(out.record, record.name, record.index, str(source_path),
                                            str(Path(store_path).resolve()))
            write_face_files(out.image, out_dir, name, meta, "extended", out.mask if masks else None)
            summary.written.append(name)
    return summary
