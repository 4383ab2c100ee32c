"""The PyTorch port of dlib's face ResNet gives dlib's own 128-d descriptors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from swapface.core.errors import InputError
from swapface.faces.bundled import dlib_model_path
from swapface.faces.dlib_format import DlibFormatError
from swapface.faces.dlib_resnet import MODEL_FILE, load_dlib_resnet

dlib = pytest.importorskip("dlib")

# Small stills with 1 + 2 + 6 + 3 frontal faces: the detector takes ~1 s on all of them.
STILLS = ["obama.jpg", "two_people.jpg", "dlib_faces/2008_002470.jpg", "dlib_faces/2008_001322.jpg"]


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return load_dlib_resnet()


@pytest.fixture(scope="module")
def chips(data_dir: Path) -> np.ndarray:
    """dlib's own 150 px chips (get_face_chip, padding 0.25), as compute_face_descriptor makes."""
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(dlib_model_path("shape_predictor_68_face_landmarks.dat"))
    out = []
    for name in STILLS:
        image = dlib.load_rgb_image(str(data_dir / "stills" / name))
        for rect in detector(image, 1):
            out.append(dlib.get_face_chip(image, predictor(image, rect), size=150, padding=0.25))
    assert len(out) >= 5
    return np.stack(out)


def test_matches_dlib(model: torch.nn.Module, chips: np.ndarray) -> None:
    facerec = dlib.face_recognition_model_v1(dlib_model_path(MODEL_FILE))
    ref = np.array([facerec.compute_face_descriptor(chip) for chip in chips], np.float64)
    with torch.no_grad():
        ours = model(chips).numpy().astype(np.float64)
    assert ours.shape == (len(chips), 128) and ours.dtype == np.float64
    cosine = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    assert np.abs(ours - ref).max() < 1e-3
    assert cosine.min() >= 0.9999


def test_batch_equals_one_by_one(model: torch.nn.Module, chips: np.ndarray) -> None:
    with torch.no_grad():
        batch = model(torch.from_numpy(chips))
        single = torch.cat([model(chip[None]) for chip in chips[:4]])
    assert batch.dtype == torch.float32
    torch.testing.assert_close(batch[:4], single, atol=1e-5, rtol=0)


def test_features_per_level(model: torch.nn.Module, chips: np.ndarray) -> None:
    with torch.no_grad():
        features = model.forward_features(chips[:2])
    assert [tuple(f.shape) for f in features] == [
        (2, 32, 35, 35), (2, 64, 17, 17), (2, 128, 8, 8), (2, 256, 4, 4), (2, 256, 2, 2)]


def test_rejects_wrong_chip_size(model: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match="150"):
        model(np.zeros((1, 112, 112, 3), np.uint8))


def _corrupt(tmp_path: Path, edit) -> Path:
    data = Path(dlib_model_path(MODEL_FILE)).read_bytes()
    path = tmp_path / "broken.dat"
    path.write_bytes(edit(data))
    return path


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d[:5_000_000], "truncated"),  # cut inside a weight tensor
    (lambda d: d[:-3], "truncated"),  # cut in the last layer's state
    (lambda d: d + b"\0", "trailing"),
    (lambda d: d.replace(b"con_4", b"cxn_4", 1), "expected a con layer"),
    (lambda d: d.replace(b"loss_metric_2", b"loss_mmod_v22", 1), "expected loss_metric"),
    (lambda d: b"GIF89a" + d[6:], "not a dlib face ResNet file"),
])
def test_corrupt_file_is_one_line_error(tmp_path: Path, edit, message: str) -> None:
    with pytest.raises(DlibFormatError, match=message) as info:
        load_dlib_resnet(_corrupt(tmp_path, edit))
    assert isinstance(info.value, ValueError) and isinstance(info.value, InputError)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DlibFormatError, match="cannot read"):
        load_dlib_resnet(tmp_path / "nope.dat")


def test_the_identity_encoder_gives_dlibs_descriptor_from_a_frame(data_dir: Path) -> None:
    """What extract --identity, sort, filters and evaluate use: frame + 68 landmarks in,
    dlib's own descriptor out (the chip cut by dlib, the network run in PyTorch)."""
    import cv2

    from swapface.faces.identity import IdentityEncoder

    encoder = IdentityEncoder()
    facerec = dlib.face_recognition_model_v1(dlib_model_path(MODEL_FILE))
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(dlib_model_path("shape_predictor_68_face_landmarks.dat"))
    image = dlib.load_rgb_image(str(data_dir / "stills" / "two_people.jpg"))
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    shapes = [predictor(image, rect) for rect in detector(image, 1)]
    assert len(shapes) == 2
    landmarks = [np.array([[p.x, p.y] for p in s.parts()], np.float64) for s in shapes]
    ref = np.array([facerec.compute_face_descriptor(image, s) for s in shapes])
    one = np.stack([encoder.encode(bgr, lm) for lm in landmarks])
    many = encoder.encode_many(bgr, landmarks)
    assert np.abs(one - ref).max() < 1e-3 and np.abs(many - one).max() < 1e-5
    assert np.linalg.norm(ref[0] - ref[1]) > 0.6  # two people: the figure is not trivial
