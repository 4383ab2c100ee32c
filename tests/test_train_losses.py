"""Trainer losses: SSIM vs skimage, weight maps, config parsing, region masks, grads, autocast."""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from swapface.align.transform import alignment_matrix, transform_points
from swapface.core.config import add_arguments, build_config
from swapface.core.errors import ConfigError
from swapface.train.losses import (
    FaceLoss,
    LossConfig,
    mae,
    ms_ssim_loss,
    mse,
    parse_loss_spec,
    region_masks,
    ssim_loss,
)


def as_tensor(img: np.ndarray) -> torch.Tensor:
    """HWC (or a batch of them) → float32 [B, C, H, W]."""
    img = img[None] if img.ndim == 3 else img
    return torch.from_numpy(np.ascontiguousarray(img.transpose(0, 3, 1, 2))).float()


def noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    return np.clip(img + np.random.default_rng(seed).normal(0, sigma, img.shape), 0, 1)


@pytest.fixture(scope="module")
def face96(data_dir) -> np.ndarray:
    img = cv2.imread(str(data_dir / "stills" / "obama.jpg"))
    if img is None:
        pytest.skip("obama.jpg missing")
    return cv2.resize(img[60:380, 330:650], (96, 96), interpolation=cv2.INTER_AREA) / 255.0


@pytest.fixture(scope="module")
def face64(face96) -> np.ndarray:
    return cv2.resize(face96, (64, 64), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def landmarks64(data_dir) -> torch.Tensor:
    """All 68-point faces of dlib's training XML, aligned to a 64-px output frame."""
    xml = data_dir / "stills" / "dlib_faces" / "training_with_face_landmarks.xml"
    if not xml.is_file():
        pytest.skip("dlib landmark XML missing")
    out = []
    for box in ET.parse(xml).getroot().iter("box"):
        parts = sorted(box.iter("part"), key=lambda p: int(p.get("name")))
        lm = np.array([[float(p.get("x")), float(p.get("y"))] for p in parts])
        out.append(transform_points(lm, alignment_matrix(lm, 64)))
    return torch.tensor(np.stack(out), dtype=torch.float32)


def test_identical_images_have_zero_loss(face64):
    x = as_tensor(face64)
    for fn in (ssim_loss, ms_ssim_loss):
        for padding in ("valid", "reflect"):
            assert fn(x, x, padding=padding).item() == pytest.approx(0.0, abs=1e-6)


def test_ssim_matches_skimage(face96):
    others = [noisy(face96, 0.05), cv2.GaussianBlur(face96, (0, 0), 1.2), noisy(face96, 0.2, seed=1)]
    ref = [structural_similarity(face96, o, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=1.0, channel_axis=-1) for o in others]
    for o, r in zip(others, ref, strict=True):
        assert 1.0 - ssim_loss(as_tensor(o), as_tensor(face96)).item() == pytest.approx(r, abs=1e-3)
    batch = ssim_loss(as_tensor(np.stack(others)), as_tensor(np.stack([face96] * 3)))
    assert 1.0 - batch.item() == pytest.approx(np.mean(ref), abs=1e-3)


def test_ms_ssim_in_unit_range_and_monotone_in_noise(face64, face96):
    target = as_tensor(face64)
    losses = [ms_ssim_loss(as_tensor(noisy(face64, s)), target).item() for s in (0.02, 0.05, 0.1, 0.2, 0.4)]
    assert all(0.0 <= v <= 1.0 for v in losses)
    assert losses == sorted(losses) and losses[0] < losses[-1]
    big = cv2.resize(face96, (176, 176))  # 176 / 16 = 11: all 5 scales fit
    v = ms_ssim_loss(as_tensor(noisy(big, 0.1)), as_tensor(big)).item()
    assert 0.0 < v < 1.0
    ones = torch.ones(1, 1, 64, 64)
    pred = as_tensor(noisy(face64, 0.1))
    unweighted = ms_ssim_loss(pred, target).item()
    assert ms_ssim_loss(pred, target, ones).item() == pytest.approx(unweighted, rel=1e-5)


def test_weighted_mae_mse_match_hand_values():
    target = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[-1.0, 0.0], [0.0, 2.0]]]])  # [1, 2, 2, 2]
    pred = torch.zeros_like(target)
    weight = torch.tensor([[[[1.0, 0.0], [0.5, 2.0]]]])
    assert mae(pred, target).item() == pytest.approx(13 / 8)
    assert mae(pred, target, weight).item() == pytest.approx((1 + 1.5 + 8 + 1 + 4) / 8)
    assert mse(pred, target, weight).item() == pytest.approx((1 + 4.5 + 32 + 1 + 8) / 8)


def test_ssim_weight_map_scales_loss(face64):
    pred, target = as_tensor(noisy(face64, 0.1)), as_tensor(face64)
    base = ssim_loss(pred, target).item()
    doubled = ssim_loss(pred, target, torch.full((1, 1, 64, 64), 2.0)).item()
    assert doubled == pytest.approx(2 * base, rel=1e-5)


def test_loss_spec_parsing_and_validation():
    assert parse_loss_spec("mae") == {"mae": 1.0}
    assert parse_loss_spec(" MAE : 2 , ms-ssim ") == {"mae": 2.0, "ms_ssim": 1.0}
    for bad in ("l1", "mae:x", "mae:-1", "", "mae,mae", "mae:0", "mae:inf"):
        with pytest.raises(ConfigError):
            parse_loss_spec(bad)
    with pytest.raises(ConfigError, match="unknown loss"):
        LossConfig(loss="mae:0.5,perceptual:0.5")
    with pytest.raises(ConfigError):
        LossConfig(background_weight=1.5)
    with pytest.raises(ConfigError):
        LossConfig(eye_multiplier=0.5)
    with pytest.raises(ConfigError):
        build_config(LossConfig, {}, {"loss": "l2"})


def test_config_feeds_cli():
    parser = argparse.ArgumentParser()
    add_arguments(parser, LossConfig)
    args = parser.parse_args(["--loss", "mse:2", "--no-penalized-mask", "--eye-multiplier", "1"])
    cfg = build_config(LossConfig, vars(args), {"mouth_multiplier": 4})
    assert cfg.terms == {"mse": 2.0} and not cfg.penalized_mask
    assert (cfg.eye_multiplier, cfg.mouth_multiplier) == (1, 4)


def test_combination_is_weighted_sum(face64):
    pred, target = as_tensor(noisy(face64, 0.1)), as_tensor(face64)
    total, parts = FaceLoss(LossConfig(loss="mae:0.5,ssim:0.5", penalized_mask=False))(pred, target)
    expected = 0.5 * mae(pred, target) + 0.5 * ssim_loss(pred, target)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(parts) == {"mae", "ssim"} and sum(parts.values()) == pytest.approx(total.item(), rel=1e-6)


def test_penalized_mask_discounts_background(face64):
    target = as_tensor(face64)
    face = torch.zeros(1, 1, 64, 64)
    face[..., 16:48, 16:48] = 1
    pred = target + 0.2 * (1 - face)  # error in the background only
    plain = FaceLoss(LossConfig(loss="mae", penalized_mask=False))(pred, target)[0]
    penal = FaceLoss(LossConfig(loss="mae", background_weight=0.1))(pred, target, face_mask=face)[0]
    assert penal.item() == pytest.approx(0.1 * plain.item(), rel=1e-5)
    with pytest.raises(ValueError, match="face_mask"):
        FaceLoss(LossConfig())(pred, target)


@pytest.mark.parametrize("region", ["eyes", "mouth"])
def test_region_multipliers_only_count_inside(face64, landmarks64, region):
    eye, mouth = region_masks(landmarks64[:1], 64)
    mask = eye if region == "eyes" else mouth
    target = as_tensor(face64)
    inside = mask >= 1.0
    outside = torch.zeros_like(inside)
    outside.view(-1)[: int(inside.sum())] = True  # same pixel count, top rows: far from both regions
    on = FaceLoss(LossConfig(penalized_mask=False))
    off = FaceLoss(LossConfig(penalized_mask=False, eye_multiplier=1, mouth_multiplier=1))
    for where, grows in ((inside, True), (outside, False)):
        pred = (target + 0.3 * where).clamp(0, 1)
        loss_on, parts = on(pred, target, eye_mask=eye, mouth_mask=mouth)
        loss_off, parts_off = off(pred, target, eye_mask=eye, mouth_mask=mouth)
        assert "eyes" not in parts_off and "mouth" not in parts_off
        if grows:
            assert loss_on.item() > 1.5 * loss_off.item() and parts[region] > 0
        else:
            assert loss_on.item() == pytest.approx(loss_off.item(), rel=1e-5)
            assert parts["eyes"] == pytest.approx(0, abs=1e-7)
            assert parts["mouth"] == pytest.approx(0, abs=1e-7)


def test_region_masks_cover_eyes_and_mouth(landmarks64):
    eye, mouth = region_masks(landmarks64, 64)
    assert eye.shape == mouth.shape == (len(landmarks64), 1, 64, 64) and eye.dtype == torch.float32
    assert float(eye.min()) >= 0 and float(eye.max()) <= 1 and ((eye > 0) & (eye < 1)).any()  # feathered
    idx = landmarks64.round().long().clamp(0, 63)
    b = torch.arange(len(landmarks64))[:, None]
    at = lambda m, pts: m[b, 0, idx[:, pts, 1], idx[:, pts, 0]]  # noqa: E731
    assert (at(eye, slice(36, 48)) > 0.5).all() and (at(mouth, slice(48, 68)) > 0.5).all()
    assert (at(eye, slice(48, 68)) == 0).all() and (at(mouth, slice(36, 48)) == 0).all()
    assert (at(eye, slice(30, 31)) == 0).all()  # nose tip
    assert float(eye.mean()) < 0.08 and float(mouth.mean()) < 0.12
    # Batched windows vs one face at a time, and a face half out of frame (window clamping).
    one_eye, one_mouth = region_masks(landmarks64[3:4], 64)
    assert torch.allclose(one_eye, eye[3:4], atol=1e-5) and torch.allclose(one_mouth, mouth[3:4], atol=1e-5)
    shifted = landmarks64 - torch.tensor([24.0, 0.0])
    s_eye, s_mouth = region_masks(shifted, 64)
    assert torch.allclose(s_eye[..., :40], eye[..., 24:], atol=1e-5)
    assert torch.allclose(s_mouth[..., :40], mouth[..., 24:], atol=1e-5)


def masks_and_pred(landmarks64: torch.Tensor, face64: np.ndarray):
    eye, mouth = region_masks(landmarks64[:2], 64)
    face = torch.zeros(2, 1, 64, 64)
    face[..., 10:58, 12:52] = 1
    return eye, mouth, face, as_tensor(np.stack([face64, face64[:, ::-1]]))


@pytest.mark.parametrize("mask_fn", ["mse", "bce"])
def test_gradients_are_finite(face64, landmarks64, mask_fn):
    eye, mouth, face, target = masks_and_pred(landmarks64, face64)
    pred = torch.rand(2, 3, 64, 64, requires_grad=True)
    logits = torch.randn(2, 1, 64, 64, requires_grad=True)
    cfg = LossConfig(loss="mae,mse,ssim,ms_ssim", mask_loss_fn=mask_fn)
    total, parts = FaceLoss(cfg)(pred, target, face_mask=face, eye_mask=eye, mouth_mask=mouth,
                                 pred_mask=torch.sigmoid(logits))
    total.backward()
    assert set(parts) == {"mae", "mse", "ssim", "ms_ssim", "eyes", "mouth", "mask"}
    for g in (pred.grad, logits.grad):
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


def test_bf16_autocast_computes_in_fp32(face64, landmarks64):
    eye, mouth, face, target = masks_and_pred(landmarks64, face64)
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 4, 3, padding=1)
    loss_fn = FaceLoss(LossConfig(loss="mae:0.5,ssim:0.5,ms_ssim:0.2", mask_loss_fn="bce"))
    masks = {"face_mask": face, "eye_mask": eye, "mouth_mask": mouth}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = torch.sigmoid(net(target))
        assert out.dtype == torch.bfloat16
        total, _ = loss_fn(out[:, :3], target, pred_mask=out[:, 3:], **masks)
    assert total.dtype == torch.float32 and torch.isfinite(total)
    ref, _ = loss_fn(out[:, :3].detach().float(), target, pred_mask=out[:, 3:].detach().float(), **masks)
    assert total.item() == pytest.approx(ref.item(), rel=1e-5)  # bf16 only in the net, not in the loss
    total.backward()
    assert torch.isfinite(net.weight.grad).all()


def test_perceptual_loss_sees_blur_that_pixel_losses_forgive(face64):
    """A blurred face and a uniformly brighter one are equally far from the original in L1;
    dlib's ResNet features tell the blur apart (edges and texture gone), which is what the
    perceptual term adds to a pixel loss. Its network stays frozen: gradients reach the
    image only, and FaceLoss reports the term as its own part of the total."""
    from swapface.train.perceptual import DlibPerceptual

    rgb = np.ascontiguousarray(face64[..., ::-1])
    target = as_tensor(rgb)
    blurred = cv2.GaussianBlur(rgb, (0, 0), 1.2)
    brighter = np.clip(rgb + np.abs(blurred - rgb).mean(), 0, 1)
    assert float(mae(as_tensor(brighter), target)) == pytest.approx(float(mae(as_tensor(blurred), target)),
                                                                   rel=0.1)
    loss = DlibPerceptual(levels=2)
    assert float(loss(target, target)) == pytest.approx(0.0, abs=1e-6)
    seen_blur, seen_light = float(loss(as_tensor(blurred), target)), float(loss(as_tensor(brighter), target))
    assert seen_blur > 1.5 * seen_light, (seen_blur, seen_light)
    x = as_tensor(blurred).requires_grad_(True)
    loss(x, target).backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())

    total, parts = FaceLoss(LossConfig(perceptual=0.5, penalized_mask=False))(as_tensor(blurred), target)
    plain, plain_parts = FaceLoss(LossConfig(penalized_mask=False))(as_tensor(blurred), target)
    assert set(parts) == set(plain_parts) | {"perceptual"}
    assert float(total) == pytest.approx(float(plain) + parts["perceptual"], rel=1e-5)
    assert parts["perceptual"] == pytest.approx(0.5 * seen_blur, rel=1e-4)
    with pytest.raises(ConfigError):
        LossConfig(perceptual=-1)
