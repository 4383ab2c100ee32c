"""Landmark-hull face masks (``components``, ``extended``) and their compact storage.

Masks are drawn in the aligned face space at :data:`MASK_SIZE` px and stored compressed
together with the affine that maps frame pixels into that space, so any later stage can
warp them to any face size or back into the frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from swapface.align.transform import alignment_matrix, transform_points
from swapface.core.images import header_size

MASK_SIZE = 256
# Masks are stored with more padding than faces so a turned head's jaw is never clipped.
MASK_FACE_SPAN = 0.5
MASK_TYPES = ("components", "extended")


def _components(lm: np.ndarray) -> list[np.ndarray]:
    """Convex parts whose union covers jaw, cheeks, nose, eyes and brows."""
    chin = lm[8:9]
    return [
        np.concatenate([lm[0:9], lm[17:18]]),  # right jaw
        np.concatenate([lm[8:17], lm[26:27]]),  # left jaw
        np.concatenate([lm[17:20], chin]),  # right cheek
        np.concatenate([lm[24:27], chin]),  # left cheek
        np.concatenate([lm[19:25], chin]),  # nose ridge
        np.concatenate([lm[17:22], lm[27:28], lm[31:36], chin]),  # right eye
        np.concatenate([lm[22:27], lm[27:28], lm[31:36], chin]),  # left eye
        np.concatenate([lm[27:31], lm[31:36]]),  # nose
    ]


def _raise_brows(lm: np.ndarray) -> np.ndarray:
    """Move the eyebrows up by half their distance to the eyes so the hull takes in the forehead."""
    lm = lm.copy()
    mid_r = (lm[36] + lm[0]) / 2
    mid_l = (lm[16] + lm[45]) / 2
    below_r = np.stack([mid_r, lm[36], lm[37], lm[38], lm[39]])
    below_l = np.stack([lm[42], lm[43], lm[44], lm[45], mid_l])
    lm[17:22] += (lm[17:22] - below_r) / 2
    lm[22:27] += (lm[22:27] - below_l) / 2
    return lm


_PARTS: dict[str, Callable[[np.ndarray], list[np.ndarray]]] = {
    "components": _components,
    "extended": lambda lm: _components(_raise_brows(lm)),
}


def draw_mask(landmarks: np.ndarray, shape: tuple[int, int], kind: str = "extended") -> np.ndarray:
    """uint8 mask (0/255) of ``shape`` (h, w) from 68 landmarks already in that image's space."""
    if kind not in _PARTS:
        raise ValueError(f"unknown mask type {kind!r}; choose from {', '.join(MASK_TYPES)}")
    mask = np.zeros(shape, dtype=np.uint8)
    lm = np.asarray(landmarks, dtype=np.float64)
    for part in _PARTS[kind](lm):
        hull = cv2.convexHull(np.round(part * 16).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_AA, shift=4)
    return mask


@dataclass
class StoredMask:
    """A mask in aligned space (``MASK_SIZE`` px, ``MASK_FACE_SPAN``) plus its frame → mask affine."""

    kind: str
    matrix: np.ndarray  # 2×3, frame pixels → mask pixels
    data: bytes  # PNG-compressed uint8 MASK_SIZE×MASK_SIZE

    def decode(self) -> np.ndarray:
        # A store received from someone else may hold any PNG: look at its header first.
        size = header_size(self.data[:64])
        if size is None or size[0] * size[1] > (4 * MASK_SIZE) ** 2:
            raise ValueError(f"stored mask is not a mask PNG (size {size})")
        mask = cv2.imdecode(np.frombuffer(self.data, np.uint8), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise ValueError("corrupt stored mask")
        return mask

    def for_face(self, face_matrix: np.ndarray, size: int) -> np.ndarray:
        """The mask warped into a face image aligned by ``face_matrix`` at ``size`` px."""
        to_frame = np.vstack([cv2.invertAffineTransform(self.matrix), [0, 0, 1]])
        full = np.vstack([np.asarray(face_matrix, np.float64), [0, 0, 1]]) @ to_frame
        return cv2.warpAffine(self.decode(), full[:2], (size, size), flags=cv2.INTER_LINEAR)


def build_mask(landmarks: np.ndarray, kind: str) -> StoredMask:
    matrix = alignment_matrix(landmarks, MASK_SIZE, MASK_FACE_SPAN)
    mask = draw_mask(transform_points(landmarks, matrix), (MASK_SIZE, MASK_SIZE), kind)
    ok, buf = cv2.imencode(".png", mask)
    if not ok:
        raise RuntimeError("mask encoding failed")
    return StoredMask(kind, matrix, buf.tobytes())
