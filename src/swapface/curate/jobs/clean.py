"""Jobs that keep a store in step with a cleaned face folder: remove-faces, rename."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from swapface.align.store import AlignmentsStore, backup_store
from swapface.core.errors import InputError
from swapface.core.fileio import contained
from swapface.core.images import is_image_path
from swapface.curate.jobs.common import face_files
from swapface.faces.meta import FaceFileMeta

# ------------------------------------------------------------------------------ remove-faces
_NOT_FACES = {"masks", "debug"}  # folders of a face folder that hold no face images
MOST = 0.5  # dropping more than this share of the faces needs --force


@dataclass
class RemoveFacesSummary:
    backup: Path | None
    removed: list[str]  # face files no longer in the folder whose rows were dropped
    kept: int
    relinked: int = 0  # rows whose face was found under another name (after a sort)


def _face_images(faces_dir: Path) -> dict[str, Path]:
    """Every face image below ``faces_dir`` (sort's group folders, blurry/, multi_faces/),
    by its ``/``-separated name relative to the folder."""
    out = {}
    for path in sorted(faces_dir.rglob("*")):
        rel = path.relative_to(faces_dir)
        if path.is_file() and is_image_path(path) and not _NOT_FACES & set(rel.parts[:-1]):
            out[rel.as_posix()] = path
    return out


def remove_faces(store_path: str | Path, faces_dir: str | Path,
                 force: bool = False) -> RemoveFacesSummary:
    """Drop every face whose image is no longer in ``faces_dir``.

    A face counts as present under its stored name or under any name whose embedded
    metadata names it (frame index, face index): ``sort`` renames files without touching
    the store, and the store follows (``relinked``). Dropping most faces is refused unless
    ``force``: that is what a wrong folder looks like, not a cleaning session.
    """
    faces_dir = Path(faces_dir)
    if not faces_dir.is_dir():
        raise InputError(f"face folder not found: {faces_dir}")
    images = _face_images(faces_dir)
    with AlignmentsStore(store_path, readonly=True) as store:
        rows = store.face_refs()
    missing = [r for r in rows if r.file and not (r.file in images and contained(faces_dir, r.file))]
    by_key: dict[tuple[int, int], str] = {}
    if missing:  # only then is every file's metadata worth reading
        for name, path in images.items():
            meta = FaceFileMeta.read(path)
            if meta is not None:
                by_key.setdefault(meta.key, name)
    gone, relink = [], []
    for r in missing:
        found = by_key.get((r.frame_index, r.face_index))
        if found is not None:
            relink.append((r.id, found))
        else:
            gone.append((r.id, r.file))
    with_files = sum(1 for r in rows if r.file)
    if gone and not force and len(gone) > MOST * with_files:
        raise InputError(
            f"{len(gone)} of {with_files} faces have no image in {faces_dir}: is it the right "
            "folder? Nothing was changed; pass --force to drop them")
    if not gone and not relink:
        return RemoveFacesSummary(None, [], len(rows))
    backup = backup_store(store_path)
    with AlignmentsStore(store_path, create=False) as store, store.transaction():
        store.delete_faces([fid for fid, _ in gone])
        for fid, name in relink:
            store.set_face_file(fid, name)
    return RemoveFacesSummary(backup, [file for _, file in gone], len(rows) - len(gone),
                              len(relink))


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
    # The store first (backed up, one transaction), then the files: a kill in between leaves
    # rows that already name the targets and files whose metadata names them too, so running
    # rename again finishes the job (it renames by metadata, temporary names included).
    if store_path is not None and final:
        summary.backup = backup_store(store_path)
        with AlignmentsStore(store_path, create=False) as store, store.transaction():
            for src, dst in final.items():
                frame_index, face_index = keys[src]
                summary.store_updated += store.set_face_file_at(
                    frame_index, face_index, dst.relative_to(faces_dir).as_posix())
    temp: list[tuple[Path, Path, Path]] = []
    for n, (src, dst) in enumerate(final.items()):
        tmp = src.with_name(f".rename-{os.getpid()}-{n}{src.suffix}")
        os.replace(src, tmp)
        temp.append((src, tmp, dst))
    for src, tmp, dst in temp:
        os.replace(tmp, dst)
        summary.renamed.append((str(src.relative_to(faces_dir)), str(dst.relative_to(faces_dir))))
    return summary
