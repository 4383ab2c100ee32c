"""Bad inputs that the robustness suite (benchmarks/robustness.py) found giving tracebacks or
writing where they must not; each fails on the code before its fix."""

from __future__ import annotations

import json
import shutil

import pytest

from swapface.cli.main import main
from swapface.faces.meta import FaceFileMeta


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if ": error:" in line]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def test_deeply_nested_json_import_is_refused(tmp_path, capsys):
    doc = tmp_path / "deep.json"
    doc.write_text("[" * 100_000 + "]" * 100_000)
    assert main(["alignments", "import", str(doc), str(tmp_path / "a.db")]) == 2
    assert "nested too deeply" in _one_error_line(capsys)


def test_import_refuses_coordinates_no_frame_has(tmp_path, capsys):
    face = {"landmark": [[1e308 * (i % 2), 5.0 * i] for i in range(68)]}
    doc = tmp_path / "huge.json"
    doc.write_text(json.dumps({"f.png": [face]}))
    assert main(["alignments", "import", str(doc), str(tmp_path / "a.db")]) == 2
    assert "values no frame has" in _one_error_line(capsys)


@pytest.mark.parametrize("field", ["frame_index", "face_index", "size"])
def test_face_metadata_with_huge_integers_counts_as_none(field):
    meta = {"frame_index": 3, "face_index": 0, "size": 64, "landmarks": [[1, 2]] * 68,
            "matrix": [[1, 0, 0], [0, 1, 0]], field: 10**30}
    with pytest.raises(ValueError, match="whole numbers"):
        FaceFileMeta.from_dict(meta)


def test_extract_of_a_read_only_folder_from_its_parent_never_writes_into_it(
        data_dir, tmp_path, monkeypatch, capsys):
    shared = tmp_path / "shared"
    shared.mkdir()
    shutil.copy(data_dir / "stills" / "obama.jpg", shared / "obama.jpg")
    shared.chmod(0o555)
    monkeypatch.chdir(tmp_path)
    try:
        assert main(["extract", "shared", "--size", "64", "--workers", "1", "-q"]) == 0
        assert sorted(p.name for p in shared.iterdir()) == ["obama.jpg"]
        assert (tmp_path / "shared_swapface" / "alignments.db").is_file()
        assert list((tmp_path / "shared_swapface" / "face_images").glob("*.png"))
    finally:
        shared.chmod(0o755)


@pytest.mark.parametrize("name", ["out.avi", "out.png", "out.webm"])
def test_convert_refuses_a_media_name_it_would_write_as_a_folder(pair, trained, tmp_path,
                                                                  capsys, name):
    out = tmp_path / name
    assert main(["convert", str(pair.a.video), "-m", str(trained), "--alignments",
                 str(pair.a.store), "-o", str(out), "-q"]) == 2
    assert "cannot write" in _one_error_line(capsys) and not out.exists()


def test_convert_refuses_another_videos_store_of_the_same_length(pair, trained, tmp_path,
                                                                 capsys):
    """Two clips of equal length: the frame count cannot tell their stores apart."""
    other = tmp_path / "other.mp4"
    shutil.copy(pair.b.video, other)
    from swapface.align.store import AlignmentsStore

    store = tmp_path / "a.db"
    shutil.copy(pair.a.store, store)
    with AlignmentsStore(store) as s:
        from swapface.media.source import open_source

        s.set_meta("source_frames", open_source(other).count)
    assert main(["convert", str(other), "-m", str(trained), "--alignments", str(store),
                 "-o", str(tmp_path / "out.mp4"), "-q"]) == 2
    assert "was made from" in _one_error_line(capsys)
