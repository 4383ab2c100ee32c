"""The detections JSON: one entry per frame, each object's class, score, box and landmarks.

``{"input", "kind", "fps", "detectors", "counts", "frames": [{"index", "name", "time",
"width", "height", "objects": [{"class", "score", "box": [l, t, r, b], "landmarks"?,
"detector"}]}]}`` — boxes and landmarks in the frame's pixels.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swapface.core.fileio import atomic_write_bytes
from swapface.objects.base import ObjectDetection


@dataclass
class DetectionReport:
    input: str
    kind: str
    detectors: list[str]
    fps: float | None = None
    frames: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, index: int, name: str, time: float | None, shape: tuple[int, ...],
            objects: Sequence[ObjectDetection]) -> None:
        self.counts.update(o.label for o in objects)
        self.frames.append({"index": index, "name": name, "time": time, "width": int(shape[1]),
                            "height": int(shape[0]), "objects": [o.to_dict() for o in objects]})

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "kind": self.kind, "fps": self.fps, "detectors": self.detectors,
                "counts": dict(sorted(self.counts.items())), "frames": self.frames}

    def write(self, path: Path) -> None:
        """Atomically: a reader never sees half a file."""
        doc = self.to_dict()
        frames = doc.pop("frames")
        head = json.dumps(doc, indent=1)[:-2]  # without its closing "\n}"
        # One frame per line: a long video stays readable with grep, head and jq alike.
        body = ",\n".join(json.dumps(f, separators=(",", ":")) for f in frames)
        text = f'{head},\n "frames": [\n{body}\n ]\n}}\n' if frames else f'{head},\n "frames": []\n}}\n'
        atomic_write_bytes(path, text.encode("utf-8"))
