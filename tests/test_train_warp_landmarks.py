"""Warp to landmarks: partner pools, the spline field, and the Augmenter's composed warp.

Landmarks are real: dlib's hand-labelled 68-point faces, aligned like extract aligns faces.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from swapface.align import warp_landmarks as wl
from swapface.align.transform import alignment_matrix, transform_points
from swapface.align.warp_landmarks import LandmarkBatch, landmark_field, nearest_faces
from swapface.core.errors import ConfigError
from swapface.train.augment import AugmentConfig, Augmenter, AugmentParams
from tests.landmark_xml import read_labelled_faces

SIZE, COVERAGE = 256, 0.625
STILL = dict(rotation=0.0, zoom=0.0, shift=0.0, flip=0.0, color=False, warp_to_landmarks=True)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def aligned(data_dir: Path) -> np.ndarray:
    """(N, 68, 2) float32: hand-labelled landmarks in 256-px aligned-face pixels (cv2)."""
    faces = read_labelled_faces(data_dir / "stills" / "dlib_faces")
    lms = [transform_points(f.landmarks, alignment_matrix(f.landmarks, SIZE)) for f in faces]
    return np.stack(lms).astype(np.float32)


def landmark_batch(lms: np.ndarray, rows: list[int] | None = None) -> LandmarkBatch:
    index, count = nearest_faces(lms, lms, exclude_self=True)
    rows = list(range(len(lms))) if rows is None else rows
    return LandmarkBatch(torch.from_numpy(lms[rows]), torch.from_numpy(lms[index[rows]]),
                         torch.from_numpy(count[rows]))


def test_nearest_faces_matches_brute_force_in_any_chunking(monkeypatch, aligned) -> None:
    lms = aligned.copy()
    lms[5] = np.nan  # a face without landmarks: never a partner, has none
    flat = lms.reshape(len(lms), -1).astype(np.float64)
    dist = ((flat[:, None] - flat[None]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    dist[:, 5] = np.inf
    expect = np.argsort(dist, axis=1, kind="stable")[:, :10]
    for chunk in (wl._CHUNK_BYTES, 4 * len(lms) * 3):  # one block; blocks of 3 queries
        monkeypatch.setattr(wl, "_CHUNK_BYTES", chunk)
        index, count = nearest_faces(lms, lms, 10, exclude_self=True)
        ok = np.arange(len(lms)) != 5
        np.testing.assert_array_equal(index[ok], expect[ok])
        assert (count[ok] == 10).all() and count[5] == 0
        assert not (index[ok] == np.arange(len(lms))[ok, None]).any()  # never itself
    # Another identity's pool: itself is allowed; a tiny pool caps k.
    index, count = nearest_faces(lms[:4], lms[:3], 10)
    assert index.shape == (4, 3) and (count == 3).all() and (index[:3, 0] == np.arange(3)).all()
    assert (nearest_faces(lms[:1], lms[:1], 10, exclude_self=True)[1] == 0).all()


def test_field_moves_partner_points_back_and_keeps_the_anchors(aligned) -> None:
    out = 64
    step, lo = SIZE * COVERAGE / out, SIZE * (1 - COVERAGE) / 2
    lb = landmark_batch(aligned)
    src = (lb.own + 0.5 - lo) / step
    dst = (lb.partners[:, 0] + 0.5 - lo) / step + 0.3 * torch.randn(src.shape, generator=gen(0))
    field = landmark_field(src, dst, out)
    assert field.shape == (len(aligned), 2, out, out) and torch.isfinite(field).all()
    # The spline itself: exact at the points it kept, and the 8 anchors (corners, edge
    # midpoints) map to themselves.
    spline = wl.fit_landmark_spline(src, dst, out)
    kept = spline.keep[:, :68]
    assert kept.float().mean() > 0.8
    assert (spline(dst) - src).norm(dim=-1)[kept].max() < 0.01
    anchors = wl.edge_anchors(float(out))
    torch.testing.assert_close(spline(anchors), anchors.expand(len(aligned), -1, -1), atol=1e-3, rtol=0)
    # The dense field (lattice, then pixel centres) read at dst: close to src too.
    grid = (dst / out * 2 - 1)[:, :, None]
    at_dst = torch.nn.functional.grid_sample(field, grid, align_corners=False)[..., 0].transpose(1, 2)
    inside = ((dst > 1) & (dst < out - 1)).all(-1) & kept
    err = (at_dst - src).norm(dim=-1)[inside]
    assert inside.sum() > 30 * len(aligned) and err.median() < 0.1 and err.max() < 0.75
    # Pixels next to a corner move at most ~MAX_STRAIN × their distance to it (0.7 px).
    centres = torch.arange(out) + 0.5
    ident = torch.stack(torch.meshgrid(centres, centres, indexing="xy"))
    moved = (field - ident).norm(dim=1)
    for y, x in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        assert moved[:, y, x].max() < wl.MAX_STRAIN * 0.71
    assert moved.amax((1, 2)).median() > 1.0  # while the face itself does move


def test_dropped_points_jaw_inside_the_face_and_strained_pairs() -> None:
    inner = torch.rand(1, 51, 2, generator=gen(1)) * 20 + 20
    jaw = torch.stack([torch.linspace(5, 55, 17), torch.full((17,), 58.0)], -1)[None]
    src = torch.cat([jaw, inner], 1)
    dst = src.clone()
    dst[0, 3] = inner[0].mean(0)  # jaw point 3 moved into the inner face
    inside = wl.jaw_inside_core(src, dst)
    assert inside[0].tolist() == [i == 3 for i in range(17)]
    # A pair that meets in dst but not in src: the later one goes.
    src2 = torch.tensor([[[20.0, 20.0], [20.0, 30.0], [40.0, 40.0]]])
    dst2 = torch.tensor([[[20.0, 25.0], [20.0, 25.5], [40.0, 40.0]]])
    anchors = wl.edge_anchors(64.0)[None]
    keep = torch.ones(1, 3 + 8, dtype=torch.bool)
    dropped = wl.strained(torch.cat([src2, anchors], 1), torch.cat([dst2, anchors], 1), keep)
    assert dropped[0].tolist() == [False, True, False]


def _expected_output_points(p: AugmentParams, points: np.ndarray, out: int) -> np.ndarray:
    """Stored-face points (pixel edges) → output pixels (cv2 convention) through sample 0's
    random transform as the seed computes it (cv2.getRotationMatrix2D, flip), then the window."""
    mat = cv2.getRotationMatrix2D((SIZE / 2 - 0.5, SIZE / 2 - 0.5), np.degrees(p.angle[0].item()),
                                  p.scale[0].item())
    mat[:, 2] += p.shift[0].numpy()
    pts = transform_points(points - 0.5, mat)
    if p.flip[0]:
        pts[:, 0] = SIZE - 1 - pts[:, 0]
    lo = SIZE * (1 - COVERAGE) / 2
    return (pts + 0.5 - lo) * out / (SIZE * COVERAGE) - 0.5


MOVES = {"rotation": 10.0, "zoom": 0.05, "shift": 0.05, "flip": 0.5}


@pytest.mark.parametrize(("seed", "out"), [(0, 64), (1, 128), (4, 128), (3, 64)])
def test_input_reads_own_landmarks_where_the_partner_landmarks_are(aligned, seed, out) -> None:
    """End to end (partner draw, jitter, transform, flip, window, spline, grid_sample) on an
    image whose pixels hold their own coordinates: the input, read at the partner's landmarks
    (placed by cv2), holds the face's own landmarks — the warp moved them there."""
    aug = Augmenter(AugmentConfig(**STILL | MOVES), SIZE, out, COVERAGE)
    lb = landmark_batch(aligned, [seed])
    p = aug.sample_params(1, gen(seed), lb)
    yy, xx = (np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5) / SIZE
    coords = torch.from_numpy(np.stack([xx, yy, xx * 0]))[None]  # linear: bilinear reads are exact
    batch = aug.render(coords, None, p)
    expect = _expected_output_points(p, p.lm_dst[0].numpy(), out)
    grid = torch.from_numpy((expect + 0.5) / out * 2 - 1).float()[None, :, None]
    read = torch.nn.functional.grid_sample(batch.inputs, grid, align_corners=False)[0, :2, :, 0].T * SIZE
    err = (read - p.lm_src[0]).norm(dim=-1).numpy()
    # Which points the spline kept, from the same cv2-placed points in output pixels.
    own = _expected_output_points(p, p.lm_src[0].numpy(), out)
    kept = wl.fit_landmark_spline(torch.from_numpy(own + 0.5)[None].float(),
                                  torch.from_numpy(expect + 0.5)[None].float(), out).keep[0, :68].numpy()
    visible = ((expect > 1) & (expect < out - 2)).all(1) & kept
    assert visible.sum() >= 30 and kept.sum() >= 45  # the dlib set's closest faces are far apart
    assert np.median(err[visible]) < 0.5 and err[visible].max() < 1.5, np.sort(err[visible])[-5:]
    assert (batch.inputs - batch.targets).abs().max() > 0.01


def test_dots_at_the_landmarks_move_onto_a_similar_shape(aligned) -> None:
    """Dots drawn at a face's landmarks: in the input their centroids sit at the partner's
    landmarks (a smoothly changed shape, as the closest faces of a video's frames are)."""
    out, sigma = 128, 2.0
    own = torch.from_numpy(aligned[:1])
    centre = own[0].mean(0)
    wobble = torch.stack([torch.sin(own[0, :, 1] / 23), torch.cos(own[0, :, 0] / 31)], -1)
    partner = (own[0] - centre) * 1.04 + centre + torch.tensor([3.0, -2.0]) + 1.5 * wobble
    lb = LandmarkBatch(own, partner[None, None], torch.tensor([1]))
    aug = Augmenter(AugmentConfig(**STILL | MOVES | {"landmark_noise": 0.0}), SIZE, out, COVERAGE)
    p = aug.sample_params(1, gen(5), lb)
    p = AugmentParams(*(None if t is None else t.expand(68, *t.shape[1:]) for t in p))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    dots = np.stack([np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)) for x, y in own[0].numpy()])
    batch = aug.render(torch.from_numpy(dots)[:, None].repeat(1, 3, 1, 1), None, p)

    def centroids(images: torch.Tensor) -> np.ndarray:
        img = images[:, 0].numpy()
        gy, gx = np.mgrid[0:out, 0:out]
        mass = np.maximum(img.sum((1, 2)), 1e-12)[:, None]  # dots out of view: no mass
        return np.stack([(img * gx).sum((1, 2)), (img * gy).sum((1, 2))], -1) / mass

    expect = _expected_output_points(p, partner.numpy() + 0.5, out)
    visible = ((expect > 3 * sigma) & (expect < out - 3 * sigma)).all(1)
    err = np.linalg.norm(centroids(batch.inputs) - expect, axis=1)[visible]
    assert visible.sum() >= 45 and err.max() < 1.0, np.sort(err)[-5:]
    # The target is unwarped: its dots sit where the transform puts the face's own landmarks.
    plain = _expected_output_points(p, own[0].numpy() + 0.5, out)
    err = np.linalg.norm(centroids(batch.targets) - plain, axis=1)[visible]
    assert err.max() < 0.2


def test_input_corners_stay_fixed_and_target_is_unwarped(aligned) -> None:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    img = np.stack([0.5 + 0.4 * np.sin(xx / 13 + yy / 29), 0.5 + 0.4 * np.cos(yy / 17),
                    0.5 + 0.3 * np.sin((xx - yy) / 21)]).astype(np.float32)
    faces = torch.from_numpy(img)[None].repeat(len(aligned), 1, 1, 1)
    aug = Augmenter(AugmentConfig(**STILL), SIZE, 64, COVERAGE)
    batch = aug.augment(faces, None, gen(0), landmark_batch(aligned))
    center = aug.center(faces).targets
    torch.testing.assert_close(batch.targets, center, atol=1e-5, rtol=0)  # target: no warp
    diff = (batch.inputs - batch.targets).abs()
    assert diff.amax((1, 2, 3)).median() > 0.05  # the inputs are warped
    for y, x in ((0, 0), (0, -1), (-1, 0), (-1, -1)):  # next to the fixed anchors
        assert diff[..., y, x].max() < 0.2 * diff.amax((1, 2, 3)).median()


def test_same_seed_same_batch_and_partners_come_from_the_generator(aligned) -> None:
    faces = torch.rand(8, 3, SIZE, SIZE, generator=gen(9))
    masks = torch.rand(8, 1, SIZE, SIZE, generator=gen(10))
    lb = landmark_batch(aligned, list(range(8)))
    aug = Augmenter(AugmentConfig(warp_to_landmarks=True), SIZE, 64, COVERAGE)
    a, b, c = (aug.augment(faces, masks, gen(s), lb) for s in (7, 7, 8))
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    assert not torch.equal(a.inputs, c.inputs)
    picks = {tuple(aug.sample_params(8, gen(s), lb).lm_dst[:, 30, 0].round().tolist()) for s in range(6)}
    assert len(picks) > 1  # the partner (and jitter) changes with the seed
    # It replaces the random 5×5 warp; toggling it does not shift the generator's stream.
    plain = Augmenter(AugmentConfig(), SIZE, 64, COVERAGE)
    assert aug.sample_params(8, gen(7), lb).noise is None
    g1, g2 = gen(7), gen(7)
    aug.sample_params(8, g1, lb), plain.sample_params(8, g2)
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))


def test_faces_without_landmarks_or_partners_are_left_unwarped(aligned) -> None:
    lb = landmark_batch(aligned, [0, 1, 2])
    own = lb.own.clone()
    own[1] = float("nan")  # no landmarks
    count = lb.count.clone()
    count[2] = 0  # no partner
    faces = torch.rand(3, 3, SIZE, SIZE, generator=gen(2))
    aug = Augmenter(AugmentConfig(**STILL), SIZE, 64, COVERAGE)
    batch = aug.augment(faces, None, gen(0), LandmarkBatch(own, lb.partners, count))
    assert torch.isfinite(batch.inputs).all()
    assert (batch.inputs[0] - batch.targets[0]).abs().max() > 0.05
    torch.testing.assert_close(batch.inputs[1:], batch.targets[1:], atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="landmarks"):
        aug.augment(faces, None, gen(0))
    with pytest.raises(ConfigError, match="warp_partners"):
        AugmentConfig(warp_partners="nobody")
