"""The alignments store: one SQLite file holding every frame and face an extract produced.

Why SQLite: transactions make it crash-safe (a frame and its faces land together or not at
all), it needs no server, it is safe to hand to other people (no pickle), and later stages
can query it without loading everything into memory. Arrays are stored as raw little-endian
bytes with a fixed dtype.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from swapface.align.masks import StoredMask
from swapface.align.records import FaceRecord, FrameRecord
from swapface.core.errors import InputError
from swapface.core.fileio import is_writable_dir

SCHEMA_VERSION = 1

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
]


def default_store_path(input_root: Path, is_video: bool) -> Path:
    """Where extract puts a store by default and later stages look for it.

    ``input_root`` is the video file or the frames folder. Next to a video it is
    ``<stem>_alignments.db``, inside a frames folder ``alignments.db``; when that place is
    read-only (a shared dataset) the same name under the working directory.
    """
    base = input_root.with_suffix("") if is_video else input_root
    store = base.parent / f"{base.name}_alignments.db" if is_video else base / "alignments.db"
    if is_writable_dir(store.parent):
        return store
    return Path.cwd() / store.name if is_video else Path.cwd() / base.name / "alignments.db"


def _f32(blob: bytes | None, shape: tuple[int, ...]) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype="<f4").reshape(shape).copy()


def _f64(blob: bytes, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f8").reshape(shape).copy()


class AlignmentsStore:
    """Read/write access to an alignments file. Use as a context manager."""

    def __init__(self, path: str | Path, *, create: bool = True, readonly: bool = False) -> None:
        self.path = Path(path)
        if not self.path.exists() and (readonly or not create):
            raise InputError(f"alignments store not found: {self.path}")
        if readonly:
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            self.conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, isolation_level=None)
        self._in_batch = False
        # Every statement that can find a non-SQLite file (the pragmas included) runs inside
        # the try, and the connection is closed on any failure, not only on DatabaseError.
        try:
            self.conn.execute("PRAGMA foreign_keys=ON")
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
            raise InputError(f"{self.path} needs a schema upgrade; open it writable once")
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
        return int(self.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

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
        return default if row is None else json.loads(row[0])

    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.conn.execute("SELECT key, value FROM meta")}

    # ------------------------------------------------------------------ writing
    def put_frame(self, frame: FrameRecord) -> None:
        """Insert or replace a frame with all its faces (replacing drops the old faces)."""
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
                self._insert_face(frame_id, face)

    def _insert_face(self, frame_id: int | None, face: FaceRecord) -> None:
        cur = self.conn.execute(
            "INSERT INTO faces(frame_id, face_index, x0, y0, x1, y1, confidence, detector,"
            " landmarks, matrix, size, coverage, identity, blur, file, thumbnail)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                frame_id, int(face.face_index), *map(float, face.box), float(face.confidence),
                str(face.detector),
                np.asarray(face.landmarks, "<f4").tobytes(),
                np.asarray(face.matrix, "<f8").tobytes(),
                int(face.size), float(face.coverage),
                None if face.identity is None else np.asarray(face.identity, "<f4").tobytes(),
                None if face.blur is None else float(face.blur), face.file, face.thumbnail,
            ),
        )
        for mask in face.masks.values():
            self.conn.execute(
                "INSERT INTO masks(face_id, kind, matrix, data) VALUES (?,?,?,?)",
                (cur.lastrowid, mask.kind, np.asarray(mask.matrix, "<f8").tobytes(), mask.data),
            )

    def delete_faces(self, face_ids: list[int]) -> int:
        with self.transaction():
            n = 0
            for fid in face_ids:
                n += self.conn.execute("DELETE FROM faces WHERE id=?", (fid,)).rowcount
        return n

    # ------------------------------------------------------------------ reading
    def frame_indices(self) -> set[int]:
        return {r[0] for r in self.conn.execute("SELECT idx FROM frames")}

    def count_frames(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM frames").fetchone()[0])

    def count_faces(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0])

    _FACE_COLS = (
        "f.id, f.face_index, f.x0, f.y0, f.x1, f.y1, f.confidence, f.detector, f.landmarks,"
        " f.matrix, f.size, f.coverage, f.identity, f.blur, f.file"
    )

    def _face_from_row(self, row: tuple[Any, ...], with_masks: bool) -> FaceRecord:
        face = FaceRecord(
            face_index=row[1],
            box=(row[2], row[3], row[4], row[5]),
            confidence=row[6],
            detector=row[7],
            landmarks=_f32(row[8], (68, 2)).astype(np.float64),  # type: ignore[union-attr]
            matrix=_f64(row[9], (2, 3)),
            size=row[10],
            coverage=row[11],
            identity=_f32(row[12], (128,)),
            blur=row[13],
            file=row[14],
        )
        if with_masks:
            for kind, matrix, data in self.conn.execute(
                "SELECT kind, matrix, data FROM masks WHERE face_id=?", (row[0],)
            ):
                face.masks[kind] = StoredMask(kind, _f64(matrix, (2, 3)), data)
        return face

    def frames(self, with_masks: bool = False) -> Iterator[FrameRecord]:
        """Frames in source order with their faces; streams, never loads the whole store."""
        frames = self.conn.execute(
            "SELECT id, idx, name, timestamp, width, height FROM frames ORDER BY idx"
        )
        for fid, idx, name, ts, w, h in frames:
            record = FrameRecord(idx, name, ts, w, h)
            rows = self.conn.execute(
                f"SELECT {self._FACE_COLS} FROM faces f WHERE f.frame_id=? ORDER BY f.face_index",
                (fid,),
            ).fetchall()
            record.faces = [self._face_from_row(r, with_masks) for r in rows]
            yield record

    def faces(self, with_masks: bool = False) -> Iterator[tuple[int, str, FaceRecord]]:
        """(face id, frame name, face) for every face, in frame order."""
        cur = self.conn.execute(
            f"SELECT {self._FACE_COLS}, fr.name FROM faces f JOIN frames fr ON fr.id=f.frame_id"
            " ORDER BY fr.idx, f.face_index"
        )
        for row in cur:
            yield row[0], row[-1], self._face_from_row(row, with_masks)

    def thumbnail(self, face_id: int) -> bytes | None:
        row = self.conn.execute("SELECT thumbnail FROM faces WHERE id=?", (face_id,)).fetchone()
        return None if row is None else row[0]
