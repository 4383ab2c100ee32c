"""Options of ``swapface train`` (the loss and augmentation options live beside their code)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from swapface.core.config import option
from swapface.core.errors import ConfigError


@dataclass
class TrainConfig:
    faces_a: Path = option(help="face folder of identity A (written by extract)", flags=["-A", "--faces-a"])
    faces_b: Path = option(help="face folder of identity B", flags=["-B", "--faces-b"])
    model_dir: Path = option(help="model folder (created, or resumed)", flags=["-m", "--model-dir"])
    model: str | None = option(
        None, help="architecture: original, lightweight, resnet, gan (default: the model folder's, "
        "else original)"
    )
    model_option: list[str] = option(
        [], help="architecture options as key=value (e.g. size=128 learn_mask=true)"
    )
    batch_size: int = option(16, help="faces per side per iteration")
    iterations: int = option(100_000, help="stop after this many iterations (total, across resumes)")
    minutes: float = option(0.0, help="stop after this many minutes of this run (0 = no limit)")
    lr: float | None = option(
        None, help="Adam learning rate (default: the model's: 5e-5 original, 5e-4 lightweight)"
    )
    lr_schedule: str = option(
        "constant", choices=["constant", "cosine"],
        help="learning rate over this run's budget (iterations or minutes, whichever ends first): "
        "constant, or cosine decay to --lr-final of it")
    lr_final: float = option(0.1, help="cosine: the learning rate at the end, as a fraction of --lr")
    lr_warmup: int = option(0, help="iterations of linear learning-rate warm-up at the start of a run")
    balance_pose: bool = option(
        False, help="draw B's (and A's) faces of rare head poses more often (1/√ of the faces in "
        "their 10° yaw × pitch cell), so the few turned-away faces are learnt too")
    coverage: float = option(
        0.625, help="fraction of the stored face the model sees (seed: 160 of 256 px)"
    )
    save_interval: int = option(250, help="save a checkpoint every N iterations")
    keep_checkpoints: int = option(3, help="rolling checkpoints kept")
    snapshot_interval: int = option(0, help="keep a permanent snapshot every N iterations (0 = off)")
    preview_interval: int = option(0, help="write preview.png every N iterations (0 = at saves)")
    timelapse: bool = option(False, help="also keep every preview in timelapse/")
    seed: int = option(0, help="random seed (augmentation, sampling, initialisation)")
    cpu: bool = option(False, help="train on the CPU even when CUDA is present")
    precision: str = option(
        "auto", help="fp32, bf16 (autocast), or auto (bf16 on CUDA and on CPUs with native bf16)",
        choices=["auto", "fp32", "bf16"],
    )
    compile: bool | None = option(None, help="torch.compile the model (default: on CUDA)")
    channels_last: bool | None = option(None, help="channels_last memory format (default: on CUDA)")
    cpu_conv: str = option(
        "tuned", choices=["tuned", "native"],
        help="fp32 convolutions on the CPU: time oneDNN, im2col GEMM and Winograd per layer and "
             "keep the fastest (tuned; ~1.3× faster training of `original` on an AVX2 CPU), or "
             "PyTorch's own kernels (native)",
    )
    new_faces: bool = option(
        False, help="resume on face folders other than the ones the model was trained on "
        "(fine-tuning); without it such a resume is refused, and so are swapped -A/-B")
    tensorboard: bool = option(True, help="also log to TensorBoard when it is installed")

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError("--batch-size must be at least 1")
        if self.iterations < 1:
            raise ConfigError("--iterations must be at least 1")
        if self.save_interval < 1:
            raise ConfigError("--save-interval must be at least 1")
        if not 0.0 <= self.lr_final <= 1.0:
            raise ConfigError("--lr-final must be between 0 and 1")
        if self.lr_warmup < 0:
            raise ConfigError("--lr-warmup must be at least 0")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ConfigError("--lr-schedule must be constant or cosine")
        if not 0.3 <= self.coverage <= 1.0:
            raise ConfigError("--coverage must be between 0.3 and 1.0")

    def parsed_model_options(self) -> dict[str, object]:
        return parse_model_options(self.model_option)


def parse_model_options(items: list[str]) -> dict[str, object]:
    """``key=value`` strings → JSON-typed values (numbers, booleans, strings)."""
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--model-option expects key=value, got {item!r}")
        text = value.lower() if value.lower() in ("true", "false") else value
        try:
            out[key.replace("-", "_")] = json.loads(text)
        except ValueError:
            out[key.replace("-", "_")] = value
    return out
