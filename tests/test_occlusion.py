"""Hands in front of the face stay in front: ``SwapOptions(occlusion="hands")``.

The frame is made from real images: the singer's open hand in small_faces_with_audio.mp4
frame 150 (MediaPipe finds it there and, pasted over a face, at every scale and woman_a
frame tried), cut out along its landmark hull, pasted over woman_a's mouth. The face's
landmarks come from the frame without the hand, as a store made before would have them.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from swapface.align.records import FaceRecord
from swapface.core.errors import ConfigError
from swapface.core.images import write_image
from swapface.faces import FaceFinder
from swapface.media.video import read_video_frame
from swapface.objects.hands import HandDetector, HandOptions
from swapface.swap import FrameSwapper, SwapOptions, load_model
from swapface.swap.occlusion import hand_mask

HAND_CLIP, HAND_FRAME = "small_faces_with_audio.mp4", 150
FACE_FRAME = 100  # woman_a, looking into the camera


def _paste_hand(frame: np.ndarray, mouth: np.ndarray, width: float, hand_image: np.ndarray,
                points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``frame`` with the hand (its landmark hull, grown a little) centred on ``mouth``,
    scaled to ``width`` px; and the mask of the pasted hand pixels."""
    cut = hand_mask(hand_image.shape, [points], 0.08, feather=False).astype(np.uint8)
    scale = width / np.ptp(points, axis=0).max()
    centre = points.mean(axis=0)
    m = np.array([[scale, 0, mouth[0] - scale * centre[0]], [0, scale, mouth[1] - scale * centre[1]]])
    size = frame.shape[1::-1]
    hand = cv2.warpAffine(hand_image, m, size, flags=cv2.INTER_LINEAR)
    pasted = cv2.warpAffine(cut, m, size, flags=cv2.INTER_NEAREST) > 0
    out = frame.copy()
    out[pasted] = hand[pasted]
    return out, pasted


@pytest.fixture(scope="module")
def hand_over_mouth(data_dir: Path) -> tuple[np.ndarray, np.ndarray, list[FaceRecord], np.ndarray]:
    """(frame with a hand over the mouth, hand pixels, the face's records, eye pixels)."""
    source = read_video_frame(data_dir / "video" / HAND_CLIP, HAND_FRAME).image
    detector = HandDetector(HandOptions(presence=0.5))
    try:
        points, _ = max(detector.hands(source), key=lambda h: np.ptp(h[0], axis=0).max())
    finally:
        detector.close()
    frame = read_video_frame(data_dir / "video" / "woman_a.mp4", FACE_FRAME).image
    finder = FaceFinder.create()
    records = finder.records(frame)
    (found,) = finder.find(frame)
    landmarks = np.asarray(found.landmarks)
    face_width = np.ptp(landmarks[:, 0])
    composite, hand = _paste_hand(frame, landmarks[48:68].mean(axis=0), 0.65 * face_width, source, points)
    eyes = np.zeros(frame.shape[:2], np.uint8)
    for eye in (landmarks[36:42], landmarks[42:48]):
        cv2.fillConvexPoly(eyes, cv2.convexHull(np.round(eye).astype(np.int32)), 1)
    return composite, hand, records, eyes.astype(bool) & ~hand


def test_a_hand_over_the_mouth_is_never_painted_over(trained, hand_over_mouth, tmp_path):
    composite, hand, records, eyes = hand_over_mouth
    assert len(records) == 1 and hand.sum() > 2000
    model = load_model(trained)
    plain = FrameSwapper(model, SwapOptions()).swap(composite, records)
    kept = FrameSwapper(model, SwapOptions(occlusion="hands")).swap(composite, records)
    write_image(tmp_path / "occlusion.png", np.hstack([composite, plain, kept]))  # to look at

    def change(out: np.ndarray, where: np.ndarray) -> np.ndarray:
        return np.abs(out.astype(np.int16) - composite).max(axis=2)[where]

    assert change(plain, hand).mean() > 8, "without occlusion the swap paints over the hand"
    on_hand = change(kept, hand)
    assert on_hand.mean() < 0.5 and np.percentile(on_hand, 99) <= 2, on_hand.mean()
    assert change(kept, eyes).mean() > 8, "the rest of the face is still swapped"


def test_hands_are_looked_for_only_on_frames_with_faces(trained, hand_over_mouth):
    composite, _, records, _ = hand_over_mouth
    swapper = FrameSwapper(load_model(trained), SwapOptions(occlusion="hands"))
    calls = []
    real = swapper._occluder
    swapper._occluder = lambda image: calls.append(image.shape) or real(image)
    assert swapper.swap(composite, []) is composite and not calls
    swapper.swap(composite, records)
    assert calls == [composite.shape]


def test_bad_occlusion_options_fail_when_the_options_are_made():
    with pytest.raises(ConfigError, match="occlusion"):
        SwapOptions(occlusion="feet")
    with pytest.raises(ConfigError, match="grow"):
        SwapOptions(occlusion="hands", occlusion_options={"grow": 3})
