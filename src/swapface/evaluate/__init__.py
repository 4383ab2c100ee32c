"""Evaluate stage: how good is a swap? (``swapface evaluate``)

Identity (dlib descriptors), head pose, expression, temporal stability and, with a model,
reconstruction — as JSON and a report folder. Names are imported lazily so
``swapface.evaluate.<submodule>`` stays cheap to import.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EvaluateConfig": "swapface.evaluate.config",
    "EvaluateResult": "swapface.evaluate.run",
    "run_evaluate": "swapface.evaluate.run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'swapface.evaluate' has no attribute {name!r}")
