"""The ``mesh`` blend mask: MediaPipe's refined mesh on a real face, and the source's own
mouth and eyes kept through it (``mask_options={"mouth": "source", "eyes": "source"}``).

woman_a frame 1000 has the mouth wide open (teeth, tongue) and the eyes wide open: the
frames a briefly trained model draws soft or half-shut.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from swapface.align.landmarks import mouth_opening
from swapface.align.records import FaceRecord
from swapface.align.transform import transform_points
from swapface.core.errors import ConfigError
from swapface.core.images import write_image
from swapface.faces import FaceFinder
from swapface.faces.aligners.mediapipe_mesh import mesh_to_ibug68
from swapface.faces.mesh import FaceMesher, eye_openings, face_oval, inner_lips
from swapface.media.video import read_video_frame
from swapface.swap import FrameSwapper, SwapOptions, load_model
from swapface.swap.masks import MeshMaskOptions, build, face_mask, keep_openings, refine_mask

OPEN_MOUTH_FRAME = 1000
RIGHT_IRIS, LEFT_IRIS = 468, 473


@pytest.fixture(scope="module")
def open_face(data_dir: Path) -> tuple[np.ndarray, FaceRecord, np.ndarray]:
    """(woman_a frame with an open mouth, its face record, the face's 478-point mesh)."""
    frame = read_video_frame(data_dir / "video" / "woman_a.mp4", OPEN_MOUTH_FRAME).image
    (record,) = FaceFinder.create().records(frame)
    mesher = FaceMesher()
    try:
        mesh = mesher.mesh(frame, record.landmarks)
    finally:
        mesher.close()
    return frame, record, mesh


def _iod(landmarks: np.ndarray) -> float:
    lm = np.asarray(landmarks)
    return float(np.linalg.norm(lm[42:48].mean(axis=0) - lm[36:42].mean(axis=0)))


def _region(shape: tuple[int, ...], polygon: np.ndarray, erode: int) -> np.ndarray:
    """Pixels inside ``polygon``, ``erode`` px away from its edge."""
    out = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(out, [np.round(polygon).astype(np.int32)], 1)
    if erode:  # negative: grow
        grow = cv2.dilate if erode < 0 else cv2.erode
        out = grow(out, np.ones((2 * abs(erode) + 1,) * 2, np.uint8))
    return out.astype(bool)


def test_the_contours_are_closed_loops_of_the_right_parts():
    oval, lips = face_oval(), inner_lips()
    assert len(oval) == 36 and len(set(oval)) == 36
    assert 10 in oval and 152 in oval  # forehead top and chin
    assert len(lips) == 20 and {13, 14, 78, 308} <= set(lips)  # inner edge, corners
    right, left = eye_openings()
    assert {33, 133} <= set(right) and {263, 362} <= set(left) and len(right) == len(left) == 16


def test_the_mesh_lies_on_the_face_the_landmarks_found(open_face):
    _, record, mesh = open_face
    assert mesh.shape == (478, 2)
    lm, iod = np.asarray(record.landmarks), _iod(record.landmarks)
    error = np.linalg.norm(mesh_to_ibug68(mesh) - lm, axis=1).mean() / iod
    assert error < 0.12, error
    for iris, eye in ((RIGHT_IRIS, lm[36:42]), (LEFT_IRIS, lm[42:48])):
        assert cv2.pointPolygonTest(cv2.convexHull(eye.astype(np.float32)),
                                    tuple(map(float, mesh[iris])), True) > -0.05 * iod
    # Open mouth: the inner lips' loop spans a real opening (dlib's 62 → 66 too).
    opening = mesh[14] - mesh[13]
    assert opening[1] > 0.3 * iod and np.linalg.norm(lm[66] - lm[62]) > 0.3 * iod


def test_the_mesh_mask_covers_the_forehead_and_cuts_out_mouth_and_eyes_when_asked(open_face):
    _, record, mesh = open_face
    size = record.size
    to_face = record.matrix

    def at(mask: np.ndarray, point: np.ndarray) -> float:
        x, y = np.round(np.asarray(point) @ to_face[:, :2].T + to_face[:, 2]).astype(int)
        return float(mask[y, x])

    lm, iod = np.asarray(record.landmarks), _iod(record.landmarks)
    plain = build("mesh", record, size, mesh=mesh)
    hull = build("facehull", record, size)
    forehead = lm[17:27].mean(axis=0) - (0, 0.35 * iod)  # above the brows
    assert at(plain, forehead) == 1.0 and at(hull, forehead) == 0.0
    assert at(plain, (0, 0)) == 0.0  # the frame's corner is background
    mouth = (mesh[13] + mesh[14]) / 2
    irises = (mesh[RIGHT_IRIS], mesh[LEFT_IRIS])
    assert at(plain, mouth) == 1.0 and all(at(plain, p) == 1.0 for p in irises)
    # The openings are cut after feathering (keep_openings), in the mask's own pixels.
    in_face = transform_points(mesh, to_face)
    soft = refine_mask(plain, blur=12)
    assert at(soft, mouth) == pytest.approx(1.0, abs=1e-3)
    own_mouth = keep_openings(soft, in_face, MeshMaskOptions(mouth="source"))
    assert at(own_mouth, mouth) == 0.0 and all(at(own_mouth, p) > 0.99 for p in irises)
    own_eyes = keep_openings(soft, in_face, MeshMaskOptions(eyes="source"))
    assert at(own_eyes, mouth) > 0.99 and all(at(own_eyes, p) == 0.0 for p in irises)
    assert at(own_eyes, forehead) == at(soft, forehead)
    assert keep_openings(soft, in_face, MeshMaskOptions()) is soft
    # mouth=wide: the frame's mouth fades in between wide_from and wide_to of its opening.
    opening = mouth_opening(lm)
    assert opening > 0.25  # wide open in this frame (woman_b never opens beyond 0.25)
    for lo, hi, want in ((opening + 0.01, opening + 0.1, 1.0), (opening - 0.05, opening + 0.05, 0.5),
                         (opening - 0.1, opening - 0.01, 0.0)):
        wide = keep_openings(soft, in_face, MeshMaskOptions(mouth="wide", wide_from=lo, wide_to=hi),
                             opening)
        assert at(wide, mouth) == pytest.approx(want, abs=0.01), (lo, hi)
    with pytest.raises(ConfigError, match="wide_from"):
        SwapOptions(mask_type="mesh", mask_options={"mouth": "wide", "wide_from": 0.3, "wide_to": 0.2})


def test_the_swap_keeps_the_frames_own_mouth_and_eyes(trained, open_face, tmp_path):
    frame, record, mesh = open_face
    model = load_model(trained)
    swapped = FrameSwapper(model, SwapOptions(mask_type="mesh")).swap(frame, [record])
    kept = FrameSwapper(model, SwapOptions(
        mask_type="mesh", mask_options={"mouth": "source", "eyes": "source"})).swap(frame, [record])
    write_image(tmp_path / "mesh.png", np.hstack([frame, swapped, kept]))  # to look at

    def change(out: np.ndarray, where: np.ndarray) -> float:
        return float(np.abs(out.astype(np.int16) - frame).max(axis=2)[where].mean())

    # The openings' edges are soft over a model pixel (~3 frame pixels): judge inside them.
    erode = max(2, round(0.03 * _iod(record.landmarks)))
    mouth = _region(frame.shape, mesh[list(inner_lips())], erode)
    eyes = _region(frame.shape, mesh[list(eye_openings()[0])], erode) | _region(
        frame.shape, mesh[list(eye_openings()[1])], erode)
    openings = _region(frame.shape, mesh[list(inner_lips())], -4 * erode) | cv2.dilate(
        eyes.astype(np.uint8), np.ones((8 * erode + 1,) * 2, np.uint8)).astype(bool)
    cheeks = _region(frame.shape, mesh[list(face_oval())], 4 * erode) & ~openings
    assert mouth.sum() > 300 and eyes.sum() > 100
    assert change(swapped, mouth) > 8 and change(swapped, eyes) > 8, "mouth=swap paints them"
    assert change(kept, mouth) < 1.0, change(kept, mouth)
    assert change(kept, eyes) < 1.0, change(kept, eyes)
    assert change(kept, cheeks) > 4, "the rest of the face is still swapped"


def test_bad_mesh_mask_options_fail_when_the_options_are_made():
    with pytest.raises(ConfigError, match="mouth"):
        SwapOptions(mask_type="mesh", mask_options={"mouth": "nose"})
    with pytest.raises(ConfigError, match="face mesh"):  # a caller that did not run it
        face_mask("mesh", np.zeros((68, 2)), 64)
