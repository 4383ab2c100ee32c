"""``swapface evaluate`` metrics on real faces: identity, pose, expression, temporal, bad input.

The "swapped" videos here are the source clip itself, or the clip with a known defect
injected (a rotation, a shake, missing faces), so every expected figure is known exactly.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from swapface.core.errors import ConfigError, InputError
from swapface.core.images import read_image, write_image
from swapface.evaluate import EvaluateConfig, EvaluateResult, run_evaluate
from swapface.evaluate.identity import IdentityReference
from swapface.evaluate.pairing import make_finders, pair_faces
from swapface.evaluate.plots import HLine, Series, line_plot, nice_ticks
from swapface.faces.identity import describe_largest, shared_encoder
from swapface.media.video import iter_video

FRAMES = 16


def write_frames(folder: Path, images: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        write_image(folder / f"frame_{i:04d}.png", image)
    return folder


@pytest.fixture(scope="module")
def clip(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The first frames of woman_a as a frame folder, plus the face centre of frame 0."""
    root = tmp_path_factory.mktemp("evaluate")
    images = []
    for index, _, image in iter_video(data_dir / "video" / "woman_a.mp4"):
        if index >= FRAMES:
            break
        images.append(image)
    src = write_frames(root / "source", images)
    finder = make_finders(EvaluateConfig(source=src, swapped=src, reference_b=src))[0]
    (face,) = finder.find(images[0])
    return {"root": root, "source": src, "images": images, "centre": face.landmarks.mean(axis=0),
            "reference": data_dir / "stills" / "biden.jpg"}


def evaluate(clip: dict, swapped: Path, name: str, **kw) -> EvaluateResult:
    kw.setdefault("identity_every", 100)  # identity on the first frame only: the ResNet is slow
    kw.setdefault("reference_b", clip["reference"])
    cfg = EvaluateConfig(source=kw.pop("source", clip["source"]), swapped=swapped,
                         report=clip["root"] / f"report_{name}", **kw)
    return run_evaluate(cfg)


@pytest.fixture(scope="module")
def itself(clip: dict) -> EvaluateResult:
    return evaluate(clip, clip["source"], "itself")


def rotated(clip: dict, degrees: float) -> Path:
    m = cv2.getRotationMatrix2D(tuple(float(v) for v in clip["centre"]), degrees, 1.0)
    return write_frames(clip["root"] / f"rot_{degrees:g}", [
        cv2.warpAffine(im, m, im.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        for im in clip["images"]])


# ------------------------------------------------------------------ identity
def test_identity_ranks_the_same_person_closer(data_dir: Path) -> None:
    stills = data_dir / "stills"
    cfg = EvaluateConfig(source=stills, swapped=stills, reference_b=stills)
    finder, encoder = make_finders(cfg)[0], shared_encoder()
    obama = IdentityReference.load(stills / "obama.jpg", finder, encoder)
    biden = IdentityReference.load(stills / "biden.jpg", finder, encoder)
    probe = describe_largest(read_image(stills / "obama2.jpg"), finder, encoder)
    assert probe is not None and probe.shape == (128,)
    same, other = obama.distance(probe), biden.distance(probe)
    assert same < 0.6 < other, (same, other)  # dlib's same-person threshold separates them
    assert other - same > 0.2


def test_identity_reference_from_a_folder_averages_its_faces(data_dir: Path, tmp_path: Path) -> None:
    stills = data_dir / "stills"
    folder = tmp_path / "obamas"
    for name in ("obama.jpg", "obama2.jpg"):
        write_image(folder / name.replace(".jpg", ".png"), read_image(stills / name))
    cfg = EvaluateConfig(source=stills, swapped=stills, reference_b=folder)
    finder, encoder = make_finders(cfg)[0], shared_encoder()
    ref = IdentityReference.load(folder, finder, encoder)
    assert ref.descriptors.shape == (2, 128)
    biden = describe_largest(read_image(stills / "biden.jpg"), finder, encoder)
    obama = describe_largest(read_image(stills / "obama.jpg"), finder, encoder)
    assert ref.distance(obama) < 0.6 < ref.distance(biden)


# ------------------------------------------------------------------ a clip against itself
def test_a_clip_against_itself_scores_perfectly(itself: EvaluateResult) -> None:
    fr = itself.frames
    assert fr.compared == fr.source == fr.swapped == FRAMES
    assert fr.faces_paired == fr.faces_source == FRAMES and fr.faces_missing == fr.faces_extra == 0
    assert itself.pose.faces == FRAMES and itself.pose.error <= 1e-6
    assert itself.pose.motion_error <= 1e-6 and max(map(abs, itself.pose.offset)) <= 1e-6
    assert itself.expression.error <= 1e-6
    t = itself.temporal
    assert t.jitter_samples == FRAMES - 2 and t.frame_diff_samples == FRAMES - 1
    assert t.jitter_source > 0 and t.frame_diff_source > 0  # a real clip moves
    assert t.jitter_ratio == pytest.approx(1.0, abs=1e-6)
    assert t.frame_diff_ratio == pytest.approx(1.0, abs=1e-6)
    idt = itself.identity
    assert idt.faces == 1 and idt.mean_distance_a <= 1e-6
    assert idt.closer_to_b == 0.0 and idt.under_threshold == 0.0  # woman_a is not Biden
    assert idt.mean_distance_b == pytest.approx(idt.source_distance_b) and idt.mean_distance_b > 0.6
    assert itself.reconstruction is None and not itself.problems


# ------------------------------------------------------------------ pose
def test_pose_error_grows_with_an_injected_rotation(clip: dict, itself: EvaluateResult) -> None:
    rolls, errors = [itself.pose.roll_error], [itself.pose.error]
    for degrees in (2, 5, 10):
        result = evaluate(clip, rotated(clip, degrees), f"rot{degrees}")
        assert result.frames.faces_paired == FRAMES
        rolls.append(result.pose.roll_error)
        errors.append(result.pose.error)
        assert result.pose.roll_error == pytest.approx(degrees, rel=0.25), rolls
        # The same turn on every frame is an offset, not a failure to follow the movement.
        assert abs(result.pose.offset[2]) == pytest.approx(result.pose.roll_error, rel=0.05)
        assert result.pose.motion_error < 0.5 and result.pose.motion_error < result.pose.error / 3
    assert np.all(np.diff(rolls) > 0), rolls
    assert np.all(np.diff(errors) > 0), errors
    assert rolls[0] == 0.0


# ------------------------------------------------------------------ detail and seams
@pytest.fixture(scope="module")
def face_masks(clip: dict) -> list[np.ndarray]:
    """Each frame's face hull, feathered by 3 px: where a paste would change the frame."""
    finder = make_finders(EvaluateConfig(source=clip["source"], swapped=clip["source"],
                                         reference_b=clip["source"]))[0]
    masks = []
    for image in clip["images"]:
        (face,) = finder.find(image)
        mask = np.zeros(image.shape[:2], np.float32)
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(face.landmarks).astype(np.int32)), 1.0)
        masks.append(cv2.GaussianBlur(mask, (0, 0), 3)[..., None])
    return masks


def _pasted(clip: dict, masks: list[np.ndarray], change) -> list[np.ndarray]:
    """Each frame with ``change`` applied inside its face hull only, as a paste would."""
    return [np.clip(image * (1 - mask) + change(image) * mask, 0, 255).astype(np.uint8)
            for image, mask in zip(clip["images"], masks, strict=True)]


def _unsharp(image: np.ndarray) -> np.ndarray:
    return cv2.addWeighted(image, 2.5, cv2.GaussianBlur(image, (0, 0), 2), -1.5, 0)


def test_sharpness_sees_a_blurred_face_and_is_not_fooled_by_unsharp_masking(
        clip: dict, itself: EvaluateResult, face_masks: list) -> None:
    assert itself.detail.sharpness_ratio == pytest.approx(1.0)
    assert itself.detail.seam_delta_e == pytest.approx(0.0, abs=1e-6)
    blur = evaluate(clip, write_frames(clip["root"] / "blur2", _pasted(
        clip, face_masks, lambda im: cv2.GaussianBlur(im, (0, 0), 2))), "blur2")
    assert blur.detail.faces == FRAMES and blur.detail.sharpness_ratio < 0.6, blur.detail
    sharpened = evaluate(clip, write_frames(clip["root"] / "usm", _pasted(
        clip, face_masks, lambda im: _unsharp(cv2.GaussianBlur(im, (0, 0), 2)))), "usm")
    assert blur.detail.sharpness_ratio < sharpened.detail.sharpness_ratio < 0.9, sharpened.detail
    # Noise adds energy, but is capped: it never scores above the real detail.
    rng = np.random.default_rng(1)
    noisy = evaluate(clip, write_frames(clip["root"] / "noisy", _pasted(
        clip, face_masks, lambda im: im + rng.normal(0, 12, im.shape))), "noisy")
    assert noisy.detail.sharpness_ratio <= 1.0
    # The worst-sharpness frames are on the contact sheet, captioned with the figure.
    assert any(e.label.startswith("worst sharpness") for e in _sheet_entries(blur))


def _sheet_entries(result: EvaluateResult) -> list:
    from swapface.evaluate.report import ContactSheet, PerFrame

    per: PerFrame = result.per_frame
    sheet = ContactSheet.spaced(0, 0)
    blank = np.zeros((8, 8, 3), np.uint8)
    for i, frame in enumerate(per.frame):
        sheet.offer(i, frame, blank, blank, per.badness(i))
    return sheet.all_entries()


@pytest.mark.parametrize(("channel", "shift"), [(0, -20.0), (1, 12.0), (2, 12.0)])
def test_a_face_shifted_in_colour_raises_the_seam_figure(clip: dict, face_masks: list,
                                                          channel: int, shift: float) -> None:
    def recolour(image: np.ndarray) -> np.ndarray:
        lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(np.float32)
        lab[..., channel] += shift
        return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)

    frames = _pasted(clip, face_masks, recolour)
    result = evaluate(clip, write_frames(clip["root"] / f"tone{channel}", frames), f"tone{channel}")
    assert result.detail.seam_delta_e > 4.0, result.detail
    assert result.detail.sharpness_ratio > 0.9  # a tone change is not a loss of detail


def test_a_paste_darker_on_one_side_shows_in_the_seam_figure(clip: dict, face_masks: list) -> None:
    """The model's window cuts the paste with a straight edge through the right cheek, and
    only that part of the face is 15 L* darker (lit from the other side): a viewer sees a
    vertical edge. Measured on the landmark hull's ring as a whole, the dark part is a
    quarter of it and the step mostly averages away; per sector along the paste's own
    border, every sector of that part shows it."""
    def darker(image: np.ndarray) -> np.ndarray:
        lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(np.float32)
        lab[..., 0] -= 15 * 255 / 100  # OpenCV's 8-bit L* is scaled to 0-255
        return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)

    cut = int(clip["centre"][0]) + 30  # px: a third of the face, its right cheek
    right = np.zeros_like(face_masks[0])
    right[:, cut:] = 1.0
    masks = [m * cv2.GaussianBlur(right, (0, 0), 3)[..., None] for m in face_masks]
    frames = _pasted(clip, masks, darker)
    result = evaluate(clip, write_frames(clip["root"] / "one_side", frames), "one_side")
    assert result.detail.seam_delta_e > 6.0, result.detail
    assert result.detail.seam_delta_e_max > 12.0, result.detail


# ------------------------------------------------------------------ temporal
def test_jitter_rises_when_frames_shake(clip: dict) -> None:
    rng = np.random.default_rng(0)
    shaken = []
    for image in clip["images"]:
        dx, dy = rng.uniform(-2.5, 2.5, 2)  # sub-frame shake of the whole picture
        moved = cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, dy]]), image.shape[1::-1],
                               borderMode=cv2.BORDER_REPLICATE)
        noise = rng.normal(0, 4, image.shape)
        shaken.append(np.clip(moved + noise, 0, 255).astype(np.uint8))
    result = evaluate(clip, write_frames(clip["root"] / "shaken", shaken), "shaken")
    t = result.temporal
    assert t.jitter_ratio > 1.3, t
    assert t.frame_diff_ratio > 1.5, t
    assert result.pose.error < 2.0  # a shake is not a turn of the head


# ------------------------------------------------------------------ frames, ranges, missing faces
def test_frame_ranges_pair_a_discarded_output_with_its_source_frames(clip: dict) -> None:
    tail = write_frames(clip["root"] / "tail", clip["images"][6:])
    result = evaluate(clip, tail, "ranges", frame_ranges=[f"6-{FRAMES - 1}"])
    assert result.frames.compared == result.frames.source == FRAMES - 6
    assert result.per_frame.frame[0] == 6
    assert result.pose.error <= 1e-6 and not result.problems
    # Without the ranges the same output is compared with the wrong frames — and says so.
    shifted = evaluate(clip, tail, "shifted")
    assert shifted.frames.compared == FRAMES - 6
    assert any("compared the first 10" in p for p in shifted.problems), shifted.problems
    assert shifted.expression.error > result.expression.error


def test_frames_without_a_face_are_counted_not_fatal(clip: dict) -> None:
    images = [im.copy() for im in clip["images"]]
    for i in (3, 4, 9):
        images[i][:] = 128  # the swap lost the face (a grey frame)
    result = evaluate(clip, write_frames(clip["root"] / "holes", images), "holes")
    fr = result.frames
    assert fr.faces_missing == 3 and fr.faces_paired == FRAMES - 3
    assert result.pose.faces == FRAMES - 3 and result.pose.error <= 1e-6
    assert np.isnan(result.per_frame.pose_error[3])
    assert result.to_dict()["per_frame"]["pose_error"][3] is None  # JSON null, not NaN


def test_bad_input_is_refused_clearly(clip: dict, tmp_path: Path, data_dir: Path) -> None:
    with pytest.raises(InputError, match="swapped video not found"):
        evaluate(clip, tmp_path / "nope.mp4", "bad")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no images in the B reference"):
        evaluate(clip, clip["source"], "bad", reference_b=empty)
    with pytest.raises(InputError, match="no face found in the B reference"):
        evaluate(clip, clip["source"], "bad", reference_b=data_dir / "negatives")
    with pytest.raises(InputError, match="inside --frame-ranges"):
        evaluate(clip, clip["source"], "bad", frame_ranges=["500-600"])
    with pytest.raises(ConfigError, match="--faces-a"):
        EvaluateConfig(source=empty, swapped=empty, reference_b=empty, model_dir=empty)


# ------------------------------------------------------------------ small parts
def test_pairing_follows_position_not_list_order(clip: dict) -> None:
    finder = make_finders(EvaluateConfig(source=clip["source"], swapped=clip["source"],
                                         reference_b=clip["source"]))[0]
    image = clip["images"][0]
    wide = np.concatenate([image, image[:, ::-1]], axis=1)  # two faces side by side
    faces = finder.find(wide)
    assert len(faces) == 2
    pairs, missing, extra = pair_faces(faces, faces[::-1])
    assert pairs == [(0, 1), (1, 0)] and not missing and not extra
    pairs, missing, extra = pair_faces(faces[:1], faces[1:])
    assert pairs == [] and missing == [0] and extra == [0]


def test_line_plot_draws_series_ticks_and_threshold() -> None:
    assert nice_ticks(0.0, 1.0) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    x = np.arange(50)
    y = np.where(x % 10 == 5, np.nan, np.sin(x / 5) + 1.0)  # NaNs leave gaps
    img = line_plot([Series("a", x, y, (255, 0, 0))], "t", "frame", "v", [HLine("limit", 0.6, (0, 0, 255))])
    assert img.shape == (400, 960, 3) and img.dtype == np.uint8
    blue = (img[..., 0] > 200) & (img[..., 1] < 80) & (img[..., 2] < 80)
    red = (img[..., 2] > 200) & (img[..., 0] < 80) & (img[..., 1] < 80)
    assert blue.sum() > 300 and red.sum() > 100


def test_detail_ceiling_is_what_b_footage_allows_and_has_a_direction(pair) -> None:
    """woman_b's clip holds well under half of woman_a's fine detail (no eyeliner, a softer
    video): a perfect copy of B would score about that sharpness on A's frames. The other
    way round B is the sharper one and the ceiling is capped at 1; a clip against itself is 1."""
    from swapface.evaluate.ceiling import detail_ceiling

    a, b = (pair.a.video, pair.a.store), (pair.b.video, pair.b.store)
    forward = detail_ceiling(*a, *b, every=2)
    assert 0.2 < forward < 0.6, forward
    assert detail_ceiling(*b, *a, every=2) == pytest.approx(1.0)
    assert detail_ceiling(*a, *a, every=2) == pytest.approx(1.0)
