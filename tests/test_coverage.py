"""``swapface coverage``: B's faces cover A's poses and expressions, and the frames they do not
are found and explained — on the real training pair."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from swapface.align.landmarks import mouth_opening
from swapface.cli.main import main
from swapface.core.images import read_image
from swapface.curate.jobs.common import face_files
from swapface.evaluate.coverage import FIGURES, CoverageConfig, read_face_folder, run_coverage
from swapface.faces.meta import FaceFileMeta

MOUTH = FIGURES.index("mouth")


def test_a_covers_itself(pair):
    cov = run_coverage(CoverageConfig(faces_a=pair.a.faces, faces_b=pair.a.faces))
    assert cov.covered.all() and not cov.gaps and cov.share_uncovered == 0
    assert "every pose and expression of A has a close example in B" in cov.lines()


@pytest.fixture(scope="module")
def closed_mouth_b(pair, tmp_path_factory) -> tuple[Path, float]:
    """B's faces with the mouth at most a little open (the open-mouth ones left out)."""
    out = tmp_path_factory.mktemp("closed_b")
    kept = []
    for path in face_files(pair.b.faces):
        meta = FaceFileMeta.read(path)
        if meta is not None and (m := mouth_opening(meta.landmarks)) < 0.06:
            shutil.copy(path, out / path.name)
            kept.append(m)
    assert 5 <= len(kept) < len(face_files(pair.b.faces))
    return out, max(kept)


def test_open_mouths_that_b_never_shows_are_found_and_named(pair, closed_mouth_b):
    folder, b_max = closed_mouth_b
    cfg = CoverageConfig(faces_a=pair.a.faces, faces_b=folder)
    cov = run_coverage(cfg)
    mouth = cov.a[:, MOUTH]
    wide = mouth > b_max + cfg.mouth_tolerance  # no B face comes within one tolerance
    assert wide.sum() >= 3, mouth  # woman_a talks with her mouth open
    assert not cov.covered[wide].any()
    mouth_gaps = [g for g in cov.gaps if g.reason == "mouth" and g.outside]
    in_gaps = {f for g in mouth_gaps for f in cov.a_frames if g.first <= f <= g.last}
    assert set(cov.a_frames[wide].tolist()) <= in_gaps
    assert all(g.direction == 1 for g in mouth_gaps)
    text = "\n".join(cov.lines())
    assert "A opens the mouth wider than B ever does" in text
    # With the whole of B the same faces are far better covered: the figure is about B's data.
    full = run_coverage(CoverageConfig(faces_a=pair.a.faces, faces_b=pair.b.faces))
    assert full.share_uncovered < cov.share_uncovered - 0.2


def test_cli_writes_the_picture_and_json_and_refuses_bad_input(pair, closed_mouth_b, tmp_path, capsys):
    png, js = tmp_path / "cov.png", tmp_path / "cov.json"
    assert main(["coverage", str(pair.a.faces), str(closed_mouth_b[0]), "-o", str(png),
                 "--json", str(js)]) == 0
    assert "faces of A have a close face of B" in capsys.readouterr().err
    image = read_image(png)
    assert image.shape[0] >= 400 and image.shape[1] >= 1000
    red = (image[:, :, 2] > 180) & (image[:, :, 1] < 80) & (image[:, :, 0] < 80)
    assert red.sum() > 50  # uncovered faces of A are drawn
    data = json.loads(js.read_text())
    frames, _ = read_face_folder(pair.a.faces)
    assert data["faces_a"] == len(frames) == len(data["faces"])
    assert data["share_uncovered"] > 0 and data["gaps"][0]["faces"] >= 1

    assert main(["coverage", str(tmp_path / "nope"), str(pair.b.faces)]) == 2
    assert "face folder not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["coverage", str(pair.a.faces), str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "no extracted face files" in err and "Traceback" not in err
    assert main(["coverage", str(pair.a.faces), str(pair.b.faces), "--mouth-tolerance", "0"]) == 2


def test_tolerances_scale_what_counts_as_close(pair, closed_mouth_b):
    strict = run_coverage(CoverageConfig(faces_a=pair.a.faces, faces_b=closed_mouth_b[0],
                                         mouth_tolerance=0.02))
    loose = run_coverage(CoverageConfig(faces_a=pair.a.faces, faces_b=closed_mouth_b[0],
                                        mouth_tolerance=0.5))
    assert loose.share_uncovered < strict.share_uncovered
    assert np.isfinite(strict.distance).all()
