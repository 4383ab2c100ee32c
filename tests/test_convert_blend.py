"""Convert masks and pasting, on a real extracted face: round trips, mask geometry, refinement."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from swapface.align.masks import draw_mask
from swapface.align.transform import rescale, transform_points, warp_face
from swapface.core.errors import ConfigError
from swapface.core.images import read_image
from swapface.swap.blend import mask_support, paste_face, roi_of
from swapface.swap.masks import MASKS, build, centre_window, face_mask, refine_mask, window_matrix
from tests.extract_helpers import extract

SIZE = 256


@pytest.fixture(scope="module")
def extracted(data_dir, tmp_path_factory):
    path = data_dir / "stills" / "obama.jpg"
    _, frames = extract(path, tmp_path_factory.mktemp("convert"))
    face = frames[0].faces[0]
    assert set(face.masks) == {"components", "extended"}
    return read_image(path), face


def _frame_mask(mask: np.ndarray, matrix: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The face-space mask warped over the whole frame, as paste_face warps it."""
    return cv2.warpAffine(mask.astype(np.float32), matrix, (shape[1], shape[0]),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def _inside(support: np.ndarray, roi: tuple[int, int, int, int]) -> bool:
    x0, y0, x1, y1 = roi
    outside = support.copy()
    outside[y0:y1, x0:x1] = False
    return not outside.any()


def _scaled(frame: np.ndarray, matrix: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """The frame resized by ``factor`` and the frame → face matrix for it."""
    if factor == 1.0:
        return frame, matrix
    small = cv2.resize(frame, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    return small, _small_frame_matrix(matrix, factor)


def _small_frame_matrix(matrix: np.ndarray, factor: float) -> np.ndarray:
    """Frame → face for the frame resized by ``factor`` (cv2: x_big = (x_small + ½) / factor − ½)."""
    m = np.asarray(matrix, dtype=np.float64).copy()
    m[:, 2] += m[:, :2] @ np.full(2, 0.5 / factor - 0.5)
    m[:, :2] /= factor
    return m


# (frame scale, face size, mean error bound): the face shrunk back into the frame (linear) with
# no detail lost on the way out, and enlarged back (cubic) after warp_face dropped some detail.
@pytest.mark.parametrize(("factor", "size", "max_err"), [(1.0, 1024, 0.6), (0.35, 256, 1.0),
                                                         (1.0, 256, 4.0)])
@pytest.mark.parametrize("kind", ["rect", "components"])
def test_pasting_the_own_face_back_reproduces_the_frame(extracted, kind, factor, size, max_err):
    frame, face = extracted
    frame, matrix = _scaled(frame, rescale(face.matrix, size / face.size), factor)
    aligned = warp_face(frame, matrix, size)
    mask = build(kind, face, size)
    out = paste_face(frame, aligned, mask, matrix)
    assert out.shape == frame.shape and out.dtype == np.uint8

    full = _frame_mask(mask, matrix, frame.shape)
    changed = (out != frame).any(axis=2)
    assert changed.any()
    assert not changed[full == 0].any(), "pixels outside the mask's support must keep their bytes"
    roi = roi_of(matrix, size, frame.shape)
    assert roi is not None and _inside(changed, roi)

    inner = full > 0.99
    err = np.abs(out.astype(np.int16) - frame.astype(np.int16))[inner]
    assert err.mean() < max_err, err.mean()
    # Registered to the pixel: a one-pixel shift of the frame fits far worse.
    shifted = np.abs(out.astype(np.int16) - np.roll(frame, 1, axis=1).astype(np.int16))[inner]
    assert shifted.mean() > 1.5 * err.mean()


def test_mask_kinds_geometry(extracted):
    frame, face = extracted
    assert set(MASKS.names()) == {"rect", "facehull", "facehullandrect", "components", "extended",
                                  "predicted", "mesh"}  # mesh: tests/test_mesh_mask.py
    masks = {k: build(k, face, SIZE) for k in ("rect", "facehull", "facehullandrect", "components",
                                                "extended")}
    for kind, mask in masks.items():
        assert mask.shape == (SIZE, SIZE) and mask.dtype == np.float32, kind
        assert mask.min() >= 0.0 and mask.max() <= 1.0, kind
        assert mask.max() == pytest.approx(1.0, abs=1e-6), kind

    area = {k: float(m.sum()) for k, m in masks.items()}
    assert area["rect"] == SIZE * SIZE
    # extended reaches above the brows, past the landmarks' hull.
    assert area["components"] < min(area["extended"], area["facehull"])
    assert max(area["extended"], area["facehull"]) < area["rect"]
    assert area["components"] > 0.25 * SIZE * SIZE  # a real face fills much of the crop

    def outside(a: np.ndarray, b: np.ndarray) -> float:
        """Share of a's (hard) pixels that b lacks."""
        hard_a = a > 0.5
        return float((hard_a & (b <= 0.5)).sum() / hard_a.sum())

    assert outside(masks["facehull"], masks["rect"]) == 0.0
    assert outside(masks["components"], masks["extended"]) < 0.01  # stored masks: resampled edges
    assert outside(masks["components"], masks["facehull"]) < 0.01
    # The whole crop as the window: facehullandrect is the hull.
    np.testing.assert_array_equal(masks["facehullandrect"], masks["facehull"])

    # A smaller model window: rect is that square, facehullandrect the hull cut to it.
    window = centre_window(SIZE, 0.6)
    assert window == pytest.approx((51.2, 51.2, 204.8, 204.8))
    rect = build("rect", face, SIZE, window=window)
    assert rect.sum() == pytest.approx((0.6 * SIZE) ** 2, rel=1e-6)
    assert rect[128, 128] == 1.0 and rect[10, 128] == 0.0 and rect[128, 51] == pytest.approx(0.8)
    both = build("facehullandrect", face, SIZE, window=window)
    np.testing.assert_allclose(both, masks["facehull"] * rect)
    assert 0 < both.sum() < masks["facehull"].sum()

    # Stored masks warped into the face agree with ones drawn from the landmarks.
    lm = transform_points(face.landmarks, face.matrix)
    for kind in ("components", "extended"):
        drawn = face_mask(kind, lm, SIZE)
        np.testing.assert_array_equal(drawn, draw_mask(lm, (SIZE, SIZE), kind) / np.float32(255))
        hard_s, hard_d = masks[kind] > 0.5, drawn > 0.5
        assert (hard_s & hard_d).sum() / (hard_s | hard_d).sum() > 0.97, kind

    # Any face size: the same mask at 128 px is the 256 px one scaled down.
    half = build("extended", face, 128)
    assert half.sum() * 4 == pytest.approx(area["extended"], rel=0.02)

    # In the frame every mask stays inside the face's ROI.
    roi = roi_of(face.matrix, SIZE, frame.shape)
    assert roi is not None
    for kind, mask in masks.items():
        assert _inside(_frame_mask(mask, face.matrix, frame.shape) > 0, roi), kind


def test_refine_mask_erodes_dilates_feathers_and_thresholds(extracted):
    _, face = extracted
    hard = (build("extended", face, SIZE) > 0.5).astype(np.float32)

    eroded = refine_mask(hard, erosion=6)
    dilated = refine_mask(hard, erosion=-6)
    assert eroded.sum() < hard.sum() < dilated.sum()
    assert not (eroded > 0)[hard == 0].any()
    assert not (hard > 0)[dilated == 0].any()
    np.testing.assert_array_equal(refine_mask(hard), hard)

    def soft(m: np.ndarray) -> int:
        return int(((m > 0) & (m < 1)).sum())

    blurred = refine_mask(hard, blur=8)
    assert soft(hard) == 0 and soft(blurred) > 1000
    assert blurred.min() >= 0.0 and blurred.max() <= 1.0
    assert blurred[128, 128] == pytest.approx(1.0)  # the middle stays fully on

    cut = refine_mask(hard, blur=8, threshold=0.4)
    assert not ((cut > 0) & (cut < 0.4)).any()
    assert cut.sum() < blurred.sum() and soft(cut) > 0
    np.testing.assert_array_equal(cut[cut > 0], blurred[cut > 0])

    # The crop edge counts as background: a rect erodes and feathers from it.
    rect = build("rect", face, SIZE)
    assert refine_mask(rect, erosion=3)[:3].max() == 0.0
    edge = refine_mask(rect, blur=5)
    assert 0.0 < edge[0, 128] < 1.0 and edge[128, 128] == pytest.approx(1.0)

    with pytest.raises(ValueError):
        refine_mask(hard, threshold=1.5)


def test_solid_face_changes_pixels_only_inside_the_warped_mask(extracted):
    frame, face = extracted
    blur = 6
    hard = build("extended", face, SIZE)
    mask = refine_mask(hard, blur=blur)
    green = np.zeros((SIZE, SIZE, 3), np.uint8)
    green[..., 1] = 255
    out = paste_face(frame, green, mask, face.matrix)

    changed = (out != frame).any(axis=2)
    ys, xs = np.nonzero(_frame_mask(hard, face.matrix, frame.shape) > 0)
    scale = np.sqrt(abs(np.linalg.det(face.matrix[:, :2])))  # face px per frame px
    margin = int(np.ceil((blur + 1) / scale)) + 1
    box = (xs.min() - margin, ys.min() - margin, xs.max() + 1 + margin, ys.max() + 1 + margin)
    assert changed.sum() > 0.8 * len(xs)
    assert _inside(changed, box)
    # paste_face only warps the mask's support: a box inside the face square's.
    support = mask_support(mask)
    assert support is not None and mask_support(np.zeros_like(mask)) is None
    tight, whole = roi_of(face.matrix, SIZE, frame.shape, support), roi_of(face.matrix, SIZE, frame.shape)
    assert tight is not None and whole is not None and _inside(changed, tight)
    area = [(r[2] - r[0]) * (r[3] - r[1]) for r in (tight, whole)]
    assert area[0] < area[1]

    full = _frame_mask(mask, face.matrix, frame.shape)
    assert (out[full >= 1.0] == (0, 255, 0)).all()
    np.testing.assert_array_equal(out[full == 0], frame[full == 0])

    # A float face and a uint8 mask give the same picture.
    again = paste_face(frame, green.astype(np.float32), np.round(mask * 255).astype(np.uint8), face.matrix)
    assert np.abs(again.astype(np.int16) - out).max() <= 1

    # A face entirely off the frame leaves it untouched.
    off = face.matrix.copy()
    off[:, 2] += 5000
    assert roi_of(off, SIZE, frame.shape) is None
    np.testing.assert_array_equal(paste_face(frame, green, mask, off), frame)


def test_predicted_mask_is_resized_into_the_window(extracted):
    _, face = extracted
    pred = np.zeros((64, 64), np.float32)
    cv2.circle(pred, (32, 30), 20, 1.0, -1)

    full = build("predicted", face, SIZE, predicted=pred)
    assert full.shape == (SIZE, SIZE) and full.dtype == np.float32
    np.testing.assert_allclose(full, cv2.resize(pred, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR),
                               atol=1e-5)

    window = centre_window(SIZE, 0.5)  # (64, 64, 192, 192)
    inner = build("predicted", face, SIZE, window=window, predicted=pred[..., None])
    assert inner[:64].max() == 0.0 and inner[192:].max() == 0.0
    assert inner[:, :64].max() == 0.0 and inner[:, 192:].max() == 0.0
    np.testing.assert_allclose(inner[64:192, 64:192], cv2.resize(pred, (128, 128)), atol=1e-5)
    as_uint8 = build("predicted", face, SIZE, window=window, predicted=(pred * 255).astype(np.uint8))
    np.testing.assert_allclose(as_uint8, inner, atol=1e-5)

    # window_matrix maps the model output's corners onto the window's.
    m = window_matrix(window, 64)
    np.testing.assert_allclose(transform_points(np.array([[-0.5, -0.5], [63.5, 63.5]]), m),
                               [[63.5, 63.5], [191.5, 191.5]])

    with pytest.raises(ConfigError):
        build("predicted", face, SIZE)
    with pytest.raises(ConfigError):
        build("nosuchmask", face, SIZE)


def test_paste_time_480p_frame(extracted):
    frame, face = extracted
    # The face's square 910 px region scaled to a 480×480 frame: a ~140 px face in the frame.
    factor = 480 / 910
    small = cv2.resize(frame[:910, :910], (480, 480), interpolation=cv2.INTER_AREA)
    matrix = _small_frame_matrix(face.matrix, factor)
    aligned = warp_face(small, matrix, SIZE).astype(np.float32)
    mask = refine_mask(build("extended", face, SIZE), erosion=2, blur=4)
    paste_face(small, aligned, mask, matrix)
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(40):
            paste_face(small, aligned, mask, matrix)
        runs.append((time.perf_counter() - start) / 40)
    best = min(runs) * 1e3
    print(f"paste_face 480×480 frame, 256 px face: best {best:.2f} ms, "
          f"median {np.median(runs) * 1e3:.2f} ms per call")
    assert best < 20.0  # loose: the budget is ~3 ms, but CI machines are shared
