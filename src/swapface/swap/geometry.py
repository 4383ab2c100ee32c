"""The geometry between frame pixels and model pixels.

Each stored face is cropped straight from the frame into the model's input with one
``warpAffine``: the centred ``coverage`` window of the aligned face (the crop the model was
trained on) mapped to model pixels. The output is pasted back through the same mapping.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from swapface.align.records import FaceRecord
from swapface.swap.masks import build, centre_window, window_matrix


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """2×3 affine ``outer ∘ inner``."""
    o = np.vstack([np.asarray(outer, np.float64), [0.0, 0.0, 1.0]])
    i = np.vstack([np.asarray(inner, np.float64), [0.0, 0.0, 1.0]])
    return (o @ i)[:2]


def model_matrix(face: FaceRecord, coverage: float, model_size: int) -> np.ndarray:
    """Frame → model pixels: the centred ``coverage`` window of the aligned face at ``model_size``."""
    window = centre_window(face.size, coverage)
    to_model = cv2.invertAffineTransform(window_matrix(window, model_size))
    return compose(to_model, face.matrix)


def crop(frame: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` px model crop of ``frame``; area-averaged when it shrinks (no aliasing)."""
    shrinks = np.sqrt(abs(np.linalg.det(np.asarray(matrix)[:, :2]))) < 1.0
    return cv2.warpAffine(frame, matrix, (size, size),
                          flags=cv2.INTER_AREA if shrinks else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def model_mask(kind: str, face: FaceRecord, coverage: float, size: int,
               predicted: np.ndarray | None, mesh: np.ndarray | None = None,
               options: Mapping[str, object] | object | None = None) -> np.ndarray:
    """The ``kind`` mask in model-output space (``size`` px covering the coverage window);
    ``mesh``: the face's refined mesh in frame pixels, for the ``mesh`` mask."""
    window = centre_window(face.size, coverage)
    mask = build(kind, face, face.size, window=window, predicted=predicted, mesh=mesh,
                 options=options)
    to_model = cv2.invertAffineTransform(window_matrix(window, size))
    return cv2.warpAffine(mask, to_model, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
