"""MTCNN detector on real photos: labelled recall, no false alarms, batching, keypoints."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest

from swapface.faces.detectors import DETECTORS, Detection
from swapface.faces.detectors.mtcnn import _weights_present

if not _weights_present():
    pytest.skip("mtcnn weights missing: pip install --no-deps facenet-pytorch==2.6.0",
                allow_module_level=True)

DATA = Path(os.environ.get("SWAPFACE_TEST_DATA")
            or Path(__file__).resolve().parents[2] / "shared" / "data")
if not (DATA / "stills" / "dlib_faces").is_dir():
    pytest.skip(f"test media not found at {DATA} (set SWAPFACE_TEST_DATA)",
                allow_module_level=True)

FACES = DATA / "stills" / "dlib_faces"


@pytest.fixture(scope="module")
def detector():
    return DETECTORS.create("mtcnn", device="cpu")  # CPU: deterministic, same on every host


def labelled_boxes() -> dict[str, list[tuple[int, int, int, int]]]:
    """dlib imglab XML → {file: [(left, top, width, height)]}."""
    out: dict[str, list[tuple[int, int, int, int]]] = {}
    for xml in ("training_with_face_landmarks.xml", "testing_with_face_landmarks.xml"):
        for image in ET.parse(FACES / xml).getroot().iter("image"):
            out[image.get("file")] = [
                tuple(int(b.get(k)) for k in ("left", "top", "width", "height"))
                for b in image.iter("box")
            ]
    return out


def matches(det: Detection, box: tuple[int, int, int, int]) -> bool:
    """Centre inside the labelled box and width within a factor 2 of the labelled width."""
    left, top, width, height = box
    cx, cy = det.center
    return (left <= cx <= left + width and top <= cy <= top + height
            and 0.5 <= det.width / width <= 2.0)


def first_frames(n: int) -> list[np.ndarray]:
    av = pytest.importorskip("av")
    with av.open(str(DATA / "video" / "woman_a.mp4")) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="bgr24"))
            if len(frames) == n:
                return frames
    return frames


def test_registered(detector) -> None:
    assert "mtcnn" in DETECTORS.available()
    assert detector.name == "mtcnn" and detector.dlib_box_style is False


def test_recall_on_labelled_faces(detector) -> None:
    found = total = false = 0
    for name, boxes in labelled_boxes().items():
        dets = detector.detect([cv2.imread(str(FACES / name))], upsample=1)[0]
        total += len(boxes)
        found += sum(any(matches(d, b) for d in dets) for b in boxes)
        false += sum(not any(matches(d, b) for b in boxes) for d in dets)
    recall = found / total
    print(f"mtcnn upsample=1: recall {found}/{total} = {recall:.3f}, false detections {false}")
    # measured: 42/43 = 0.977 recall, 0 false detections
    assert recall >= 0.9
    assert false <= 2


def test_no_faces_on_negatives(detector) -> None:
    paths = sorted(p for p in (DATA / "negatives").iterdir() if p.suffix in (".png", ".jpg"))
    assert paths
    for path in paths:
        assert detector.detect([cv2.imread(str(path))])[0] == [], path.name


def test_batch_equals_one_at_a_time(detector) -> None:
    frames = first_frames(2)
    other = cv2.imread(str(FACES / "2008_002506.jpg"))  # another size: its own P-Net group
    batched = detector.detect([frames[0], other, frames[1]])
    single = [detector.detect([im])[0] for im in (frames[0], other, frames[1])]
    assert [len(r) for r in batched] == [len(r) for r in single] == [1, 3, 1]
    for got, want in zip(batched, single, strict=True):
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g.box, w.box, atol=1e-2)
            np.testing.assert_allclose(g.points5, w.points5, atol=1e-2)
            assert g.score == pytest.approx(w.score, abs=1e-4)


def test_points5_inside_box(detector) -> None:
    images = [*first_frames(1), cv2.imread(str(FACES / "2008_001322.jpg"))]
    dets = [d for r in detector.detect(images) for d in r]
    assert len(dets) == 4
    for d in dets:
        assert d.points5 is not None and d.points5.shape == (5, 2)
        margin = 0.1 * d.width
        left, top, right, bottom = d.box
        assert np.all(d.points5[:, 0] >= left - margin) and np.all(d.points5[:, 0] <= right + margin)
        assert np.all(d.points5[:, 1] >= top - margin) and np.all(d.points5[:, 1] <= bottom + margin)
        eyes, mouth = d.points5[:2], d.points5[3:]
        assert eyes[0, 0] < eyes[1, 0] and mouth[0, 0] < mouth[1, 0]  # image-left first
        assert eyes[:, 1].max() < d.points5[2, 1] < mouth[:, 1].min()  # eyes, nose, mouth
        assert 0.0 < d.score <= 1.0


def test_threshold_and_upsample(detector) -> None:
    still = cv2.imread(str(FACES / "2008_002470.jpg"))  # six faces of ~37-52 px
    strict = DETECTORS.create("mtcnn", {"threshold": 1.01}, device="cpu")
    assert strict.detect([still]) == [[]]
    # upsample=0 looks for faces of 80 px and up, so it finds fewer of these small ones
    assert len(detector.detect([still], upsample=0)[0]) < len(detector.detect([still])[0])
    assert detector.detect([]) == []
