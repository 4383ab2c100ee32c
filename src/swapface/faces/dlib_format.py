"""A reader for dlib's own serialization of a DNN (``dlib/serialize.h``, ``dlib/dnn/*.h``).

Only what dlib's face-recognition ResNet uses is understood; anything else stops the read
with a one-line :class:`DlibFormatError`. No dlib code is needed to read the weights.

The byte formats, as dlib writes them:

* integer: a control byte (low 4 bits: byte count, 0x80: negative), then that many
  little-endian magnitude bytes;
* float / double: two integers, mantissa (int64) and exponent (int16): mantissa * 2**exponent;
* bool: the character ``'1'`` or ``'0'``; string: its length (an integer), then its bytes;
* tensor: version 2, num_samples, k, nr, nc, then that many little-endian float32;
* alias_tensor (a view into a layer's ``params``): version 1 and its four dimensions, no data.

A network is a chain of wrappers, written as a loss layer (version 1, its details, then the
chain) and, for each wrapper from the output down, its version; then the input layer with the
first computational layer; then, unwinding upwards, each layer's details and its (normally
empty) training state. Tag and skip wrappers are just their version, so the *shape* of the
chain cannot be read back from the bytes: the caller says what it must be.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from swapface.core.errors import InputError

TAG, SKIP = "tag", "skip"  # chain entries that carry no layer, only a place in the graph
_FLOAT_SPECIAL = {32000: math.inf, 32001: -math.inf, 32002: math.nan}  # float_details' markers


class DlibFormatError(InputError, ValueError):
    """The file is not (or no longer) the dlib network this code expects."""


@dataclass
class Layer:
    """One layer's details: ``kind`` (con, affine, relu, max_pool, avg_pool, add_prev, fc),
    its integer/float settings in ``config`` and its arrays in ``arrays``."""

    kind: str
    config: dict[str, float | int | bool | str] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Network:
    loss: Layer
    input: Layer
    layers: list[Layer]  # from the input up to the output, tags and skips left out


class Reader:
    """Sequential reads over the whole file held in memory (22 MB: one read is the fast way)."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.name, self.pos = data, name, 0

    def fail(self, what: str) -> DlibFormatError:
        return DlibFormatError(f"{self.name}: not a dlib face ResNet file ({what} at byte {self.pos})")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail(f"truncated: {n} more bytes needed")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self) -> int:
        control = self.take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            raise self.fail(f"bad integer control byte 0x{control:02x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if exponent in _FLOAT_SPECIAL:
            return _FLOAT_SPECIAL[exponent]
        return math.ldexp(mantissa, exponent)

    def bool(self) -> bool:
        ch = self.take(1)
        if ch not in (b"0", b"1"):
            raise self.fail(f"bad bool {ch!r}")
        return ch == b"1"

    def str(self, limit: int = 64) -> str:
        n = self.int()
        if not 0 <= n <= limit:  # every name in these files is short; a huge one is garbage
            raise self.fail(f"bad string length {n}")
        try:
            return self.take(n).decode("ascii")
        except UnicodeDecodeError:
            raise self.fail("non-ASCII name") from None

    def version(self, allowed: Sequence[int], what: str) -> int:
        v = self.int()
        if v not in allowed:
            raise self.fail(f"unexpected {what} version {v}")
        return v

    def dims(self) -> tuple[int, int, int, int]:
        dims = tuple(self.int() for _ in range(4))
        if min(dims) < 0:
            raise self.fail(f"negative tensor size {dims}")
        return dims  # type: ignore[return-value]

    def tensor(self) -> np.ndarray:
        self.version([2], "tensor")
        dims = self.dims()
        count = math.prod(dims)
        raw = self.take(4 * count)
        return np.frombuffer(raw, "<f4").astype(np.float32).reshape(dims)

    def alias(self) -> int:
        """An alias_tensor: only its element count matters (its offset is implied by order)."""
        self.version([1], "alias_tensor")
        return math.prod(self.dims())


def _slices(params: np.ndarray, sizes: Sequence[int], r: Reader) -> list[np.ndarray]:
    """Split a layer's flat ``params`` into the consecutive views dlib's aliases describe."""
    flat = params.reshape(-1)
    if sum(sizes) != flat.size:
        raise r.fail(f"params hold {flat.size} values, aliases {sum(sizes)}")
    offsets = np.cumsum([0, *sizes])
    return [flat[a:b] for a, b in itertools.pairwise(offsets)]


def _window(r: Reader) -> dict[str, float | int | bool | str]:
    keys = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
    return {k: r.int() for k in keys}


def _con(r: Reader, version: str) -> Layer:
    params = r.tensor()
    cfg = {"num_filters": r.int(), **_window(r)}
    n_filters, n_biases = r.alias(), r.alias()
    for _ in range(4):  # learning-rate and weight-decay multipliers: training only
        r.float()
    if version in ("con_5", "con_6"):
        cfg["use_bias"] = r.bool()
    if version == "con_6":
        cfg["use_relu"] = r.bool()
    weight, bias = _slices(params, [n_filters, n_biases], r)
    k = n_filters // (cfg["num_filters"] * cfg["nr"] * cfg["nc"])  # input channels
    return Layer("con", cfg, {"weight": weight.reshape(cfg["num_filters"], k, cfg["nr"], cfg["nc"]),
                              "bias": bias})


def _affine(r: Reader, version: str) -> Layer:
    params = r.tensor()
    n_gamma, n_beta = r.alias(), r.alias()
    cfg: dict[str, float | int | bool | str] = {"mode": r.int()}  # 0: per channel, 1: per value
    if version == "affine_2":
        cfg["disabled"] = r.bool()
    gamma, beta = _slices(params, [n_gamma, n_beta], r)
    return Layer("affine", cfg, {"gamma": gamma, "beta": beta})


def _fc(r: Reader, version: str) -> Layer:
    cfg = {"num_outputs": r.int(), "num_inputs": r.int()}
    params = r.tensor()
    n_weights, n_biases = r.alias(), r.alias()
    cfg["bias_mode"] = r.int()  # 0: with bias, 1: fc_no_bias
    for _ in range(4):
        r.float()
    if version == "fc_3":
        cfg["use_bias"] = r.bool()
    weights, bias = _slices(params, [n_weights, n_biases], r)
    # dlib computes x @ W with W of shape (num_inputs, num_outputs)
    return Layer("fc", cfg, {"weight": weights.reshape(cfg["num_inputs"], cfg["num_outputs"]),
                             "bias": bias})


def _relu(r: Reader, version: str) -> Layer:
    return Layer("relu", {"disabled": r.bool()} if version == "relu_2" else {})


# version string -> (kind, reader of the rest)
_LAYERS = {
    **{v: ("con", _con) for v in ("con_4", "con_5", "con_6")},
    **{v: ("affine", _affine) for v in ("affine_", "affine_2")},
    **{v: ("fc", _fc) for v in ("fc_2", "fc_3")},
    **{v: ("relu", _relu) for v in ("relu_", "relu_2")},
    "max_pool_2": ("max_pool", lambda r, v: Layer("max_pool", _window(r))),
    "avg_pool_2": ("avg_pool", lambda r, v: Layer("avg_pool", _window(r))),
    "add_prev_": ("add_prev", lambda r, v: Layer("add_prev")),
}


def _layer(r: Reader, kind: str) -> Layer:
    version = r.str()
    if version not in _LAYERS or _LAYERS[version][0] != kind:
        raise r.fail(f"expected a {kind} layer, found {version!r}")
    return _LAYERS[version][1](r, version)


def _loss(r: Reader) -> Layer:
    version = r.str()
    if version == "loss_metric_":  # the oldest files: margin and threshold were fixed
        return Layer("loss_metric", {"margin": 0.1, "dist_thresh": 0.75})
    if version != "loss_metric_2":
        raise r.fail(f"expected loss_metric, found {version!r}")
    return Layer("loss_metric", {"margin": r.float(), "dist_thresh": r.float()})


def _input(r: Reader) -> Layer:
    version = r.str()
    if version != "input_rgb_image_sized":
        raise r.fail(f"expected input_rgb_image_sized, found {version!r}")
    means = [r.float() for _ in range(3)]  # red, green, blue averages subtracted from pixels
    return Layer("input_rgb_image_sized", {"nr": r.int(), "nc": r.int()},
                 {"mean_rgb": np.array(means, np.float32)})


def _training_state(r: Reader, n_tensors: int) -> None:
    """Setup flags and gradient/output buffers: saved by dlib, never used for inference."""
    for _ in range(3):
        r.bool()
    for _ in range(n_tensors):
        r.tensor()


def read_network(path: str | Path, chain: Sequence[str]) -> Network:
    """Read a loss_metric network whose wrappers, *from the input up*, are ``chain``: layer
    kinds, or :data:`TAG` / :data:`SKIP`. ``chain[0]`` is the layer right above the input."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DlibFormatError(f"{path}: cannot read dlib model ({exc.strerror})") from None
    r = Reader(data, str(path))
    if chain[0] in (TAG, SKIP):
        raise ValueError("the layer above the input must be a real layer")

    r.version([1], "loss layer")
    loss = _loss(r)
    # The wrappers' versions, outermost first: 1 for tags and skips, 1 or 2 for layers
    # (version 2 adds a params_grad tensor to the state written after the details).
    above = list(chain[1:])
    versions = [r.version([1] if kind in (TAG, SKIP) else [1, 2], f"{kind} wrapper")
                for kind in reversed(above)][::-1]
    input_version = r.version([2, 3], "input wrapper")
    net_input = _input(r)
    layers = [_layer(r, chain[0])]
    _training_state(r, 3)
    if input_version == 3:
        r.int()  # sample expansion factor (1 for image inputs)
    for kind, version in zip(above, versions, strict=True):
        if kind in (TAG, SKIP):
            continue
        layers.append(_layer(r, kind))
        _training_state(r, 3 if version == 2 else 2)
    if r.pos != len(data):
        raise r.fail(f"{len(data) - r.pos} unexpected trailing bytes")
    return Network(loss, net_input, layers)


__all__ = ["SKIP", "TAG", "DlibFormatError", "Layer", "Network", "Reader", "read_network"]
