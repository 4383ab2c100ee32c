"""The training-stage model registry: shapes, ranges, rebuilds, layouts and a tiny overfit."""

from __future__ import annotations

import argparse
import copy
import json
from functools import cache

import pytest
import torch
from torch import nn

from swapface.core.config import add_arguments
from swapface.core.errors import ConfigError
from swapface.models import (
    MODELS,
    SIDES,
    SwapModel,
    build_model,
    model_config_class,
    model_options,
)
from swapface.models.lightweight import SIZES as LIGHTWEIGHT_SIZES
from swapface.models.resnet import SIZES as RESNET_SIZES

# Small options per registered model, so every test stays fast on a 2-core CPU.
SMALL: dict[str, dict[str, object]] = {
    "original": {},
    "lightweight": {"input_size": 64, "encoder_dim": 64},
    "resnet": {"size": 64, "encoder_dim": 32, "base_filters": 8},
    "gan": {"size": 64, "encoder_dim": 32, "base_filters": 8},
    "liae": {"input_size": 64, "inter_dim": 32},
}
SHARED_DECODER = {"liae"}  # one decoder for both identities (tested on their own below)
MASK_ONLY = {"gan"}  # models that always learn a mask


@cache
def small_model(name: str, learn_mask: bool) -> SwapModel:
    torch.manual_seed(0)
    return build_model(name, {**SMALL[name], "learn_mask": learn_mask}).eval()


def batch(model: SwapModel, n: int = 2) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(n, 3, model.input_size, model.input_size)


def in_unit_range(t: torch.Tensor) -> bool:
    return bool(((t >= 0) & (t <= 1)).all())


def test_every_model_is_covered() -> None:
    assert set(MODELS.names()) == set(SMALL)


@pytest.mark.parametrize("learn_mask", [False, True])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_shapes_and_ranges(name: str, learn_mask: bool) -> None:
    if name in MASK_ONLY and not learn_mask:
        with pytest.raises(ConfigError):
            small_model(name, learn_mask)
        return
    model = small_model(name, learn_mask)
    assert model.learn_mask is learn_mask and isinstance(model, MODELS.get(name).factory)
    x = batch(model)
    out = model.output_size
    with torch.no_grad():
        for side in SIDES:
            rgb, mask = model(x, side)
            assert rgb.shape == (2, 3, out, out)
            assert in_unit_range(rgb)
            if learn_mask:
                assert mask is not None and mask.shape == (2, 1, out, out)
                assert in_unit_range(mask)
            else:
                assert mask is None


@pytest.mark.parametrize(
    ("name", "key", "sizes", "tiny"),
    [
        ("lightweight", "input_size", LIGHTWEIGHT_SIZES, {"encoder_dim": 8}),
        ("resnet", "size", RESNET_SIZES, {"encoder_dim": 8, "base_filters": 8}),
    ],
)
def test_every_size_builds(name: str, key: str, sizes: list[int], tiny: dict[str, int]) -> None:
    for size in sizes:
        model = build_model(name, {key: size, **tiny})
        assert model.input_size == model.output_size == size
        with torch.no_grad():
            rgb, _ = model(torch.rand(1, 3, size, size), "b")
        assert rgb.shape == (1, 3, size, size)


def seed_parameter_count() -> int:
    """The 2017 Keras model at 64 px, counted from its layer list (weights + biases)."""
    conv = lambda cin, cout, k: cin * cout * k * k + cout  # noqa: E731
    dense = lambda nin, nout: nin * nout + nout  # noqa: E731
    encoder = (
        conv(3, 128, 5)
        + conv(128, 256, 5)
        + conv(256, 512, 5)
        + conv(512, 1024, 5)
        + dense(4 * 4 * 1024, 1024)
        + dense(1024, 4 * 4 * 1024)
        + conv(1024, 4 * 512, 3)
    )
    decoder = conv(512, 4 * 256, 3) + conv(256, 4 * 128, 3) + conv(128, 4 * 64, 3) + conv(64, 3, 5)
    return encoder + 2 * decoder


def test_original_matches_the_seed_parameter_count() -> None:
    model = small_model("original", False)
    assert sum(p.numel() for p in model.parameters()) == seed_parameter_count() == 82_062_470
    assert sum(p.numel() for p in model.encoder.parameters()) == 69_662_976  # Keras summary
    with_mask = small_model("original", True)
    extra = 2 * (64 * 1 * 5 * 5 + 1)  # one 5×5 mask conv per decoder
    assert sum(p.numel() for p in with_mask.parameters()) == seed_parameter_count() + extra
    assert model.encode(batch(model)).shape == (2, 512, 8, 8)  # the seed's shared upscale output


@pytest.mark.parametrize("name", sorted(SMALL))
def test_encode_then_decode_equals_forward(name: str) -> None:
    model = small_model(name, True)
    x = batch(model)
    with torch.no_grad():
        z = model.encode(x)
        for side in SIDES:
            for got, want in zip(model.decode(z, side), model(x, side), strict=True):
                torch.testing.assert_close(got, want, rtol=0, atol=0)
        with pytest.raises(ValueError, match="side"):
            model.decode(z, "c")


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("lightweight", {"bogus": 1}, "unknown option.*bogus"),
        ("original", {"encoder_dim": 512}, "unknown option.*encoder_dim"),
        ("nonexistent", {}, "unknown model"),
        ("resnet", {"size": 100}, "size=100 not in"),
        ("resnet", {"size": "128"}, "size must be int"),
        ("resnet", {"learn_mask": 1}, "learn_mask must be bool"),
        ("resnet", {"base_filters": 3}, "base_filters"),
        ("lightweight", {"encoder_dim": 0}, "encoder_dim"),
    ],
)
def test_bad_options_raise_config_error(name: str, options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_model(name, options)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_frozen_options_rebuild_the_same_model(name: str) -> None:
    model = small_model(name, True)
    frozen = json.loads(json.dumps(model_options(model)))  # as stored in the model directory
    assert frozen["learn_mask"] is True
    rebuilt = build_model(name, frozen)
    want = {k: v.shape for k, v in model.state_dict().items()}
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == want
    rebuilt.load_state_dict(model.state_dict())  # strict: a checkpoint loads into the rebuild


@pytest.mark.parametrize("name", sorted(SMALL))
def test_options_feed_the_cli(name: str) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser, model_config_class(name))  # the train CLI builds its flags this way
    values = vars(parser.parse_args(["--learn-mask"]))
    assert model_options(build_model(name, values))["learn_mask"] is True


def grads(loss: torch.Tensor, module: nn.Module) -> list[torch.Tensor | None]:
    """Gradients of ``loss`` for ``module``'s parameters, leaving the cached models' .grad alone."""
    return list(torch.autograd.grad(loss, list(module.parameters()), retain_graph=True, allow_unused=True))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_channels_last(name: str) -> None:
    model = small_model(name, True)
    x = batch(model)
    with torch.no_grad():
        want = model(x, "b")
    cl_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    rgb, mask = cl_model(x.to(memory_format=torch.channels_last), "b")
    torch.testing.assert_close(rgb, want[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(mask, want[1], rtol=1e-4, atol=1e-4)
    # Backward works through every op in this layout.
    loss = rgb.mean() + mask.mean()
    trained = [m for m in (cl_model.encoder, cl_model.decoders["b"]) if list(m.parameters())]
    assert all(g is not None for m in trained for g in grads(loss, m))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_bf16_autocast(name: str) -> None:
    model = small_model(name, True)
    x = batch(model, n=1)  # this CPU has no native bf16: keep the emulated work small
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rgb, mask = model(x, "a")
        loss = (rgb.float() - x).abs().mean() + mask.float().mean()
    assert rgb.shape == (1, 3, model.output_size, model.output_size) and mask is not None
    assert in_unit_range(rgb) and in_unit_range(mask)
    assert all(g is not None and torch.isfinite(g).all() for g in grads(loss, model.encoder))


@pytest.mark.parametrize("name", sorted(set(SMALL) - SHARED_DECODER))
def test_decoders_are_separate_and_the_encoder_is_shared(name: str) -> None:
    model = small_model(name, name in MASK_ONLY)
    ids = {
        key: {id(p) for p in module.parameters()}
        for key, module in [("enc", model.encoder), *model.decoders.items()]
    }
    assert ids["a"] and ids["b"] and not ids["a"] & ids["b"]
    assert not ids["enc"] & (ids["a"] | ids["b"])
    rgb, mask = model(batch(model, n=1), "a")
    out = rgb.mean() + (0 if mask is None else mask.mean())
    # Training side A moves the shared encoder and decoder A, never decoder B.
    assert all(g is not None for g in grads(out, model.encoder))
    assert all(g is not None for g in grads(out, model.decoders["a"]))
    assert all(g is None for g in grads(out, model.decoders["b"]))


def test_lightweight_overfits_a_tiny_batch() -> None:
    torch.manual_seed(0)
    model = build_model("lightweight", {"input_size": 64})
    # Smooth random images (8×8 noise upsampled): face crops are smooth, white noise is not.
    x = nn.functional.interpolate(torch.rand(4, 3, 8, 8), size=64, mode="bilinear")
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    losses: list[float] = []
    for _ in range(150):
        rgb, _ = model(x, "a")
        loss = (rgb - x).abs().mean()
        losses.append(loss.item())
        if losses[-1] <= 0.5 * losses[0]:
            break  # typically near step 50; stopping there keeps the test fast
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] <= 0.5 * losses[0], f"MAE {losses[0]:.4f} → {losses[-1]:.4f} in {len(losses)} steps"


def test_liae_draws_b_from_the_shared_code_and_a_from_its_own() -> None:
    model = small_model("liae", True)
    x = batch(model)
    shared = model.encoder
    with torch.no_grad():
        z = model.encode(x)
        ab = shared.inter_ab(z)
        # B (what a swap draws) = the decoder on [inter_ab, inter_ab]; A on [inter_a, inter_ab].
        for side, own in (("b", ab), ("a", model.decoders["a"](z))):
            want = shared.decoder(torch.cat([own, ab], dim=1))
            for got, expect in zip(model(x, side), want, strict=True):
                torch.testing.assert_close(got, expect, rtol=0, atol=0)
        assert not torch.allclose(model(x, "a")[0], model(x, "b")[0])
    assert not list(model.decoders["b"].parameters())  # each parameter is registered once
    rgb_b, mask_b = model(batch(model, n=1), "b")
    out_b = rgb_b.mean() + mask_b.mean()
    assert all(g is None for g in grads(out_b, model.decoders["a"]))  # B never trains inter_a
    assert all(g is not None for g in grads(out_b, shared))
    rgb_a, mask_a = model(batch(model, n=1), "a")
    out_a = rgb_a.mean() + mask_a.mean()
    assert all(g is not None for m in (shared, model.decoders["a"]) for g in grads(out_a, m))
