"""Colour adjusters and sharpeners of the convert stage, on two real aligned faces."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from swapface.align.masks import draw_mask
from swapface.align.transform import transform_points
from swapface.core.errors import ConfigError
from swapface.core.images import read_image
from swapface.swap.color import COLOR_METHODS, adjust_color
from swapface.swap.sharpen import SHARPEN_METHODS
from tests.extract_helpers import extract

STAT_METHODS = ("avg-color", "match-hist", "color-transfer", "border")


@pytest.fixture(scope="module")
def faces(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """new = face 1 (the 'swapped' face), old = face 0 and its landmark mask (float [0, 1])."""
    tmp_path = tmp_path_factory.mktemp("convert_color")
    _, frames = extract(data_dir / "stills" / "two_people.jpg", tmp_path)
    records = frames[0].faces
    assert len(records) >= 2
    old_rec, new_rec = records[0], records[1]
    old = read_image(tmp_path / "faces" / old_rec.file)
    new = read_image(tmp_path / "faces" / new_rec.file)
    s = old_rec.size
    assert old.shape == new.shape == (s, s, 3)
    lm = transform_points(old_rec.landmarks, old_rec.matrix)
    mask = draw_mask(lm, (s, s), "components").astype(np.float32) / 255.0
    assert 0.1 < (mask > 0.5).mean() < 0.9
    return {"new": new, "old": old, "mask": mask}


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)


def _mean_lab_difference(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    region = mask > 0.5
    return float(np.linalg.norm(_lab(a)[region].mean(axis=0) - _lab(b)[region].mean(axis=0)))


def _cdf_distance(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean over channels of the 1-D Wasserstein distance (grey levels) inside the mask."""
    region = mask > 0.5
    total = 0.0
    for c in range(3):
        ca = np.cumsum(np.bincount(a[region][:, c], minlength=256)) / region.sum()
        cb = np.cumsum(np.bincount(b[region][:, c], minlength=256)) / region.sum()
        total += float(np.abs(ca - cb).sum())
    return total / 3


def _laplacian_variance(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def test_registries_list_every_method() -> None:
    assert COLOR_METHODS.names() == sorted(["none", "avg-color", "match-hist", "color-transfer",
                                            "seamless-clone", "border"])
    assert SHARPEN_METHODS.names() == sorted(["none", "box", "gaussian", "unsharp"])
    with pytest.raises(ConfigError):
        COLOR_METHODS.create("nope")
    with pytest.raises(ConfigError):
        SHARPEN_METHODS.create("box", {"radius": 0})
    with pytest.raises(ConfigError):
        SHARPEN_METHODS.create("unsharp", {"amount": -1})


@pytest.mark.parametrize("method", COLOR_METHODS.names())
def test_every_method_returns_uint8_of_same_shape(faces: dict[str, np.ndarray], method: str) -> None:
    new, old, mask = faces["new"], faces["old"], faces["mask"]
    before = new.copy(), old.copy()
    for m in (mask, (mask * 255).astype(np.uint8), np.zeros_like(mask), np.ones_like(mask)):
        out = adjust_color(method, new, old, m)
        assert out.dtype == np.uint8 and out.shape == new.shape
    assert np.array_equal(new, before[0]) and np.array_equal(old, before[1])  # inputs untouched
    with pytest.raises(ValueError):
        adjust_color(method, new, old, mask[:-1])


def test_none_is_identity(faces: dict[str, np.ndarray]) -> None:
    out = adjust_color("none", faces["new"], faces["old"], faces["mask"])
    assert np.array_equal(out, faces["new"]) and out is not faces["new"]


@pytest.mark.parametrize("method", ["avg-color", "color-transfer"])
def test_mean_colour_moves_to_old_face(faces: dict[str, np.ndarray], method: str) -> None:
    new, old, mask = faces["new"], faces["old"], faces["mask"]
    baseline = _mean_lab_difference(adjust_color("none", new, old, mask), old, mask)
    adjusted = _mean_lab_difference(adjust_color(method, new, old, mask), old, mask)
    print(f"{method}: mean L*a*b* difference {baseline:.2f} -> {adjusted:.2f}")
    assert baseline > 2.0  # two different people: the test is meaningful
    assert adjusted < 0.25 * baseline


def test_color_transfer_matches_lab_spread(faces: dict[str, np.ndarray]) -> None:
    new, old, mask = faces["new"], faces["old"], faces["mask"]
    region = mask > 0.5
    out = adjust_color("color-transfer", new, old, mask)
    std_old, std_new, std_out = (_lab(x)[region].std(axis=0) for x in (old, new, out))
    assert np.abs(std_out - std_old).sum() < 0.5 * np.abs(std_new - std_old).sum()


def test_match_hist_brings_histograms_closer(faces: dict[str, np.ndarray]) -> None:
    new, old, mask = faces["new"], faces["old"], faces["mask"]
    baseline = _cdf_distance(new, old, mask)
    matched = _cdf_distance(adjust_color("match-hist", new, old, mask), old, mask)
    print(f"match-hist: mean CDF distance {baseline:.2f} -> {matched:.2f} grey levels")
    assert matched < 0.25 * baseline
    # Histogram matching is monotone per channel: it never reorders grey levels.
    out = adjust_color("match-hist", new, old, mask)
    for c in range(3):
        order = np.argsort(new[..., c].ravel(), kind="stable")
        assert np.all(np.diff(out[..., c].ravel()[order].astype(int)) >= 0)


def test_seamless_clone_keeps_the_old_face_outside_the_mask(faces: dict[str, np.ndarray]) -> None:
    new, old, mask = faces["new"], faces["old"], faces["mask"]
    out = adjust_color("seamless-clone", new, old, mask)
    dilated = cv2.dilate((mask > 0.5).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert np.array_equal(out[~dilated], old[~dilated])
    # Inside, it carries the new face's detail, not the old face's.
    region = mask > 0.5
    assert np.abs(out[region].astype(int) - old[region]).mean() > 5
    # Empty, tiny and border-touching masks neither crash nor misbehave.
    assert np.array_equal(adjust_color("seamless-clone", new, old, np.zeros_like(mask)), old)
    dot = np.zeros_like(mask)
    dot[0, 0] = 1.0
    assert np.array_equal(adjust_color("seamless-clone", new, old, dot), old)
    edge = np.zeros_like(mask)
    edge[:, : mask.shape[1] // 3] = 1.0
    out = adjust_color("seamless-clone", new, old, edge)
    assert np.array_equal(out[:, mask.shape[1] // 3 :], old[:, mask.shape[1] // 3 :])
    assert adjust_color("seamless-clone", new, old, np.ones_like(mask)).shape == old.shape


def _lit_from_one_side(face: np.ndarray, light: float) -> np.ndarray:
    """``face`` with L* raised by a ramp from −light (left) to +light (right)."""
    lab = _lab(face)
    lab[..., 0] += np.linspace(-light, light, face.shape[1], dtype=np.float32)[None, :]
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2BGR) * 255 + 0.5, 0, 255).astype(np.uint8)


def test_border_matching_meets_a_side_lit_face_on_both_sides(faces: dict[str, np.ndarray]) -> None:
    """The frame's face is lit from the right; the new face is not. A mean shift (avg-color)
    leaves the left edge too bright and the right too dark: a seam on both cheeks. The border
    fit takes the gradient, so both edges meet the frame; a dark strip of hair on one edge of
    the frame's face does not pull the fit (robust)."""
    new, old, mask = faces["new"], faces["old"], faces["mask"]
    lit = _lit_from_one_side(old, 15.0)
    region = mask > 0.5
    depth = cv2.distanceTransform(np.pad(region.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    band = region & (depth <= 0.1 * mask.shape[0])
    cols = np.arange(mask.shape[1])[None, :].repeat(mask.shape[0], 0)
    x0, x1 = np.nonzero(region)[1].min(), np.nonzero(region)[1].max()
    left, right = band & (cols < x0 + (x1 - x0) / 4), band & (cols > x1 - (x1 - x0) / 4)

    def edge_error(out: np.ndarray, side: np.ndarray) -> float:  # mean L* step at one side
        return float(_lab(out)[side, 0].mean() - _lab(lit)[side, 0].mean())

    plain_error = edge_error(new, left) - edge_error(new, right)  # the light the new face lacks
    flat = adjust_color("avg-color", new, lit, mask)
    fitted = adjust_color("border", new, lit, mask)
    print(f"left/right L* step: avg-color {edge_error(flat, left):+.1f}/{edge_error(flat, right):+.1f}, "
          f"border {edge_error(fitted, left):+.1f}/{edge_error(fitted, right):+.1f}")
    assert plain_error > 12  # the ramp is there to be matched
    assert edge_error(flat, left) > 5 and edge_error(flat, right) < -5
    assert abs(edge_error(fitted, left)) < 3 and abs(edge_error(fitted, right)) < 3
    # Order 0 is a mean shift measured on the band: no gradient.
    shifted = adjust_color_with("border", {"order": 0}, new, lit, mask)
    assert edge_error(shifted, left) > 5 and edge_error(shifted, right) < -5
    # A dark strip (hair) over part of the frame's left edge: the fit drops it, so the rest
    # of that edge moves by 1.4 L* (a plain least-squares fit without trimming: 3.8).
    hair = lit.copy()
    top = np.nonzero(left.any(axis=1))[0]
    strip = left & (np.arange(mask.shape[0])[:, None] < top[0] + (top[-1] - top[0]) / 3)
    hair[strip] = (hair[strip] * 0.3).astype(np.uint8)
    robust = adjust_color("border", new, hair, mask)
    rest = left & ~strip
    assert abs(float(_lab(robust)[rest, 0].mean() - _lab(fitted)[rest, 0].mean())) < 2.5
    with pytest.raises(ConfigError):
        COLOR_METHODS.create("border", {"band": 0})


def adjust_color_with(method: str, options: dict, new: np.ndarray, old: np.ndarray,
                      mask: np.ndarray) -> np.ndarray:
    return COLOR_METHODS.create(method, options)(new, old, mask)


def test_empty_mask_leaves_statistics_methods_as_identity(faces: dict[str, np.ndarray]) -> None:
    empty = np.zeros_like(faces["mask"])
    for method in STAT_METHODS:
        assert np.array_equal(adjust_color(method, faces["new"], faces["old"], empty), faces["new"])


@pytest.mark.parametrize("method", ["box", "gaussian", "unsharp"])
def test_sharpen_adds_detail_and_leaves_flat_images_alone(faces: dict[str, np.ndarray], method: str) -> None:
    face = faces["new"]
    sharpen = SHARPEN_METHODS.create(method, {"amount": 1.0, "radius": 1.5})
    out = sharpen(face)
    assert out.dtype == np.uint8 and out.shape == face.shape
    assert _laplacian_variance(out) > 1.2 * _laplacian_variance(face)
    # More amount, more sharpening.
    stronger = SHARPEN_METHODS.create(method, {"amount": 2.0, "radius": 1.5})(face)
    assert _laplacian_variance(stronger) > _laplacian_variance(out)
    flat = np.full((64, 48, 3), (30, 128, 220), dtype=np.uint8)
    assert np.array_equal(sharpen(flat), flat)
    assert np.array_equal(SHARPEN_METHODS.create(method, {"amount": 0.0})(face), face)


def test_sharpen_none_is_identity(faces: dict[str, np.ndarray]) -> None:
    sharpen = SHARPEN_METHODS.create("none")
    out = sharpen(faces["new"])
    with pytest.raises(ConfigError, match="unknown option"):  # none takes no options
        SHARPEN_METHODS.create("none", {"amount": 3.0})
    assert np.array_equal(out, faces["new"]) and out is not faces["new"]


def test_unsharp_threshold_spares_faint_detail() -> None:
    rng = np.random.default_rng(0)
    noise = np.clip(128 + rng.normal(0, 1.0, (64, 64, 3)), 0, 255).astype(np.uint8)
    out = SHARPEN_METHODS.create("unsharp", {"amount": 2.0, "radius": 1.0, "threshold": 10})(noise)
    assert np.array_equal(out, noise)


def test_per_call_time_at_256px(faces: dict[str, np.ndarray]) -> None:
    new, old, mask = faces["new"], faces["old"], faces["mask"]
    if new.shape[:2] != (256, 256):
        new, old = (cv2.resize(x, (256, 256)) for x in (new, old))
        mask = cv2.resize(mask, (256, 256))
    timings: dict[str, float] = {}
    for name in COLOR_METHODS.names():
        adjust = COLOR_METHODS.create(name)
        adjust(new, old, mask)
        start = time.perf_counter()
        for _ in range(5):
            adjust(new, old, mask)
        timings[f"color/{name}"] = (time.perf_counter() - start) / 5
    for name in SHARPEN_METHODS.names():
        sharpen = SHARPEN_METHODS.create(name)
        sharpen(new)
        start = time.perf_counter()
        for _ in range(5):
            sharpen(new)
        timings[f"sharpen/{name}"] = (time.perf_counter() - start) / 5
    for name, seconds in timings.items():
        print(f"{name:>22}: {seconds * 1000:7.2f} ms per 256 px face")
    assert all(seconds < 1.0 for seconds in timings.values())
