"""Temporal smoothing of landmarks along face tracks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swapface.align.masks import MASK_TYPES, build_mask
from swapface.align.store import AlignmentsStore
from swapface.align.tracks import SMOOTH_METHODS, TrackPoint, link_tracks, smooth_track
from swapface.align.transform import alignment_matrix
from swapface.core.errors import InputError
from swapface.curate.jobs.common import backup_store


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
        rows = store.conn.execute(
            "SELECT f.id, fr.idx, f.face_index, f.x0, f.y0, f.x1, f.y1, f.landmarks, f.size,"
            " f.coverage FROM faces f JOIN frames fr ON fr.id=f.frame_id"
            " ORDER BY fr.idx, f.face_index"
        ).fetchall()
        kinds = dict(store.conn.execute("SELECT face_id, group_concat(kind) FROM masks GROUP BY face_id"))
    if not rows:
        return SmoothSummary(None)
    points = [TrackPoint(r[1], r[2], tuple(r[3:7])) for r in rows]
    tracks = [[rows[p] for p in track]
              for track in link_tracks(points, min_iou=min_iou, max_gap=max_gap)]
    summary = SmoothSummary(None, tracks=len(tracks))
    updates: list[tuple[int, np.ndarray, int, float]] = []
    shifts: list[np.ndarray] = []
    for track in tracks:
        if len(track) < 3:
            continue
        t = np.array([r[1] for r in track])
        lm = np.stack([np.frombuffer(r[7], "<f4").astype(np.float64) for r in track])  # (n, 136)
        smoothed = smooth_track(t, lm, window, method)
        for r, new, old in zip(track, smoothed, lm, strict=True):
            shift = np.linalg.norm((new - old).reshape(68, 2), axis=1)
            if shift.max() > 1e-4:
                updates.append((r[0], new.reshape(68, 2), r[8], r[9]))
                shifts.append(shift)
    if not updates:
        return summary
    summary.backup = backup_store(store_path)
    with AlignmentsStore(store_path, create=False) as store, store.transaction():
        for fid, lm, size, coverage in updates:
            matrix = alignment_matrix(lm, size, coverage)
            store.conn.execute(
                "UPDATE faces SET landmarks=?, matrix=? WHERE id=?",
                (np.asarray(lm, "<f4").tobytes(), np.asarray(matrix, "<f8").tobytes(), fid),
            )
            for kind in (kinds.get(fid) or "").split(","):
                if kind in MASK_TYPES:
                    mask = build_mask(lm, kind)
                    store.conn.execute(
                        "UPDATE masks SET matrix=?, data=? WHERE face_id=? AND kind=?",
                        (np.asarray(mask.matrix, "<f8").tobytes(), mask.data, fid, kind),
                    )
    all_shifts = np.concatenate(shifts)
    summary.faces = len(updates)
    summary.mean_shift = float(all_shifts.mean())
    summary.max_shift = float(all_shifts.max())
    return summary
