"""``original``: the 2017 deepfakes Keras autoencoder, ported layer for layer at 64 px.

Shapes match the seed exactly. Keras' Dense read the NHWC-flattened tensor whereas we flatten
NCHW; that only permutes weights, and we never load Keras weights, so it does not matter.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from swapface.models.base import MODELS, Decoder, ModelConfig, SwapModel, conv_stack, upscale

SIZE = 64  # the seed trained on 64×64 crops
ENCODER_DIM = 1024  # width of the dense bottleneck
ENCODER_FILTERS = (128, 256, 512, 1024)  # 64 → 32 → 16 → 8 → 4
DECODER_FILTERS = (256, 128, 64)  # after the encoder's own upscale to 512: 8 → 16 → 32 → 64


@dataclass
class OriginalConfig(ModelConfig):
    """The seed architecture is fixed; only the optional mask head can be switched on."""


@MODELS.register("original", options=OriginalConfig,
                 description="the 2017 seed architecture: 64 px, dense bottleneck")
class OriginalModel(SwapModel):

    def __init__(self, config: OriginalConfig) -> None:
        super().__init__(config, input_size=SIZE, output_size=SIZE)

    def build_encoder(self) -> nn.Module:
        layers = conv_stack(ENCODER_FILTERS)
        cin = ENCODER_FILTERS[-1]
        side = SIZE // 2 ** len(ENCODER_FILTERS)
        return nn.Sequential(
            *layers,
            nn.Flatten(),
            # The seed's two Dense layers have no activation between them (a linear bottleneck).
            nn.Linear(cin * side * side, ENCODER_DIM),
            nn.Linear(ENCODER_DIM, 4 * 4 * 1024),
            nn.Unflatten(1, (1024, 4, 4)),
            upscale(1024, 512),  # part of the shared encoder in the seed
        )

    def build_decoder(self) -> Decoder:
        layers: list[nn.Module] = []
        cin = 512
        for cout in DECODER_FILTERS:
            layers.append(upscale(cin, cout))
            cin = cout
        return Decoder(nn.Sequential(*layers), cin, 5, self.learn_mask)
