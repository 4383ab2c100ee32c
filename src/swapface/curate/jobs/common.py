"""Helpers shared by the alignments jobs: face folders, geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from swapface.align.records import FaceRecord
from swapface.core.images import is_image_path

MULTI_FACES_DIR = "multi_faces"
NO_FACES_DIR = "no_faces"



# ------------------------------------------------------------------------------ helpers
def face_files(folder: Path) -> list[Path]:
    """Image files of a face folder: the top level and blurry/ (never masks/ or debug/)."""
    files = [p for p in folder.iterdir() if p.is_file() and is_image_path(p)]
    blurry = folder / "blurry"
    if blurry.is_dir():
        files += [p for p in blurry.iterdir() if p.is_file() and is_image_path(p)]
    return sorted(files)


def _scale(matrix: np.ndarray) -> float:
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix, np.float64)[:, :2]))))


def native_size(face: FaceRecord) -> float:
    """Frame pixels the aligned face spans: its width before any resize."""
    return face.size / _scale(face.matrix)
