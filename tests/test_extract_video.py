"""Extract on real clips: counts, debug images, tracking accuracy, crash-safe resume."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import av
import numpy as np
import pytest

from swapface.align.landmarks import inter_ocular_distance
from swapface.core.errors import InputError
from swapface.core.images import read_metadata
from tests.extract_helpers import extract


def test_woman_a_one_face_per_frame(data_dir, tmp_path):
    summary, frames = extract(data_dir / "video" / "woman_a.mp4", tmp_path, workers=0)
    faces = [f for fr in frames for f in fr.faces]
    assert summary.frames_processed == len(frames) == 1008
    assert len(faces) >= 1000 and summary.faces_written == len(faces)
    assert all(len(fr.faces) <= 1 for fr in frames)  # one woman, no duplicates
    written = sorted(p.name for p in (tmp_path / "faces").glob("*.png"))
    assert len(written) == len(faces)
    assert len(list((tmp_path / "faces" / "masks").glob("*.png"))) == len(faces)
    assert [fr.index for fr in frames] == list(range(1008))
    # Timestamps from the container, 30 fps.
    assert frames[300].timestamp == pytest.approx(10.0, abs=0.05)
    meta = read_metadata(tmp_path / "faces" / written[0])
    assert meta["frame"] == "woman_a_000000" and meta["frame_index"] == 0


def test_debug_images(data_dir, tmp_path):
    summary, frames = extract(data_dir / "video" / "woman_b.mp4", tmp_path, every_n=100, debug=True)
    assert [f.index for f in frames] == [0, 100, 200, 300]
    debug = tmp_path / "faces" / "debug"
    for kind in ("face_bbox_", "face_landmarks_", "face_aligned_", "face_mask_"):
        assert len(list(debug.glob(kind + "*"))) == summary.faces_written == 4, kind


def test_tracking_matches_per_frame_detection(data_dir, tmp_path):
    clip = data_dir / "video" / "man_a.mp4"
    _, tracked = extract(clip, tmp_path / "t", every_n=4, track=True, redetect_every=8)
    _, detected = extract(clip, tmp_path / "d", every_n=4, track=False)
    pairs = [(a.faces[0], b.faces[0]) for a, b in zip(tracked, detected, strict=True)
             if a.faces and b.faces]
    assert len(pairs) >= 0.95 * len(detected)
    assert sum(bool(f.faces) for f in tracked) >= sum(bool(f.faces) for f in detected) - 2
    err = [np.linalg.norm(a.landmarks - b.landmarks, axis=1).mean() / inter_ocular_distance(b.landmarks)
           for a, b in pairs]
    assert np.median(err) < 0.03 and np.mean(err) < 0.05


def _remux(src, dst) -> None:
    """Copy a clip's video packets into Matroska, whose index does not sit at the end."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)


def test_truncated_video_keeps_what_decodes(data_dir, tmp_path):
    full = tmp_path / "full.mkv"
    _remux(data_dir / "video" / "woman_b.mp4", full)
    clip = tmp_path / "cut clip ü.mkv"
    data = full.read_bytes()
    clip.write_bytes(data[: len(data) // 3])
    summary, frames = extract(clip, tmp_path / "out", every_n=10)
    assert 0 < len(frames) < 36
    assert summary.faces_written == len(frames)
    assert any("truncated" in p or "ended" in p for p in summary.problems)


def test_truncated_mp4_without_index_is_a_clear_error(data_dir, tmp_path):
    clip = tmp_path / "cut.mp4"
    data = (data_dir / "video" / "woman_b.mp4").read_bytes()
    clip.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="truncated"):
        extract(clip, tmp_path / "out")


def _count(db) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_then_skip_existing_equals_a_clean_run(data_dir, tmp_path):
    clip = data_dir / "video" / "woman_b.mp4"
    args = [sys.executable, "-m", "swapface.cli.main", "extract", str(clip), "-q",
            "--every-n", "2", "--workers", "2"]
    crash = tmp_path / "crash"
    cmd = [*args, "--export-path", str(crash / "faces"), "--alignments", str(crash / "a.db")]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while _count(crash / "a.db") < 60 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "extract finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _count(crash / "a.db")
    assert 0 < partial < 177

    assert subprocess.run([*cmd, "--skip-existing"], capture_output=True).returncode == 0
    clean = tmp_path / "clean"
    subprocess.run([*args, "--export-path", str(clean / "faces"), "--alignments",
                    str(clean / "a.db")], check=True, capture_output=True)

    def contents(db):
        with sqlite3.connect(db) as conn:
            frames = [r[0] for r in conn.execute("SELECT idx FROM frames ORDER BY idx")]
            faces = conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
            dup = conn.execute(
                "SELECT COUNT(*) FROM (SELECT frame_id, face_index FROM faces"
                " GROUP BY frame_id, face_index HAVING COUNT(*) > 1)").fetchone()[0]
            files = {r[0] for r in conn.execute("SELECT file FROM faces")}
        return frames, faces, dup, files

    resumed, fresh = contents(crash / "a.db"), contents(clean / "a.db")
    assert resumed[0] == fresh[0] == list(range(0, 354, 2))
    assert resumed[1] == fresh[1] and resumed[2] == 0
    assert resumed[3] == fresh[3]
    on_disk = {p.name for p in (crash / "faces").glob("*.png")}
    assert on_disk == resumed[3]


def test_read_only_input_outputs_go_to_cwd_where_later_stages_find_them(data_dir, tmp_path,
                                                                         monkeypatch):
    from swapface.extract.config import ExtractConfig
    from swapface.extract.run import run_extract
    from swapface.media.source import default_store_path

    shelf = tmp_path / "read only"
    shelf.mkdir()
    clip = shelf / "clip.mp4"
    clip.symlink_to(data_dir / "video" / "woman_b.mp4")
    shelf.chmod(0o555)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    try:
        summary = run_extract(ExtractConfig(input=clip, every_n=100))
    finally:
        shelf.chmod(0o755)
    assert summary.faces_written == 4
    assert sorted(p.name for p in shelf.iterdir()) == ["clip.mp4"]  # nothing written beside it
    assert (work / "clip_alignments.db").is_file()
    assert len(list((work / "clip" / "face_images").glob("*.png"))) == 4
    # convert and the alignments jobs look the store up with the same rule
    shelf.chmod(0o555)
    try:
        assert default_store_path(clip, True).resolve() == (work / "clip_alignments.db").resolve()
    finally:
        shelf.chmod(0o755)
