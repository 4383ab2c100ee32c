"""128-d dlib face descriptors and the reference filter built on them."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from swapface.core.errors import InputError
from swapface.core.images import ImageReadError, read_image
from swapface.faces.bundled import dlib_model_path

if TYPE_CHECKING:
    from swapface.faces.finder import FaceFinder, FoundFace

SAME_PERSON = 0.6  # dlib's published threshold for its ResNet descriptor (99.38 % on LFW)


class IdentityEncoder:
    """dlib's ResNet face descriptor, computed from the 68 landmarks (no re-detection).

    dlib cuts the 150 px chip (its own alignment, so descriptors stay dlib's); the network
    runs in PyTorch (:mod:`swapface.faces.dlib_resnet`, the same weights, equal to dlib to
    ~1e-6): on a 2-core CPU 8× faster one face at a time and 25× in batches of 32
    (``benchmarks/identity_speed.py``), and on CUDA when asked.
    """

    def __init__(self, device: str = "cpu") -> None:
        import dlib

        from swapface.faces.dlib_resnet import load_dlib_resnet

        self._dlib = dlib
        self._net = load_dlib_resnet(dlib_model_path("dlib_face_recognition_resnet_model_v1.dat"),
                                     device=device)

    def chip(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The 150 px RGB chip dlib's descriptor is computed from."""
        dlib = self._dlib
        pts = [dlib.point(round(x), round(y)) for x, y in landmarks]
        xs, ys = landmarks[:, 0], landmarks[:, 1]
        rect = dlib.rectangle(int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
        shape = dlib.full_object_detection(rect, pts)
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return np.asarray(dlib.get_face_chip(rgb, shape, size=150, padding=0.25))

    def encode_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """(n, 128) descriptors of 150 px RGB chips, in one batch."""
        import torch

        if not chips:
            return np.zeros((0, 128), np.float32)
        with torch.inference_mode():
            out = self._net(np.stack(chips))
        return out.float().cpu().numpy().astype(np.float32)

    def encode(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return self.encode_chips([self.chip(image, landmarks)])[0]

    def encode_many(self, image: np.ndarray, landmarks: Sequence[np.ndarray]) -> np.ndarray:
        """(n, 128): every face of one frame in one batch."""
        return self.encode_chips([self.chip(image, lm) for lm in landmarks])


@functools.cache
def shared_encoder() -> IdentityEncoder:
    """One dlib ResNet per process: loading it costs more than describing a few faces."""
    return IdentityEncoder()


def largest(faces: Sequence[FoundFace]) -> FoundFace | None:
    return max(faces, key=lambda f: f.detection.width * f.detection.height, default=None)


def describe_largest(image: np.ndarray, finder: FaceFinder, encoder: IdentityEncoder) -> np.ndarray | None:
    """Descriptor of the largest face in a photo, or None when there is no face."""
    finder.reset()  # unrelated images: never track from one to the next
    face = largest(finder.find(image))
    return None if face is None else encoder.encode(image, face.landmarks)


def describe_references(paths: Sequence[Path], finder: FaceFinder,
                        encoder: IdentityEncoder) -> np.ndarray:
    """(n, 128) descriptors of the largest face of each reference photo."""
    out = [np.zeros((0, 128), np.float32)]
    for path in paths:
        try:
            image = read_image(path)
        except ImageReadError as exc:
            raise InputError(f"reference image: {exc}") from exc
        descriptor = describe_largest(image, finder, encoder)
        if descriptor is None:
            raise InputError(f"no face found in reference image {path}")
        out.append(descriptor[None])
    return np.concatenate(out)


@dataclass
class IdentityFilter:
    """Keep faces near any ``keep`` reference (if given) and far from every ``drop`` one."""

    keep: np.ndarray  # (n, 128)
    drop: np.ndarray  # (m, 128)
    threshold: float = SAME_PERSON

    @classmethod
    def none(cls) -> IdentityFilter:
        """A filter that accepts every face."""
        return cls(np.zeros((0, 128), np.float32), np.zeros((0, 128), np.float32))

    @classmethod
    def from_references(cls, keep: Sequence[Path], drop: Sequence[Path], finder: FaceFinder,
                        encoder: IdentityEncoder, threshold: float = SAME_PERSON) -> IdentityFilter:
        """Keep faces like any of the ``keep`` photos (if any), drop those like a ``drop`` photo."""
        return cls(describe_references(keep, finder, encoder),
                   describe_references(drop, finder, encoder), threshold)

    @property
    def active(self) -> bool:
        return len(self.keep) > 0 or len(self.drop) > 0

    def accepts(self, descriptor: np.ndarray) -> bool:
        if len(self.keep) and np.linalg.norm(self.keep - descriptor, axis=1).min() > self.threshold:
            return False
        return not (
            len(self.drop) and np.linalg.norm(self.drop - descriptor, axis=1).min() <= self.threshold
        )
