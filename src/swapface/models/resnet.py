"""``resnet``: a resolution-configurable model whose decoder refines every upscale with a
residual block (the DeepFaceLab "DF" idea), for square faces of 64–256 px in steps of 16.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.models.base import MODELS, Decoder, ModelConfig, SwapModel, conv_down, upscale

SIZES = list(range(64, 257, 16))
MAX_SIDE = 8  # halve while the map is larger than 8×8 (and even), so the dense layers stay sane


@dataclass
class ResNetConfig(ModelConfig):
    size: int = option(128, help="input and output face size in pixels", choices=SIZES)
    encoder_dim: int = option(512, help="width of the dense bottleneck shared by both identities")
    base_filters: int = option(64, help="filters of the first conv; doubled per level, capped at 8×")

    def validate(self) -> None:
        if self.encoder_dim < 1:
            raise ConfigError(f"model 'resnet': encoder_dim must be ≥ 1, got {self.encoder_dim}")
        if self.base_filters < 8 or self.base_filters % 2:
            raise ConfigError(f"model 'resnet': base_filters must be even and ≥ 8, got {self.base_filters}")


def levels(size: int) -> tuple[int, int]:
    """(number of stride-2 convs, bottleneck side). 64 → (3, 8), 96 → (4, 6), 256 → (5, 8).

    Sizes that are odd multiples of 16 above 128 (144, 176, …) cannot halve a fifth time
    and keep a 9–15 px bottleneck: they work but cost more; prefer multiples of 32 there.
    """
    n, side = 0, size
    while side > MAX_SIDE and side % 2 == 0:
        n, side = n + 1, side // 2
    return n, side


class ResBlock(nn.Module):
    """Two 3×3 convs with an identity skip: adds detail without changing the shape."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x + self.conv2(self.act(self.conv1(x))))


@MODELS.register("resnet", options=ResNetConfig,
                 description="residual decoder, 64-256 px")
class ResNetModel(SwapModel):
    config: ResNetConfig

    def __init__(self, config: ResNetConfig) -> None:
        n, self.side = levels(config.size)
        base = config.base_filters
        # Encoder filters double per level (capped); the decoder mirrors them, ending at base/2.
        self.enc_filters = [min(base * 2**i, base * 8) for i in range(n)]
        self.dec_filters = [*self.enc_filters[-2::-1], base // 2]
        super().__init__(config, input_size=config.size, output_size=config.size)

    def build_encoder(self) -> nn.Module:
        layers: list[nn.Module] = []
        cin = 3
        for cout in self.enc_filters:
            layers.append(conv_down(cin, cout))
            cin = cout
        flat = cin * self.side * self.side
        return nn.Sequential(
            *layers,
            nn.Flatten(),
            nn.Linear(flat, self.config.encoder_dim),
            nn.Linear(self.config.encoder_dim, flat),
            nn.Unflatten(1, (cin, self.side, self.side)),
        )

    def build_decoder(self) -> Decoder:
        layers: list[nn.Module] = []
        cin = self.enc_filters[-1]
        for cout in self.dec_filters:
            layers += [upscale(cin, cout), ResBlock(cout)]
            cin = cout
        return Decoder(nn.Sequential(*layers), cin, 5, self.learn_mask)
