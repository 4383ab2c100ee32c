"""Options of the project stages: one dataclass each, for the CLI, config files and UI forms."""

from __future__ import annotations

from dataclasses import dataclass

from swapface.core.config import option
from swapface.core.errors import ConfigError

# The registered architectures (swapface.models); named here so forms need no torch import.
MODEL_NAMES = ("lightweight", "original", "resnet", "gan")


@dataclass
class PreprocessOptions:
    size: int = option(256, help="aligned face size in pixels")
    every_n: int = option(1, help="extract every N-th frame of each video")

    def __post_init__(self) -> None:
        if self.size < 16:
            raise ConfigError("size must be at least 16")
        if self.every_n < 1:
            raise ConfigError("every_n must be at least 1")


@dataclass
class TrainOptions:
    model: str = option("lightweight", help="model architecture", choices=list(MODEL_NAMES))
    minutes: float = option(5.0, help="training time budget in minutes (total, across resumes)")
    iterations: int = option(100_000, help="stop after this many iterations (total)")
    batch_size: int = option(16, help="faces per side per iteration")
    model_option: list[str] = option([], help="architecture options as key=value")

    def __post_init__(self) -> None:
        if self.minutes <= 0:
            raise ConfigError("minutes must be positive")
        if self.iterations < 1 or self.batch_size < 1:
            raise ConfigError("iterations and batch_size must be at least 1")


@dataclass
class ProjectConvertOptions:
    face_filter: bool = option(False, help="swap only faces that match A's reference photos")
    photos: bool = option(False, help="also write the swapped frames as images")
