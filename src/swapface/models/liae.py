"""``liae``: DeepFaceLab's LIAE layout at ``lightweight``'s CPU cost.

DeepFaceLab's "DF" layout is ours elsewhere: a shared encoder and one decoder per identity.
LIAE shares the decoder too. One encoder trunk feeds two intermediate dense layers:
``inter_ab`` sees every face, ``inter_a`` only the video person's (A; DeepFaceLab's "dst").
One decoder draws B from ``[inter_ab, inter_ab]`` and A from ``[inter_a, inter_ab]``. The swap
draws A's frames as ``[inter_ab(a), inter_ab(a)]``: a code the decoder only saw for B, so it
draws B, with the pose, expression and light of A that ``inter_ab`` carries for both. The
shared decoder is what DeepFaceLab users pick LIAE for: the swapped face keeps the frame's
lighting and shape better, at some cost in likeness.

Everything both identities use lives in :attr:`encoder` (``trunk``, ``inter_ab``,
``decoder``); ``decoders["a"]`` is A's own intermediate layer and ``decoders["b"]`` has no
weights, so DDP, checkpoints and export see each parameter once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.models.base import MODELS, SIDES, Decoder, ModelConfig, SwapModel, conv_stack, upscale
from swapface.models.lightweight import DECODER_FILTERS, ENCODER_FILTERS, SIZES

CODE_FILTERS = 128  # channels of each intermediate code; the decoder reads two, concatenated


@dataclass
class LiaeConfig(ModelConfig):
    input_size: int = option(64, help="input and output face size in pixels", choices=SIZES)
    inter_dim: int = option(256, help="width of each intermediate dense layer (inter_ab, inter_a)")

    def validate(self) -> None:
        if self.inter_dim < 1:
            raise ConfigError(f"model 'liae': inter_dim must be ≥ 1, got {self.inter_dim}")


class Shared(nn.Module):
    """What both identities use: the conv trunk, ``inter_ab`` and the one decoder."""

    def __init__(self, trunk: nn.Module, inter_ab: nn.Module, decoder: Decoder) -> None:
        super().__init__()
        self.trunk, self.inter_ab, self.decoder = trunk, inter_ab, decoder

    def forward(self, x: Tensor) -> Tensor:
        return self.trunk(x)


@MODELS.register("liae", options=LiaeConfig,
                 description="DeepFaceLab's LIAE (shared decoder, inter_ab + inter_a) at "
                             "lightweight's size")
class LiaeModel(SwapModel):
    config: LiaeConfig
    encoder: Shared
    default_lr: ClassVar[float] = 5e-4  # as lightweight: a small net trained for minutes

    def __init__(self, config: LiaeConfig) -> None:
        self.side = config.input_size // 2 ** len(ENCODER_FILTERS)
        super().__init__(config, input_size=config.input_size, output_size=config.input_size)

    def _inter(self) -> nn.Module:
        s = self.side
        return nn.Sequential(
            nn.Linear(ENCODER_FILTERS[-1] * s * s, self.config.inter_dim),
            nn.Linear(self.config.inter_dim, CODE_FILTERS * s * s),
            nn.Unflatten(1, (CODE_FILTERS, s, s)),
        )

    def build_encoder(self) -> nn.Module:
        return Shared(nn.Sequential(*conv_stack(ENCODER_FILTERS), nn.Flatten()), self._inter(),
                      self.build_decoder())

    def build_decoder(self) -> Decoder:
        layers: list[nn.Module] = []
        cin = 2 * CODE_FILTERS
        for cout in DECODER_FILTERS:
            layers.append(upscale(cin, cout))
            cin = cout
        return Decoder(nn.Sequential(*layers), cin, 5, self.learn_mask)

    def build_decoders(self) -> nn.ModuleDict:
        return nn.ModuleDict({"a": self._inter(), "b": nn.Identity()})

    def decode_base(self, z: Tensor, side: str) -> tuple[Tensor, Tensor | None]:
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {side!r}")
        shared = self.encoder.inter_ab(z)
        own = self.decoders["a"](z) if side == "a" else shared
        return self.encoder.decoder(torch.cat([own, shared], dim=1))
