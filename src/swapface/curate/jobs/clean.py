"""Jobs that keep a store in step with a cleaned face folder: remove-faces, rename."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from swapface.align.store import AlignmentsStore, backup_store
from swapface.core.errors import InputError
from swapface.core.fileio import contained
from swapface.curate.jobs.common import face_files
from swapface.faces.meta import FaceFileMeta


# ------------------------------------------------------------------------------ remove-faces
@dataclass
class RemoveFacesSummary:
    backup: Path | None
    removed: list[str]  # face files no longer in the folder whose rows were dropped
    kept: int


def remove_faces(store_path: str | Path, faces_dir: str | Path) -> RemoveFacesSummary:
    """Drop every face whose image file no longer exists in ``faces_dir``."""
    faces_dir = Path(faces_dir)
    if not faces_dir.is_dir():
        raise InputError(f"face folder not found: {faces_dir}")
    with AlignmentsStore(store_path, readonly=True) as store:
        rows = store.face_refs()
    gone = [(r.id, r.file) for r in rows
            if r.file and not ((path := contained(faces_dir, r.file)) and path.is_file())]
    if not gone:
        return RemoveFacesSummary(None, [], len(rows))
    backup = backup_store(store_path)
    with AlignmentsStore(store_path, create=False) as store, store.transaction():
        store.delete_faces([fid for fid, _ in gone])
    return RemoveFacesSummary(backup, [file for _, file in gone], len(rows) - len(gone))


# ------------------------------------------------------------------------------ rename
@dataclass
class RenameSummary:
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (old, new) relative names
    unchanged: int = 0
    no_metadata: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # "old -> new: reason"
    backup: Path | None = None
    store_updated: int = 0


def rename_faces(faces_dir: str | Path, store_path: str | Path | None = None) -> RenameSummary:
    """Rename face images back to ``<frame stem>_<face_index><ext>`` from their metadata.

    Two-phase (every file to a temporary name first) so a cycle of names never overwrites
    anything; a target taken by a file that is not being renamed, or wanted by two files,
    is a conflict and those files keep their names. masks/ is left alone: its files keep
    the source names extract gave them. With a store, the faces' ``file`` column is updated.
    """
    faces_dir = Path(faces_dir)
    if not faces_dir.is_dir():
        raise InputError(f"face folder not found: {faces_dir}")
    summary = RenameSummary()
    plan: dict[Path, Path] = {}
    keys: dict[Path, tuple[int, int]] = {}
    for path in face_files(faces_dir):
        meta = FaceFileMeta.read(path)
        if meta is None or not meta.frame:
            summary.no_metadata.append(str(path.relative_to(faces_dir)))
            continue
        target = path.with_name(f"{Path(meta.frame).stem}_{meta.face_index}{path.suffix}")
        keys[path] = meta.key
        if target == path:
            summary.unchanged += 1
        else:
            plan[path] = target
    moving = set(plan)
    wanted: dict[Path, list[Path]] = defaultdict(list)
    for src, dst in plan.items():
        wanted[dst].append(src)
    final: dict[Path, Path] = {}
    for dst, srcs in wanted.items():
        rel = dst.relative_to(faces_dir)
        if len(srcs) > 1:
            summary.conflicts += [f"{s.relative_to(faces_dir)} -> {rel}: wanted by {len(srcs)} files"
                                  for s in srcs]
        elif dst.exists() and dst not in moving:
            summary.conflicts.append(f"{srcs[0].relative_to(faces_dir)} -> {rel}: target exists")
        else:
            final[srcs[0]] = dst
    # A file that stays (conflict) may itself be the target of another rename: drop those too.
    changed = True
    while changed:
        changed = False
        for src, dst in list(final.items()):
            if dst in moving and dst not in final:
                summary.conflicts.append(
                    f"{src.relative_to(faces_dir)} -> {dst.relative_to(faces_dir)}: target kept its name"
                )
                del final[src]
                changed = True
    temp: list[tuple[Path, Path, Path]] = []
    for n, (src, dst) in enumerate(final.items()):
        tmp = src.with_name(f".rename-{os.getpid()}-{n}{src.suffix}")
        os.replace(src, tmp)
        temp.append((src, tmp, dst))
    for src, tmp, dst in temp:
        os.replace(tmp, dst)
        summary.renamed.append((str(src.relative_to(faces_dir)), str(dst.relative_to(faces_dir))))
    if store_path is not None and final:
        summary.backup = backup_store(store_path)
        with AlignmentsStore(store_path, create=False) as store, store.transaction():
            for src, dst in final.items():
                frame_index, face_index = keys[src]
                summary.store_updated += store.set_face_file_at(
                    frame_index, face_index, dst.relative_to(faces_dir).as_posix())
    return summary
