"""The per-identity detail network (``refine_size``): built, trained, saved, resumed, exported.

The learning test trains a small ``lightweight`` (32 px decoders, 64 px refiner) on the
session's woman_a/woman_b faces and asks of B's faces what the refiner is for: its 64 px face
must be closer to the real face at 64 px, and carry more of its fine detail, than the
decoder's face upscaled — and A's decoder, which has no refiner, must stay a plain upscale.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from swapface.core.errors import ConfigError
from swapface.models import build_model
from swapface.models.base import model_options
from swapface.models.checkpoint import freeze_architecture, load_checkpoint, save_checkpoint
from swapface.swap import load_model
from swapface.swap.export import checked_export
from swapface.train.augment import AugmentConfig, Augmenter
from swapface.train.config import TrainConfig
from swapface.train.data import FaceSet
from swapface.train.trainer import Trainer
from tests.conftest import Pair

ITERATIONS = 120


def test_an_untrained_refiner_is_the_bilinear_upscale_and_sizes_are_checked():
    torch.manual_seed(0)
    model = build_model("lightweight", {"refine_size": 128})
    assert (model.input_size, model.decoder_size, model.output_size) == (64, 64, 128)
    assert list(model.refiners) == ["b"]
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        rgb, _ = model.decode_base(model.encode(x), "b")
        refined, _ = model(x, "b")
        plain_a, _ = model(x, "a")
    up = F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(refined, up)  # the residual head starts at zero
    assert plain_a.shape == (2, 3, 128, 128)  # a side without a refiner is upscaled too
    both = build_model("lightweight", {"refine_size": 256, "refine_sides": "ab"})
    assert sorted(both.refiners) == ["a", "b"] and both.output_size == 256
    for bad in ({"refine_size": 96}, {"refine_size": 64}, {"refine_size": 512}):
        with pytest.raises(ConfigError, match="refine_size"):
            build_model("lightweight", bad)
    with pytest.raises(ConfigError, match="refine_size"):
        build_model("gan", {"size": 64, "base_filters": 8, "encoder_dim": 64, "refine_size": 128})


def _train(pair: Pair, model_dir: Path, iterations: int) -> Trainer:
    trainer = Trainer(TrainConfig(
        faces_a=pair.a.faces, faces_b=pair.b.faces, model_dir=model_dir, model="lightweight",
        model_option=["input_size=32", "refine_size=64"], batch_size=8, iterations=iterations,
        save_interval=iterations, tensorboard=False, precision="fp32", cpu_conv="native"))
    trainer.run()
    return trainer


def _detail(t: torch.Tensor) -> float:
    """Energy of the finest band (image minus its 3×3 box blur), mean over the batch."""
    return float((t - F.avg_pool2d(t, 3, 1, 1, count_include_pad=False)).pow(2).mean())


@pytest.fixture(scope="module")
def refined(pair: Pair, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir = tmp_path_factory.mktemp("refined") / "model"
    _train(pair, model_dir, ITERATIONS)
    return model_dir


def test_the_refiner_learns_b_detail_the_decoder_lacks(refined: Path, pair: Pair):
    model = load_model(refined, cpu=True)
    module = model.module
    faces = FaceSet(pair.b.faces)
    stack = np.stack([faces.load(i) for i in range(len(faces))])[..., :3]
    rgb = torch.from_numpy(stack).permute(0, 3, 1, 2).float().div(255)[:, [2, 1, 0]]
    def crops(size: int) -> torch.Tensor:
        return Augmenter(AugmentConfig(), faces.size, size, model.coverage).center(rgb).targets

    x, target = crops(32), crops(64)
    with torch.inference_mode():
        decoded, _ = module.decode_base(module.encode(x), "b")
        upscaled = F.interpolate(decoded, scale_factor=2, mode="bilinear", align_corners=False)
        out_b, _ = module(x, "b")
        out_a, _ = module(x, "a")
        decoded_a, _ = module.decode_base(module.encode(x), "a")
    l1_up = float((upscaled - target).abs().mean())
    l1_refined = float((out_b - target).abs().mean())
    assert out_b.shape[-1] == 64 and model.output_size == 64
    assert l1_refined < 0.95 * l1_up, (l1_refined, l1_up)
    # detail: the refined face carries more of the real face's fine band than the upscale
    assert _detail(out_b) > 1.15 * _detail(upscaled), (_detail(out_b), _detail(upscaled), _detail(target))
    # A's decoder has no refiner: its output is the plain upscale, untouched by B's training
    torch.testing.assert_close(out_a, F.interpolate(decoded_a, scale_factor=2, mode="bilinear",
                                                    align_corners=False))


def test_refiner_weights_and_optimizer_are_saved_and_resumed(refined: Path, pair: Pair, tmp_path):
    checkpoint = load_checkpoint(refined, "cpu")
    assert checkpoint is not None
    assert "refiner" in checkpoint.extra_optimizers
    assert any(k.startswith("refiners.b.") for k in checkpoint.model)
    assert json.loads((refined / "model.json").read_text())["output_size"] == 64
    # a resume continues the same refiner: its weights move on from the saved ones, and the
    # swap optimizer never holds them (it would zero their gradients)
    model_dir = tmp_path / "model"
    import shutil

    shutil.copytree(refined, model_dir)
    trainer = _train(pair, model_dir, ITERATIONS + 5)
    assert trainer.iteration == ITERATIONS + 5
    swap_params = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert not swap_params & {id(p) for p in trainer.model.refiners.parameters()}
    saved = checkpoint.model["refiners.b.tail.weight"]
    now = trainer.model.refiners["b"].tail.weight.detach()
    assert 0 < float((now - saved).abs().max()) < float(saved.abs().max())


def test_a_refined_model_exports_to_onnx_within_1e4(tmp_path, pair):
    torch.manual_seed(0)
    module = build_model("lightweight", {"refine_size": 128, "learn_mask": True})
    with torch.no_grad():  # a trained-like residual, so the refiner's body is in the graph
        module.refiners["b"].tail.weight.normal_(0, 0.02)
    folder = tmp_path / "model"
    freeze_architecture(folder, {"model": "lightweight", "options": model_options(module),
                                 "coverage": 0.625, "input_size": 64, "output_size": 128})
    save_checkpoint(folder, module, None, {"iteration": 0})
    model = load_model(folder, cpu=True)
    _, diff = checked_export(model, "b")
    assert diff <= 1e-4
