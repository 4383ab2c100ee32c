"""Where and how work runs: device, precision, process group, and process-wide settings.

Library code asks this module which device and precision to use and never changes the
process on its own. The process-wide settings (malloc keeping freed memory, idle OpenMP
threads sleeping instead of spinning, thread counts, signal handlers) are applied by the
drivers — the ``swapface`` commands call :func:`configure_process` before anything heavy
is imported, and the tests do the same — and are opt-in for API callers.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swapface.core.progress import CancelToken

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ device and precision
@cache
def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX-BF16: bf16 autocast speeds training up there and slows it elsewhere."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def available_memory() -> int:
    """Bytes of RAM this process may still use: MemAvailable, capped by a cgroup limit
    (containers, CI runners) when there is one; 4 GiB when neither can be read."""
    avail = 4 * 1024**3
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit != "max":
            avail = min(avail, max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return avail


def memory_budget(fraction: float, ceiling: int, floor: int = 64 * 1024**2) -> int:
    """``fraction`` of the available RAM, between ``floor`` and ``ceiling`` bytes: how much
    one cache or queue may hold, so that a big machine is used and a small one is not
    swapped to death."""
    return max(floor, min(ceiling, int(available_memory() * fraction)))


def cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device (never imports torch needlessly)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def choose_device(cpu: bool = False, index: int = 0) -> str:
    """``"cuda:<index>"`` when CUDA is present and not refused, else ``"cpu"``."""
    return f"cuda:{index}" if not cpu and cuda_available() else "cpu"


def autocast_dtype(device: str, precision: str = "auto") -> torch.dtype | None:
    """bf16 or None (fp32) for ``precision`` in auto/fp32/bf16 on ``device``.

    bf16 autocast on a CPU without native bf16 falls back to slow kernels (measured 10–25×
    slower on AVX2), so ``auto`` picks it on CUDA and where the CPU has it.
    """
    import torch

    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
    on_cuda = device.startswith("cuda")
    if precision == "auto":
        bf16 = torch.cuda.is_bf16_supported() if on_cuda else cpu_has_native_bf16()
    else:
        bf16 = precision == "bf16"
    return torch.bfloat16 if bf16 else None


@dataclass
class Runtime:
    """A training or inference process: its device, autocast dtype and place in a DDP group."""

    device: torch.device
    dtype: torch.dtype | None  # autocast dtype, None = fp32
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        import torch

        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


def setup_runtime(cpu: bool, precision: str) -> Runtime:
    """Device and precision; joins the process group when launched by torchrun (DDP)."""
    import torch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(choose_device(cpu, local))
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Runtime(device, autocast_dtype(str(device), precision), rank, world, local)


def shutdown_runtime(rt: Runtime) -> None:
    import torch

    if rt.distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


# ------------------------------------------------------------------ process-wide settings
_M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
_M_MMAP_MAX = -4


@cache
def retain_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory for reuse; False where that is not possible.

    glibc serves large blocks (every big tensor) with mmap and unmaps them when they are
    freed, so each training step or model batch faults all its activation memory in again:
    on the project's 2-core CPU that was 1.4–1.9 million page faults and ~4 s of system time
    per ``original`` training step (batch 64) — a third of the step. With mmap off and
    trimming disabled, freed blocks are reused: after two or three steps of heap growth, 0
    faults and ~5.8 s instead of 8–10 s per step. The cost: peak memory 4.9 instead of 4.1 GB
    for that run, kept until the process exits — which suits a training or convert run.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    # -1: never trim (mallopt(3)); any finite threshold is passed once a run has freed more
    ok = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, -1))
    log.debug("malloc keeps freed memory: %s", ok)
    return ok


@dataclass(frozen=True)
class ProcessSettings:
    retain_memory: bool = True  # see retain_freed_memory
    # Idle OpenMP threads sleep instead of spinning, so decode/blend/encode threads get those
    # cycles (−8 ms CPU per frame, +5 % frames/s in convert on the 2-core CPU). Read by
    # OpenMP when torch loads it: only effective before the first ``import torch``.
    passive_omp: bool = True
    threads: int | None = None  # torch intra-op threads (None: torch's default, one per core)


def configure_process(settings: ProcessSettings | None = None) -> dict[str, Any]:
    """Apply ``settings`` to this process; returns what took effect. Call it early, once."""
    settings = settings or ProcessSettings()
    applied: dict[str, Any] = {}
    if settings.passive_omp:
        if "torch" in sys.modules:
            log.debug("torch is loaded already: OMP_WAIT_POLICY would have no effect")
        else:
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        applied["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
    if settings.retain_memory:
        applied["retain_memory"] = retain_freed_memory()
    if settings.threads is not None:
        import torch

        torch.set_num_threads(settings.threads)
        applied["threads"] = settings.threads
    return applied


def configure_worker() -> None:
    """A worker process of a pool with one worker per core: one thread per library.

    Library thread pools (OpenCV, OpenMP, torch) would only fight over the cores otherwise.
    """
    import cv2

    cv2.setNumThreads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:  # only neural plugins load torch
        sys.modules["torch"].set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C


@contextlib.contextmanager
def cancel_on_signals(token: CancelToken) -> Iterator[CancelToken]:
    """While inside, SIGINT and SIGTERM cancel ``token`` (a second SIGINT interrupts at once).

    Only the main thread can own signal handlers; elsewhere this is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield token
        return
    previous: dict[int, Any] = {}

    def handler(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if token.cancelled and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.warning("%s received: finishing the current step and saving", name)
        token.cancel(name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield token
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
