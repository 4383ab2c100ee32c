"""Convolution algorithms for CPUs, for the layers where oneDNN's direct kernels are not fastest.

Why hand-written: on this project's 2-core AVX2 CPU (fp32; no bf16 hardware, so autocast is
no help) the ``original`` model's 3×3 stride-1 upscale convolutions run 1.5–2.5× faster as
Winograd F(2×2,3×3) / F(4×4,3×3), and its deep 5×5 stride-2 ones up to 1.7× faster as one
im2col GEMM (oneDNN 3.12 has no AVX2 Winograd; NNPACK's fails on these shapes). Which
algorithm wins depends on the layer's shape and the CPU, so :mod:`conv_tuning` times them per
layer instead of hard-coding rules.

Everything is built from plain differentiable torch ops — the GEMMs do the work and autograd
derives the backward pass, which is made of GEMMs of the same sizes — so there is no
extension to compile and training works unchanged. Tensors are NCHW to the caller; the
algorithms work channels-last inside (channel runs stay contiguous in the gathers) and return
channels-last-strided tensors. fp32 only: Winograd's transforms amplify rounding, fine in
fp32 (relative error ~1e-5) but not in bf16/fp16.
"""

from __future__ import annotations

from functools import cache

import torch
import torch.nn.functional as F
from torch import Tensor

# Lavin & Gray's Winograd matrices (interpolation points 0, ±1, ±2, ∞ for F(4,3)).
_WINOGRAD = {
    2: (
        [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],  # Bᵀ
        [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],  # G
        [[1, 1, 1, 0], [0, 1, -1, -1]],  # Aᵀ
    ),
    4: (
        [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
         [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
         [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    ),
}
WINOGRAD_TILES = tuple(_WINOGRAD)


@cache
def _winograd_matrices(m: int, device: str) -> tuple[Tensor, Tensor, Tensor]:
    """2-D weight and output transforms as Kronecker products (built in float64, stored fp32)."""
    bt, g, at = (torch.tensor(v, dtype=torch.float64) for v in _WINOGRAD[m])
    return tuple(torch.kron(v, v).float().to(device) for v in (bt, g, at))  # type: ignore[return-value]


@cache
def _input_band(m: int, size: int, device: str) -> Tensor:
    """Bᵀ applied to every (m+2)-pixel tile along one axis of a zero-padded line, as one matrix.

    Row (r, t) of the [(m+2)·tiles, size] result holds Bᵀ's row r at tile t's pixels; the
    padding pixels are simply left out. Transforming by two such GEMMs (one per axis) reads the
    image in place: no padded copy, no overlapping-tile gather, and a backward of two GEMMs
    instead of a scatter-add (~1.5× faster forward + backward than gather + one 36×36 GEMM).
    """
    bt = torch.tensor(_WINOGRAD[m][0], dtype=torch.float64)
    a, tiles = m + 2, size // m
    band = torch.zeros(a, tiles, size, dtype=torch.float64)
    for t in range(tiles):
        for i in range(a):
            pixel = m * t + i - 1  # tile t starts one pixel before m·t (the padding of 1)
            if 0 <= pixel < size:
                band[:, t, pixel] = bt[:, i]
    return band.reshape(a * tiles, size).float().to(device)


def winograd_input(x: Tensor, m: int) -> Tensor:
    """NCHW input → its Winograd tiles Bᵀ d B as [(m+2)², tiles, C] (padding 1 folded in)."""
    a = m + 2
    n, c, h, w = x.shape
    th, tw = h // m, w // m
    nhwc = x.permute(0, 2, 3, 1).contiguous()  # free when x is channels-last already
    rows = torch.matmul(_input_band(m, h, str(x.device)), nhwc.view(n, h, w * c))  # n, (r, t), w·c
    both = torch.matmul(_input_band(m, w, str(x.device)), rows.view(n * a * th, w, c))  # .., (s, u), c
    return both.view(n, a, th, a, tw, c).permute(1, 3, 0, 2, 4, 5).reshape(a * a, n * th * tw, c)


def winograd_applies(weight: Tensor, stride: tuple[int, ...], padding: tuple[int, ...] | str,
                     dilation: tuple[int, ...], groups: int, height: int, width: int, m: int) -> bool:
    return (tuple(weight.shape[2:]) == (3, 3) and tuple(stride) == (1, 1) and tuple(padding) == (1, 1)
            and tuple(dilation) == (1, 1) and groups == 1 and height % m == 0 and width % m == 0)


def winograd_weight(weight: Tensor, m: int) -> Tensor:
    """[Cout, Cin, 3, 3] → the transformed filters [(m+2)², Cin, Cout]."""
    cout, cin = weight.shape[:2]
    _, g, _ = _winograd_matrices(m, str(weight.device))
    return (g @ weight.permute(2, 3, 1, 0).reshape(9, cin * cout)).view((m + 2) ** 2, cin, cout)


def winograd_conv2d(x: Tensor, weight: Tensor | None, bias: Tensor | None, m: int,
                    transformed: Tensor | None = None) -> Tensor:
    """3×3, stride 1, padding 1 convolution by Winograd F(m×m, 3×3); H and W divisible by m.

    Give ``weight`` [Cout, Cin, 3, 3], or ``transformed`` (:func:`winograd_weight`, computed
    once for frozen inference weights).
    """
    a = m + 2
    _, _, at = _winograd_matrices(m, str(x.device))
    n, _, h, w = x.shape
    th, tw = h // m, w // m
    v = winograd_input(x, m)
    if transformed is None:
        assert weight is not None, "winograd_conv2d needs the weight or its transform"
        transformed = winograd_weight(weight, m)
    u, cout = transformed, transformed.shape[2]
    products = torch.bmm(v, u)  # [a·a, tiles, Cout]: the elementwise products, batched over C
    y = (at @ products.view(a * a, -1)).view(m, m, n, th, tw, cout)
    y = y.permute(2, 3, 0, 4, 1, 5).reshape(n, h, w, cout)
    if bias is not None:
        y = y + bias
    return y.permute(0, 3, 1, 2)


def gemm_weight(weight: Tensor) -> Tensor:
    """[Cout, Cin, kh, kw] → [kh·kw·Cin, Cout], the im2col GEMM's right-hand matrix."""
    cout = weight.shape[0]
    return weight.permute(2, 3, 1, 0).reshape(-1, cout)


def gemm_applies(padding: tuple[int, ...] | str, dilation: tuple[int, ...], groups: int) -> bool:
    return not isinstance(padding, str) and tuple(dilation) == (1, 1) and groups == 1


def gemm_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple[int, ...],
                padding: tuple[int, ...], matrix: Tensor | None = None) -> Tensor:
    """Convolution as one im2col GEMM over the whole batch (channels-last gather).

    Pays off where oneDNN runs small images with many channels poorly (the 4×4 and 8×8
    layers): the GEMM is then [batch·pixels, k·k·Cin] × [k·k·Cin, Cout] with a long K.
    """
    kh, kw = weight.shape[2:]
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, w = x.shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    padded = F.pad(x.permute(0, 2, 3, 1), (0, 0, pw, pw, ph, ph))
    cols = padded.unfold(1, kh, sh).unfold(2, kw, sw)  # n, ho, wo, c, kh, kw
    cols = cols.permute(0, 1, 2, 4, 5, 3).reshape(n * ho * wo, kh * kw * c)
    mat = gemm_weight(weight) if matrix is None else matrix
    y = cols @ mat if bias is None else torch.addmm(bias, cols, mat)
    return y.view(n, ho, wo, -1).permute(0, 3, 1, 2)


def channels_last_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple[int, ...],
                         padding: tuple[int, ...] | str, dilation: tuple[int, ...], groups: int,
                         weight_cl: Tensor | None = None) -> Tensor:
    """oneDNN's channels-last kernels: faster for few channels (the RGB in/out layers)."""
    w = weight.contiguous(memory_format=torch.channels_last) if weight_cl is None else weight_cl
    return F.conv2d(x.contiguous(memory_format=torch.channels_last), w, bias, stride, padding,
                    dilation, groups)


def strided_winograd_applies(weight: Tensor, stride: tuple[int, ...], padding: tuple[int, ...] | str,
                             dilation: tuple[int, ...], groups: int, height: int, width: int,
                             m: int) -> bool:
    return (tuple(weight.shape[2:]) == (5, 5) and tuple(stride) == (2, 2) and tuple(padding) == (2, 2)
            and tuple(dilation) == (1, 1) and groups == 1
            and height % (2 * m) == 0 and width % (2 * m) == 0)


def strided_winograd_weight(weight: Tensor) -> Tensor:
    """5×5 stride-2 filters → the 3×3 filters over the input's four pixel phases [Cout, 4·Cin, 3, 3].

    Phase (r, s) holds input pixels (2i+r, 2j+s); its taps are the filter's rows r, r+2, r+4
    and columns s, s+2, s+4 (index 5, past the 5×5 filter, is a zero pad).
    """
    cout, cin = weight.shape[:2]
    w6 = F.pad(weight, (0, 1, 0, 1)).view(cout, cin, 3, 2, 3, 2)  # [o, c, a, r, b, s] = w[2a+r, 2b+s]
    return w6.permute(0, 1, 3, 5, 2, 4).reshape(cout, 4 * cin, 3, 3)


def strided_winograd_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, m: int,
                            transformed: Tensor | None = None) -> Tensor:
    """5×5, stride 2, padding 2 convolution as a 3×3 stride-1 Winograd over the pixel phases.

    The phase split (pixel_unshuffle) turns the strided 5×5 into a plain 3×3 with 4× the
    input channels: 36 instead of 25 multiplies per output before Winograd, ~2.8× fewer after
    F(4×4, 3×3). ``transformed`` is ``winograd_weight(strided_winograd_weight(w), m)``.
    """
    phases = F.pixel_unshuffle(x, 2)  # channel c·4 + r·2 + s holds pixels (2i+r, 2j+s)
    if transformed is None:
        return winograd_conv2d(phases, strided_winograd_weight(weight), bias, m)
    return winograd_conv2d(phases, None, bias, m, transformed)
