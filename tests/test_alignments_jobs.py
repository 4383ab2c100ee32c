"""``swapface alignments`` curate jobs on real extracted faces."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from swapface.align.records import FrameRecord
from swapface.align.store import AlignmentsStore
from swapface.cli.main import main
from swapface.core.errors import InputError
from swapface.core.images import read_image, read_metadata, write_image
from swapface.curate import jobs
from swapface.media.source import open_source
from tests.extract_helpers import extract

EVERY_N = 9


@pytest.fixture(scope="module")
def extracted(data_dir, tmp_path_factory) -> Path:
    """woman_b, every 9th frame, 96 px faces: ``faces/`` and ``alignments.db``."""
    out = tmp_path_factory.mktemp("woman_b")
    extract(data_dir / "video" / "woman_b.mp4", out, every_n=EVERY_N, size=96)
    return out


@pytest.fixture
def work(extracted, tmp_path) -> Path:
    """A private copy of the extract, so each test may change it."""
    shutil.copytree(extracted, tmp_path / "x")
    return tmp_path / "x"


def _rows(db: Path) -> dict[int, tuple]:
    conn = sqlite3.connect(db)
    try:
        return {r[0]: r for r in conn.execute("SELECT * FROM faces")}
    finally:
        conn.close()


def _frames(db: Path) -> list:
    with AlignmentsStore(db, readonly=True) as store:
        return list(store.frames())


def test_remove_faces_drops_exactly_the_deleted(work, capsys):
    db, faces = work / "alignments.db", work / "faces"
    before = _rows(db)
    assert len(before) >= 30
    deleted = sorted(r[15] for r in before.values())[3:13]
    for name in deleted:
        (faces / name).unlink()
    assert main(["alignments", "remove-faces", str(db), str(faces)]) == 0
    assert "removed 10 faces" in capsys.readouterr().out
    after = _rows(db)
    assert len(after) == len(before) - 10
    assert {r[15] for r in before.values()} - {r[15] for r in after.values()} == set(deleted)
    for fid, row in after.items():
        assert row == before[fid]  # untouched rows are byte-identical
    backups = list(work.glob("alignments.*.bak.db"))
    assert len(backups) == 1 and len(_rows(backups[0])) == len(before)
    # Nothing left to remove: no change and no new backup.
    assert jobs.remove_faces(db, faces).removed == []


def test_rename_then_from_faces_round_trips(work, capsys):
    db, faces = work / "alignments.db", work / "faces"
    names = sorted(p.name for p in faces.glob("*.png"))
    # Scramble: rotate names by one (a cycle, so a one-phase rename would overwrite).
    tmp = [faces / f"tmp{i}.png" for i in range(len(names))]
    for name, t in zip(names, tmp, strict=True):
        (faces / name).rename(t)
    for i, t in enumerate(tmp):
        t.rename(faces / names[(i + 1) % len(names)])
    assert main(["alignments", "rename", str(db), str(faces)]) == 0
    out = capsys.readouterr().out
    assert f"renamed {len(names)} faces" in out and "0 conflicts" in out
    assert f"{len(names)} store rows updated" in out
    assert sorted(r[15] for r in _rows(db).values()) == names
    for p in faces.glob("*.png"):
        meta = read_metadata(p)
        assert p.name == f"{meta['frame']}_{meta['face_index']}.png"

    rebuilt = work / "rebuilt.db"
    assert main(["alignments", "from-faces", str(faces), str(rebuilt)]) == 0
    orig, new = _frames(db), _frames(rebuilt)
    orig = [f for f in orig if f.faces]  # frames without faces have no files to rebuild from
    assert [f.name for f in new] == [f.name for f in orig]
    assert [f.index for f in new] == [f.index for f in orig]
    assert [len(f.faces) for f in new] == [len(f.faces) for f in orig]
    for a, b in zip(orig, new, strict=True):
        for fa, fb in zip(a.faces, b.faces, strict=True):
            np.testing.assert_allclose(fb.landmarks, fa.landmarks, atol=1e-3)
            np.testing.assert_allclose(fb.matrix, fa.matrix, atol=1e-6)
            assert fb.file == fa.file and set(fb.masks) == set(fa.masks)


def test_rename_reports_conflicts(work):
    faces = work / "faces"
    first, second = sorted(faces.glob("*.png"))[:2]
    # A copy of the first face under another name wants the first one's name too.
    shutil.copy(first, faces / "copy.png")
    result = jobs.rename_faces(faces)
    assert result.renamed == [] and result.conflicts and "copy.png" in result.conflicts[0]
    assert first.exists() and second.exists() and (faces / "copy.png").exists()


def test_extract_every_n_size(work, data_dir, capsys):
    db, out = work / "alignments.db", work / "again"
    expected = {f"{Path(f.name).stem}_{face.face_index}.png"
                for f in _frames(db) if f.index % 5 == 0 for face in f.faces}
    assert 3 <= len(expected) < len(_rows(db))
    assert main(["alignments", "extract", str(db), str(data_dir / "video" / "woman_b.mp4"),
                 str(out), "--every-n", "5", "--size", "128"]) == 0
    assert f"wrote {len(expected)} faces" in capsys.readouterr().out
    written = {p.name for p in out.glob("*.png")}
    assert written == expected
    for name in written:
        assert read_image(out / name).shape == (128, 128, 3)
        meta = read_metadata(out / name)
        assert meta["size"] == 128 and meta["frame_index"] % 5 == 0
        assert set(meta) >= {"source", "frame", "frame_index", "face_index", "box", "landmarks",
                             "matrix", "face_span", "alignments"}
    # --large at a size bigger than any face writes nothing.
    result = jobs.extract_faces(db, data_dir / "video" / "woman_b.mp4", work / "large",
                                every_n=5, size=4000, large=True)
    assert result.written == [] and result.too_small == len(expected)


def test_merge(work, tmp_path):
    db = work / "alignments.db"
    total = len(_rows(db))
    same = jobs.merge_stores(db, db, tmp_path / "same.db")
    assert same.faces == total and same.duplicates == total
    # Two disjoint halves of the store merge back into the full face count.
    frames = _frames(db)
    half_a, half_b = tmp_path / "a.db", tmp_path / "b.db"
    for path, part in ((half_a, frames[::2]), (half_b, frames[1::2])):
        with AlignmentsStore(path) as store, store.transaction():
            for f in part:
                store.put_frame(f)
    merged = jobs.merge_stores(half_a, half_b, tmp_path / "merged.db")
    assert merged.faces == total and merged.duplicates == 0
    assert [f.name for f in _frames(tmp_path / "merged.db")] == [f.name for f in frames]
    with pytest.raises(Exception, match="exists"):
        jobs.merge_stores(half_a, half_b, tmp_path / "merged.db")


def test_reports(work, data_dir, capsys):
    db, faces, clip = work / "alignments.db", work / "faces", data_dir / "video" / "woman_b.mp4"
    assert main(["alignments", "missing-frames", str(db), str(clip), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    count = open_source(clip).count
    assert [f["index"] for f in report["frames"]] == [i for i in range(count) if i % EVERY_N]
    assert report["frames"][0]["name"] == "woman_b_000001"
    assert main(["alignments", "multi-faces", str(db), str(faces), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 0
    assert jobs.missing_alignments(db).frames == [
        (f.index, f.name) for f in _frames(db) if not f.faces]
    # Every 9th frame is too sparse for temporal smoothing: nothing changes, no backup.
    smoothed = jobs.smooth_landmarks(db)
    assert smoothed.faces == 0 and smoothed.backup is None


def test_draw(work, data_dir):
    db = work / "alignments.db"
    result = jobs.draw_alignments(db, data_dir / "video" / "woman_b.mp4", work / "draw")
    with_faces = [f for f in _frames(db) if f.faces]
    assert result.written == len(with_faces)
    assert (work / "draw" / f"{with_faces[0].name}.jpg").is_file()


def _jitter(points: np.ndarray) -> float:
    """Mean energy of the second difference over time: (n, 68, 2) → scalar."""
    return float((np.diff(points, n=2, axis=0) ** 2).sum(axis=(1, 2)).mean())


@pytest.fixture(scope="module")
def clip_store(data_dir, tmp_path_factory) -> Path:
    """40 consecutive frames of man_a, extracted frame by frame (no tracking)."""
    root = tmp_path_factory.mktemp("clip")
    frames = root / "frames"
    for frame in open_source(data_dir / "video" / "man_a.mp4").frames():
        if frame.index >= 40:
            break
        write_image(frames / f"f{frame.index:03d}.png", frame.image)
    extract(frames, root / "out", size=64)
    return root


def test_smooth_reduces_jitter_without_lag(clip_store, tmp_path):
    db = tmp_path / "clip.db"
    shutil.copy(clip_store / "out" / "alignments.db", db)
    before = [f for f in _frames(db) if len(f.faces) == 1]
    assert len(before) >= 35
    assert main(["alignments", "smooth", str(db), "--window", "5"]) == 0
    after = {f.name: f for f in _frames(db)}
    a = np.stack([f.faces[0].landmarks for f in before])
    b = np.stack([after[f.name].faces[0].landmarks for f in before])
    assert _jitter(b) < 0.6 * _jitter(a)
    shift = np.linalg.norm(b - a, axis=2)
    assert shift.mean() < 1.5 and shift.max() < 6
    # Matrices follow the new landmarks.
    from swapface.align.transform import alignment_matrix

    face = after[before[10].name].faces[0]
    np.testing.assert_allclose(face.matrix, alignment_matrix(face.landmarks, face.size, face.face_span),
                               atol=1e-4)
    assert list(tmp_path.glob("clip.*.bak.db"))


def test_smooth_follows_fast_motion():
    """A face moving at constant speed (any speed) is left where it is: no lag."""
    t = np.arange(20)
    base = np.random.default_rng(0).uniform(0, 100, 136)
    pts = base + 25.0 * t[:, None]  # 25 px per frame
    for method in jobs.SMOOTH_METHODS:
        np.testing.assert_allclose(jobs.smooth_track(t, pts, 5, method), pts, atol=1e-6)


def test_multi_faces_move_keeps_store_in_step(work):
    db, faces = work / "alignments.db", work / "faces"
    frame = _frames(db)[0]
    extra = copy.deepcopy(frame.faces[0])
    extra.face_index, extra.file = 1, f"{frame.name}_1.png"
    extra.landmarks = extra.landmarks + 40.0
    shutil.copy(faces / frame.faces[0].file, faces / extra.file)
    with AlignmentsStore(db) as store:
        store.put_frame(dataclasses.replace(frame, faces=[frame.faces[0], extra]))
    report = jobs.multi_faces(db, faces)
    assert [f["name"] for f in report.frames] == [frame.name] and report.moved == 0
    moved = jobs.multi_faces(db, faces, move=True)
    assert moved.moved == 2 and moved.backup is not None
    assert sorted(p.name for p in (faces / jobs.MULTI_FACES_DIR).iterdir()) == sorted(
        [frame.faces[0].file, extra.file])
    # The store follows the files: nothing counts as deleted.
    assert jobs.remove_faces(db, faces).removed == []


def test_no_faces_move(tmp_path):
    frames = tmp_path / "frames"
    image = np.zeros((32, 32, 3), np.uint8)
    db = tmp_path / "a.db"
    with AlignmentsStore(db) as store:
        for i in range(3):
            write_image(frames / f"f{i}.png", image)
            store.put_frame(FrameRecord(i, f"f{i}.png", None, 32, 32))
    assert [n for _, n in jobs.no_faces(db, frames).frames] == ["f0.png", "f1.png", "f2.png"]
    assert jobs.no_faces(db, frames, move=True).moved == 3
    assert sorted(p.name for p in (frames / jobs.NO_FACES_DIR).iterdir()) == ["f0.png", "f1.png", "f2.png"]
    with pytest.raises(InputError):
        jobs.no_faces(db, tmp_path / "clip.mp4", move=True)


# ------------------------------------------------------------------------------ crafted names
def _sentinel(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    folder = tmp_path / "precious"
    folder.mkdir()
    write_image(folder / "photo.png", np.full((8, 8, 3), 7, np.uint8))
    return folder, {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("name", ["../x.png", "/etc/passwd", "a/../../x.png", "a\\b.png", ".", ""])
def test_store_and_import_refuse_names_that_leave_the_folder(tmp_path: Path, name: str, capsys):
    with AlignmentsStore(tmp_path / "a.db") as store, pytest.raises(InputError):
        store.put_frame(FrameRecord(0, name, None, 32, 32))
    doc = tmp_path / "align.json"
    doc.write_text(json.dumps({name: []}))
    assert main(["alignments", "import", str(doc), str(tmp_path / "b.db")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "b.db").exists() or AlignmentsStore(tmp_path / "b.db",
                                                               readonly=True).count_frames() == 0


def test_moves_never_leave_the_folder_even_for_a_crafted_store(work, tmp_path: Path):
    """A store received from someone else, edited with raw SQL past every check."""
    db, faces = work / "alignments.db", work / "faces"
    sentinel, snapshot = _sentinel(tmp_path)
    frame = _frames(db)[0]
    extra = copy.deepcopy(frame.faces[0])
    extra.face_index, extra.file = 1, f"{frame.name}_1.png"
    with AlignmentsStore(db) as store:
        store.put_frame(dataclasses.replace(frame, faces=[frame.faces[0], extra]))
    outside = str(Path("..") / ".." / sentinel.name / "photo.png")
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE faces SET file=? WHERE face_index=1", (outside,))
        conn.execute("INSERT INTO frames(idx, name, timestamp, width, height) "
                     "VALUES (99999, ?, NULL, 8, 8)", (f"../{sentinel.name}/photo.png",))
    conn.close()
    moved = jobs.multi_faces(db, faces, move=True)
    assert outside in moved.refused and moved.moved == 1
    frames = tmp_path / "frames"
    frames.mkdir()
    assert jobs.no_faces(db, frames, move=True).refused == [f"../{sentinel.name}/photo.png"]
    assert {p.name: p.read_bytes() for p in sentinel.iterdir()} == snapshot
    # remove-faces treats the outside name as a face not in the folder: the row goes, no file
    assert outside in jobs.remove_faces(db, faces).removed
    assert {p.name: p.read_bytes() for p in sentinel.iterdir()} == snapshot


def test_sort_then_delete_then_remove_faces_drops_only_the_deleted(work, capsys):
    """The README workflow: sort renames every file, the user deletes a few bad faces."""
    db, faces = work / "alignments.db", work / "faces"
    before = _rows(db)
    assert main(["sort", str(faces), "--by", "blur", "-q"]) == 0
    sorted_files = sorted(p for p in faces.iterdir() if p.suffix == ".png")
    assert not {p.name for p in sorted_files} & {r[15] for r in before.values()}  # all renamed
    for path in sorted_files[-3:]:  # the three blurriest
        path.unlink()
    capsys.readouterr()
    assert main(["alignments", "remove-faces", str(db), str(faces)]) == 0
    assert "removed 3 faces" in capsys.readouterr().out
    after = _rows(db)
    assert len(after) == len(before) - 3
    assert {r[15] for r in after.values()} == {p.name for p in sorted_files[:-3]}  # relinked


def test_remove_faces_refuses_to_drop_most_faces_without_force(work, capsys):
    db = work / "alignments.db"
    before = _rows(db)
    empty = work / "wrong_folder"
    empty.mkdir()
    assert main(["alignments", "remove-faces", str(db), str(empty)]) == 2
    assert "--force" in capsys.readouterr().err and _rows(db) == before
    assert main(["alignments", "remove-faces", str(db), str(empty), "--force"]) == 0
    assert _rows(db) == {}


def _two_face_frame(db: Path, faces: Path):
    frame = _frames(db)[0]
    extra = copy.deepcopy(frame.faces[0])
    extra.face_index, extra.file = 1, f"{frame.name}_1.png"
    shutil.copy(faces / frame.faces[0].file, faces / extra.file)
    with AlignmentsStore(db) as store:
        store.put_frame(dataclasses.replace(frame, faces=[frame.faces[0], extra]))
    return frame.faces[0].file, extra.file


def _stored_files(db: Path) -> set[str]:
    return {r[15] for r in _rows(db).values()}


def test_multi_faces_move_failing_midway_puts_everything_back(work, monkeypatch):
    db, faces = work / "alignments.db", work / "faces"
    names = _two_face_frame(db, faces)
    before = _stored_files(db)
    real, calls = jobs.reports.os.replace, []

    def flaky(src, dst):
        calls.append(src)
        if len(calls) == 2:
            raise PermissionError(13, "Permission denied")
        return real(src, dst)

    monkeypatch.setattr(jobs.reports.os, "replace", flaky)
    with pytest.raises(PermissionError):
        jobs.multi_faces(db, faces, move=True)
    assert all((faces / n).is_file() for n in names)
    assert _stored_files(db) == before


def test_multi_faces_move_killed_after_commit_is_finished_by_a_rerun(work, monkeypatch):
    db, faces = work / "alignments.db", work / "faces"
    names = _two_face_frame(db, faces)

    def killed(src, dst):
        raise KeyboardInterrupt  # stands for SIGKILL right after the rows were committed

    monkeypatch.setattr(jobs.reports.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        jobs.multi_faces(db, faces, move=True)
    monkeypatch.undo()
    assert jobs.multi_faces(db, faces, move=True).moved == 2
    assert all((faces / jobs.MULTI_FACES_DIR / n).is_file() for n in names)
    assert jobs.remove_faces(db, faces).removed == []  # store and folder in step


def test_rename_killed_midway_is_finished_by_a_rerun(work, monkeypatch):
    db, faces = work / "alignments.db", work / "faces"
    files = sorted(faces.glob("*.png"))
    with AlignmentsStore(db) as store:  # files renamed with the store in step (as sort would)
        for n, path in enumerate(files[:6]):
            path.rename(path.with_name(f"{n:05d}_sorted.png"))
            meta = read_metadata(path.with_name(f"{n:05d}_sorted.png"))
            store.set_face_file_at(meta["frame_index"], meta["face_index"], f"{n:05d}_sorted.png")
    real, calls = jobs.clean.os.replace, []

    def dies(src, dst):
        calls.append(src)
        if len(calls) == 9:  # in the second phase of the renames
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(jobs.clean.os, "replace", dies)
    with pytest.raises(KeyboardInterrupt):
        jobs.rename_faces(faces, db)
    monkeypatch.undo()
    jobs.rename_faces(faces, db)
    on_disk = {p.name for p in faces.glob("*.png")} | {p.name for p in faces.glob(".*.png")}
    assert on_disk == {p.name for p in files} == _stored_files(db) - {None}
