"""Which faces a model folder was trained on, checked when training resumes.

A resume with ``-A`` and ``-B`` exchanged retrains each decoder on the other person and
silently ruins the model; a resume on unrelated folders turns a model into another one. The
first run records a sample of each side's face names (``faces.json``); a resume compares
the new folders with it by overlap of names (extract names faces after their source frame,
so another video shares none), not by path: a folder moved or re-extracted still matches.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from swapface.core.errors import ConfigError
from swapface.core.fileio import atomic_write_bytes

FACES_JSON = "faces.json"
SAMPLE = 2000  # names kept per side: enough to tell folders apart, small on disk


def _sample(names: list[str]) -> list[str]:
    names = sorted(names)
    step = max(1, len(names) // SAMPLE)
    return names[::step][:SAMPLE]


def _overlap(recorded: list[str], names: set[str]) -> float:
    return sum(n in names for n in recorded) / len(recorded) if recorded else 0.0


def check_training_faces(model_dir: Path, faces_a: Path, names_a: list[str], faces_b: Path,
                         names_b: list[str], *, resuming: bool, allow_new: bool) -> None:
    """Refuse a resume on swapped or unrelated face folders; record the folders otherwise."""
    path = model_dir / FACES_JSON
    record: dict[str, Any] = {
        "a": {"folder": str(faces_a.resolve()), "faces": len(names_a), "sample": _sample(names_a)},
        "b": {"folder": str(faces_b.resolve()), "faces": len(names_b), "sample": _sample(names_b)},
    }
    try:
        before = json.loads(path.read_text()) if resuming and path.is_file() else None
    except (OSError, ValueError):
        before = None  # damaged: nothing to compare with, rewritten below
    if isinstance(before, dict) and not allow_new:
        old_a, old_b = (before.get(s, {}).get("sample") or [] for s in "ab")
        a, b = set(names_a), set(names_b)
        aa, ab, ba, bb = _overlap(old_a, a), _overlap(old_b, a), _overlap(old_a, b), _overlap(old_b, b)
        if ab > aa and ba > bb:
            raise ConfigError(
                f"-A and -B are swapped: {model_dir} was trained with A = "
                f"{before['a'].get('folder')} and B = {before['b'].get('folder')}; resuming this "
                "way would retrain each decoder on the other person. Swap them back")
        for side, folder, same in (("A", faces_a, aa), ("B", faces_b, bb)):
            if same == 0.0:
                was = before.get(side.lower(), {}).get("folder", "the recorded folder")
                raise ConfigError(
                    f"-{side} {folder} shares no face with {was}, which {model_dir} was trained "
                    "on; use a new model folder, or --new-faces to go on training on these faces")
    atomic_write_bytes(path, json.dumps(record, indent=1).encode())
