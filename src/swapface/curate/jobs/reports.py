"""Reports on a store and its source: missing frames/alignments, multi-faces, no-faces."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swapface.align.store import AlignmentsStore, backup_store
from swapface.core.errors import InputError
from swapface.core.fileio import contained
from swapface.curate.jobs.common import MULTI_FACES_DIR, NO_FACES_DIR


# ------------------------------------------------------------------------------ reports
@dataclass
class FrameList:
    frames: list[tuple[int, str]]  # (index, name)
    total: int  # frames looked at

    def to_dict(self) -> dict[str, Any]:
        return {"count": len(self.frames), "total": self.total,
                "frames": [{"index": i, "name": n} for i, n in self.frames]}


def missing_frames(store_path: str | Path, source_path: str | Path) -> FrameList:
    """Frames of the source that the store does not have (by index; no decoding)."""
    from swapface.media.source import open_source

    source = open_source(source_path)
    with AlignmentsStore(store_path, readonly=True) as store:
        have = store.frame_indices()
    missing = [(i, source.frame_name(i)) for i in range(source.count) if i not in have]
    return FrameList(missing, source.count)


def missing_alignments(store_path: str | Path) -> FrameList:
    """Frames in the store with zero faces."""
    with AlignmentsStore(store_path, readonly=True) as store:
        rows = store.frame_face_counts()
    return FrameList([(i, n) for i, n, c in rows if c == 0], len(rows))


@dataclass
class MultiFacesSummary:
    frames: list[dict[str, Any]]  # {"index", "name", "faces", "files"}
    moved: int = 0
    backup: Path | None = None
    refused: list[str] = field(default_factory=list)  # names outside the folder, or taken


def multi_faces(store_path: str | Path, faces_dir: str | Path | None = None, *,
                move: bool = False) -> MultiFacesSummary:
    """Frames with more than one face; ``move`` puts their face files in multi_faces/.

    Moving updates the faces' ``file`` column so the store still finds them.
    """
    with AlignmentsStore(store_path, readonly=True) as store:
        rows = store.face_refs()
    by_frame: dict[int, list[tuple[int, str, str | None]]] = defaultdict(list)
    names: dict[int, str] = {}
    for ref in rows:
        by_frame[ref.frame_index].append((ref.id, ref.frame_name, ref.file))
        names[ref.frame_index] = ref.frame_name
    frames = [{"index": idx, "name": names[idx], "faces": len(faces),
               "files": [f for _, _, f in faces if f]}
              for idx, faces in sorted(by_frame.items()) if len(faces) > 1]
    summary = MultiFacesSummary(frames)
    if not move or not frames:
        return summary
    if faces_dir is None:
        raise InputError("--move needs the face folder")
    faces_dir = Path(faces_dir)
    target = faces_dir / MULTI_FACES_DIR
    moves: list[tuple[int, Path, str]] = []  # (face id, file now, its stored name)
    unfinished: list[Path] = []  # rows already moved by a run that was killed
    for faces in (f for f in by_frame.values() if len(f) > 1):
        for fid, _, file in faces:
            path = contained(faces_dir, file) if file else None
            if file and path is None:
                summary.refused.append(file)
                continue
            if path is None:
                continue
            if file.startswith(MULTI_FACES_DIR + "/"):
                left = faces_dir / path.name
                if not path.exists() and left.is_file() and "/" not in file[len(MULTI_FACES_DIR) + 1:]:
                    unfinished.append(left)
                continue
            if not path.is_file():
                continue
            if (target / path.name).exists():  # never replace a file already set aside
                summary.refused.append(file)
                continue
            moves.append((fid, path, file))
    if not moves and not unfinished:
        return summary
    target.mkdir(parents=True, exist_ok=True)
    if moves:
        # Rows first (backed up, one transaction), then the files: a kill in between leaves
        # rows naming multi_faces/ and files still in place, which the next run moves.
        summary.backup = backup_store(store_path)
        with AlignmentsStore(store_path, create=False) as store, store.transaction():
            for fid, path, _ in moves:
                store.set_face_file(fid, f"{MULTI_FACES_DIR}/{path.name}")
    moved: list[tuple[int, Path, str]] = []
    try:
        for path in unfinished:
            os.replace(path, target / path.name)
            summary.moved += 1
        for fid, path, file in moves:
            os.replace(path, target / path.name)
            moved.append((fid, path, file))
            summary.moved += 1
    except OSError:
        # A move failed (permissions, disk): put back what moved and the rows that said so.
        for _, path, _ in moved:
            os.replace(target / path.name, path)
        with AlignmentsStore(store_path, create=False) as store, store.transaction():
            for fid, _, file in moves:
                store.set_face_file(fid, file)
        raise
    return summary


@dataclass
class NoFacesSummary:
    frames: list[tuple[int, str]]
    moved: int = 0
    refused: list[str] = field(default_factory=list)  # names outside the folder, or taken


def no_faces(store_path: str | Path, frames_dir: str | Path | None = None, *,
             move: bool = False) -> NoFacesSummary:
    """Frames with no faces; ``move`` puts their images in ``frames_dir``/no_faces/."""
    summary = NoFacesSummary(missing_alignments(store_path).frames)
    if not move or not summary.frames:
        return summary
    if frames_dir is None or not Path(frames_dir).is_dir():
        raise InputError("--move needs the source frames folder (not a video)")
    frames_dir = Path(frames_dir)
    target = frames_dir / NO_FACES_DIR
    for _, name in summary.frames:
        path = contained(frames_dir, name)
        if path is None or "/" in name or (target / name).exists():
            summary.refused.append(name)
            continue
        if path.is_file():
            target.mkdir(exist_ok=True)
            os.replace(path, target / name)
            summary.moved += 1
    return summary
