"""An :class:`~swapface.swap.model.InferenceModel` on ONNX Runtime: a ``swapface export`` file.

The graph (see :mod:`swapface.swap.export`) is the model's encoder and one decoder, RGB
float NCHW in [0, 1] in, face (and mask) out; its ``metadata_props`` carry everything the
swap engine needs (sizes, coverage, side, mask head), so a ``.onnx`` file swaps on its own,
without the PyTorch model folder — and without importing torch.

Conventions match :meth:`TorchModel.infer <swapface.swap.model.TorchModel.infer>` exactly:
BGR uint8 crops in, BGR uint8 faces (rounded as ``x·255 + 0.5`` truncated) and float masks
out, so the two engines are interchangeable under :class:`~swapface.swap.FrameSwapper`.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from swapface.core.errors import InputError

log = logging.getLogger(__name__)

FORMAT_KEY = "swapface_onnx"  # present in every file swapface export writes
FORMAT_VERSION = "1"
INPUT_NAME, FACE_OUTPUT, MASK_OUTPUT = "crops", "face", "mask"

# side → an ORT session of that side's graph (the model-folder engine exports sides lazily)
SideLoader = Callable[[str], Any]


def intra_op_threads() -> int:
    """ONNX Runtime's intra-op threads: the count torch computes with in this process.

    That is :class:`~swapface.core.runtime.ProcessSettings`'s ``threads`` once
    :func:`~swapface.core.runtime.configure_process` applied it, else torch's default (one
    per physical core). Without torch loaded, 0: ORT's own default, also one per physical
    core. Never more: decode, blend and encode threads need the remaining cycles.
    """
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else 0


def providers(cpu: bool) -> list[str]:
    """CUDA first when ORT has it and it is not refused; the CPU always (the fallback)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    chosen = ["CUDAExecutionProvider"] if not cpu and "CUDAExecutionProvider" in available else []
    return [*chosen, "CPUExecutionProvider"]


def ort_errors() -> tuple[type[Exception], ...]:
    """What ONNX Runtime raises for bad models and failed runs: its own exception types
    (InvalidProtobuf, Fail, ...: direct Exception subclasses, not RuntimeError) and the
    Python errors its bindings raise."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    own = (o for o in vars(state).values() if isinstance(o, type) and issubclass(o, Exception))
    return (RuntimeError, OSError, ValueError, *own)


def open_session(source: bytes | Path, cpu: bool = False, threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` of ``source`` (file or serialized model).

    Spinning is off: idle ORT threads sleep, as torch's OpenMP threads do here
    (``OMP_WAIT_POLICY=PASSIVE``), so convert's decode/blend/encode threads get those cycles.
    Unreadable or corrupt files raise :class:`InputError`.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads() if threads is None else threads
    options.inter_op_num_threads = 1  # the graph is one chain: nothing runs in parallel
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 4  # fatal only: errors reach the caller as exceptions
    what = source if isinstance(source, Path) else "the exported model"
    if isinstance(source, Path) and not source.is_file():
        raise InputError(f"ONNX model not found: {source}")
    try:
        model = str(source) if isinstance(source, Path) else source
        return ort.InferenceSession(model, options, providers=providers(cpu))
    except ort_errors() as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{what} is not a readable ONNX model ({detail[:200]})") from None


def session_metadata(session: Any, what: object) -> dict[str, str]:
    """The swapface metadata of a session's model; InputError for other ONNX files."""
    meta = dict(session.get_modelmeta().custom_metadata_map)
    if meta.get(FORMAT_KEY) != FORMAT_VERSION:
        raise InputError(f"{what} is not a swapface ONNX export (no {FORMAT_KEY} metadata); "
                         "write one with `swapface export -m MODEL_DIR -o model.onnx`")
    return meta


def _int(meta: Mapping[str, str], key: str, what: object) -> int:
    try:
        return int(meta[key])
    except (KeyError, ValueError):
        raise InputError(f"{what}: metadata {key!r} is missing or not a number") from None


class OnnxModel:
    """Encoder + decoder graphs on ONNX Runtime (CPU, or CUDA where ORT has it).

    From a ``.onnx`` file, ``sides`` is the one decoder it holds. From a model folder
    (:func:`swapface.swap.loading.load_inference`), ``sides`` are all the model's decoders:
    a side not yet in ``sessions`` is exported on first use by ``loader``.
    """

    def __init__(self, session: Any, meta: Mapping[str, str], *, what: object = "the ONNX model",
                 coverage: float | None = None, loader: SideLoader | None = None) -> None:
        self.meta = dict(meta)
        side = self.meta.get("side", "")
        self.input_size = _int(meta, "input_size", what)
        self.output_size = _int(meta, "output_size", what)
        self.coverage = float(coverage) if coverage is not None else float(meta.get("coverage", 0.625))
        self.has_mask = meta.get("has_mask") == "true"
        self.iteration = int(meta.get("iteration", "0") or 0)
        self.name = meta.get("model_name", "")
        all_sides = tuple(s for s in meta.get("sides", side).split(",") if s)
        self.sides = all_sides if loader is not None else (side,)
        self.device = "cuda" if session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self.sessions: dict[str, Any] = {side: session}
        self._loader, self._what = loader, what
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path, cpu: bool = False, coverage: float | None = None,
             threads: int | None = None) -> OnnxModel:
        """A ``swapface export`` file, ready to infer."""
        session = open_session(Path(path), cpu, threads)
        return cls(session, session_metadata(session, path), what=path, coverage=coverage)

    def _session(self, side: str) -> Any:
        if side not in self.sides:
            raise ValueError(f"{self._what} holds decoder(s) {', '.join(self.sides)}, not {side!r}"
                             " (export that side with swapface export --side)")
        with self._lock:  # the web UI's previews may ask for a new side from two threads
            if side not in self.sessions:
                assert self._loader is not None
                self.sessions[side] = self._loader(side)
            return self.sessions[side]

    def infer(self, crops: Sequence[np.ndarray], side: str) -> tuple[np.ndarray, np.ndarray | None]:
        session = self._session(side)
        # BGR uint8 NHWC → RGB float NCHW in [0, 1], contiguous (what the graph was traced with)
        x = np.ascontiguousarray(np.stack(crops)[..., ::-1].transpose(0, 3, 1, 2), np.float32)
        x /= np.float32(255.0)  # a division, as TorchModel's: bit-identical inputs
        names = [FACE_OUTPUT, MASK_OUTPUT] if self.has_mask else [FACE_OUTPUT]
        outputs = session.run(names, {INPUT_NAME: x})
        rgb = np.clip(outputs[0], 0.0, 1.0)
        faces = (rgb * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)
        faces = np.ascontiguousarray(faces.transpose(0, 2, 3, 1)[..., ::-1])
        masks = np.clip(outputs[1][:, 0], 0.0, 1.0) if self.has_mask else None
        return faces, masks
