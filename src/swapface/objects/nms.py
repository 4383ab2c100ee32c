"""Non-maximum suppression: vectorised numpy, class-wise by offsetting each class apart."""

from __future__ import annotations

import numpy as np


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one ``[l, t, r, b]`` box with each row of ``boxes`` (N, 4)."""
    l = np.maximum(box[0], boxes[:, 0])
    t = np.maximum(box[1], boxes[:, 1])
    r = np.minimum(box[2], boxes[:, 2])
    b = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(r - l, 0, None) * np.clip(b - t, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes kept by greedy NMS, best score first.

    A box is dropped when its IoU with a better-scoring kept box exceeds ``iou``.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        order = rest[iou_one_to_many(boxes[best], boxes[rest]) <= iou]
    return np.asarray(keep, dtype=np.int64)


def classwise_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float) -> np.ndarray:
    """:func:`nms` within each class only (a person box never suppresses a dog box).

    Each class's boxes are shifted by its id × (the largest coordinate + 1), so boxes of
    different classes can never overlap and one NMS pass serves all classes.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not len(boxes):
        return np.zeros(0, dtype=np.int64)
    offset = (np.abs(boxes).max() + 1.0) * np.asarray(classes, np.float64)[:, None]
    return nms(boxes + offset, scores, iou)
