"""Helpers shared by the alignments jobs: backups, row listings, geometry."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np

from swapface.align.records import FaceRecord
from swapface.align.store import AlignmentsStore
from swapface.core.errors import InputError
from swapface.core.images import is_image_path

MULTI_FACES_DIR = "multi_faces"
NO_FACES_DIR = "no_faces"



# ------------------------------------------------------------------------------ helpers
def backup_store(path: str | Path) -> Path:
    """Copy ``path`` to ``<stem>.<YYYYmmdd-HHMMSS>.bak<suffix>`` beside it; return the copy."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"alignments store not found: {path}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.stem}.{stamp}.bak{path.suffix or '.db'}")
    n = 1
    while backup.exists():
        backup = path.with_name(f"{path.stem}.{stamp}-{n}.bak{path.suffix or '.db'}")
        n += 1
    src = sqlite3.connect(path)
    try:
        dst = sqlite3.connect(backup)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    return backup


def face_files(folder: Path) -> list[Path]:
    """Image files of a face folder: the top level and blurry/ (never masks/ or debug/)."""
    files = [p for p in folder.iterdir() if p.is_file() and is_image_path(p)]
    blurry = folder / "blurry"
    if blurry.is_dir():
        files += [p for p in blurry.iterdir() if p.is_file() and is_image_path(p)]
    return sorted(files)


def face_rows(store: AlignmentsStore) -> list[tuple[int, int, str, int, str | None]]:
    """(face id, frame index, frame name, face_index, file) for every face."""
    return store.conn.execute(
        "SELECT f.id, fr.idx, fr.name, f.face_index, f.file FROM faces f"
        " JOIN frames fr ON fr.id=f.frame_id ORDER BY fr.idx, f.face_index"
    ).fetchall()


def frame_faces(store: AlignmentsStore) -> list[tuple[int, str, int]]:
    """(frame index, frame name, face count) for every frame."""
    return store.conn.execute(
        "SELECT fr.idx, fr.name, COUNT(f.id) FROM frames fr LEFT JOIN faces f ON f.frame_id=fr.id"
        " GROUP BY fr.id ORDER BY fr.idx"
    ).fetchall()


def _scale(matrix: np.ndarray) -> float:
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix, np.float64)[:, :2]))))


def native_size(face: FaceRecord) -> float:
    """Frame pixels the aligned face spans: its width before any resize."""
    return face.size / _scale(face.matrix)
