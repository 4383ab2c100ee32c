"""Bad input: odd image formats, junk files, huge images, unicode paths, missing inputs."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
from PIL import Image

from swapface.cli.main import main
from swapface.core.images import read_image, write_image
from tests.extract_helpers import extract


@pytest.fixture(scope="module")
def portrait(data_dir):
    return read_image(data_dir / "stills" / "obama.jpg")


def test_odd_formats_and_junk_in_a_unicode_folder(portrait, tmp_path, data_dir):
    folder = tmp_path / "frames with späces ü"
    folder.mkdir()
    small = cv2.resize(portrait, None, fx=0.5, fy=0.5)
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(folder / "01_gray.png"), gray)
    rgba = cv2.cvtColor(small, cv2.COLOR_BGR2BGRA)
    rgba[..., 3] = 128
    cv2.imwrite(str(folder / "02_rgba.png"), rgba)
    cv2.imwrite(str(folder / "03_sixteen_bit.png"), small.astype(np.uint16) * 257)
    # EXIF orientation 6 (rotate 90° CW to display): store the pixels rotated back.
    pil = Image.fromarray(cv2.cvtColor(cv2.rotate(small, cv2.ROTATE_90_COUNTERCLOCKWISE),
                                       cv2.COLOR_BGR2RGB))
    exif = Image.Exif()
    exif[0x0112] = 6
    pil.save(folder / "04_exif_rotated.jpg", exif=exif)
    (folder / "05_truncated.jpg").write_bytes((data_dir / "stills" / "biden.jpg").read_bytes()[:3000])
    (folder / "06_not_an_image.jpg").write_text("hello")
    (folder / "notes.txt").write_text("not an image")
    shutil.copy(data_dir / "negatives" / "coffee.png", folder / "07_no_face.png")

    summary, frames = extract(folder, tmp_path / "out ü")
    faces = {f.name: len(f.faces) for f in frames}
    assert faces["01_gray.png"] == 1
    assert faces["02_rgba.png"] == 1
    assert faces["03_sixteen_bit.png"] == 1
    assert faces["04_exif_rotated.jpg"] == 1  # upright after EXIF orientation
    assert faces["07_no_face.png"] == 0
    assert "06_not_an_image.jpg" not in faces
    assert summary.faces_written == 4
    assert any("notes.txt" in p for p in summary.problems)
    assert any("06_not_an_image.jpg" in p for p in summary.problems)
    # A truncated JPEG either decodes partially or is reported; it never stops the run.
    assert "05_truncated.jpg" in faces or any("05_truncated" in p for p in summary.problems)
    assert len(list((tmp_path / "out ü" / "faces").glob("*.png"))) == 4


def test_8k_image(portrait, tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    canvas = np.full((4320, 7680, 3), 90, np.uint8)
    face = cv2.resize(portrait, None, fx=2.0, fy=2.0)
    canvas[1000:1000 + face.shape[0], 3000:3000 + face.shape[1]] = face
    cv2.imwrite(str(folder / "8k.jpg"), canvas)
    _, frames = extract(folder, tmp_path / "out")
    assert frames[0].width == 7680 and len(frames[0].faces) == 1
    l, t, r, b = frames[0].faces[0].box
    assert 3000 < l < r < 3000 + face.shape[1] and 1000 < t < b < 1000 + face.shape[0]


def test_missing_input_is_one_line_and_nonzero(tmp_path, capsys):
    code = main(["extract", str(tmp_path / "nope.mp4"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1 and "not found" in err[0] and "Traceback" not in err[0]


def test_not_a_video(tmp_path, capsys):
    bogus = tmp_path / "clip.mp4"
    bogus.write_bytes(b"\x00" * 1000)
    assert main(["extract", str(bogus), "-q", "--export-path", str(tmp_path / "f")]) == 2
    assert "cannot open video" in capsys.readouterr().err


def test_empty_folder_gives_clean_summary(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["extract", str(tmp_path / "empty"), "-q"])
    assert code == 0
    assert "0 processed" in capsys.readouterr().err


def test_same_stem_in_two_formats_gives_two_face_files(portrait, tmp_path):
    """a.png and a.jpg used to write the same a_0.png: one face overwrote the other."""
    folder = tmp_path / "in"
    write_image(folder / "a.png", portrait)
    write_image(folder / "a.jpg", cv2.flip(portrait, 1))
    write_image(folder / "b.png", portrait)
    _, frames = extract(folder, tmp_path / "out")
    files = {f.name: [face.file for face in f.faces] for f in frames}
    assert files == {"a.jpg": ["a_jpg_0.png"], "a.png": ["a_png_0.png"], "b.png": ["b_0.png"]}
    on_disk = sorted(p.name for p in (tmp_path / "out" / "faces").glob("*.png"))
    assert on_disk == ["a_jpg_0.png", "a_png_0.png", "b_0.png"]
