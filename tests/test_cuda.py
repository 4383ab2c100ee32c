"""What only a CUDA device can check (skipped elsewhere; ``benchmarks/gpu_check.sh`` runs it):
training in bf16 with torch.compile, and inference that agrees with the CPU's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.cuda


def test_bf16_compiled_training_on_cuda_saves_finite_weights(pair, tmp_path):
    from swapface.models.checkpoint import load_checkpoint
    from swapface.train.config import TrainConfig
    from swapface.train.trainer import Trainer

    summary = Trainer(TrainConfig(faces_a=pair.a.faces, faces_b=pair.b.faces,
                                  model_dir=tmp_path / "m", model="lightweight", batch_size=8,
                                  iterations=6, save_interval=6, precision="bf16", compile=True,
                                  tensorboard=False)).run()
    assert summary.iteration == 6 and all(np.isfinite(v) for v in summary.last_losses.values())
    checkpoint = load_checkpoint(tmp_path / "m")
    assert all(bool(torch.isfinite(t).all()) for t in checkpoint.model.values())


def test_cuda_inference_matches_the_cpu(trained):
    from swapface.swap.model import load_model

    gpu, cpu = load_model(trained, cpu=False), load_model(trained, cpu=True)
    assert gpu.device.type == "cuda"
    x = torch.rand(4, 3, gpu.module.input_size, gpu.module.input_size)
    with torch.inference_mode():
        out_gpu = gpu.module(x.cuda(), "b")[0].float().cpu()
        out_cpu = cpu.module(x, "b")[0].float()
    assert float((out_gpu - out_cpu).abs().max()) < 2e-2
