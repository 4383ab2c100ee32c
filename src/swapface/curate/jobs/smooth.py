"""Temporal smoothing of landmarks along face tracks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swapface.align.masks import MASK_TYPES, build_mask
from swapface.align.records import FaceRecord
from swapface.align.store import AlignmentsStore, backup_store
from swapface.align.tracks import SMOOTH_METHODS, TrackPoint, link_tracks, smooth_track
from swapface.align.transform import alignment_matrix
from swapface.core.errors import InputError


@dataclass
class SmoothSummary:
    backup: Path | None
    faces: int = 0  # faces whose landmarks changed
    tracks: int = 0
    mean_shift: float = 0.0  # mean landmark displacement, px
    max_shift: float = 0.0


def smooth_landmarks(store_path: str | Path, *, window: int = 5, method: str = "savgol",
                     min_iou: float = 0.3, max_gap: int = 2) -> SmoothSummary:
    """Temporal smoothing of landmarks along face tracks; matrices and masks recomputed.

    A track is the same ``face_index`` in consecutive store frames whose boxes overlap
    (IoU ≥ ``min_iou``) and whose frame indices are at most ``max_gap`` apart: samples
    further apart (an every-10th-frame store) hold real motion, not jitter, and are left
    alone. Face images already on disk are not rewritten.
    """
    if window < 3 or window % 2 == 0:
        raise InputError("--window must be an odd number ≥ 3")
    if max_gap < 1:
        raise InputError("--max-gap must be at least 1")
    if method not in SMOOTH_METHODS:
        raise InputError(f"unknown smoothing method {method!r}; choose {', '.join(SMOOTH_METHODS)}")
    with AlignmentsStore(store_path, readonly=True) as store:
        faces = [(index, face) for index, _, face in store.faces()]
        kinds = store.mask_kinds()
    if not faces:
        return SmoothSummary(None)
    points = [TrackPoint(index, face.face_index, face.box) for index, face in faces]
    tracks = [[faces[p] for p in track]
              for track in link_tracks(points, min_iou=min_iou, max_gap=max_gap)]
    summary = SmoothSummary(None, tracks=len(tracks))
    updates: list[tuple[FaceRecord, np.ndarray]] = []
    shifts: list[np.ndarray] = []
    for track in tracks:
        if len(track) < 3:
            continue
        t = np.array([index for index, _ in track])
        lm = np.stack([face.landmarks.reshape(-1) for _, face in track])  # (n, 136)
        smoothed = smooth_track(t, lm, window, method)
        for (_, face), new, old in zip(track, smoothed, lm, strict=True):
            shift = np.linalg.norm((new - old).reshape(68, 2), axis=1)
            if shift.max() > 1e-4:
                updates.append((face, new.reshape(68, 2)))
                shifts.append(shift)
    if not updates:
        return summary
    summary.backup = backup_store(store_path)
    with AlignmentsStore(store_path, create=False) as store, store.transaction():
        for face, lm in updates:
            assert face.id is not None
            matrix = alignment_matrix(lm, face.size, face.face_span)
            masks = {kind: build_mask(lm, kind) for kind in kinds.get(face.id, []) if kind in MASK_TYPES}
            store.update_geometry(face.id, lm, matrix, masks)
    all_shifts = np.concatenate(shifts)
    summary.faces = len(updates)
    summary.mean_shift = float(all_shifts.mean())
    summary.max_shift = float(all_shifts.max())
    return summary
