"""``gan``: the faceswap-GAN v2.2 generator and discriminators (shaoanlu/faceswap-GAN).

Generator: the shared encoder (5×5 conv, 3×3 stride-2 ReLU convs with SAGAN self-attention
at the two middle resolutions, dense bottleneck, PixelShuffle upscale to 8×8) and one decoder
per identity (PixelShuffle upscales, self-attention at 32×32, a residual block, then sigmoid
RGB and mask heads). The mask is always on: the training objective
(:mod:`swapface.train.gan`) blends ``mask·rgb + (1 − mask)·warped input``.

Discriminators: one PatchGAN per identity on the 6-channel (face, warped input) pair — 4×4
stride-2 convs down to 8×8, self-attention after the third and any later conv, and a 1-channel
8×8 score map without sigmoid (least-squares GAN). They live in the model so checkpoints carry
them; the trainer optimises them separately (``generator_parameters`` /
``discriminator_parameters``).

Departures from the Keras original: no normalisation layers (its ``norm='none'`` setting; the
notebooks default to instance norm), Glorot initialisation and biases on every conv (the
project's convention), no intermediate RGB outputs at 128 px, and the decoder's last
self-attention block, which attends over the full-resolution map (4096² scores per 64-px
face), is replaced by the 3×3 conv the original uses when attention is off. Attention is
scaled by 1/√d (a stabler softmax than SAGAN's raw dot products; otherwise the same block).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.models.base import (
    MODELS,
    SIDES,
    Decoder,
    ModelConfig,
    SwapModel,
    glorot_init,
    upscale,
)
from swapface.models.resnet import ResBlock

SIZES = [64, 128]  # faceswap-GAN's RES 64 and 128 notebooks
BOTTLENECK = 4  # the encoder halves down to 4×4 before its dense layers
PATCH = 8  # the discriminators halve down to an 8×8 score map


@dataclass
class GanModelConfig(ModelConfig):
    learn_mask: bool = option(True, help="always on: the GAN blends its output into the input by its mask")
    size: int = option(64, help="input and output face size in pixels", choices=SIZES)
    encoder_dim: int = option(1024, help="width of the dense bottleneck (faceswap-GAN: 1024)")
    base_filters: int = option(64, help="filters of the first conv; the encoder widens to 16×, "
                               "the discriminators to 4× (faceswap-GAN: 64)")
    self_attention: bool = option(True, help="SAGAN self-attention blocks in encoder, decoders and "
                                  "discriminators (faceswap-GAN use_self_attn)")

    def validate(self) -> None:
        if not self.learn_mask:
            raise ConfigError("model 'gan': learn_mask cannot be off — faceswap-GAN blends its "
                              "output into the input through the learned mask")
        if self.encoder_dim < 1:
            raise ConfigError(f"model 'gan': encoder_dim must be ≥ 1, got {self.encoder_dim}")
        if self.refine_size:
            raise ConfigError("model 'gan': refine_size is not supported (its output is blended "
                              "into the input at the decoder's size); use its size=128 instead")
        if self.base_filters < 8 or self.base_filters % 8:
            raise ConfigError(f"model 'gan': base_filters must be a multiple of 8, got {self.base_filters}")


class SelfAttention(nn.Module):
    """SAGAN self-attention: ``x + γ·softmax(q kᵀ/√d) v`` over all positions.

    1×1 convs give queries and keys of C/8 channels and values of C; γ starts at 0, so the
    block is the identity at first and the net learns how much long-range context to mix in.
    """

    def __init__(self, channels: int, squeeze: int = 8) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, max(channels // squeeze, 1), 1)
        self.key = nn.Conv2d(channels, max(channels // squeeze, 1), 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        _, c, h, w = x.shape
        # [B, 1, HW, C]: flatten(2) is a view in both NCHW and channels_last layouts.
        q, k, v = (m(x).flatten(2).transpose(1, 2).unsqueeze(1) for m in (self.query, self.key, self.value))
        # The fused kernel never materialises the HW×HW scores on CUDA (flash/memory-efficient).
        # -1, not the batch size: the ONNX exporter would bake a traced batch size into the graph.
        o = F.scaled_dot_product_attention(q, k, v).squeeze(1).transpose(1, 2).reshape(-1, c, h, w)
        return x + self.gamma * o


def attention(channels: int, on: bool) -> nn.Module:
    return SelfAttention(channels) if on else nn.Identity()


def conv_block(cin: int, cout: int, stride: int = 2) -> nn.Sequential:
    """faceswap-GAN's conv_block: 3×3 conv ('same'), ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.ReLU())


def patch_discriminator(size: int, base: int, self_attention: bool) -> nn.Sequential:
    """PatchGAN on (face, warped input): 4×4 stride-2 convs, LeakyReLU 0.2, down to 8×8."""
    layers: list[nn.Module] = []
    cin, side, i = 6, size, 0
    while side > PATCH:
        cout = base * min(2**i, 4)  # 64, 128, 256, then 256 (faceswap-GAN)
        layers += [nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        if i >= 2:  # attention from size/8 on (8×8 at 64 px; 16×16 and 8×8 at 128 px)
            layers.append(attention(cout, self_attention))
        cin, side, i = cout, side // 2, i + 1
    # Keras 'same' 4×4 head (pads 1 before, 2 after): one LSGAN score per patch, no sigmoid.
    return nn.Sequential(*layers, nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(cin, 1, 4))


@MODELS.register("gan", options=GanModelConfig,
                 description="the faceswap-GAN recipe: self-attention, two discriminators")
class GanModel(SwapModel):
    config: GanModelConfig
    has_discriminator: ClassVar[bool] = True
    default_lr: ClassVar[float] = 1e-4  # faceswap-GAN lrG, Adam β1 0.5
    default_betas: ClassVar[tuple[float, float]] = (0.5, 0.999)

    def __init__(self, config: GanModelConfig) -> None:
        self.base = config.base_filters
        super().__init__(config, input_size=config.size, output_size=config.size)
        self.discriminators = nn.ModuleDict(
            {side: patch_discriminator(config.size, self.base, config.self_attention) for side in SIDES})
        glorot_init(self.discriminators)

    def build_encoder(self) -> nn.Module:
        b, attn = self.base, self.config.self_attention
        layers: list[nn.Module] = [
            nn.Conv2d(3, b, 5, padding=2),  # no activation here, as in faceswap-GAN
            conv_block(b, 2 * b),
            conv_block(2 * b, 4 * b), attention(4 * b, attn),
            conv_block(4 * b, 8 * b), attention(8 * b, attn),
            conv_block(8 * b, 16 * b),
        ]
        side = self.config.size // 16
        while side > BOTTLENECK:  # 128 px: one more halving
            layers.append(conv_block(16 * b, 16 * b))
            side //= 2
        flat = 16 * b * BOTTLENECK**2
        return nn.Sequential(
            *layers, nn.Flatten(),
            nn.Linear(flat, self.config.encoder_dim),
            nn.Linear(self.config.encoder_dim, flat),  # linear bottleneck, as the seed's
            nn.Unflatten(1, (16 * b, BOTTLENECK, BOTTLENECK)),
            upscale(16 * b, 8 * b, 0.2),  # shared 8×8 map, as faceswap-GAN's encoder output
        )

    def build_decoder(self) -> Decoder:
        b = self.base
        layers: list[nn.Module] = [
            upscale(8 * b, 4 * b, 0.2),
            upscale(4 * b, 2 * b, 0.2), attention(2 * b, self.config.self_attention),
            upscale(2 * b, b, 0.2), ResBlock(b),
            conv_block(b, b, stride=1),
        ]
        side = 64  # three upscales from the 8×8 code
        while side < self.config.size:  # 128 px: one more upscale + conv
            layers += [upscale(b, b, 0.2), conv_block(b, b, stride=1)]
            side *= 2
        return Decoder(nn.Sequential(*layers), b, 5, learn_mask=True)

    def generator_parameters(self) -> Iterator[nn.Parameter]:
        """Encoder and decoders: what the trainer's main optimizer updates."""
        yield from self.encoder.parameters()
        yield from self.decoders.parameters()

    def discriminator_parameters(self) -> Iterator[nn.Parameter]:
        return self.discriminators.parameters()

    @staticmethod
    def pair(image: Tensor, warped: Tensor) -> Tensor:
        """A discriminator's input: the face and the warped face it was made from, stacked."""
        return torch.cat([image, warped], dim=1)

    def discriminate(self, image: Tensor, warped: Tensor, side: str) -> Tensor:
        """LSGAN scores ``[B, 1, 8, 8]`` of ``image`` given the warped face it was made from."""
        return self.discriminators[side](self.pair(image, warped))
