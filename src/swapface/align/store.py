"""The alignments store: one SQLite file holding every frame and face an extract produced.

Why SQLite: transactions make it crash-safe (a frame and its faces land together or not at
all), it needs no server, it is safe to hand to other people (no pickle), and later stages
can query it without loading everything into memory. Arrays are stored as raw little-endian
bytes with a fixed dtype.

All SQL of the project lives in this module: every query a stage or job needs is a method
here, faces carry their row ``id`` and are updated by it, so a schema change touches this
file alone. A store received from someone else is opened with ``trusted_schema=OFF`` and
refused when it holds triggers, views or tables this module did not create.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from swapface.align.masks import StoredMask
from swapface.align.records import FaceRecord, FrameRecord
from swapface.core.errors import InputError
from swapface.core.fileio import is_safe_name

SCHEMA_VERSION = 2

# Each entry migrates from version i to i+1. Never edit a released entry; append a new one.
_MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE frames (
        id INTEGER PRIMARY KEY,
        idx INTEGER NOT NULL UNIQUE,
        name TEXT NOT NULL,
        timestamp REAL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL
    );
    CREATE TABLE faces (
        id INTEGER PRIMARY KEY,
        frame_id INTEGER NOT NULL REFERENCES frames(id) ON DELETE CASCADE,
        face_index INTEGER NOT NULL,
        x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
        confidence REAL NOT NULL,
        detector TEXT NOT NULL,
        landmarks BLOB NOT NULL,
        matrix BLOB NOT NULL,
        size INTEGER NOT NULL,
        coverage REAL NOT NULL,
        identity BLOB,
        blur REAL,
        file TEXT,
        thumbnail BLOB,
        UNIQUE (frame_id, face_index)
    );
    CREATE INDEX faces_file ON faces(file);
    CREATE TABLE masks (
        face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        matrix BLOB NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (face_id, kind)
    );
    """,
    # 2: "coverage" meant two things (extract's mean-face span, the model's crop fraction);
    # the store's column is the mean-face span.
    """
    ALTER TABLE faces RENAME COLUMN coverage TO face_span;
    """,
]
# Everything a store of ours may hold; anything else (a trigger, a view) is refused.
_OWN_OBJECTS = {("table", n) for n in ("meta", "frames", "faces", "masks", "schema_version")} | {
    ("index", "faces_file")}


def backup_store(path: str | Path) -> Path:
    """Copy ``path`` to ``<stem>.<YYYYmmdd-HHMMSS>.bak<suffix>`` beside it; return the copy.

    SQLite's backup API copies a consistent snapshot, commits still in the WAL included.
    """
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


def _f32(blob: bytes | None, shape: tuple[int, ...]) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype="<f4").reshape(shape).copy()


def _f64(blob: bytes, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f8").reshape(shape).copy()


@dataclass
class FaceTable:
    """Faces of a store as columns (see :meth:`AlignmentsStore.face_table`)."""

    ids: np.ndarray  # (n,) row ids
    frames: np.ndarray  # (n,) frame indices
    files: list[str | None]
    blur: np.ndarray  # (n,) sharpness (0 when not measured)
    width: np.ndarray  # (n,) box width in frame pixels
    landmarks: np.ndarray  # (n, 68, 2)
    identity: np.ndarray  # (n, 128), zeros where has_identity is False
    has_identity: np.ndarray  # (n,) bool


@dataclass(frozen=True)
class FaceRef:
    """Where a face is, without its arrays: for jobs that only move files and rows."""

    id: int
    frame_index: int
    frame_name: str
    face_index: int
    file: str | None


@dataclass(frozen=True)
class FrameSlot:
    """A stored frame's identity: what an import keeps when it replaces the faces."""

    index: int
    name: str
    timestamp: float | None
    width: int
    height: int


def _check_file(file: str | None) -> None:
    if file is not None and not is_safe_name(file):
        raise InputError(f"face file name {file!r} is not a plain name inside the face folder")


def _check_names(frame: FrameRecord) -> None:
    """Names become paths later (moves, reads): only plain names below a folder get in."""
    if not is_safe_name(frame.name) or "/" in frame.name:
        raise InputError(f"frame name {frame.name!r} is not a plain file name")
    for face in frame.faces:
        _check_file(face.file)


class AlignmentsStore:
    """Read/write access to an alignments file. Use as a context manager."""

    def __init__(self, path: str | Path, *, create: bool = True, readonly: bool = False) -> None:
        self.path = Path(path)
        if not self.path.exists() and (readonly or not create):
            raise InputError(f"alignments store not found: {self.path}")
        if readonly:
            # as_uri() percent-encodes '#', '?' and spaces, so a folder named "take#2" cannot
            # cut the URI short and drop read-only mode.
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            self.conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, isolation_level=None)
        self._in_batch = False
        self._face_cols = self._FACE_COLS
        # Every statement that can find a non-SQLite file (the pragmas included) runs inside
        # the try, and the connection is closed on any failure, not only on DatabaseError.
        try:
            # A received file's schema runs no SQL functions of its own (triggers, views).
            self.conn.execute("PRAGMA trusted_schema=OFF")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._check_objects()
            self._migrate(readonly)
            if not readonly:
                # WAL + NORMAL: a killed process never corrupts the file and readers never block.
                # Set after _migrate so a foreign SQLite file is refused before it is changed.
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise InputError(f"{self.path} is not a swapface alignments store: {exc}") from exc
        except BaseException:
            self.conn.close()
            raise

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> AlignmentsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._in_batch:
            self.conn.execute("COMMIT")
            self._in_batch = False
        self.conn.close()

    def _check_objects(self) -> None:
        rows = self.conn.execute(
            "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall()
        unexpected = sorted(f"{kind} {name!r}" for kind, name in rows if (kind, name) not in _OWN_OBJECTS)
        ours = any(name == "schema_version" for _, name in rows)
        if unexpected and ours:
            raise InputError(f"{self.path} holds objects a swapface store never has "
                             f"({', '.join(unexpected[:3])}); refusing to open it")

    def _version(self) -> int:
        row = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE name='schema_version'"
        ).fetchone()
        if not row:
            return 0
        return int(self.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0)

    def _migrate(self, readonly: bool) -> None:
        version = self._version()
        if version == 0:
            # Unversioned but not empty: some other program's database. Refuse before writing.
            other = self.conn.execute(
                "SELECT name FROM sqlite_master WHERE name NOT IN ('schema_version')"
                " AND name NOT LIKE 'sqlite_%' LIMIT 1"
            ).fetchone()
            if other:
                raise InputError(
                    f"{self.path} is not a swapface alignments store (it is another SQLite "
                    f"database, with table {other[0]!r})"
                )
        if version > SCHEMA_VERSION:
            raise InputError(
                f"{self.path} was written by a newer swapface (schema {version} > {SCHEMA_VERSION})"
            )
        if version == SCHEMA_VERSION:
            return
        if readonly:
            if version == 0:
                raise InputError(f"{self.path} is an empty database, not an alignments store")
            # A read-only older store is read as it is (a shared dataset cannot be upgraded):
            # version 1 differs only by the name of the mean-face span column.
            self._face_cols = self._FACE_COLS.replace("f.face_span", "f.coverage")
            return
        for target in range(version + 1, SCHEMA_VERSION + 1):
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self.conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
                )
                # Re-read under the write lock: a concurrent opener may have migrated meanwhile.
                if self._version() < target:
                    for statement in _MIGRATIONS[target - 1].split(";"):
                        if statement.strip():
                            self.conn.execute(statement)
                    self.conn.execute("INSERT INTO schema_version VALUES (?)", (target,))
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        return self._version()

    # ------------------------------------------------------------------ transactions
    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside land together, or not at all (also on Ctrl-C)."""
        if self._in_batch:
            # Nested: a savepoint, so a failed inner block (one put_frame) is undone even when
            # the caller catches the error and lets the outer transaction commit.
            self.conn.execute("SAVEPOINT nested")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK TO nested")
                self.conn.execute("RELEASE nested")
                raise
            self.conn.execute("RELEASE nested")
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._in_batch = True
        try:
            yield
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:  # also when COMMIT itself failed (disk full, busy)
                self.conn.execute("ROLLBACK")
            raise
        finally:
            self._in_batch = False

    # ------------------------------------------------------------------ metadata
    def set_meta(self, key: str, value: Any) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, json.dumps(value)),
        )

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        if row is None:
            return default
        try:
            return json.loads(row[0])
        except ValueError as exc:
            raise InputError(f"{self.path}: meta value {key!r} is damaged: {exc}") from exc

    def meta(self) -> dict[str, Any]:
        return {k: self.get_meta(k) for (k,) in self.conn.execute("SELECT key FROM meta")}

    # ------------------------------------------------------------------ writing
    def put_frame(self, frame: FrameRecord) -> None:
        """Insert or replace a frame with all its faces (replacing drops the old faces).

        The faces get their new row ids (``face.id``).
        """
        _check_names(frame)
        with self.transaction():
            self.conn.execute("DELETE FROM frames WHERE idx=?", (frame.index,))
            cur = self.conn.execute(
                "INSERT INTO frames(idx, name, timestamp, width, height) VALUES (?,?,?,?,?)",
                # Plain Python scalars: sqlite3 silently stores NumPy ints as BLOBs.
                (
                    int(frame.index), str(frame.name),
                    None if frame.timestamp is None else float(frame.timestamp),
                    int(frame.width), int(frame.height),
                ),
            )
            frame_id = cur.lastrowid
            for face in frame.faces:
                face.id = self._insert_face(frame_id, face)

    def _insert_face(self, frame_id: int | None, face: FaceRecord) -> int:
        cur = self.conn.execute(
            "INSERT INTO faces(frame_id, face_index, x0, y0, x1, y1, confidence, detector,"
            " landmarks, matrix, size, face_span, identity, blur, file, thumbnail)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                frame_id, int(face.face_index), *map(float, face.box), float(face.confidence),
                str(face.detector),
                np.asarray(face.landmarks, "<f4").tobytes(),
                np.asarray(face.matrix, "<f8").tobytes(),
                int(face.size), float(face.face_span),
                None if face.identity is None else np.asarray(face.identity, "<f4").tobytes(),
                None if face.blur is None else float(face.blur), face.file, face.thumbnail,
            ),
        )
        face_id = int(cur.lastrowid or 0)
        self._put_masks(face_id, face.masks)
        return face_id

    def _put_masks(self, face_id: int, masks: Mapping[str, StoredMask]) -> None:
        for mask in masks.values():
            self.conn.execute(
                "INSERT OR REPLACE INTO masks(face_id, kind, matrix, data) VALUES (?,?,?,?)",
                (face_id, mask.kind, np.asarray(mask.matrix, "<f8").tobytes(), mask.data),
            )

    def delete_faces(self, face_ids: Iterable[int]) -> int:
        with self.transaction():
            n = 0
            for fid in face_ids:
                n += self.conn.execute("DELETE FROM faces WHERE id=?", (int(fid),)).rowcount
        return n

    def set_face_file(self, face_id: int, file: str | None) -> int:
        """Point face ``face_id`` at another face image (relative to its face folder)."""
        _check_file(file)
        return self.conn.execute("UPDATE faces SET file=? WHERE id=?", (file, int(face_id))).rowcount

    def set_face_file_at(self, frame_index: int, face_index: int, file: str | None) -> int:
        """:meth:`set_face_file` for the face known by (frame index, face index)."""
        _check_file(file)
        return self.conn.execute(
            "UPDATE faces SET file=? WHERE face_index=? AND frame_id="
            "(SELECT id FROM frames WHERE idx=?)", (file, int(face_index), int(frame_index))).rowcount

    def update_geometry(self, face_id: int, landmarks: np.ndarray, matrix: np.ndarray,
                        masks: Mapping[str, StoredMask]) -> None:
        """New landmarks, matrix and masks for face ``face_id`` (after smoothing or editing)."""
        self.conn.execute(
            "UPDATE faces SET landmarks=?, matrix=? WHERE id=?",
            (np.asarray(landmarks, "<f4").tobytes(), np.asarray(matrix, "<f8").tobytes(),
             int(face_id)))
        self._put_masks(int(face_id), masks)

    # ------------------------------------------------------------------ reading
    def frame_indices(self) -> set[int]:
        return {r[0] for r in self.conn.execute("SELECT idx FROM frames")}

    def count_frames(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM frames").fetchone()[0])

    def count_faces(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0])

    def frame_slots(self) -> dict[str, FrameSlot]:
        """Every stored frame by name (the last one when a name repeats)."""
        return {name: FrameSlot(idx, name, ts, w, h) for idx, name, ts, w, h in self.conn.execute(
            "SELECT idx, name, timestamp, width, height FROM frames ORDER BY idx")}

    def face_refs(self) -> list[FaceRef]:
        """Every face's id, frame, face index and file, in frame order (no arrays decoded)."""
        return [FaceRef(*row) for row in self.conn.execute(
            "SELECT f.id, fr.idx, fr.name, f.face_index, f.file FROM faces f"
            " JOIN frames fr ON fr.id=f.frame_id ORDER BY fr.idx, f.face_index")]

    def face_table(self) -> FaceTable:
        """Every face as columns (ids, frames, files, blur, width, landmarks, identity):
        what a grid of 20 000 faces needs, in one query with no per-face objects."""
        rows = self.conn.execute(
            "SELECT f.id, fr.idx, f.file, f.blur, f.x1 - f.x0, f.landmarks, f.identity FROM faces f"
            " JOIN frames fr ON fr.id=f.frame_id ORDER BY fr.idx, f.face_index").fetchall()
        n = len(rows)
        table = FaceTable(np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.int64),
                          [r[2] for r in rows], np.array([r[3] or 0.0 for r in rows], np.float32),
                          np.array([r[4] for r in rows], np.float32),
                          np.frombuffer(b"".join(r[5] for r in rows), "<f4").reshape(n, 68, 2),
                          np.zeros((n, 128), np.float32), np.array([r[6] is not None for r in rows], bool))
        for i, r in enumerate(rows):
            if r[6] is not None:
                table.identity[i] = np.frombuffer(r[6], "<f4")
        return table

    def frame_face_counts(self) -> list[tuple[int, str, int]]:
        """(frame index, frame name, face count) for every frame."""
        return self.conn.execute(
            "SELECT fr.idx, fr.name, COUNT(f.id) FROM frames fr LEFT JOIN faces f ON f.frame_id=fr.id"
            " GROUP BY fr.id ORDER BY fr.idx"
        ).fetchall()

    def mask_kinds(self) -> dict[int, list[str]]:
        """The stored mask kinds of every face that has any, by face id."""
        out: dict[int, list[str]] = {}
        for face_id, kind in self.conn.execute("SELECT face_id, kind FROM masks ORDER BY face_id, kind"):
            out.setdefault(face_id, []).append(kind)
        return out

    _FACE_COLS = (
        "f.id, f.face_index, f.x0, f.y0, f.x1, f.y1, f.confidence, f.detector, f.landmarks,"
        " f.matrix, f.size, f.face_span, f.identity, f.blur, f.file"
    )

    def _face_from_row(self, row: tuple[Any, ...], with_masks: bool) -> FaceRecord:
        try:
            face = FaceRecord(
                face_index=row[1],
                box=(row[2], row[3], row[4], row[5]),
                confidence=row[6],
                detector=row[7],
                landmarks=_f32(row[8], (68, 2)).astype(np.float64),  # type: ignore[union-attr]
                matrix=_f64(row[9], (2, 3)),
                size=row[10],
                face_span=row[11],
                identity=_f32(row[12], (128,)),
                blur=row[13],
                file=row[14],
                id=row[0],
            )
        except (TypeError, ValueError) as exc:  # a blob of the wrong length or type
            raise InputError(f"{self.path}: face {row[0]} is damaged ({exc})") from exc
        if with_masks:
            for kind, matrix, data in self.conn.execute(
                "SELECT kind, matrix, data FROM masks WHERE face_id=?", (row[0],)
            ):
                face.masks[kind] = StoredMask(kind, _f64(matrix, (2, 3)), data)
        return face

    def _frame_faces(self, frame_id: int, with_masks: bool) -> list[FaceRecord]:
        rows = self.conn.execute(
            f"SELECT {self._face_cols} FROM faces f WHERE f.frame_id=? ORDER BY f.face_index",
            (frame_id,),
        ).fetchall()
        return [self._face_from_row(r, with_masks) for r in rows]

    def frames(self, with_masks: bool = False, start: int | None = None,
               stop: int | None = None) -> Iterator[FrameRecord]:
        """Frames in source order with their faces (indices in ``[start, stop)`` when given);
        streams, never loads the whole store."""
        frames = self.conn.execute(
            "SELECT id, idx, name, timestamp, width, height FROM frames"
            " WHERE idx >= ? AND idx < ? ORDER BY idx",
            (-(2**62) if start is None else int(start), 2**62 if stop is None else int(stop)),
        )
        for fid, idx, name, ts, w, h in frames:
            yield FrameRecord(idx, name, ts, w, h, self._frame_faces(fid, with_masks))

    def frame(self, index: int, with_masks: bool = False) -> FrameRecord | None:
        """The frame with ``index``, or None when the store does not have it."""
        return next(self.frames(with_masks, index, index + 1), None)

    def faces(self, with_masks: bool = False) -> Iterator[tuple[int, str, FaceRecord]]:
        """(frame index, frame name, face) for every face, in frame order."""
        cur = self.conn.execute(
            f"SELECT {self._face_cols}, fr.idx, fr.name FROM faces f JOIN frames fr"
            " ON fr.id=f.frame_id ORDER BY fr.idx, f.face_index"
        )
        for row in cur:
            yield row[-2], row[-1], self._face_from_row(row, with_masks)

    def identity_of(self, files: Sequence[str] = (), frame_name: str | None = None,
                    face_index: int | None = None) -> np.ndarray | None:
        """The stored 128-d descriptor of a face, found by file name or by (frame, face index)."""
        for name in files:
            row = self.conn.execute(
                "SELECT identity FROM faces WHERE file=? AND identity IS NOT NULL", (name,)
            ).fetchone()
            if row is not None:
                return _f32(row[0], (128,))
        if frame_name is not None and face_index is not None:
            row = self.conn.execute(
                "SELECT f.identity FROM faces f JOIN frames fr ON fr.id=f.frame_id"
                " WHERE fr.name=? AND f.face_index=? AND f.identity IS NOT NULL",
                (frame_name, int(face_index)),
            ).fetchone()
            if row is not None:
                return _f32(row[0], (128,))
        return None

    def thumbnail(self, face_id: int) -> bytes | None:
        row = self.conn.execute("SELECT thumbnail FROM faces WHERE id=?", (face_id,)).fetchone()
        return None if row is None else row[0]

    def summary(self) -> dict[str, Any]:
        """Counts, schema version and meta (``swapface alignments info``)."""
        conn = self.conn
        empty = conn.execute(
            "SELECT COUNT(*) FROM frames WHERE id NOT IN (SELECT frame_id FROM faces)"
        ).fetchone()[0]
        masks = dict(conn.execute("SELECT kind, COUNT(*) FROM masks GROUP BY kind ORDER BY kind"))
        detectors = dict(
            conn.execute("SELECT detector, COUNT(*) FROM faces GROUP BY detector ORDER BY detector")
        )
        span = conn.execute("SELECT MIN(idx), MAX(idx) FROM frames").fetchone()
        return {
            "path": str(self.path),
            "schema_version": self.schema_version,
            "frames": self.count_frames(),
            "frames_without_faces": int(empty),
            "frame_index_range": None if span[0] is None else [int(span[0]), int(span[1])],
            "faces": self.count_faces(),
            "faces_by_detector": {k: int(v) for k, v in detectors.items()},
            "masks": {k: int(v) for k, v in masks.items()},
            "meta": self.meta(),
        }
