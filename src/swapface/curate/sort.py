"""Sort and group a folder of extracted faces; every rename is logged and undoable.

Features stream over the folder (one image in memory at a time) and are cached in
``.swapface_sort_cache.npz`` keyed by file name, mtime and size. Moves happen in two
phases — every file to a unique temp name, then every temp name to its final name — so a
collision can never overwrite a face, and the JSON log written before the first move lets
``--undo`` restore the names even after a crash half-way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from swapface.core.errors import InputError
from swapface.core.fileio import atomic_path, atomic_write_bytes, sweep_partials
from swapface.core.images import ImageReadError, is_image_path
from swapface.core.progress import SILENT, Progress
from swapface.curate.config import SortConfig
from swapface.curate.features import (
    FaceItem,
    FeatureContext,
    identity_clusters,
    sort_method,
    strip_sort_prefix,
)

log = logging.getLogger(__name__)

CACHE_NAME = ".swapface_sort_cache.npz"
LOG_PREFIX = "sort_log_"
_TMP_PREFIX = ".sorttmp_"


def list_faces(folder: Path) -> list[Path]:
    """Face images directly in ``folder`` (not masks/, not hidden files), by name."""
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and is_image_path(p) and not p.name.startswith(".")
    )


# ---------------------------------------------------------------- cache


class FeatureCache:
    """Per-feature vectors keyed by (file name, mtime ns, size); NumPy npz, no pickle."""

    def __init__(self, folder: Path, enabled: bool = True) -> None:
        self.path = folder / CACHE_NAME
        self.enabled = enabled
        self.data: dict[str, dict[str, tuple[int, int, np.ndarray]]] = {}
        self.dirty = False
        if enabled and self.path.is_file():
            try:
                with np.load(self.path, allow_pickle=False) as npz:
                    feats = {k.rsplit(".", 1)[0] for k in npz.files}
                    for feat in feats:
                        names, mtimes = npz[f"{feat}.names"], npz[f"{feat}.mtime"]
                        sizes, values = npz[f"{feat}.size"], npz[f"{feat}.values"]
                        self.data[feat] = {
                            str(n): (int(m), int(s), values[i])
                            for i, (n, m, s) in enumerate(zip(names, mtimes, sizes, strict=True))
                        }
            except (OSError, ValueError, KeyError) as exc:
                log.warning("ignoring unreadable sort cache %s: %s", self.path, exc)
                self.data = {}

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int]:
        st = path.stat()
        return st.st_mtime_ns, st.st_size

    def get(self, feature: str, path: Path) -> np.ndarray | None:
        entry = self.data.get(feature, {}).get(path.name)
        if entry is None or (entry[0], entry[1]) != self._stamp(path):
            return None
        return entry[2]

    def put(self, feature: str, path: Path, value: np.ndarray) -> None:
        self.data.setdefault(feature, {})[path.name] = (*self._stamp(path), np.asarray(value))
        self.dirty = True

    def rename(self, old: str, new: str) -> None:
        for entries in self.data.values():
            if old in entries:
                entries[new] = entries.pop(old)
                self.dirty = True

    def save(self) -> None:
        if not (self.enabled and self.dirty):
            return
        arrays: dict[str, np.ndarray] = {}
        for feat, entries in self.data.items():
            if not entries:
                continue
            names = list(entries)
            width = max(len(np.asarray(v[2]).reshape(-1)) for v in entries.values())
            values = np.zeros((len(names), width), dtype=np.float64)
            for i, n in enumerate(names):
                vec = np.asarray(entries[n][2], dtype=np.float64).reshape(-1)
                values[i, : len(vec)] = vec
            arrays[f"{feat}.names"] = np.asarray(names, dtype=str)
            arrays[f"{feat}.mtime"] = np.asarray([entries[n][0] for n in names], dtype=np.int64)
            arrays[f"{feat}.size"] = np.asarray([entries[n][1] for n in names], dtype=np.int64)
            arrays[f"{feat}.values"] = values
        try:
            with atomic_path(self.path, suffix=".tmp") as tmp, open(tmp, "wb") as fh:
                np.savez(fh, allow_pickle=False, **arrays)
        except OSError as exc:
            log.warning("cannot write sort cache %s: %s", self.path, exc)
        self.dirty = False


def compute_features(paths: list[Path], method: str, cache: FeatureCache,
                     context: FeatureContext, progress: Progress = SILENT
                     ) -> tuple[np.ndarray, list[Path], int]:
    """(n × d feature matrix, faces that scored, how many came from the cache)."""
    spec = sort_method(method)
    rows: list[np.ndarray] = []
    kept: list[Path] = []
    cached = 0
    bar = progress.task(f"sort {method}", len(paths), "face")
    try:
        for path in paths:
            value = cache.get(spec.feature, path)
            if value is None:
                try:
                    value = np.asarray(spec.compute(FaceItem(path, context)), dtype=np.float64)
                except (ImageReadError, InputError, KeyError, ValueError, cv2.error) as exc:
                    log.warning("skipping %s: %s", path.name, exc)
                    bar.advance()
                    continue
                cache.put(spec.feature, path, value)
            else:
                cached += 1
            rows.append(np.asarray(value, dtype=np.float64).reshape(-1))
            kept.append(path)
            bar.advance()
    finally:
        bar.close()
    if not rows:
        return np.zeros((0, 1)), kept, cached
    width = max(len(r) for r in rows)
    values = np.zeros((len(rows), width))
    for i, r in enumerate(rows):
        values[i, : len(r)] = r
    return values, kept, cached


# ---------------------------------------------------------------- grouping


def group_faces(values: np.ndarray, method: str, bins: int, threshold: float
                ) -> tuple[np.ndarray, list[str]]:
    """(group index per face, folder name per group)."""
    n = len(values)
    if method == "identity":
        labels = identity_clusters(values, threshold)
        count = int(labels.max()) + 1 if n else 0
        sizes = np.bincount(labels, minlength=count)
        return labels, [f"{g:03d}_identity_{int(sizes[g])}" for g in range(count)]
    spec = sort_method(method)
    order = spec.order(values)
    labels = np.zeros(n, dtype=np.int64)
    names = []
    for g, chunk in enumerate(np.array_split(order, min(bins, max(n, 1)))):
        labels[chunk] = g
        if spec.column is not None and len(chunk):
            col = values[chunk, spec.column]
            names.append(f"{g:03d}_{method}_{col.min():.4g}_{col.max():.4g}")
        else:
            names.append(f"{g:03d}_{method}")
    return labels, names


# ---------------------------------------------------------------- moving files


def _unique(path: Path, taken: set[Path]) -> Path:
    candidate, k = path, 1
    while candidate in taken or candidate.exists():
        candidate = path.with_name(f"{path.stem}_dup{k}{path.suffix}")
        k += 1
    taken.add(candidate)
    return candidate


def _write_log(path: Path, payload: dict[str, Any]) -> None:
    atomic_write_bytes(path, json.dumps(payload, indent=1).encode("utf-8"))


def _log_path(folder: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, k = folder / f"{LOG_PREFIX}{stamp}.json", 1
    while path.exists():
        path = folder / f"{LOG_PREFIX}{stamp}_{k}.json"
        k += 1
    return path


LOG_FORMAT = 2  # 2: "new" relative to the log's folder, "old"/"tmp" relative to "input"


def _relative_entries(entries: list[dict[str, str]], log_dir: Path, input_dir: Path
                      ) -> list[dict[str, str]]:
    """What the log records: paths relative to its own folder and to the input folder, so
    an undo works from any working directory and a moved folder pair still undoes."""
    out = []
    for e in entries:
        rel = {"old": os.path.relpath(e["old"], input_dir), "new": os.path.relpath(e["new"], log_dir)}
        if "tmp" in e:
            rel["tmp"] = os.path.relpath(e["tmp"], input_dir)
        out.append(rel)
    return out


def apply_plan(plan: list[tuple[Path, Path]], copy: bool, log_path: Path,
               info: dict[str, Any]) -> list[dict[str, str]]:
    """Move (two phases) or copy ``src → dst`` pairs, logging every rename first.

    Returns the entries with absolute paths; ``info["input"]`` is the resolved input folder.
    """
    token = uuid.uuid4().hex[:8]
    log_dir, input_dir = log_path.resolve().parent, Path(info["input"])
    sources = {src for src, _ in plan}
    taken: set[Path] = set()
    entries = []
    for i, (src, dst) in enumerate(plan):
        if dst in taken or (dst.exists() and dst not in sources):
            dst = _unique(dst, taken)
        taken.add(dst)
        entry = {"old": str(src.resolve()), "new": str(dst.resolve())}
        if not copy:
            entry["tmp"] = str(src.resolve().with_name(f"{_TMP_PREFIX}{token}_{i}{src.suffix}"))
        entries.append(entry)
    created = sorted({Path(e["new"]).parent for e in entries if not Path(e["new"]).parent.exists()})
    payload = {**info, "format": LOG_FORMAT, "mode": "copy" if copy else "move",
               "state": "pending",
               "created_dirs": [os.path.relpath(d, log_dir) for d in created],
               "renames": _relative_entries(entries, log_dir, input_dir)}
    _write_log(log_path, payload)
    for d in created:
        d.mkdir(parents=True, exist_ok=True)
    if copy:
        for e in entries:
            shutil.copy2(e["old"], e["new"])
    else:
        for e in entries:  # phase 1: out of the way, to names nothing else uses
            os.rename(e["old"], e["tmp"])
        for e in entries:  # phase 2: temp → final; _unique above ruled out foreign files
            target = Path(e["new"])
            if target.exists():
                target = _unique(target, set())
                e["new"] = str(target)
            os.rename(e["tmp"], target)
    payload["state"] = "done"
    payload["renames"] = _relative_entries(entries, log_dir, input_dir)
    _write_log(log_path, payload)
    return entries


@dataclass
class UndoSummary:
    restored: int = 0
    removed_copies: int = 0
    missing: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # entries pointing where a sort never writes

    def lines(self) -> list[str]:
        out = [f"undo: {self.restored} restored, {self.removed_copies} copies removed"]
        if self.missing:
            out.append(f"missing: {len(self.missing)} (e.g. {self.missing[0]})")
        if self.refused:
            out.append(f"refused: {len(self.refused)} log entries outside the sorted folders "
                       f"(e.g. {self.refused[0]}); those files were not touched")
        return out


_DUP = re.compile(r"_dup\d+$")


def _face_name(path: Path) -> tuple[str, str]:
    """A file's name as sort leaves it unchanged: no rank prefix, no ``_dupN``."""
    return _DUP.sub("", strip_sort_prefix(path.stem)), path.suffix.lower()


class _UndoPaths:
    """Where a (possibly received, possibly crafted) sort log may point: copies and sorted
    names inside the log's folder, originals and temp names inside the recorded input
    folder, and each restored name the face's own name. Anything else is refused."""

    def __init__(self, log_file: Path, payload: dict[str, Any]) -> None:
        self.log_dir = log_file.resolve().parent
        self.relative = payload.get("format", 1) >= 2
        recorded = payload.get("input")
        self.input_dir = Path(recorded).resolve() if isinstance(recorded, str) else self.log_dir
        if not self.input_dir.is_dir():
            raise InputError(f"{log_file}: the sorted folder {self.input_dir} no longer exists")

    def _resolve(self, value: Any, base: Path) -> Path | None:
        if not isinstance(value, str) or not value or "\x00" in value:
            return None
        path = Path(value)
        if self.relative and path.is_absolute():
            return None
        path = (base / path if self.relative else path).resolve()
        return path if path.is_relative_to(base) and path != base else None

    def entry(self, e: Any) -> tuple[Path, Path, Path | None] | None:
        """(old, new, tmp) of a log entry, or None when it is not a sort's rename."""
        if not isinstance(e, dict):
            return None
        old = self._resolve(e.get("old"), self.input_dir)
        new = self._resolve(e.get("new"), self.log_dir)
        tmp = self._resolve(e["tmp"], self.input_dir) if "tmp" in e else None
        if old is None or new is None or ("tmp" in e and tmp is None):
            return None
        if not (is_image_path(old) and _face_name(old) == _face_name(new)):
            return None
        if tmp is not None and not tmp.name.startswith(_TMP_PREFIX):
            return None
        return old, new, tmp

    def created_dir(self, value: Any) -> Path | None:
        return self._resolve(value, self.log_dir)


def _same_bytes(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def undo_sort(log_file: Path) -> UndoSummary:
    """Restore every name recorded in a sort log (also after a sort that crashed).

    The log may come from someone else: every path is confined (:class:`_UndoPaths`), a copy
    is deleted only when it is byte-identical to its original, nothing is overwritten, and a
    log that restores nothing stays as it was.
    """
    if not log_file.is_file():
        raise InputError(f"sort log not found: {log_file}")
    try:
        payload = json.loads(log_file.read_text(encoding="utf-8"))
        entries = payload["renames"]
        if not isinstance(entries, list):
            raise ValueError("renames is not a list")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InputError(f"not a sort log: {log_file}: {exc}") from exc
    if payload.get("state") == "undone":
        raise InputError(f"{log_file} was already undone")
    paths = _UndoPaths(log_file, payload)
    summary = UndoSummary()
    checked = []
    for e in entries:
        entry = paths.entry(e)
        if entry is None:
            summary.refused.append(str(e.get("new") if isinstance(e, dict) else e)[:200])
        else:
            checked.append(entry)
    token = uuid.uuid4().hex[:8]
    if payload.get("mode") == "copy":
        for old, new, _ in checked:
            if new.is_file() and old.is_file() and _same_bytes(new, old):
                new.unlink()
                summary.removed_copies += 1
            elif not old.exists():
                summary.missing.append(str(old))
    else:
        staged: list[tuple[Path, Path]] = []
        for i, (old, new, tmp) in enumerate(checked):
            current = next((p for p in (new, tmp) if p is not None and p.is_file()), None)
            if current is None:
                if not old.exists():
                    summary.missing.append(str(old))
                continue
            staged_name = current.with_name(f"{_TMP_PREFIX}undo_{token}_{i}{current.suffix}")
            os.rename(current, staged_name)
            staged.append((staged_name, old))
        taken: set[Path] = set()
        for staged_name, old in staged:
            old.parent.mkdir(parents=True, exist_ok=True)  # inside the input folder (checked)
            target = _unique(old, taken) if old.exists() else old
            os.rename(staged_name, target)
            summary.restored += 1
    dirs = [d for d in (paths.created_dir(v) for v in payload.get("created_dirs", [])) if d]
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        for sub in (d / "masks", d):
            with contextlib.suppress(OSError):
                sub.rmdir()
    if entries and summary.restored + summary.removed_copies == 0:
        raise InputError(
            f"nothing in {log_file} could be undone ({len(summary.missing)} missing, "
            f"{len(summary.refused)} refused); the log is left as it was")
    payload["state"] = "undone"
    _write_log(log_file, payload)
    return summary


# ---------------------------------------------------------------- the sort


@dataclass
class SortSummary:
    method: str
    faces: int = 0
    computed: int = 0
    cached: int = 0
    skipped: int = 0
    identity_from_store: int = 0  # descriptors read from the faces' alignments stores
    groups: dict[str, int] = field(default_factory=dict)
    log: Path | None = None
    seconds: float = 0.0
    order: list[str] = field(default_factory=list)  # names without a sort prefix, in order

    def lines(self) -> list[str]:
        out = [
            f"sorted {self.faces} faces by {self.method} in {self.seconds:.1f} s "
            f"({self.computed} computed, {self.cached} cached, {self.skipped} skipped)"
        ]
        if self.identity_from_store:
            out.append(f"identity: {self.identity_from_store} descriptors read from alignments stores")
        if self.groups:
            out.append("groups: " + ", ".join(f"{k} ({v})" for k, v in self.groups.items()))
        if self.log is not None:
            out.append(f"log:    {self.log} (undo: swapface sort --undo {self.log})")
        return out


def _mask_of(path: Path) -> Path | None:
    mask = path.parent / "masks" / (path.stem + ".png")
    return mask if mask.is_file() else None


def roll_back_unfinished(folder: Path) -> int:
    """Undo every sort into ``folder`` that was killed before its log said "done" (faces
    may sit under hidden temp names there), so a new sort starts from the original names;
    returns how many faces came back."""
    restored = 0
    for log_file in sorted(folder.glob(f"{LOG_PREFIX}*.json")):
        try:
            payload = json.loads(log_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if not isinstance(payload, dict) or payload.get("state") != "pending":
            continue
        try:
            restored += undo_sort(log_file).restored
        except InputError:  # killed before the first rename: nothing moved
            payload["state"] = "abandoned"
            _write_log(log_file, payload)
            continue
        log.warning("%s: a sort was interrupted there; rolled back (%s)", folder, log_file.name)
    return restored


def sort_faces(cfg: SortConfig, progress: Progress = SILENT) -> SortSummary:
    """Order (and optionally group) ``cfg.input``; renames in place or writes to ``cfg.output``.

    A sort killed midway (its log still "pending") is rolled back first, so running the
    same command again gives what one uninterrupted sort gives."""
    start = time.perf_counter()
    folder = Path(cfg.input)  # type: ignore[arg-type]
    if not folder.is_dir():
        raise InputError(f"not a folder: {folder}")
    for target in dict.fromkeys([folder, Path(cfg.output) if cfg.output is not None else folder]):
        if target.is_dir():
            roll_back_unfinished(target)
            for suffix in (".part", ".tmp"):  # a log or cache write that was killed
                sweep_partials(target, suffix)
    paths = list_faces(folder)
    if not paths:
        raise InputError(f"no face images in {folder}")
    cache = FeatureCache(folder, cfg.cache)
    context = FeatureContext()
    summary = SortSummary(cfg.method)
    try:
        values, kept, cached = compute_features(paths, cfg.method, cache, context, progress)
        summary.cached += cached
        summary.computed += len(kept) - cached
        if cfg.group_by is not None and cfg.group_by != cfg.method:
            gvalues, gkept, gcached = compute_features(kept, cfg.group_by, cache, context,
                                                       progress)
            summary.cached += gcached
            summary.computed += len(gkept) - gcached
            keep = {p: i for i, p in enumerate(kept)}
            idx = [keep[p] for p in gkept]
            values, kept = values[idx], gkept
        elif cfg.group_by is not None:
            gvalues = values
        cache.save()
    finally:
        context.close()
    summary.identity_from_store = context.from_store
    summary.faces = len(kept)
    summary.skipped = len(paths) - len(kept)
    if not kept:
        raise InputError(f"no face in {folder} could be scored by {cfg.method}")

    order = sort_method(cfg.method).order(values)
    labels: np.ndarray | None = None
    group_names: list[str] = []
    if cfg.group_by is not None:
        labels, group_names = group_faces(gvalues, cfg.group_by, cfg.bins, cfg.threshold)

    out_dir = Path(cfg.output) if cfg.output is not None else folder
    in_place = out_dir.resolve() == folder.resolve()
    copy = cfg.keep and not in_place
    plan: list[tuple[Path, Path]] = []
    for rank, i in enumerate(order):
        src = kept[int(i)]
        base = out_dir if labels is None else out_dir / group_names[int(labels[int(i)])]
        dst = base / f"{rank:05d}_{strip_sort_prefix(src.name)}"
        plan.append((src, dst))
        mask = _mask_of(src)
        if mask is not None:
            plan.append((mask, base / "masks" / (Path(dst.name).stem + ".png")))
        summary.order.append(strip_sort_prefix(src.name))
    plan = [(s, d) for s, d in plan if s != d]
    if labels is not None:
        for g, name in enumerate(group_names):
            summary.groups[name] = int((labels == g).sum())
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = _log_path(out_dir)
    info = {"input": str(folder.resolve()), "method": cfg.method, "group_by": cfg.group_by,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    entries = apply_plan(plan, copy, log_path, info)
    summary.log = log_path
    if in_place and cfg.cache:
        for e in entries:
            old, new = Path(e["old"]), Path(e["new"])
            if new.parent == folder.resolve() and old.parent == folder.resolve():
                cache.rename(old.name, new.name)
        cache.save()
    summary.seconds = time.perf_counter() - start
    return summary
