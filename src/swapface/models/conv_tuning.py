"""Give each CPU convolution layer its fastest algorithm, found by timing (cudnn.benchmark for CPUs).

:func:`tune_convolutions` runs an example through a model to learn every ``nn.Conv2d``'s input
shape, times the algorithms of :mod:`cpu_conv` that apply (forward only for inference,
forward + backward for training) and installs the winner on the layer instance. Modules,
parameters and state-dict keys stay exactly as they were, so checkpoints are unaffected.
Timings are kept per machine in a small JSON file (the model folder's), so a resume or the
next convert with the same model does not time again.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from swapface.core.fileio import atomic_write_bytes
from swapface.models import cpu_conv

log = logging.getLogger(__name__)

ALGORITHMS = ("native", "channels_last", "gemm", "winograd2", "winograd4", "phase_winograd4")
TUNING_FILE = "conv_tuning.json"


class TunedForward:
    """Replaces one Conv2d instance's ``forward`` with an algorithm of :mod:`cpu_conv`.

    Falls back to PyTorch's own kernel wherever the algorithm does not apply: not on the CPU,
    under autocast, another dtype, or an input it cannot tile. ``frozen`` precomputes the
    transformed weights once (inference only: later weight updates would not be seen).
    """

    def __init__(self, conv: nn.Conv2d, algorithm: str, frozen: bool = False) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown convolution algorithm {algorithm!r}")
        self.conv, self.algorithm = conv, algorithm
        self.m = int(algorithm[-1]) if "winograd" in algorithm else 0
        self.phases = algorithm.startswith("phase_")
        self.weight: Tensor | None = None
        if frozen:
            with torch.no_grad():
                self.weight = self._prepared_weight(conv.weight.detach())

    def _prepared_weight(self, w: Tensor) -> Tensor | None:
        if self.phases:
            return cpu_conv.winograd_weight(cpu_conv.strided_winograd_weight(w), self.m)
        if self.m:
            return cpu_conv.winograd_weight(w, self.m)
        if self.algorithm == "gemm":
            return cpu_conv.gemm_weight(w).contiguous()
        if self.algorithm == "channels_last":
            return w.contiguous(memory_format=torch.channels_last)
        return None

    def __call__(self, x: Tensor) -> Tensor:
        c = self.conv
        if (x.device.type != "cpu" or x.dtype != torch.float32 or torch.is_autocast_enabled("cpu")
                or not algorithm_applies(c, self.algorithm, tuple(x.shape))):
            return nn.Conv2d.forward(c, x)
        if self.algorithm == "native":  # NCHW: a channels-last input would pick oneDNN's other path
            return c._conv_forward(x.contiguous(), c.weight, c.bias)
        if self.phases:
            return cpu_conv.strided_winograd_conv2d(x, c.weight, c.bias, self.m, self.weight)
        if self.m:
            return cpu_conv.winograd_conv2d(x, c.weight, c.bias, self.m, self.weight)
        if self.algorithm == "gemm":
            return cpu_conv.gemm_conv2d(x, c.weight, c.bias, c.stride, c.padding,  # type: ignore[arg-type]
                                        self.weight)
        return cpu_conv.channels_last_conv2d(x, c.weight, c.bias, c.stride, c.padding, c.dilation,
                                             c.groups, self.weight)


def install(conv: nn.Conv2d, algorithm: str, frozen: bool = False) -> None:
    conv.forward = TunedForward(conv, algorithm, frozen)  # type: ignore[method-assign]


def uninstall(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and isinstance(m.__dict__.get("forward"), TunedForward):
            del m.forward


def installed(module: nn.Module) -> dict[str, str]:
    """{layer name: algorithm} of the layers that carry a tuned forward."""
    return {name: m.__dict__["forward"].algorithm for name, m in module.named_modules()
            if isinstance(m.__dict__.get("forward"), TunedForward)}


def algorithm_applies(conv: nn.Conv2d, algorithm: str, shape: tuple[int, ...]) -> bool:
    """Whether ``algorithm`` computes ``conv`` exactly for an input of ``shape``."""
    if len(shape) != 4 or conv.padding_mode != "zeros":
        return algorithm == "native"
    if algorithm.startswith("phase_winograd"):
        return cpu_conv.strided_winograd_applies(conv.weight, conv.stride, conv.padding, conv.dilation,
                                                 conv.groups, shape[2], shape[3], int(algorithm[-1]))
    if algorithm.startswith("winograd"):
        return cpu_conv.winograd_applies(conv.weight, conv.stride, conv.padding, conv.dilation,
                                         conv.groups, shape[2], shape[3], int(algorithm[-1]))
    if algorithm == "gemm":
        return cpu_conv.gemm_applies(conv.padding, conv.dilation, conv.groups)
    return True


def candidates(conv: nn.Conv2d, shape: tuple[int, ...]) -> list[str]:
    return [a for a in ALGORITHMS if algorithm_applies(conv, a, shape)]


def time_algorithms(conv: nn.Conv2d, shape: tuple[int, ...], training: bool,
                    input_grad: bool) -> dict[str, float]:
    """Milliseconds per call of each applicable algorithm on a copy of ``conv``.

    One warm-up then one timed run each (the layers that matter take tens of ms or more),
    and a second for those within 15 % of the best; an algorithm whose warm-up is already 2×
    the best timed one is not timed further.
    """
    probe = copy.deepcopy(conv)
    uninstall(probe)
    x = torch.randn(shape, requires_grad=training and input_grad)
    grad = torch.randn_like(nn.Conv2d.forward(probe, x.detach())) if training else None
    times: dict[str, float] = {}
    for algorithm in candidates(conv, shape):
        fn = TunedForward(probe, algorithm, frozen=not training)
        warm = _run_once(fn, x, grad)
        if times and warm > 2 * min(times.values()):
            times[algorithm] = warm
            continue
        times[algorithm] = _run_once(fn, x, grad)
    best = min(times.values(), default=0.0)
    for algorithm in [a for a, t in times.items() if t <= 1.15 * best]:  # close calls: once more
        fn = TunedForward(probe, algorithm, frozen=not training)
        times[algorithm] = min(times[algorithm], _run_once(fn, x, grad))
    return times


def _run_once(fn: TunedForward, x: Tensor, grad: Tensor | None) -> float:
    """Milliseconds for one forward (+ backward when ``grad`` is given)."""
    start = time.perf_counter()
    if grad is not None:
        fn(x).backward(grad)
    else:
        with torch.no_grad():
            fn(x)
    return (time.perf_counter() - start) * 1000


def _record_inputs(module: nn.Module, run_example: Callable[[], Any],
                   training: bool) -> dict[str, tuple[nn.Conv2d, tuple[int, ...], bool]]:
    seen: dict[str, tuple[nn.Conv2d, tuple[int, ...], bool]] = {}
    hooks = []
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d):
            def hook(mod: nn.Module, args: tuple[Any, ...], name: str = name) -> None:
                x = args[0]
                seen.setdefault(name, (mod, tuple(x.shape), bool(x.requires_grad)))  # type: ignore[arg-type]
            hooks.append(m.register_forward_pre_hook(hook))
    try:
        with torch.set_grad_enabled(training):
            run_example()
    finally:
        for h in hooks:
            h.remove()
    return seen


@cache
def machine_id() -> str:
    """What makes timings comparable: CPU model, threads, torch version."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = os.uname().machine
    return f"{model} | {torch.get_num_threads()} threads | torch {torch.__version__}"


def _layer_key(conv: nn.Conv2d, shape: tuple[int, ...], training: bool, input_grad: bool) -> str:
    mode = ("train" if input_grad else "train-first") if training else "infer"
    return (f"{conv.in_channels}>{conv.out_channels} k{tuple(conv.kernel_size)} s{tuple(conv.stride)} "
            f"p{conv.padding} d{tuple(conv.dilation)} g{conv.groups} in{tuple(shape)} {mode}")


def _valid_timings(entry: object) -> bool:
    return (isinstance(entry, dict) and bool(entry) and all(
        k in ALGORITHMS and isinstance(v, int | float) and not isinstance(v, bool)
        for k, v in entry.items()))


def _load(path: Path | None) -> dict[str, Any]:
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(path: Path | None, data: dict[str, Any]) -> None:
    if path is None:
        return
    try:
        atomic_write_bytes(path, json.dumps(data, indent=1, sort_keys=True).encode())
    except OSError as exc:  # a read-only model folder only costs a re-tune next time
        log.debug("could not save convolution timings to %s: %s", path, exc)


def tune_convolutions(module: nn.Module, run_example: Callable[[], Any], *, training: bool,
                      frozen: bool = False, cache_file: Path | None = None) -> dict[str, str]:
    """Install the fastest algorithm on every Conv2d ``run_example()`` reaches; {name: algorithm}.

    ``training`` times forward + backward, otherwise forward only; ``frozen`` (inference
    only) precomputes the transformed weights. Only for fp32 on the CPU — elsewhere every
    layer keeps PyTorch's kernel.
    """
    uninstall(module)
    inputs = _record_inputs(module, run_example, training)
    stored = _load(cache_file)
    if not isinstance(stored.get(machine_id()), dict):
        stored[machine_id()] = {}
    timings = stored[machine_id()]
    chosen: dict[str, str] = {}
    changed = False
    for name, (conv, shape, input_grad) in inputs.items():
        key = _layer_key(conv, shape, training, input_grad)
        if not _valid_timings(timings.get(key)):  # new layer shape, or a damaged entry
            timings[key] = {k: round(v, 2) for k, v in
                            time_algorithms(conv, shape, training, input_grad).items()}
            changed = True
        best = min(timings[key], key=timings[key].get) if timings[key] else "native"
        install(conv, best, frozen)  # "native" too: it pins the NCHW layout it was timed with
        chosen[name] = best
    if changed:
        _save(cache_file, stored)
    log.info("convolution algorithms: %s", ", ".join(f"{n}={a}" for n, a in chosen.items()))
    return chosen
