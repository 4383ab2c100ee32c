"""Batched augmentation: shapes, determinism, exact agreement with the seed's cv2 geometry."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from swapface.align.transform import umeyama
from swapface.train.augment import AugmentConfig, Augmenter, lab_to_rgb, rgb_to_lab

SIZE, OUT, COVERAGE = 256, 64, 0.625  # seed: a 160-px window (128 ± 80) of a 256-px face
STILL = dict(rotation=0.0, zoom=0.0, shift=0.0, flip=0.0, random_warp=False, color=False)


def smooth_image() -> np.ndarray:
    """A smooth colour pattern (HWC float32): bilinear kernels agree to float precision on it."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    return np.stack([0.5 + 0.4 * np.sin(xx / 13 + yy / 29), 0.5 + 0.4 * np.cos(yy / 17),
                     0.5 + 0.3 * np.sin((xx - yy) / 21)], -1).astype(np.float32)


def to_batch(img: np.ndarray, n: int = 1) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].repeat(n, 1, 1, 1)


def to_hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy()


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    return torch.rand(4, 3, SIZE, SIZE, generator=gen(123))


def test_shapes_dtypes_and_range(faces):
    aug = Augmenter(AugmentConfig(), SIZE, OUT, COVERAGE)
    masks = (torch.rand(4, 1, SIZE, SIZE, generator=gen(5)) > 0.5).float()
    batch = aug.augment(faces, masks, gen(0))
    for t, c in ((batch.inputs, 3), (batch.targets, 3), (batch.target_masks, 1)):
        assert t.shape == (4, c, OUT, OUT) and t.dtype == torch.float32
        assert t.min() >= 0.0 and t.max() <= 1.0
    assert aug.augment(faces, None, gen(0)).target_masks is None
    assert aug.center(faces).inputs.shape == (4, 3, OUT, OUT)


def test_same_seed_same_batch_other_seed_differs(faces):
    aug = Augmenter(AugmentConfig(), SIZE, OUT, COVERAGE)
    a, b, c = (aug.augment(faces, None, gen(s)) for s in (7, 7, 8))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, c.inputs) and not torch.equal(a.targets, c.targets)


def test_without_randomness_input_is_target_is_center_is_cv2_crop():
    img = smooth_image()
    aug = Augmenter(AugmentConfig(**STILL | {"random_warp": True, "warp_noise": 0.0}), SIZE, OUT, COVERAGE)
    batch = aug.augment(to_batch(img, 2), None, gen(0))
    center = Augmenter(AugmentConfig(), SIZE, OUT, COVERAGE).center(to_batch(img, 2)).inputs
    torch.testing.assert_close(batch.inputs, batch.targets, atol=1e-5, rtol=0)
    torch.testing.assert_close(batch.targets, center, atol=1e-5, rtol=0)
    lo, hi = int(SIZE * (1 - COVERAGE) / 2), int(SIZE * (1 + COVERAGE) / 2)  # 48, 208
    crop = cv2.resize(img[lo:hi, lo:hi], (OUT, OUT), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(to_hwc(center[0]), crop, atol=1e-5)


def test_center_of_a_real_photo_is_cv2_crop_and_resize(data_dir):
    # Sharp real content (not a face crop: only the sampling is under test here).
    bgr = cv2.imread(str(data_dir / "stills" / "obama.jpg"))
    img = cv2.resize(bgr[100:900, 50:850], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    img = np.ascontiguousarray(img[:, :, ::-1], dtype=np.float32) / 255.0
    center = Augmenter(AugmentConfig(), SIZE, OUT, COVERAGE).center(to_batch(img)).inputs[0]
    lo, hi = int(SIZE * (1 - COVERAGE) / 2), int(SIZE * (1 + COVERAGE) / 2)
    crop = cv2.resize(img[lo:hi, lo:hi], (OUT, OUT), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(to_hwc(center), crop, atol=1e-5)


def test_warp_input_is_seed_remap_and_target_is_umeyama_similarity():
    img = smooth_image()
    aug = Augmenter(AugmentConfig(**STILL | {"random_warp": True}), SIZE, OUT, COVERAGE)
    params = aug.sample_params(2, gen(3))
    batch = aug.render(to_batch(img, 2), None, params)
    assert (batch.inputs - batch.targets).abs().max() > 0.1
    for i in range(2):
        # cv2 uses pixel-centre coordinates, ours pixel edges: shift by half a pixel.
        ctrl = (aug._ctrl + params.noise[i]).numpy().astype(np.float64) - 0.5
        # Input: the seed's cv2.resize(5×5 → 80×80)[8:72] of the jittered maps, then cv2.remap.
        mx, my = (cv2.resize(m, (80, 80))[8:72, 8:72].astype(np.float32) for m in ctrl)
        seed_input = cv2.remap(img, mx, my, cv2.INTER_LINEAR)
        np.testing.assert_allclose(to_hwc(batch.inputs[i]), seed_input, atol=2e-3)
        # Target: the repo's NumPy Umeyama from jittered points to the regular output grid.
        dst = aug._dst.numpy().T.astype(np.float64) - 0.5
        mat = umeyama(ctrl.reshape(2, -1).T, dst)[:2]
        seed_target = cv2.warpAffine(img, mat, (OUT, OUT), flags=cv2.INTER_LINEAR)
        np.testing.assert_allclose(to_hwc(batch.targets[i]), seed_target, atol=2e-3)


def test_random_transform_matches_cv2_rotation_matrix():
    img = smooth_image()
    cfg = AugmentConfig(**STILL | {"rotation": 10.0, "zoom": 0.05, "shift": 0.05})
    aug = Augmenter(cfg, SIZE, OUT, COVERAGE)
    params = aug.sample_params(1, gen(11))
    got = aug.render(to_batch(img), None, params).targets[0]
    angle, scale = np.degrees(params.angle.item()), params.scale.item()
    mat = cv2.getRotationMatrix2D((SIZE / 2 - 0.5, SIZE / 2 - 0.5), angle, scale)
    mat[:, 2] += params.shift[0].numpy()
    moved = cv2.warpAffine(img, mat, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    expect = aug.center(to_batch(moved)).targets[0]
    # Two interpolations (cv2 then crop) vs one composed: agree to the interpolation error.
    assert (got - expect).abs().max() < 3e-3 and abs(angle) > 1.0


def test_flip_mirrors_face_and_mask_together():
    img = smooth_image()
    mask = np.zeros((SIZE, SIZE, 1), np.float32)
    mask[60:120, 90:200] = 1.0
    aug = Augmenter(AugmentConfig(**STILL | {"flip": 1.0}), SIZE, OUT, COVERAGE)
    flipped = aug.augment(to_batch(img), to_batch(mask), gen(0))
    plain = aug.center(to_batch(img), to_batch(mask))
    torch.testing.assert_close(flipped.targets, plain.targets.flip(-1), atol=1e-5, rtol=0)
    torch.testing.assert_close(flipped.target_masks, plain.target_masks.flip(-1), atol=1e-5, rtol=0)


def test_mask_stays_on_the_disc_through_all_geometry():
    # A red disc off centre on grey, its mask exactly the disc: after rotation, zoom, shift,
    # flip and warp, the target's red pixels must be where the target mask is.
    img = np.full((SIZE, SIZE, 3), 0.5, np.float32)
    mask = np.zeros((SIZE, SIZE), np.float32)
    cv2.circle(img, (100, 150), 30, (1.0, 0.0, 0.0), -1)
    cv2.circle(mask, (100, 150), 30, 1.0, -1)
    cfg = AugmentConfig(rotation=10.0, zoom=0.05, shift=0.05, flip=0.5, random_warp=True, color=False)
    aug = Augmenter(cfg, SIZE, OUT, COVERAGE)
    batch = aug.augment(to_batch(img, 8), to_batch(mask[..., None], 8), gen(1))
    redness = batch.targets[:, 0] - batch.targets[:, 1]  # 1 on the disc, 0 on grey
    m = batch.target_masks[:, 0]
    assert (m > 0.5).sum() > 8 * 100  # the disc is in view
    assert (redness - m).abs().max() < 1e-5  # same geometry, same interpolation


def test_lab_round_trip_and_reference_values():
    rgb = torch.rand(2, 3, 32, 32, generator=gen(0))
    assert (lab_to_rgb(rgb_to_lab(rgb)) - rgb).abs().max() < 1e-3
    red = rgb_to_lab(torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)).flatten()
    torch.testing.assert_close(red, torch.tensor([53.24, 80.09, 67.20]), atol=0.02, rtol=0)
    white = rgb_to_lab(torch.ones(3, 1, 1)).flatten()
    torch.testing.assert_close(white, torch.tensor([100.0, 0.0, 0.0]), atol=1e-3, rtol=0)


def test_colour_jitter_is_shared_by_input_and_target():
    img = smooth_image()
    aug = Augmenter(AugmentConfig(**STILL | {"color": True}), SIZE, OUT, COVERAGE)
    batch = aug.augment(to_batch(img, 4), None, gen(2))
    assert torch.equal(batch.inputs, batch.targets)
    plain = aug.center(to_batch(img, 4)).inputs
    lum_shift = (rgb_to_lab(batch.inputs)[:, 0] - rgb_to_lab(plain)[:, 0]).mean((1, 2))
    assert lum_shift.abs().max() > 0.5 and lum_shift.abs().max() <= 6.0 + 0.1
