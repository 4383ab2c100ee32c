"""One way in for every driver that swaps (convert, the preview, live, the web UI):
a model folder or a ``swapface export`` file, on PyTorch or ONNX Runtime.

``engine="auto"`` picks what measures faster. ``benchmarks/onnx_speed.py`` on this
project's 2-core AVX2 EPYC, machine otherwise idle (torch 2.13 CPU, onnxruntime 1.32, 2
threads each; ms per face, 64 px, mask head; "tuned" is :meth:`TorchModel.tune`, what
convert runs on a CPU; live runs native)::

    model        native b1 | tuned b1 | ORT b1 | tuned b8 | ORT b8 | export
    lightweight     10.4   |    9.8   |   3.6  |    3.6   |   2.6  | 0.2 s
    original       107.5   |  101.6   |  60.7  |   44.7   |  46.8  | 5.2 s
    resnet          35.1   |   36.3   |  20.4  |   18.9   |  14.5  | 0.8 s
    gan            109.2   |   97.5   |  67.6  |   60.0   |  50.6  | 5.4 s

ORT is 1.4–2.7× faster at batch 1 (live) for every model, and 1.2–1.4× at batch 8
(convert) for all but ``original``, where the two are level (0.96–1.06× over repeated
runs). (ORT's thread spinning, off here, gained ≤ 0.2 ms per face at batch 1 and lost
9 ms on ``original`` at batch 8.) So ``auto`` runs ORT on the CPU for jobs that repay a
model folder's export (cached per checkpoint, but paid once per new one): unbounded ones
(live) and those of
:data:`AUTO_EXPORT_MIN_FACES` faces or more (gan saves ~9 ms per face at batch 8 against a
5 s export: break-even near 570). Shorter jobs (the one-frame preview, short clips) run
torch. The choice never depends on whether a cache exists, so a command gives the same
output, bit for bit, whatever ran before it. A ``.onnx`` file always runs on ORT. On CUDA
``auto`` keeps torch (bf16 autocast; the onnxruntime installed here is the CPU build).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from swapface.core.errors import ConfigError, InputError
from swapface.swap.model import InferenceModel, load_model
from swapface.swap.onnx_model import OnnxModel, open_session, session_metadata

log = logging.getLogger(__name__)

ENGINES = ("auto", "torch", "onnx")
AUTO_EXPORT_MIN_FACES = 500  # see the module docstring


def check_model_path(path: Path) -> None:
    """A model folder or a file (an ONNX export) must be there; one clear line otherwise."""
    if not (Path(path).is_dir() or Path(path).is_file()):
        raise InputError(f"model folder not found: {path}")


def _warn_coverage(coverage: float | None, trained: float) -> None:
    if coverage is not None and abs(trained - coverage) > 1e-6:
        log.warning("--coverage %.3f differs from the %.3f the model was trained with; "
                    "the face will be cropped differently from training", coverage, trained)


def _onnx(session: Any, meta: dict[str, str], what: object, coverage: float | None,
          loader: Any = None) -> OnnxModel:
    _warn_coverage(coverage, float(meta.get("coverage", 0.625)))
    return OnnxModel(session, meta, what=what, coverage=coverage, loader=loader)


def load_inference(path: Path, engine: str = "auto", cpu: bool = False, coverage: float | None = None,
                   *, side: str = "b", faces: int | None = None) -> InferenceModel:
    """The model at ``path`` (a folder ``swapface train`` wrote, or a ``.onnx`` file) on ``engine``.

    ``side`` is the decoder the caller swaps with: a folder's ONNX export of it is made now
    (other sides on first use). ``faces`` is the job's size for ``auto`` (None: unbounded,
    as live is). A torch model comes back as :class:`TorchModel`, ready for ``tune`` and
    ``compile``; ONNX as :class:`OnnxModel`.
    """
    path = Path(path)
    if engine not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    check_model_path(path)
    if path.is_file():
        if engine == "torch":
            raise ConfigError(f"{path} is a file: --engine torch needs the model folder "
                              "(an ONNX export runs with --engine onnx or auto)")
        session = open_session(path, cpu)
        return _onnx(session, session_metadata(session, path), path, coverage)
    if engine == "torch":
        return load_model(path, cpu, coverage)
    from swapface.core.runtime import choose_device
    from swapface.swap.export import ExportError, cached_session

    if engine == "auto" and (choose_device(cpu) != "cpu"
                             or (faces is not None and faces < AUTO_EXPORT_MIN_FACES)):
        return load_model(path, cpu, coverage)
    try:
        session = cached_session(path, side, cpu)
    except ExportError as exc:
        if engine == "onnx":
            raise
        log.warning("running the model with PyTorch: %s", exc)
        return load_model(path, cpu, coverage)
    return _onnx(session, session_metadata(session, path), path, coverage,
                 lambda s: cached_session(path, s, cpu))
