"""Projects: the FaceIt API example on the shared clips, the CLI, and project.json checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from swapface.align.store import AlignmentsStore
from swapface.cli.main import main
from swapface.core.errors import ConfigError, InputError
from swapface.core.images import read_metadata
from swapface.media.video import iter_video, probe_video
from swapface.project.project import Project, open_project
from tests.extract_helpers import cut_clip

A_FRAMES = 24


@pytest.fixture(scope="module")
def media(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A short cut of woman_a (A's video), a photo folder holding one woman_a still and a
    photo of someone else, and a reference still of woman_a from another frame."""
    root = tmp_path_factory.mktemp("project_media")
    clip = cut_clip(data_dir / "video" / "woman_a.mp4", root / "who_trust.mp4", A_FRAMES, audio=True)
    frames = {i: img for i, _, img in iter_video(data_dir / "video" / "woman_a.mp4") if i in (5, 300, 600)}
    photos = root / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "woman_a_still.jpg"), frames[300])
    shutil.copy(data_dir / "stills" / "obama.jpg", photos / "someone_else.jpg")
    cv2.imwrite(str(root / "hepburn.jpg"), frames[600])
    return {"clip": clip, "photos": photos, "reference": root / "hepburn.jpg",
            "b": data_dir / "video" / "woman_b.mp4"}


def test_faceit_api_example_runs_on_the_shared_clips(media: dict[str, Path], tmp_path: Path):
    workspace = tmp_path / "ws"
    p = Project.create(workspace, "hepburn_to_ohara", "hepburn", "ohara")
    p.add("ohara", media["b"])  # the whole shared clip of woman_b
    p.add("hepburn", media["clip"])
    p.add("hepburn", media["photos"])
    p.add_reference("hepburn", media["reference"])
    faces = p.preprocess(persons=["ohara"], size=128, every_n=10)
    faces |= p.preprocess(persons=["hepburn"], size=128)
    assert faces["ohara/woman_b.mp4"] >= 30
    # The reference keeps woman_a's faces only: every frame of her clip, and of the photo
    # folder her still but not the other person's photo.
    assert faces["hepburn/who_trust.mp4"] == A_FRAMES
    assert faces["hepburn/photos"] == 1
    with AlignmentsStore(p.store_path("hepburn", "photos"), readonly=True) as store:
        assert [name for _, name, n in store.frame_face_counts() if n] == ["woman_a_still.jpg"]
    assert len(list(p.faces_dir("hepburn").glob("*.png"))) == A_FRAMES + 1

    state = p.train(model="lightweight", iterations=20, minutes=2, batch_size=8)
    assert state["iteration"] == 20 and (p.model_dir / "latest.json").is_file()

    out = p.convert("who_trust.mp4", face_filter=True, photos=True)
    assert out == p.dir / "outputs" / "who_trust_as_ohara.mp4"
    assert probe_video(out).frame_count == A_FRAMES
    frames = sorted((p.dir / "outputs" / "who_trust_as_ohara_frames").glob("*.png"))
    assert len(frames) == A_FRAMES
    assert read_metadata(frames[0]).get("synthetic") is True
    # The face changed, the background did not.
    with AlignmentsStore(p.store_path("hepburn", "who_trust.mp4"), readonly=True) as store:
        box = store.frame(10).faces[0].box
    source = next(img for i, _, img in iter_video(media["clip"]) if i == 10)
    swapped = cv2.imread(str(frames[10]))
    l, t, r, b = (int(v) for v in box)
    inside = np.abs(source[t:b, l:r].astype(int) - swapped[t:b, l:r]).mean()
    corner = np.abs(source[:40, :40].astype(int) - swapped[:40, :40]).mean()
    assert inside > 8 > 1.5 > corner

    again = open_project(workspace, "hepburn_to_ohara")  # everything was saved
    assert again.data["outputs"]["who_trust.mp4"]["frames"] == A_FRAMES
    assert again.preprocess(persons=["hepburn"], size=128) == {
        "hepburn/who_trust.mp4": A_FRAMES, "hepburn/photos": 1}  # done: nothing re-extracted


def test_references_added_later_re_extract_with_the_filter(media: dict[str, Path], tmp_path: Path):
    p = Project.create(tmp_path, "x", "hepburn", "ohara")
    p.add("hepburn", media["photos"])
    assert p.preprocess(persons=["hepburn"], size=64) == {"hepburn/photos": 2}  # no filter yet
    p.add_reference("hepburn", media["reference"])
    assert p.preprocess(persons=["hepburn"], size=64) == {"hepburn/photos": 1}
    kept = sorted(f.name for f in p.faces_dir("hepburn").glob("*.png"))
    assert kept == ["woman_a_still_0.png"]  # the other person's face went to stale/


def test_cli_project_steps(media: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    ws = ["--workspace", str(tmp_path)]
    assert main(["project", "new", *ws, "demo", "alice", "bob"]) == 0
    assert main(["project", "add", *ws, "demo", "alice", str(media["photos"])]) == 0
    assert main(["project", "reference", *ws, "demo", "alice", str(media["reference"])]) == 0
    assert main(["project", "preprocess", *ws, "demo", "--size", "64", "-q"]) == 0
    capsys.readouterr()
    assert main(["project", "status", *ws, "demo"]) == 0
    out = capsys.readouterr().out
    assert "alice (replaced): 1 media, 1 reference photo(s), 1 faces" in out
    assert "photos (photos): 1 faces" in out
    assert main(["project", "train", *ws, "demo"]) == 2  # bob has no faces: one clear line
    assert "bob has no faces yet" in capsys.readouterr().err
    assert main(["project", "new", *ws, "demo", "a", "b"]) == 2  # exists already


@pytest.mark.parametrize("field, value", [
    ("name", "../outside"), ("persons", {"a": "../../etc", "b": "bob"}),
    ("persons", {"a": "/abs", "b": "bob"}), ("persons", {"a": "same", "b": "same"}),
    ("media", {"alice": [{"name": "../../x.mp4", "kind": "video"}]}),
    ("media", {"alice": [{"name": "a/b.mp4", "kind": "video"}]}),
    ("references", {"alice": ["..\\\\evil.jpg"]}), ("format", 99), ("kind", "other"),
])
def test_a_received_project_file_cannot_point_outside(tmp_path: Path, field: str, value: object):
    p = Project.create(tmp_path, "demo", "alice", "bob")
    data = json.loads((p.dir / "project.json").read_text())
    data[field] = value
    (p.dir / "project.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError):
        open_project(tmp_path, "demo")


def test_bad_names_and_inputs_are_refused(tmp_path: Path, media: dict[str, Path]):
    for name in ("..", "../x", "a/b", ".hidden", "", "x" * 81, "nul\x00"):
        with pytest.raises(ConfigError):
            Project.create(tmp_path, name, "a", "b")
    p = Project.create(tmp_path, "ok", "a", "b")
    with pytest.raises(ConfigError, match="no person"):
        p.add("c", media["clip"])
    with pytest.raises(InputError, match="not a video"):
        p.add("a", tmp_path / "ok" / "project.json")
    with pytest.raises(ConfigError, match="exists already"):
        Project.create(tmp_path, "ok", "a", "b")
