"""The ``gan`` model and its objective: architecture, blending, LSGAN updates, checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from swapface.core.errors import ConfigError
from swapface.models import build_model, model_options
from swapface.models.checkpoint import load_checkpoint
from swapface.models.gan import GanModel, SelfAttention
from swapface.train.config import TrainConfig
from swapface.train.gan import GanConfig, GanObjective
from swapface.train.trainer import Trainer

TINY = {"size": 64, "base_filters": 8, "encoder_dim": 32}


def tiny(**options: object) -> GanModel:
    torch.manual_seed(0)
    model = build_model("gan", {**TINY, **options})
    assert isinstance(model, GanModel)
    return model


def smooth(n: int, size: int = 64) -> torch.Tensor:
    """Smooth random images (face crops are smooth, white noise is not)."""
    return torch.nn.functional.interpolate(torch.rand(n, 3, 8, 8), size=size, mode="bilinear")


@pytest.mark.parametrize("size", [64, 128])
def test_shapes_and_ranges(size: int) -> None:
    model = tiny(size=size)
    x = smooth(2, size)
    with torch.no_grad():
        rgb, mask = model(x, "b")
        scores = model.discriminate(rgb, x, "b")
    assert rgb.shape == (2, 3, size, size) and mask is not None and mask.shape == (2, 1, size, size)
    assert rgb.min() >= 0 and rgb.max() <= 1 and mask.min() >= 0 and mask.max() <= 1
    assert scores.shape == (2, 1, 8, 8)  # a PatchGAN map, one score per patch


def test_options_round_trip_and_the_mask_is_mandatory() -> None:
    model = tiny()
    rebuilt = build_model("gan", json.loads(json.dumps(model_options(model))))
    rebuilt.load_state_dict(model.state_dict())  # discriminators included
    assert any(k.startswith("discriminators.a.") for k in model.state_dict())
    with pytest.raises(ConfigError, match="learn_mask"):
        build_model("gan", {**TINY, "learn_mask": False})
    with pytest.raises(ConfigError, match="base_filters"):
        build_model("gan", {"base_filters": 12})
    with pytest.raises(ConfigError, match="edge_weight"):
        GanConfig(edge_weight=-1.0)


def test_self_attention_starts_as_the_identity() -> None:
    block = SelfAttention(16)
    x = torch.randn(2, 16, 8, 8)
    assert float(block.gamma.detach()) == 0.0
    torch.testing.assert_close(block(x), x, rtol=0, atol=0)
    block.gamma.data.fill_(1.0)
    assert not torch.allclose(block(x), x)
    gammas = [m.gamma for m in tiny().modules() if isinstance(m, SelfAttention)]
    assert len(gammas) == 2 + 2 * 1 + 2 * 1  # encoder 2, one per decoder, one per discriminator
    assert all(float(g.detach()) == 0.0 for g in gammas)
    assert not any(isinstance(m, SelfAttention) for m in tiny(self_attention=False).modules())


def test_blend_takes_rgb_where_the_mask_is_one_and_the_input_where_zero() -> None:
    rgb, warped = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    mask = torch.zeros(2, 1, 8, 8)
    mask[..., :4] = 1.0
    out = GanObjective.blend(rgb, mask, warped)
    torch.testing.assert_close(out[..., :4], rgb[..., :4])
    torch.testing.assert_close(out[..., 4:], warped[..., 4:])
    assert GanObjective.blend(rgb, None, warped) is rgb


def test_parameters_split_into_generator_and_discriminators() -> None:
    model = tiny()
    gen = {id(p) for p in model.generator_parameters()}
    disc = {id(p) for p in model.discriminator_parameters()}
    assert gen and disc and not gen & disc
    assert gen | disc == {id(p) for p in model.parameters()}


def test_discriminator_learns_real_from_noise() -> None:
    model = tiny()
    objective = GanObjective(model, GanConfig(d_lr=1e-3))
    torch.manual_seed(1)
    real, warped = smooth(4), smooth(4)
    losses = [objective.discriminator_step("a", warped, real, torch.rand(4, 3, 64, 64))["d"]
              for _ in range(15)]
    assert losses[-1] < 0.5 * losses[0], losses
    assert all(p.grad is None for p in model.discriminators["b"].parameters())  # side b untouched


def test_generator_loss_trains_the_generator_not_the_discriminator() -> None:
    model = tiny()
    objective = GanObjective(model, GanConfig())
    warped, target = smooth(2), smooth(2)
    eyes = torch.zeros(2, 1, 64, 64)
    eyes[..., 20:28, 16:48] = 1.0
    rgb, mask = model(warped, "a")
    blended = objective.blend(rgb, mask, warped)
    total, parts = objective.generator_loss("a", warped, blended, target, mask, eyes)
    assert set(parts) == {"adv", "edge", "mask_l1", "mask_tv"}
    assert torch.isfinite(total) and all(v >= 0 for v in parts.values())
    assert total.item() == pytest.approx(sum(parts.values()), rel=1e-5)
    # The adversarial part alone: gradients reach the generator through D, never D itself.
    adv, _ = GanObjective(model, GanConfig(edge_weight=0, eye_edge_weight=0, mask_l1_weight=0,
                                           mask_tv_weight=0)).generator_loss(
        "a", warped, blended, target, mask, eyes)
    adv.backward()
    assert all(p.grad is None for p in model.discriminator_parameters())
    assert all(p.requires_grad for p in model.discriminator_parameters())  # restored afterwards
    head = model.decoders["a"].rgb.weight.grad
    assert head is not None and head.abs().sum() > 0


@pytest.fixture(scope="module")
def faces(pair) -> tuple[Path, Path]:
    """The session's 128 px face folders of the two training clips (read-only)."""
    return pair.a.faces, pair.b.faces


def test_trainer_saves_and_resumes_the_discriminator_optimizer(faces, tmp_path) -> None:
    def cfg(iterations: int, **kw: object) -> TrainConfig:
        return TrainConfig(faces_a=faces[0], faces_b=faces[1], model_dir=tmp_path, batch_size=2,
                           iterations=iterations, save_interval=2, **kw)  # type: ignore[arg-type]

    trainer = Trainer(cfg(2, model="gan", model_option=[f"{k}={v}" for k, v in TINY.items()]))
    assert trainer.gan is not None
    summary = trainer.run()
    assert summary.iteration == 2
    assert all(torch.isfinite(torch.tensor(v)) for v in summary.last_losses.values())
    header = (tmp_path / "loss_log.csv").read_text().splitlines()[0].split(",")
    assert {"adv_a", "edge_b", "mask_tv_a", "d_a", "d_b"} <= set(header)
    saved = load_checkpoint(tmp_path)
    assert saved is not None and (saved.path / "optimizer-discriminator.safetensors").is_file()
    resumed = Trainer(cfg(3))  # architecture from model.json
    assert resumed.iteration == 2 and resumed.gan is not None
    state = resumed.gan.optimizer.state_dict()["state"]
    assert state and state.keys() == saved.extra_optimizers["discriminator"]["state"].keys()
    for pid, values in saved.extra_optimizers["discriminator"]["state"].items():
        assert torch.equal(state[pid]["exp_avg"], values["exp_avg"])
        assert float(state[pid]["step"]) == 2
    assert resumed.run().iteration == 3


def test_a_non_finite_discriminator_gradient_stops_before_its_step(faces, tmp_path) -> None:
    from swapface.train.guard import TrainingDiverged

    trainer = Trainer(TrainConfig(faces_a=faces[0], faces_b=faces[1], model_dir=tmp_path,
                                  batch_size=2, iterations=3, save_interval=100, model="gan",
                                  model_option=[f"{k}={v}" for k, v in TINY.items()]))
    critic = trainer.model.discriminators["a"]
    before = {k: v.clone() for k, v in critic.state_dict().items()}
    next(critic.parameters()).register_hook(lambda grad: grad * float("nan"))
    with pytest.raises(TrainingDiverged, match="discriminator a gradients"):
        trainer.run()
    for key, value in critic.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not (tmp_path / "latest.json").exists()
