"""Geometry: Umeyama, the mean face, landmark reductions and masks, on real landmarks."""

from __future__ import annotations

import numpy as np
import pytest

from swapface.align.landmarks import inter_ocular_distance, to_five_points
from swapface.align.masks import MASK_SIZE, build_mask, draw_mask
from swapface.align.transform import (
    alignment_matrix,
    invert,
    mean_face_points,
    transform_points,
    umeyama,
)
from tests.landmark_xml import read_labelled_faces


@pytest.fixture(scope="module")
def faces(data_dir):
    return read_labelled_faces(data_dir / "stills" / "dlib_faces")


def test_umeyama_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (10, 2))
    angle, scale, shift = np.deg2rad(23.0), 1.7, np.array([12.0, -5.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ rot.T + shift
    t = umeyama(src, dst)
    np.testing.assert_allclose(t[:2, :2], rot, atol=1e-9)
    np.testing.assert_allclose(t[:2, 2], shift, atol=1e-9)
    np.testing.assert_allclose(t[2], [0, 0, 1])


def test_seed_mean_face_scaling():
    pts = mean_face_points(256, 0.6)
    np.testing.assert_allclose(pts[0], [0.25 * 153.6 + 51.2, 0.22 * 153.6 + 51.2])
    assert pts.min() > 0 and pts.max() < 256


def test_five_points_and_alignment_on_labelled_faces(faces):
    assert len(faces) == 43
    for face in faces:
        five = to_five_points(face.landmarks)
        assert five[0, 0] < five[1, 0]  # image-left eye first
        m = alignment_matrix(face.landmarks, 256)
        aligned = transform_points(five, m)
        # A similarity fit of real faces (some turned) to the mean face: small residuals.
        residual = np.linalg.norm(aligned - mean_face_points(256), axis=1)
        assert residual.mean() < 0.06 * 256 and residual.max() < 0.12 * 256
        back = transform_points(aligned, invert(m))
        np.testing.assert_allclose(back, five, atol=1e-6)


def test_masks_cover_the_face_and_extended_adds_forehead(faces):
    for face in faces[:10]:
        stored = {k: build_mask(face.landmarks, k) for k in ("components", "extended")}
        comp, ext = stored["components"].decode(), stored["extended"].decode()
        assert comp.shape == ext.shape == (MASK_SIZE, MASK_SIZE)
        # extended ⊇ components (up to anti-aliased edge pixels)
        assert ((ext > 127) | (comp <= 127)).mean() > 0.995
        extra = (ext > 127).sum() / (comp > 127).sum()
        assert 1.05 < extra < 1.6
        # Every landmark except the brows (drawn on the hull edge) lies inside the mask.
        pts = transform_points(face.landmarks, stored["components"].matrix)
        inside = [comp[round(y), round(x)] > 0 for x, y in pts[:17].tolist() + pts[27:].tolist()]
        assert np.mean(inside) > 0.9


def test_mask_warps_to_face_space(faces):
    face = faces[0]
    stored = build_mask(face.landmarks, "components")
    m = alignment_matrix(face.landmarks, 128)
    warped = stored.for_face(m, 128)
    direct = draw_mask(transform_points(face.landmarks, m), (128, 128), "components")
    agree = ((warped > 127) == (direct > 127)).mean()
    assert agree > 0.98
    assert inter_ocular_distance(face.landmarks) > 10
