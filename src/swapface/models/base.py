"""The face-swap model interface: one shared encoder, one decoder per identity, and a registry.

Training teaches the encoder a face representation common to both identities while decoder
"a" learns to redraw faces of A and decoder "b" faces of B; converting encodes A and decodes
with B. A model is rebuilt from its registered name plus :func:`model_options`, which the
trainer freezes as JSON in the model directory, so options must stay JSON-able scalars.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.core.registry import Registry

SIDES = ("a", "b")


@dataclass
class ModelConfig:
    """Options shared by every model; subclasses add their architecture options."""

    learn_mask: bool = option(False, help="also predict a face mask next to the RGB output")
    refine_size: int = option(
        0, help="output size of a per-identity detail network (refiner) after the decoder: 2× or "
        "4× the model's size, trained on the identity's own full-resolution faces (0 = off)")
    refine_sides: str = option("b", choices=["b", "ab"],
                               help="decoders that get a refiner (b: the usual swap A → B)")

    def validate(self) -> None:
        """Cross-field checks beyond type and ``choices``; raise ConfigError."""


class Decoder(nn.Module):
    """An upscaling body, then an RGB head and an optional mask head side by side."""

    def __init__(self, body: nn.Module, channels: int, kernel: int, learn_mask: bool) -> None:
        super().__init__()
        self.body = body
        self.rgb = nn.Conv2d(channels, 3, kernel, padding=kernel // 2)
        # The mask head reads the same features as the RGB head, so it costs one conv only.
        self.mask = nn.Conv2d(channels, 1, kernel, padding=kernel // 2) if learn_mask else None

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor | None]:
        h = self.body(z)
        mask = torch.sigmoid(self.mask(h)) if self.mask is not None else None
        return torch.sigmoid(self.rgb(h)), mask


class SwapModel(nn.Module, ABC):
    """Shared encoder + decoders "a"/"b". Inputs and outputs are RGB in [0, 1], NCHW."""


    def __init__(self, config: ModelConfig, input_size: int, output_size: int) -> None:
        super().__init__()
        self.config = config
        self.input_size = input_size
        self.decoder_size = output_size  # what the decoders draw, before any refiner
        self.learn_mask = config.learn_mask
        self.encoder: nn.Module = self.build_encoder()
        self.decoders = self.build_decoders()
        glorot_init(self)
        self.refiners = nn.ModuleDict()
        self.output_size = output_size
        if config.refine_size:
            scale = config.refine_size // output_size
            if scale not in (2, 4) or scale * output_size != config.refine_size:
                raise ConfigError(f"refine_size must be 2× or 4× the model's {output_size} px "
                                  f"(0 = off), got {config.refine_size}")
            if config.refine_sides not in ("b", "ab"):
                raise ConfigError(f"refine_sides must be b or ab, got {config.refine_sides!r}")
            from swapface.models.refiner import build_refiners

            self.refiners = build_refiners(tuple(config.refine_sides), scale)
            self.output_size = config.refine_size

    @abstractmethod
    def build_encoder(self) -> nn.Module: ...

    @abstractmethod
    def build_decoder(self) -> Decoder: ...

    def build_decoders(self) -> nn.ModuleDict:
        """Each identity's own layers, keyed by side. Two independent builds: the decoders must
        never share parameters (what both sides share belongs to the encoder)."""
        return nn.ModuleDict({side: self.build_decoder() for side in SIDES})

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode_base(self, z: Tensor, side: str) -> tuple[Tensor, Tensor | None]:
        """The decoder's own output at ``decoder_size`` (what the swap losses train)."""
        if side not in self.decoders:
            raise ValueError(f"side must be one of {SIDES}, got {side!r}")
        return self.decoders[side](z)

    def refine(self, rgb: Tensor, mask: Tensor | None, side: str) -> tuple[Tensor, Tensor | None]:
        """Decoder output → ``output_size``: the side's refiner, else a bilinear upscale."""
        if self.output_size == self.decoder_size:
            return rgb, mask
        scale = self.output_size // self.decoder_size
        if mask is not None:
            mask = F.interpolate(mask, scale_factor=scale, mode="bilinear", align_corners=False)
        if side in self.refiners:
            return self.refiners[side](rgb), mask
        return F.interpolate(rgb, scale_factor=scale, mode="bilinear", align_corners=False), mask

    def decode(self, z: Tensor, side: str) -> tuple[Tensor, Tensor | None]:
        """The face at ``output_size``: decoder, then the side's refiner when there is one."""
        return self.refine(*self.decode_base(z, side), side)

    def forward(self, x: Tensor, side: str) -> tuple[Tensor, Tensor | None]:
        """(RGB [B,3,out,out], mask [B,1,out,out] or None), both in [0, 1], at ``output_size``."""
        return self.decode(self.encode(x), side)


def conv_down(cin: int, cout: int, slope: float = 0.1) -> nn.Sequential:
    """5×5 stride-2 conv. Keras 'same' pads 1/2 here; symmetric 2 gives the same shapes."""
    return nn.Sequential(nn.Conv2d(cin, cout, 5, stride=2, padding=2), nn.LeakyReLU(slope))


def conv_stack(filters: Sequence[int], cin: int = 3) -> list[nn.Module]:
    """Stride-2 5×5 convs through ``filters`` (the seed encoder's trunk)."""
    layers: list[nn.Module] = []
    for cout in filters:
        layers.append(conv_down(cin, cout))
        cin = cout
    return layers


def upscale(cin: int, cout: int, slope: float = 0.1) -> nn.Sequential:
    """The seed's upscale: 3×3 conv to 4·cout channels, LeakyReLU, PixelShuffle(2)."""
    return nn.Sequential(nn.Conv2d(cin, cout * 4, 3, padding=1), nn.LeakyReLU(slope), nn.PixelShuffle(2))


def glorot_init(module: nn.Module) -> None:
    """Keras defaults (glorot_uniform, zero bias): the seed's training dynamics assume them."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


MODELS: Registry[SwapModel] = Registry("model")


def model_config_class(name: str) -> type[ModelConfig]:
    """The options dataclass of a registered model (for CLI help and config files)."""
    return MODELS.get(name).options


def build_model(name: str, options: dict[str, Any]) -> SwapModel:
    """Validate ``options`` against the model's config and build it; bad input → ConfigError."""
    return MODELS.create(name, options)


def model_options(model: SwapModel) -> dict[str, Any]:
    """All options of ``model`` (defaults included), JSON-ready, for ``build_model``."""
    return dataclasses.asdict(model.config)
