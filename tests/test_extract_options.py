"""Extract options: config files, size filters, blur sorting, JPEG output, identity, CLI."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from swapface.cli.main import main
from swapface.core.config import build_config, load_config_file
from swapface.core.errors import ConfigError
from swapface.core.images import read_image, read_metadata
from swapface.extract.config import ExtractConfig
from tests.extract_helpers import extract


def test_config_file_and_cli_precedence(tmp_path):
    cfg_file = tmp_path / "swap.toml"
    cfg_file.write_text('[extract]\nsize = 128\nevery-n = 5\ndetector = "hog"\n')
    values = load_config_file(cfg_file, "extract")
    cfg = build_config(ExtractConfig, {"input": "clip.mp4", "every_n": 2}, values)
    assert (cfg.size, cfg.every_n, cfg.detector) == (128, 2, "hog")
    assert str(cfg.input) == "clip.mp4"
    cfg_file.write_text("[extract]\nsizee = 128\n")
    with pytest.raises(ConfigError, match="sizee"):
        build_config(ExtractConfig, {"input": "x"}, load_config_file(cfg_file, "extract"))
    with pytest.raises(ConfigError):
        ExtractConfig(input="x", face_span=3.0)


def test_min_size_drops_small_faces(data_dir, tmp_path):
    folder = data_dir / "stills" / "dlib_faces"
    _, all_faces = extract(folder, tmp_path / "a")
    _, big_only = extract(folder, tmp_path / "b", min_size=0.01)
    n_all = sum(len(f.faces) for f in all_faces)
    n_big = sum(len(f.faces) for f in big_only)
    assert 0 < n_big < n_all
    for frame in big_only:
        for face in frame.faces:
            l, t, r, b = face.box
            assert (r - l) * (b - t) >= 0.01 * frame.width * frame.height


def test_blurry_faces_go_to_their_own_folder(data_dir, tmp_path):
    sharp = read_image(data_dir / "stills" / "obama.jpg")
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_sharp.png"), sharp)
    cv2.imwrite(str(folder / "b_blurred.png"), cv2.GaussianBlur(sharp, (0, 0), 6))
    _, probe = extract(folder, tmp_path / "probe")
    scores = {f.name: f.faces[0].blur for f in probe}
    assert scores["a_sharp.png"] > 3 * scores["b_blurred.png"]
    threshold = (scores["a_sharp.png"] * scores["b_blurred.png"]) ** 0.5
    summary, frames = extract(folder, tmp_path / "out", blur_threshold=threshold)
    assert summary.faces_blurry == 1
    files = {f.name: f.faces[0].file for f in frames}
    assert files == {"a_sharp.png": "a_sharp_0.png", "b_blurred.png": "blurry/b_blurred_0.png"}
    assert (tmp_path / "out" / "faces" / "blurry" / "b_blurred_0.png").is_file()


def test_jpg_identity_and_size(data_dir, tmp_path):
    summary, frames = extract(data_dir / "stills" / "two_people.jpg", tmp_path, jpg=True,
                              identity=True, size=128, face_span=0.7)
    assert summary.faces_written == 2
    a, b = frames[0].faces
    assert a.file.endswith(".jpg") and a.size == 128 and a.face_span == 0.7
    assert read_image(tmp_path / "faces" / a.file).shape == (128, 128, 3)
    meta = read_metadata(tmp_path / "faces" / a.file)
    assert meta["face_index"] == a.face_index and meta["size"] == 128
    # Two different people: descriptor distance above dlib's same-person threshold.
    assert np.linalg.norm(a.identity - b.identity) > 0.6
    assert a.box[0] < b.box[0]  # faces are numbered left to right


def test_cli_extract_with_config_file(data_dir, tmp_path, capsys):
    cfg_file = tmp_path / "c.json"
    cfg_file.write_text('{"extract": {"size": 96}}')
    code = main(["extract", str(data_dir / "stills" / "obama.jpg"), "-q", "--config", str(cfg_file),
                 "--export-path", str(tmp_path / "f"), "--alignments", str(tmp_path / "a.db")])
    assert code == 0
    err = capsys.readouterr().err
    assert "1 written" in err and "frames/s" in err
    assert read_image(tmp_path / "f" / "obama_0.png").shape == (96, 96, 3)


@pytest.mark.parametrize("detector", ["mtcnn", "mediapipe"])
def test_neural_detectors_in_the_pipeline(data_dir, tmp_path, detector):
    from swapface.faces.detectors import DETECTORS

    if not DETECTORS.is_available(detector):
        pytest.skip(f"{detector} not installed")
    # track=False sends whole chunks to the detector (the batched GPU path for mtcnn).
    summary, frames = extract(data_dir / "video" / "woman_b.mp4", tmp_path, every_n=30,
                              detector=detector, track=False)
    assert len(frames) == 12
    assert all(len(f.faces) == 1 for f in frames)
    assert summary.faces_written == 12
