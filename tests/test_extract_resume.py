"""Resuming an extract only when it would give what a clean run gives (issue 13 #5, #6)."""

from __future__ import annotations

import shutil

import pytest

from swapface.align.store import AlignmentsStore
from swapface.core.errors import InputError
from swapface.extract.resume import STALE_DIR
from tests.extract_helpers import extract


@pytest.fixture()
def photos(data_dir, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("biden.jpg", "obama.jpg", "obama2.jpg"):
        shutil.copy(data_dir / "stills" / name, folder / name)
    return folder


def _rows(out):
    with AlignmentsStore(out / "alignments.db", readonly=True) as store:
        return sorted((i, n) for i, n, _ in store.frame_face_counts())


def test_resume_refuses_a_folder_whose_images_moved_index(photos, tmp_path):
    out = tmp_path / "out"
    extract(photos, out, size=64)
    before = _rows(out)
    assert [i for i, _ in before] == [0, 1, 2] and before[0] == (0, "biden.jpg")
    # A new image sorts first: every stored index now names another file.
    shutil.copy(photos / "biden.jpg", photos / "abe.jpg")
    with pytest.raises(InputError, match=r"changed since.*--skip-existing would skip the wrong"):
        extract(photos, out, size=64, skip_existing=True)
    assert _rows(out) == before
    with AlignmentsStore(out / "alignments.db", readonly=True) as store:
        assert store.get_meta("source_frames") == 3  # not rewritten by the refused run


def test_resume_adds_images_appended_at_the_end(photos, tmp_path):
    out = tmp_path / "out"
    extract(photos, out, size=64)
    shutil.copy(photos / "biden.jpg", photos / "zz.jpg")
    summary, _ = extract(photos, out, size=64, skip_existing=True)
    assert summary.frames_skipped == 3 and summary.frames_processed == 1
    assert _rows(out)[-1] == (3, "zz.jpg")


@pytest.mark.parametrize("changed", [{"size": 96}, {"detector": "mediapipe"},
                                     {"blur_threshold": 30.0}])
def test_resume_refuses_changed_face_options(photos, tmp_path, changed):
    out = tmp_path / "out"
    extract(photos, out, size=64)
    before = _rows(out)
    options = {"size": 64, **changed}
    flag = "--" + next(iter(changed)).replace("_", "-")
    with pytest.raises(InputError, match=rf"differ.*{flag}"):
        extract(photos, out, skip_existing=True, **options)
    assert _rows(out) == before


def test_resume_refuses_a_new_filter(photos, tmp_path, data_dir):
    out = tmp_path / "out"
    extract(photos, out, size=64)
    with pytest.raises(InputError, match="--filter"):
        extract(photos, out, size=64, skip_existing=True, filter=[data_dir / "stills" / "obama.jpg"])


def test_resume_refuses_another_video_with_the_same_name(data_dir, tmp_path):
    out = tmp_path / "out"
    clip = tmp_path / "clip.mp4"
    shutil.copy(data_dir / "video" / "woman_a.mp4", clip)
    extract(clip, out, size=64, every_n=200)
    shutil.copy(data_dir / "video" / "woman_b.mp4", clip)
    with pytest.raises(InputError, match="another video"):
        extract(clip, out, size=64, every_n=200, skip_existing=True)


def test_re_extract_moves_faces_without_a_row_to_stale(photos, tmp_path, data_dir):
    out = tmp_path / "out"
    extract(photos, out, size=64)
    faces = out / "faces"
    first = {p.name for p in faces.glob("*.png")}
    assert {"biden_0.png", "obama_0.png", "obama2_0.png"} <= first
    # A face from another input in the same folder, and a user's own picture: not ours.
    extract(data_dir / "stills" / "two_people.jpg", tmp_path / "other", size=64)
    foreign = next((tmp_path / "other" / "faces").glob("*.png"))
    shutil.copy(foreign, faces / "other_face.png")
    shutil.copy(data_dir / "negatives" / "coffee.png", faces / "holiday.png")
    # Re-extract, now keeping only Obama: Biden's old face must not stay for training.
    summary, _ = extract(photos, out, size=64, filter=[data_dir / "stills" / "obama.jpg"])
    assert summary.faces_stale == 1
    assert (faces / STALE_DIR / "biden_0.png").is_file()
    assert not (faces / "biden_0.png").exists()
    assert (faces / "obama_0.png").is_file() and (faces / "obama2_0.png").is_file()
    assert (faces / "other_face.png").is_file() and (faces / "holiday.png").is_file()


def test_sorted_names_survive_a_resume(photos, tmp_path):
    out = tmp_path / "out"
    extract(photos, out, size=64)
    faces = out / "faces"
    (faces / "obama_0.png").rename(faces / "00001_obama_0.png")  # what sort does
    summary, _ = extract(photos, out, size=64, skip_existing=True)
    assert summary.faces_stale == 0
    assert (faces / "00001_obama_0.png").is_file()
