"""Face-swap model plugins; importing this package registers every built-in one."""

from swapface.models import gan, liae, lightweight, original, resnet  # noqa: F401
from swapface.models.base import (
    MODELS,
    SIDES,
    ModelConfig,
    SwapModel,
    build_model,
    model_config_class,
    model_options,
)

__all__ = [
    "MODELS",
    "SIDES",
    "ModelConfig",
    "SwapModel",
    "build_model",
    "model_config_class",
    "model_options",
]
