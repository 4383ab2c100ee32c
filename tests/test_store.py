"""The alignments store (SQLite) and its JSON interchange, on real hand-labelled landmarks.

Landmarks come from dlib's 68-point training file (imglab XML) under the shared test data
(``$SWAPFACE_TEST_DATA`` or ``../shared/data`` next to the repo); the tests skip without it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from swapface.align import interchange
from swapface.align.masks import MASK_TYPES, build_mask
from swapface.align.records import FaceRecord, FrameRecord
from swapface.align.store import SCHEMA_VERSION, AlignmentsStore
from swapface.align.transform import alignment_matrix
from swapface.cli import main as cli_main
from swapface.core.errors import InputError

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SWAPFACE_TEST_DATA", REPO.parent / "shared" / "data"))
LANDMARKS_XML = DATA / "stills" / "dlib_faces" / "training_with_face_landmarks.xml"

# Frame names chosen so natural order differs from plain string order.
FRAME_NAMES = ["frame1.png", "frame2.png", "frame9.png", "frame10.png", "frame11.png",
               "frame100.png"]


def _load_landmark_sets() -> list[np.ndarray]:
    if not LANDMARKS_XML.is_file():
        pytest.skip(f"test data not found: {LANDMARKS_XML}")
    sets = []
    for box in ET.parse(LANDMARKS_XML).getroot().iter("box"):
        parts = {int(p.get("name")): (float(p.get("x")), float(p.get("y")))
                 for p in box.iter("part")}
        if len(parts) == 68:
            sets.append(np.array([parts[i] for i in range(68)], dtype=np.float64))
    assert len(sets) >= 12, "expected the dlib training file's labelled faces"
    return sets


@pytest.fixture(scope="module")
def landmark_sets() -> list[np.ndarray]:
    return _load_landmark_sets()


def _face(lm: np.ndarray, index: int, rng: np.random.Generator) -> FaceRecord:
    # Sub-pixel jitter so float32 storage is actually exercised (the XML holds integers).
    lm = lm + rng.uniform(-0.5, 0.5, lm.shape)
    left, top = lm.min(axis=0) - 5
    right, bottom = lm.max(axis=0) + 5
    identity = rng.standard_normal(128).astype(np.float32)
    return FaceRecord(
        face_index=index,
        box=(float(left), float(top), float(right), float(bottom)),
        confidence=float(rng.uniform(0.5, 1.0)),
        landmarks=lm,
        matrix=alignment_matrix(lm, 256, 0.6),
        size=256,
        face_span=0.6,
        detector="dlib-cnn",
        identity=identity / np.linalg.norm(identity),
        blur=float(rng.uniform(10, 500)),
        file=f"face_{index}.png",
        thumbnail=rng.bytes(64),
        masks={kind: build_mask(lm, kind) for kind in MASK_TYPES},
    )


def _frames(landmark_sets: list[np.ndarray]) -> list[FrameRecord]:
    """Six frames holding 0..3 faces each, built from the real landmark sets."""
    rng = np.random.default_rng(7)
    per_frame = [2, 0, 3, 1, 2, 3]
    frames, k = [], 0
    for index, (name, n) in enumerate(zip(FRAME_NAMES, per_frame, strict=True)):
        faces = [_face(landmark_sets[(k + i) % len(landmark_sets)], i, rng) for i in range(n)]
        k += n
        frames.append(FrameRecord(index, name, index / 25.0, 640, 480, faces))
    return frames


@pytest.fixture
def frames(landmark_sets: list[np.ndarray]) -> list[FrameRecord]:
    return _frames(landmark_sets)


@pytest.fixture
def store_path(tmp_path: Path, frames: list[FrameRecord]) -> Path:
    path = tmp_path / "alignments.db"
    with AlignmentsStore(path) as store:
        for frame in frames:
            store.put_frame(frame)
        store.set_meta("source", {"path": "clip.mp4", "frames": len(frames)})
    return path


def _f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.float64).astype(np.float32)


# ------------------------------------------------------------------------------ store
def test_round_trip_is_exact(store_path: Path, frames: list[FrameRecord]) -> None:
    with AlignmentsStore(store_path, readonly=True) as store:
        assert store.count_frames() == len(frames)
        assert store.count_faces() == sum(len(f.faces) for f in frames)
        assert store.get_meta("source") == {"path": "clip.mp4", "frames": len(frames)}
        got = list(store.frames(with_masks=True))
        face_ids = [face.id for _, _, face in store.faces()]
        thumbs = [store.thumbnail(fid) for fid in face_ids]
    assert [f.name for f in got] == [f.name for f in frames]
    expected_thumbs = []
    for want, have in zip(frames, got, strict=True):
        assert (have.index, have.timestamp, have.width, have.height) == (
            want.index, want.timestamp, want.width, want.height)
        assert len(have.faces) == len(want.faces)
        for a, b in zip(want.faces, have.faces, strict=True):
            expected_thumbs.append(a.thumbnail)
            assert b.face_index == a.face_index
            assert b.id is not None and b.id == face_ids[len(expected_thumbs) - 1]
            assert b.box == a.box
            assert b.confidence == a.confidence
            assert b.matrix.dtype == np.float64
            assert np.array_equal(b.matrix, a.matrix)  # bit-exact
            assert b.landmarks.shape == (68, 2)
            assert np.array_equal(_f32(b.landmarks), _f32(a.landmarks))  # float32-exact
            assert np.array_equal(b.identity, a.identity)
            assert (b.size, b.face_span, b.detector, b.blur, b.file) == (
                a.size, a.face_span, a.detector, a.blur, a.file)
            assert set(b.masks) == set(MASK_TYPES)
            for kind in MASK_TYPES:
                assert np.array_equal(b.masks[kind].matrix, a.masks[kind].matrix)
                assert b.masks[kind].data == a.masks[kind].data
                assert np.array_equal(b.masks[kind].decode(), a.masks[kind].decode())
    assert thumbs == expected_thumbs


def test_faces_stream_in_frame_order(store_path: Path, frames: list[FrameRecord]) -> None:
    with AlignmentsStore(store_path, readonly=True) as store:
        names = [(name, face.face_index) for _, name, face in store.faces()]
    assert names == [(f.name, face.face_index) for f in frames for face in f.faces]


def test_numpy_scalars_are_stored_as_numbers(tmp_path: Path, frames: list[FrameRecord]) -> None:
    frame = frames[0]
    frame.index, frame.width, frame.height = np.int64(42), np.int32(640), np.int64(480)
    frame.faces[0].size, frame.faces[0].blur = np.int64(256), np.float32(12.5)
    with AlignmentsStore(tmp_path / "a.db") as store:
        store.put_frame(frame)
        assert store.frame_indices() == {42}
        (got,) = list(store.frames())
    assert (got.index, got.width, got.height) == (42, 640, 480)
    assert got.faces[0].size == 256 and got.faces[0].blur == 12.5


def test_schema_version_and_reopen_does_not_migrate(store_path: Path) -> None:
    with AlignmentsStore(store_path) as store:
        assert store.schema_version == SCHEMA_VERSION == 2
    with AlignmentsStore(store_path) as store:
        assert store.schema_version == 2
        assert store.count_frames() == len(FRAME_NAMES)
    conn = sqlite3.connect(store_path)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,), (2,)]
    conn.close()


def _as_version_1(path: Path) -> None:
    """Turn a current store back into what swapface wrote before the face_span rename."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("ALTER TABLE faces RENAME COLUMN face_span TO coverage")
        conn.execute("DELETE FROM schema_version WHERE version > 1")
    conn.close()


def test_version_1_store_is_read_in_place_and_migrated_on_write(
        store_path: Path, frames: list[FrameRecord]) -> None:
    _as_version_1(store_path)
    spans = [face.face_span for f in frames for face in f.faces]
    with AlignmentsStore(store_path, readonly=True) as store:  # read-only: nothing is changed
        assert store.schema_version == 1
        assert [face.face_span for _, _, face in store.faces()] == spans
    conn = sqlite3.connect(store_path)
    assert "coverage" in {row[1] for row in conn.execute("PRAGMA table_info(faces)")}
    conn.close()
    with AlignmentsStore(store_path) as store:  # writable: migrated once
        assert store.schema_version == 2
        assert [face.face_span for _, _, face in store.faces()] == spans
    conn = sqlite3.connect(store_path)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(faces)")}
    conn.close()
    assert "face_span" in columns and "coverage" not in columns


def test_newer_schema_is_refused(store_path: Path) -> None:
    conn = sqlite3.connect(store_path)
    conn.execute("INSERT INTO schema_version VALUES (99)")
    conn.commit()
    conn.close()
    for readonly in (False, True):
        with pytest.raises(InputError, match="newer swapface"):
            AlignmentsStore(store_path, readonly=readonly)


def test_non_sqlite_file_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "alignments.db"
    content = b"this is not an SQLite database\n" * 64
    junk.write_bytes(content)
    for readonly in (False, True):
        with pytest.raises(InputError, match="not a swapface alignments store"):
            AlignmentsStore(junk, readonly=readonly)
    assert junk.read_bytes() == content


def test_foreign_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    with pytest.raises(InputError, match="not a swapface alignments store"):
        AlignmentsStore(other)
    assert other.read_bytes() == before


def test_missing_store_readonly_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        AlignmentsStore(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()


def test_put_frame_replaces_faces(tmp_path: Path, frames: list[FrameRecord]) -> None:
    three = frames[2]
    assert len(three.faces) == 3
    with AlignmentsStore(tmp_path / "a.db") as store:
        store.put_frame(three)
        store.put_frame(three)  # same again: still three faces
        assert store.count_faces() == 3
        one = FrameRecord(three.index, "renamed.png", None, 10, 20, three.faces[:1])
        store.put_frame(one)
        assert store.count_frames() == 1 and store.count_faces() == 1
        (got,) = list(store.frames(with_masks=True))
        assert (got.name, got.width, got.height, len(got.faces)) == ("renamed.png", 10, 20, 1)
        # The replaced faces' masks went with them (ON DELETE CASCADE).
        n_masks = store.conn.execute("SELECT COUNT(*) FROM masks").fetchone()[0]
        assert n_masks == len(MASK_TYPES)


def test_interrupted_transaction_leaves_nothing(tmp_path: Path, frames: list[FrameRecord]) -> None:
    with AlignmentsStore(tmp_path / "a.db") as store:
        with pytest.raises(KeyboardInterrupt), store.transaction():
            store.put_frame(frames[0])
            store.put_frame(frames[2])
            store.set_meta("half", True)
            raise KeyboardInterrupt
        assert store.count_frames() == 0 and store.count_faces() == 0
        assert store.get_meta("half") is None
        store.put_frame(frames[0])  # the store is usable afterwards
        assert store.count_frames() == 1
    with AlignmentsStore(tmp_path / "a.db", readonly=True) as store:
        assert store.count_frames() == 1


def test_failed_put_frame_inside_transaction_leaves_no_partial_frame(
    tmp_path: Path, frames: list[FrameRecord]
) -> None:
    bad = FrameRecord(99, "bad.png", None, 1, 1, [frames[0].faces[0], frames[0].faces[1]])
    bad.faces[1].box = (1.0, 2.0, 3.0)  # type: ignore[assignment]  # fails on the 2nd face
    with AlignmentsStore(tmp_path / "a.db") as store:
        with store.transaction():
            store.put_frame(frames[2])
            with pytest.raises(sqlite3.Error):
                store.put_frame(bad)
        assert store.frame_indices() == {frames[2].index}
        assert store.count_faces() == 3


# ------------------------------------------------------------------------------ interchange
@pytest.mark.parametrize("fmt", interchange.FORMATS)
def test_export_import_round_trip(
    tmp_path: Path, store_path: Path, frames: list[FrameRecord], fmt: str
) -> None:
    out = tmp_path / f"{fmt}.json"
    summary = interchange.export_json(store_path, out, fmt)
    assert (summary.frames, summary.faces) == (6, 11)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []

    data = json.loads(out.read_text())
    assert list(data) == FRAME_NAMES  # one key per frame, store order, empty frames kept
    face = data["frame1.png"][0]
    keys = {"seed": {"landmark", "warp_matrix"}, "faceswap": {"detected", "landmarks_2d"}}[fmt]
    assert set(face) == keys
    assert interchange.detect_format(data) == fmt

    result = interchange.import_json(out, tmp_path / "copy.db")  # format auto-detected
    assert (result.format, result.frames, result.faces) == (fmt, 6, 11)
    assert (result.new_frames, result.replaced_frames) == (6, 0)
    with AlignmentsStore(tmp_path / "copy.db", readonly=True) as store:
        got = list(store.frames(with_masks=True))
        assert store.get_meta("imported")["format"] == fmt
    assert [(f.index, f.name) for f in got] == [(f.index, f.name) for f in frames]
    for want, have in zip(frames, got, strict=True):
        assert (have.width, have.height) == (0, 0)  # JSON has no frame size
        assert len(have.faces) == len(want.faces)
        for a, b in zip(want.faces, have.faces, strict=True):
            assert np.abs(b.landmarks - a.landmarks).max() <= 1e-3
            assert np.array_equal(_f32(b.landmarks), _f32(a.landmarks))
            assert set(b.masks) == set(MASK_TYPES)
            assert b.masks["extended"].decode().shape == (256, 256)
            if fmt == "seed":
                assert np.array_equal(b.matrix, a.matrix)
                assert b.box == pytest.approx(
                    (*a.landmarks.min(axis=0), *a.landmarks.max(axis=0)), abs=1e-3)
            else:
                assert b.box == a.box
                # Same landmarks, same size/face span: the recomputed matrix matches.
                assert np.allclose(b.matrix, a.matrix, atol=1e-3)


def test_seed_import_computes_missing_matrix_and_uses_options(
    tmp_path: Path, landmark_sets: list[np.ndarray]
) -> None:
    lm = landmark_sets[0]
    src = tmp_path / "face_alignments.json"
    src.write_text(json.dumps({
        "b.jpg": [{"landmark": lm.tolist(), "box": [1, 2, 300, 400], "confidence": 0.75}],
        "a.jpg": [],
    }))
    result = interchange.import_json(src, tmp_path / "s.db", "seed", size=128, face_span=0.8)
    assert (result.frames, result.faces) == (2, 1)
    with AlignmentsStore(tmp_path / "s.db", readonly=True) as store:
        got = {f.name: f for f in store.frames()}
    assert (got["a.jpg"].index, got["b.jpg"].index) == (0, 1)
    (face,) = got["b.jpg"].faces
    assert (face.size, face.face_span, face.confidence) == (128, 0.8, 0.75)
    assert face.box == (1, 2, 300, 400)
    assert np.allclose(face.matrix, alignment_matrix(lm, 128, 0.8))


def test_import_merges_by_name(
    tmp_path: Path, store_path: Path, landmark_sets: list[np.ndarray]
) -> None:
    lm = landmark_sets[5]
    src = tmp_path / "merge.json"
    src.write_text(json.dumps({
        "frame2.png": [{"detected": [0, 0, 50, 50], "landmarks_2d": lm.tolist()}] * 2,
        "new_b.png": [],
        "new_a.png": [{"detected": [0, 0, 50, 50], "landmarks_2d": lm.tolist()}],
    }))
    result = interchange.import_json(src, store_path)
    assert (result.format, result.new_frames, result.replaced_frames) == ("faceswap", 2, 1)
    with AlignmentsStore(store_path, readonly=True) as store:
        got = {f.name: f for f in store.frames()}
        assert store.get_meta("source")["path"] == "clip.mp4"  # meta kept
    assert len(got) == len(FRAME_NAMES) + 2
    kept = got["frame2.png"]
    assert (kept.index, kept.width, kept.height, kept.timestamp) == (1, 640, 480, 1 / 25)
    assert len(kept.faces) == 2 and kept.faces[0].detector == "import:faceswap"
    assert np.allclose(kept.faces[1].landmarks, lm)
    assert len(got["frame10.png"].faces) == 1  # others untouched
    # New names go after the highest index, in natural order, never over another frame.
    assert (got["new_a.png"].index, got["new_b.png"].index) == (6, 7)


def test_import_reads_sizes_from_frames_folder(
    tmp_path: Path, landmark_sets: list[np.ndarray]
) -> None:
    import cv2

    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    cv2.imwrite(str(frames_dir / "f1.png"), np.zeros((48, 64, 3), np.uint8))
    src = tmp_path / "in.json"
    src.write_text(json.dumps({"f1.png": [{"landmark": landmark_sets[0].tolist()}],
                               "f2.png": []}))
    result = interchange.import_json(src, tmp_path / "s.db", frames_dir=frames_dir)
    assert result.sized_frames == 1
    with AlignmentsStore(tmp_path / "s.db", readonly=True) as store:
        sizes = {f.name: (f.width, f.height) for f in store.frames()}
    assert sizes == {"f1.png": (64, 48), "f2.png": (0, 0)}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"a.png": [', "not valid JSON"),
        ("[1, 2]", "JSON object with one key per frame"),
        ('{"a.png": {"landmark": []}}', "frame 'a.png': expected a list of faces"),
        ('{"a.png": [{"landmark": [[1, 2]]}]}', r"frame 'a.png', face 0: 'landmark' must be 68"),
        ('{"a.png": [{"foo": 1}]}', "not a known alignments format"),
        ('{"a.png": [42]}', "not a known alignments format"),
    ],
)
def test_malformed_json_is_refused(tmp_path: Path, content: str, message: str) -> None:
    src = tmp_path / "bad.json"
    src.write_text(content)
    with pytest.raises(InputError, match=message):
        interchange.import_json(src, tmp_path / "s.db")
    assert not (tmp_path / "s.db").exists()  # validated before the store is touched


def test_bad_face_is_named_and_store_unchanged(
    tmp_path: Path, store_path: Path, landmark_sets: list[np.ndarray]
) -> None:
    good = {"landmark": landmark_sets[0].tolist()}
    bad_lm = landmark_sets[1].tolist()
    bad_lm[10] = ["x", 3]
    src = tmp_path / "bad.json"
    src.write_text(json.dumps({"frame1.png": [good], "z.png": [good, {"landmark": bad_lm}]}))
    with pytest.raises(InputError, match=r"frame 'z.png', face 1: 'landmark'"):
        interchange.import_json(src, store_path, "seed")
    src.write_text(json.dumps({"frame1.png": [{"landmark": landmark_sets[0][:67].tolist()}]}))
    with pytest.raises(InputError, match="68"):
        interchange.import_json(src, store_path, "seed")
    src.write_text(json.dumps({"frame1.png": [good]}))
    with pytest.raises(InputError, match="missing 'landmarks_2d'"):
        interchange.import_json(src, store_path, "faceswap")
    with AlignmentsStore(store_path, readonly=True) as store:
        assert store.count_faces() == 11 and store.get_meta("imported") is None


def test_missing_json_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        interchange.import_json(tmp_path / "nope.json", tmp_path / "s.db")


# ------------------------------------------------------------------------------ CLI
@pytest.fixture
def cli():
    return cli_main.main


def test_cli_export_import_info(cli, tmp_path: Path, store_path: Path, capsys) -> None:
    for fmt in interchange.FORMATS:
        out = tmp_path / f"{fmt}.json"
        assert cli(["alignments", "export", str(store_path), str(out), "--format", fmt]) == 0
        copy = tmp_path / f"{fmt}.db"
        assert cli(["alignments", "import", str(out), str(copy), "--size", "192"]) == 0
        with AlignmentsStore(copy, readonly=True) as store:
            assert (store.count_frames(), store.count_faces()) == (6, 11)
            assert {face.size for _, _, face in store.faces()} == {192}
    capsys.readouterr()
    assert cli(["alignments", "info", str(store_path)]) == 0
    text = capsys.readouterr().out
    assert "schema version:   2" in text and "faces:            11" in text
    assert "clip.mp4" in text
    assert cli(["alignments", "info", "--json", str(store_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 6 and summary["frames_without_faces"] == 1
    assert summary["masks"] == {"components": 11, "extended": 11}


def test_cli_user_errors(cli, tmp_path: Path, capsys) -> None:
    assert cli(["alignments", "info", str(tmp_path / "missing.db")]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert cli(["alignments", "import", str(bad), str(tmp_path / "s.db")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    good = tmp_path / "good.json"
    good.write_text("{}")
    assert cli(["alignments", "import", str(good), str(tmp_path / "s.db"),
                "--face-span", "3"]) == 2


def test_atomic_writes_get_normal_permissions(tmp_path):
    import os

    from swapface.core.fileio import atomic_write_bytes

    mask = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "new.json", b"{}")
        assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o644
        os.chmod(tmp_path / "new.json", 0o600)
        atomic_write_bytes(tmp_path / "new.json", b"[]")  # a replaced file keeps its mode
        assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(mask)
