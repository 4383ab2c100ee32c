"""Identity: does the swapped face look like B, and no longer like A?

dlib's 128-d ResNet descriptor (the one extract stores with ``--identity``) of each swapped
face is compared with the mean descriptor of B's reference faces and with the descriptor
of the source face in the same frame (A as it was). dlib calls two faces the same person
below a Euclidean distance of 0.6.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from swapface.core.errors import InputError
from swapface.faces.finder import FaceFinder, FoundFace
from swapface.faces.identity import SAME_PERSON, IdentityEncoder, describe_largest
from swapface.faces.meta import FaceFileMeta
from swapface.media.source import open_source


def _metadata_landmarks(path: Path | None, image: np.ndarray) -> np.ndarray | None:
    """An extracted face's landmarks in its own pixels, from the metadata extract embeds."""
    meta = None if path is None else FaceFileMeta.read(path)
    return None if meta is None else meta.aligned_landmarks(image.shape[0])


@dataclass
class IdentityReference:
    """B's identity: the mean of its reference faces' descriptors."""

    descriptors: np.ndarray  # (n, 128)
    source: str

    @property
    def mean(self) -> np.ndarray:
        return self.descriptors.mean(axis=0)

    def distance(self, descriptor: np.ndarray) -> float:
        return float(np.linalg.norm(self.mean - descriptor))

    @classmethod
    def load(cls, path: Path, finder: FaceFinder, encoder: IdentityEncoder,
             limit: int = 100) -> IdentityReference:
        """Descriptors of up to ``limit`` evenly spaced faces of a folder, image or video.

        Extracted faces (PNG with swapface metadata) use their stored landmarks; other
        images and video frames are detected, and their largest face is used.
        """
        source = open_source(path)
        if source.count == 0:
            raise InputError(f"no images in the B reference folder {path}")
        picks = set(np.linspace(0, source.count - 1, min(limit, source.count)).round().astype(int))
        skip = {i for i in range(source.count) if i not in picks}
        out = []
        for frame in source.frames(skip=skip):
            lm = _metadata_landmarks(frame.path, frame.image)
            if lm is not None:
                out.append(encoder.encode(frame.image, lm))
                continue
            desc = describe_largest(frame.image, finder, encoder)
            if desc is not None:
                out.append(desc)
        if not out:
            raise InputError(f"no face found in the B reference {path}")
        return cls(np.stack(out), str(path))


@dataclass
class IdentityFigures:
    faces: int  # swapped faces scored
    references_b: int
    threshold: float
    closer_to_b: float | None  # fraction of swapped faces nearer B's mean than the source face
    under_threshold: float | None  # fraction of swapped faces within ``threshold`` of B's mean
    mean_distance_b: float | None  # swapped face ↔ B's mean
    mean_distance_a: float | None  # swapped face ↔ the source face of the same frame
    source_distance_b: float | None  # source face ↔ B's mean: what "no swap at all" scores


@dataclass
class IdentityMetric:
    encoder: IdentityEncoder
    reference: IdentityReference
    to_b: list[float] = field(default_factory=list)
    to_a: list[float] = field(default_factory=list)
    source_to_b: list[float] = field(default_factory=list)

    def add(self, source_image: np.ndarray, source: FoundFace, swapped_image: np.ndarray,
            swapped: FoundFace) -> tuple[float, float]:
        """Score one face pair; returns (distance to B, distance to A)."""
        a = self.encoder.encode(source_image, source.landmarks)
        s = self.encoder.encode(swapped_image, swapped.landmarks)
        to_b, to_a = self.reference.distance(s), float(np.linalg.norm(s - a))
        self.to_b.append(to_b)
        self.to_a.append(to_a)
        self.source_to_b.append(self.reference.distance(a))
        return to_b, to_a

    def figures(self) -> IdentityFigures:
        b, a = np.asarray(self.to_b), np.asarray(self.to_a)
        n = len(b)
        return IdentityFigures(
            faces=n, references_b=len(self.reference.descriptors), threshold=SAME_PERSON,
            closer_to_b=float(np.mean(b < a)) if n else None,
            under_threshold=float(np.mean(b < SAME_PERSON)) if n else None,
            mean_distance_b=float(b.mean()) if n else None,
            mean_distance_a=float(a.mean()) if n else None,
            source_distance_b=float(np.mean(self.source_to_b)) if n else None,
        )
