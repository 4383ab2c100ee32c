"""What defines an extract run, checked before ``--skip-existing`` resumes one, and the
sweep of face files a fresh run left without a row.

A resume is only correct when the input still has the frames the store was made from and
the options that shape a face are the ones it was made with: otherwise the skipped frames
and the new ones would disagree (other size, other detector, a filter that the old faces
never passed). Both are refused with one line that says how to go on.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from swapface.align.store import AlignmentsStore
from swapface.core.config import to_dict
from swapface.core.errors import InputError
from swapface.core.images import is_image_path
from swapface.extract.config import ExtractConfig
from swapface.faces.meta import FaceFileMeta
from swapface.media.source import FrameSource

log = logging.getLogger(__name__)

STALE_DIR = "stale"

# Options whose change makes the faces of a resumed run differ from the stored ones.
_DEFINING = ("size", "face_span", "detector", "detector_options", "aligner", "aligner_options",
             "upsample", "min_confidence", "max_detection_size", "min_size", "rotate", "every_n",
             "filter", "nfilter", "ref_threshold", "identity", "blur_threshold", "mask_type", "jpg")


def run_definition(cfg: ExtractConfig, export_dir: Path) -> dict[str, Any]:
    """The options that define the faces a run writes (reference images by resolved path)."""
    values = to_dict(cfg)
    out = {key: values[key] for key in _DEFINING}
    out["filter"] = [str(Path(p).resolve()) for p in cfg.filter]
    out["nfilter"] = [str(Path(p).resolve()) for p in cfg.nfilter]
    out["faces"] = str(export_dir.resolve())
    return out


def _flag(key: str) -> str:
    return "--faces" if key == "faces" else "--" + key.replace("_", "-")


def check_resume(store: AlignmentsStore, source: FrameSource, definition: dict[str, Any],
                 skip_existing: bool) -> None:
    """Refuse to add to ``store`` frames from another input, or (when resuming) from a changed
    input or with changed options."""
    if not store.count_frames():
        return
    known = store.get_meta("source")
    if known and Path(known).name != source.path.name:
        raise InputError(
            f"{store.path} belongs to {known}, not {source.path}; pass --alignments for a new store")
    if not skip_existing:
        return
    again = "rerun without --skip-existing to extract it again"
    stored_count = store.get_meta("source_frames")
    if source.kind == "video" and stored_count is not None and int(stored_count) != source.count:
        raise InputError(
            f"{source.path.name} has {source.count} frames but {store.path.name} was made from a "
            f"video with {stored_count}: it is another video; {again}")
    count = source.count or 0
    moved = [name for index, name, _ in store.frame_face_counts()
             if index >= count or source.frame_name(index) != name]
    if moved:
        raise InputError(
            f"{source.path.name} changed since {store.path.name} was made: {len(moved)} stored "
            f"frame(s) no longer match their image (first: {moved[0]}; images were added, removed "
            f"or renamed), so --skip-existing would skip the wrong files; {again}")
    before = store.get_meta("run_definition")
    if not isinstance(before, dict):
        return  # a store from before run definitions were recorded
    changed = [f"{_flag(k)} {before.get(k)!r} → {definition[k]!r}"
               for k in definition if k in before and before[k] != definition[k]]
    if changed:
        raise InputError(
            f"--skip-existing with options that differ from {store.path.name}'s "
            f"({'; '.join(changed)}): resumed faces would not match the stored ones; use the "
            f"old options to resume, or {again} with the new ones")


def sweep_stale(store: AlignmentsStore, export_dir: Path) -> int:
    """Move face files left by an earlier extract of this input to ``stale/``, so training
    never reads them: a face whose (frame, face) has no row any more, or an older copy of a
    face whose stored file is there under its own name.

    Faces are matched by their embedded (frame index, face index), not by name, so files that
    ``sort`` renamed stay. Only files whose metadata names this store are touched: faces of
    other inputs that share the folder, and files that are not ours, stay where they are.
    """
    own = str(store.path.resolve())
    stored = {(ref.frame_index, ref.face_index): ref.file for ref in store.face_refs()}
    names = set(stored.values())
    moved = 0
    for folder in (export_dir, export_dir / "blurry"):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            rel = path.relative_to(export_dir).as_posix()
            # A file under a stored name is that row's face: no need to read it (the usual
            # case, so a resume of a big folder reads nothing here).
            if rel in names or not path.is_file() or not is_image_path(path):
                continue
            meta = FaceFileMeta.read(path)
            if meta is None or meta.alignments != own:
                continue
            key = meta.key
            file = stored.get(key, "")
            if key in stored and (file == rel or not file or not (export_dir / file).is_file()):
                continue
            target = export_dir / STALE_DIR / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            moved += 1
    if moved:
        log.warning("%d face file(s) from an earlier extract have no row in %s: moved to %s",
                    moved, store.path.name, export_dir / STALE_DIR)
    return moved
