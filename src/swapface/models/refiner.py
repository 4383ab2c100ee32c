"""The per-identity detail network: a decoder's face in, the same face at 2× or 4× out.

A swap decoder that trains in CPU minutes draws 64 px faces, and a 64 px face warped back
into a 480 px frame keeps about a quarter of the source's fine detail even when it is
perfect. The refiner learns, from one identity's own full-resolution faces, what that
identity's eyes, lips and skin look like at the paste resolution: its input is the
decoder's output for a face, its target the same face cropped at the refiner's size.

Layout (an ESPCN/EDSR-style super-resolution body): every convolution runs at the *input*
resolution, where it is ``scale²`` times cheaper, and one PixelShuffle lifts the result to
the output size. The network predicts only a residual over a bilinear upscale, and its last
convolution starts at zero, so an untrained refiner is exactly that upscale: training can
only add detail to it, never start from noise.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

REFINER_CHANNELS = 32  # feature maps of the body, all at the input resolution
REFINER_BLOCKS = 4  # 3×3 convolutions in the body: 9 px of context each side at 64 px


class Refiner(nn.Module):
    """``rgb [N,3,s,s]`` in [0, 1] → ``rgb [N,3,scale·s,scale·s]`` in [0, 1]."""

    def __init__(self, scale: int, channels: int = REFINER_CHANNELS, blocks: int = REFINER_BLOCKS) -> None:
        super().__init__()
        self.scale = scale
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.LeakyReLU(0.1)]
        for _ in range(blocks):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.1)]
        self.body = nn.Sequential(*layers)
        self.tail = nn.Conv2d(channels, 3 * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)

    def reset_tail(self) -> None:
        """Zero the residual head (after the model's Glorot initialisation): an untrained
        refiner is then the plain bilinear upscale."""
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def upscale(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)

    def forward(self, rgb: Tensor) -> Tensor:
        residual = self.shuffle(self.tail(self.body(rgb)))
        return (self.upscale(rgb) + residual).clamp(0.0, 1.0)


def build_refiners(sides: tuple[str, ...], scale: int) -> nn.ModuleDict:
    """One refiner per side in ``sides``, zero-residual at the start."""
    refiners = nn.ModuleDict({side: Refiner(scale) for side in sides})
    for refiner in refiners.values():
        refiner.reset_tail()  # type: ignore[operator]
    return refiners
