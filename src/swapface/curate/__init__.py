"""Curate stage: sort and group extracted faces (``swapface sort``).

Names are imported lazily so ``swapface.curate.<submodule>`` stays cheap to import.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SORT_METHODS": "swapface.curate.features",
    "SortConfig": "swapface.curate.config",
    "SortSummary": "swapface.curate.sort",
    "UndoSummary": "swapface.curate.sort",
    "sort_faces": "swapface.curate.sort",
    "undo_sort": "swapface.curate.sort",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'swapface.curate' has no attribute {name!r}")
