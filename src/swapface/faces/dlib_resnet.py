"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) in PyTorch.

The weights are read straight from dlib's file (:mod:`swapface.faces.dlib_format`), so the
128-d descriptor is dlib's own (same chips in, same numbers out to ~1e-6), batched and on any
torch device, and the network's inner feature maps can serve as an identity perceptual loss.

The architecture is ``anet_type`` of dlib's ``examples/dnn_face_recognition_ex.cpp``::

    loss_metric<fc_no_bias<128, avg_pool_everything<
        alevel0<alevel1<alevel2<alevel3<alevel4<
        max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>>

    ares<N>      = relu(x + affine(con3x3(relu(affine(con3x3(x))))))
    ares_down<N> = relu(avg_pool2x2(x) + affine(con3x3(relu(affine(con3x3_stride2(x))))))

    alevel4 = 3 × ares<32>,  alevel3 = ares_down<64> + 3 × ares<64>,
    alevel2 = ares_down<128> + 2 × ares<128>,  alevel1 = ares_down<256> + 2 × ares<256>,
    alevel0 = ares_down<256>

dlib's defaults matter here: a strided conv or pool has *no* padding, a stride-1 one pads
kernel // 2; and dlib adds two tensors of different shapes by zero-filling the smaller one
(channels 32 → 64 in ares_down, and in alevel1 a 3×3 block output meets a 4×4 pooled input).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from swapface.faces.bundled import dlib_model_path
from swapface.faces.dlib_format import SKIP, TAG, DlibFormatError, Layer, read_network

MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150  # dlib.get_face_chip(image, shape, size=150, padding=0.25)
# (channels, residual blocks, whether the first one halves the size), from the input up
LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))

_ARES = [TAG, "con", "affine", "relu", "con", "affine", "add_prev", "relu"]
_ARES_DOWN = [TAG, "con", "affine", "relu", "con", "affine", TAG, SKIP, "avg_pool", "add_prev", "relu"]


def layer_chain() -> list[str]:
    """dlib's wrappers of ``anet_type`` from the input up, as written in the .dat file."""
    chain = ["con", "affine", "relu", "max_pool"]
    for _, blocks, down in LEVELS:
        for i in range(blocks):
            chain += _ARES_DOWN if down and i == 0 else _ARES
    return [*chain, "avg_pool", "fc"]


def add_zero_filled(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: shapes may differ; the missing channels/rows/columns count as 0."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def fill(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return fill(a) + fill(b)


class Residual(nn.Module):
    """``ares`` / ``ares_down``; each conv already has its affine (batch norm) folded in."""

    def __init__(self, c_in: int, c_out: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        shortcut = F.avg_pool2d(x, 2) if self.down else x
        return F.relu(add_zero_filled(shortcut, y))


class DlibResNet(nn.Module):
    """(N, 150, 150, 3) RGB chips, uint8 or float in 0..255 → (N, 128) float32 descriptors."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean_rgb", torch.tensor([122.782, 117.001, 104.298]).view(1, 3, 1, 1))
        self.stem = nn.Conv2d(3, 32, 7, stride=2)
        levels, c_in = [], 32
        for c_out, blocks, down in LEVELS:
            levels.append(nn.Sequential(*(Residual(c_in if i == 0 else c_out, c_out, down and i == 0)
                                          for i in range(blocks))))
            c_in = c_out
        self.levels = nn.ModuleList(levels)
        self.fc = nn.Linear(256, 128, bias=False)

    def preprocess(self, chips: torch.Tensor | np.ndarray) -> torch.Tensor:
        """NHWC 0..255 → NCHW as dlib's input_rgb_image_sized makes it: (pixel - mean) / 256."""
        x = torch.as_tensor(chips, device=self.mean_rgb.device)
        if x.ndim != 4 or tuple(x.shape[1:]) != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"expected (N, {CHIP_SIZE}, {CHIP_SIZE}, 3) RGB chips, got {tuple(x.shape)}")
        x = x.permute(0, 3, 1, 2).to(torch.float32)
        return (x - self.mean_rgb) / 256.0

    def forward_features(self, chips: torch.Tensor | np.ndarray) -> list[torch.Tensor]:
        """The feature maps after each residual level, finest first (for perceptual losses):
        (N, 32, 35, 35), (N, 64, 17, 17), (N, 128, 8, 8), (N, 256, 4, 4), (N, 256, 2, 2)."""
        x = F.max_pool2d(F.relu(self.stem(self.preprocess(chips))), 3, stride=2)
        features = []
        for level in self.levels:
            x = level(x)
            features.append(x)
        return features

    def forward(self, chips: torch.Tensor | np.ndarray) -> torch.Tensor:
        return self.fc(self.forward_features(chips)[-1].mean(dim=(2, 3)))

    @torch.no_grad()
    def load_dlib(self, path: str | Path) -> DlibResNet:
        """Copy the weights of a dlib .dat file in, checking every layer against this model."""
        net = read_network(path, layer_chain())
        size = (net.input.config["nr"], net.input.config["nc"])
        if size != (CHIP_SIZE, CHIP_SIZE):
            raise DlibFormatError(f"{path}: input size {size}, expected {CHIP_SIZE}×{CHIP_SIZE}")
        self.mean_rgb.copy_(torch.from_numpy(net.input.arrays["mean_rgb"]).view(1, 3, 1, 1))
        layers = [layer for layer in net.layers if layer.kind in ("con", "affine", "fc")]
        convs = [self.stem] + [c for level in self.levels for block in level
                               for c in (block.conv1, block.conv2)]
        for i, conv in enumerate(convs):
            _load_conv(conv, layers[2 * i], layers[2 * i + 1], path)
        fc = layers[-1]
        if fc.arrays["weight"].shape != (256, 128) or fc.config["bias_mode"] != 1:
            raise DlibFormatError(f"{path}: unexpected final fc layer {fc.config}")
        self.fc.weight.copy_(torch.from_numpy(fc.arrays["weight"].T.copy()))  # dlib: x @ W
        return self


def _load_conv(conv: nn.Conv2d, con: Layer, affine: Layer, path: str | Path) -> None:
    """con then affine → one Conv2d: w·γ, b·γ + β (folded in float64 so no precision is lost)."""
    cfg = con.config
    expected = {"num_filters": conv.out_channels, "nr": conv.kernel_size[0], "nc": conv.kernel_size[1],
                "stride_y": conv.stride[0], "stride_x": conv.stride[1],
                "padding_y": conv.padding[0], "padding_x": conv.padding[1]}
    found = {k: cfg[k] for k in expected}
    if (found != expected or con.arrays["weight"].shape[1] != conv.in_channels
            or affine.config["mode"] != 0 or affine.config.get("disabled", False)):
        raise DlibFormatError(f"{path}: conv layer {found} does not match dlib's face ResNet {expected}")
    gamma = affine.arrays["gamma"].astype(np.float64)
    weight = con.arrays["weight"].astype(np.float64) * gamma[:, None, None, None]
    bias = con.arrays["bias"].astype(np.float64) * gamma + affine.arrays["beta"]
    conv.weight.copy_(torch.from_numpy(weight.astype(np.float32)))
    conv.bias.copy_(torch.from_numpy(bias.astype(np.float32)))


def load_dlib_resnet(path: str | Path | None = None, device: str | torch.device = "cpu") -> DlibResNet:
    """dlib's face ResNet with the weights of ``path`` (default: the bundled .dat), in eval mode."""
    model = DlibResNet().load_dlib(path or dlib_model_path(MODEL_FILE))
    return model.eval().requires_grad_(False).to(device)
