"""Merging two stores into a new one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swapface.align.records import FaceRecord, FrameRecord
from swapface.align.store import AlignmentsStore
from swapface.core.errors import InputError


# ------------------------------------------------------------------------------ merge
@dataclass
class MergeSummary:
    out: Path
    frames: int = 0
    faces: int = 0
    duplicates: int = 0


def _same_face(a: FaceRecord, b: FaceRecord, tol: float = 1.0) -> bool:
    d = np.linalg.norm(np.asarray(a.landmarks) - np.asarray(b.landmarks), axis=1)
    return bool(d.max() <= tol)


def merge_stores(a_path: str | Path, b_path: str | Path, out_path: str | Path) -> MergeSummary:
    """Union of two stores by frame name into a new store.

    Frames in both get A's faces then B's, renumbered 0..n-1, B faces whose landmarks lie
    within 1 px of a kept face dropped. Frame indices come from A; a B-only frame keeps its
    index unless A uses it, then it goes after the last index.
    """
    out_path = Path(out_path)
    if out_path.exists():
        raise InputError(f"{out_path} exists; merge writes a new store")
    with AlignmentsStore(a_path, readonly=True) as a, AlignmentsStore(b_path, readonly=True) as b:
        merged: dict[str, FrameRecord] = {f.name: f for f in a.frames(with_masks=True)}
        meta = a.meta()
        summary = MergeSummary(out_path)
        used = {f.index for f in merged.values()}
        late: list[FrameRecord] = []
        for frame in b.frames(with_masks=True):
            have = merged.get(frame.name)
            if have is None:
                if frame.index in used:
                    late.append(frame)
                else:
                    used.add(frame.index)
                    merged[frame.name] = frame
                continue
            for face in frame.faces:
                if any(_same_face(face, kept) for kept in have.faces):
                    summary.duplicates += 1
                else:
                    have.faces.append(face)
            if not have.width and frame.width:
                have.width, have.height = frame.width, frame.height
        nxt = max(used, default=-1) + 1
        for frame in late:
            frame.index = nxt
            nxt += 1
            merged[frame.name] = frame
    tmp = out_path.with_name(f".{out_path.name}.part")
    tmp.unlink(missing_ok=True)
    try:
        with AlignmentsStore(tmp) as out, out.transaction():
            for key, value in meta.items():
                out.set_meta(key, value)
            out.set_meta("merged_from", [str(a_path), str(b_path)])
            for frame in sorted(merged.values(), key=lambda f: f.index):
                for i, face in enumerate(frame.faces):
                    face.face_index = i
                out.put_frame(frame)
                summary.frames += 1
                summary.faces += len(frame.faces)
        os.replace(tmp, out_path)
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)
    return summary
