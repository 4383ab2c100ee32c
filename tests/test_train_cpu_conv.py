"""CPU convolution algorithms (Winograd, im2col GEMM, channels-last) and per-layer tuning.

Every algorithm must compute what ``nn.Conv2d`` computes — outputs and all three gradients —
on real face data, and tuning must leave the model's parameters and outputs as they were.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from swapface.models import build_model, conv_tuning
from swapface.models.conv_tuning import TunedForward, algorithm_applies, installed, tune_convolutions
from tests.test_train_losses import as_tensor, face64, face96  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def features(face64) -> torch.Tensor:  # noqa: F811
    """Real image content with a dozen channels: the face and its mirror, split into pixel phases."""
    x = as_tensor(face64)
    return F.pixel_unshuffle(torch.cat([x, x.flip(-1)]), 2)  # [2, 12, 32, 32]


CASES = [  # algorithm, kernel, stride, padding, input size
    ("winograd2", 3, 1, 1, 32), ("winograd2", 3, 1, 1, 4),
    ("winograd4", 3, 1, 1, 32), ("winograd4", 3, 1, 1, 8),
    ("phase_winograd4", 5, 2, 2, 32), ("phase_winograd4", 5, 2, 2, 8),
    ("gemm", 5, 2, 2, 32), ("gemm", 3, 1, 1, 16), ("gemm", 4, 2, 1, 32),
    ("channels_last", 5, 1, 2, 32), ("native", 3, 1, 1, 32),
]


@pytest.mark.parametrize(("algorithm", "kernel", "stride", "padding", "size"), CASES)
def test_algorithm_matches_pytorch_forward_and_gradients(features, algorithm, kernel, stride,
                                                         padding, size):
    torch.manual_seed(0)
    conv = nn.Conv2d(12, 24, kernel, stride=stride, padding=padding)
    x = F.interpolate(features, size=(size, size), mode="area") if size != 32 else features
    assert algorithm_applies(conv, algorithm, tuple(x.shape))
    results = []
    for fn in (lambda t: nn.Conv2d.forward(conv, t), TunedForward(conv, algorithm)):
        conv.zero_grad()
        xi = x.clone().requires_grad_(True)
        y = fn(xi)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        results.append((y.detach(), xi.grad, conv.weight.grad.clone(), conv.bias.grad.clone()))
    (ref, *ref_grads), (out, *grads) = results
    assert out.shape == ref.shape
    scale = ref.abs().max()
    assert (out - ref).abs().max() <= 1e-4 * scale  # Winograd F(4,3) rounds to ~1e-5 of the range
    for g, rg in zip(grads, ref_grads, strict=True):
        assert (g - rg).abs().max() <= 1e-4 * rg.abs().max()


def test_algorithms_refuse_shapes_they_cannot_tile():
    conv3 = nn.Conv2d(4, 4, 3, padding=1)
    assert not algorithm_applies(conv3, "winograd4", (1, 4, 6, 6))  # 6 is not a multiple of 4
    assert algorithm_applies(conv3, "winograd2", (1, 4, 6, 6))
    assert not algorithm_applies(nn.Conv2d(4, 4, 3, padding=1, dilation=1, groups=2), "gemm", (1, 4, 8, 8))
    assert not algorithm_applies(nn.Conv2d(4, 4, 3, stride=2, padding=1), "phase_winograd4", (1, 4, 16, 16))
    # a shape an installed algorithm cannot tile runs PyTorch's kernel instead of failing
    fn = TunedForward(conv3, "winograd4")
    x = torch.rand(1, 4, 6, 6)
    torch.testing.assert_close(fn(x), nn.Conv2d.forward(conv3, x))


def test_tuning_keeps_parameters_and_outputs_and_caches_timings(features, tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = build_model("original", {})
    x = F.interpolate(features[:, :3].repeat(2, 1, 1, 1), size=(64, 64), mode="bilinear")
    keys = list(model.state_dict())
    with torch.no_grad():
        ref = model(x, "b")[0]
    cache = tmp_path / "conv_tuning.json"
    chosen = tune_convolutions(model, lambda: model(x, "b"), training=False, frozen=True, cache_file=cache)
    assert len(chosen) == 9 and set(chosen.values()) <= set(conv_tuning.ALGORITHMS)
    assert installed(model) == chosen
    assert list(model.state_dict()) == keys  # checkpoints are unaffected
    with torch.no_grad():
        out = model(x, "b")[0]
    assert (out - ref).abs().max() < 1e-5
    assert cache.is_file()

    # The second time the stored timings decide; nothing is timed again.
    def no_timing(*_args, **_kwargs):
        raise AssertionError("timed again despite the cache")

    monkeypatch.setattr(conv_tuning, "time_algorithms", no_timing)
    assert tune_convolutions(model, lambda: model(x, "b"), training=False, frozen=True,
                             cache_file=cache) == chosen
    conv_tuning.uninstall(model)
    assert installed(model) == {}


def test_tuned_layers_step_aside_under_autocast(features):
    torch.manual_seed(0)
    conv = nn.Conv2d(12, 24, 3, padding=1)
    conv.forward = TunedForward(conv, "winograd4")  # Winograd is fp32-only
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(features)
        ref = nn.Conv2d.forward(conv, features)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y, ref, rtol=0, atol=0)


@pytest.mark.parametrize("content", ["not json {", '["a list"]', '{"%s": "not a dict"}',
                                     '{"%s": {"LAYER": {"winograd9": 1.0}}}'])
def test_damaged_timing_cache_is_timed_again(features, tmp_path, content):
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(12, 16, 3, padding=1))
    cache = tmp_path / "conv_tuning.json"
    layer = conv_tuning._layer_key(conv[0], tuple(features.shape), False, False)
    cache.write_text(content.replace("%s", conv_tuning.machine_id()).replace("LAYER", layer))
    chosen = tune_convolutions(conv, lambda: conv(features), training=False, cache_file=cache)
    assert chosen["0"] in conv_tuning.ALGORITHMS
    stored = json.loads(cache.read_text())[conv_tuning.machine_id()][layer]
    assert set(stored) == set(conv_tuning.candidates(conv[0], tuple(features.shape)))
