"""Any YOLO-format ONNX detector the user supplies, run with ONNX Runtime.

Preprocessing is YOLO's letterbox: the image scaled to fit the model's input keeping its
aspect ratio, padded evenly with grey (114), RGB, 0-1, NCHW. Two output layouts are decoded:

``v5``  (YOLOv5/v7 and others) ``[N, 5 + C]``: cx, cy, w, h, objectness, C class scores;
        a box's score is objectness × its best class score.
``v8``  (YOLOv8/v11, ultralytics) ``[4 + C, N]`` (or ``[N, 4 + C]``): cx, cy, w, h, C class
        scores, no objectness.

``auto`` tells them apart by the number of labels (5 + C or 4 + C values per box), or
without labels by which axis is the short one (ultralytics exports put it first). Boxes
(in model input pixels) under ``threshold`` are dropped, overlapping boxes of one class
are merged by NMS (:func:`~swapface.objects.nms.classwise_nms`) and the rest are mapped back
through the letterbox into the image's pixels.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from swapface.core.config import option
from swapface.core.errors import ConfigError, InputError
from swapface.objects.base import OBJECT_DETECTORS, ObjectDetection, clip_box
from swapface.objects.nms import classwise_nms

LAYOUTS = ("auto", "v5", "v8")
_PAD = 114  # YOLO's letterbox grey


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the model input: x_in = x · scale_x + left."""

    scale_x: float
    scale_y: float
    left: int
    top: int

    def unmap(self, boxes: np.ndarray) -> np.ndarray:
        """``[l, t, r, b]`` rows from model input pixels back to image pixels."""
        out = np.asarray(boxes, np.float64).copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.left) / self.scale_x
        out[:, [1, 3]] = (out[:, [1, 3]] - self.top) / self.scale_y
        return out


def letterbox(image: np.ndarray, width: int, height: int) -> tuple[np.ndarray, Letterbox]:
    """``image`` (BGR uint8) as a (1, 3, height, width) float32 RGB tensor in [0, 1]."""
    h, w = image.shape[:2]
    gain = min(width / w, height / h)
    new_w, new_h = max(1, round(w * gain)), max(1, round(h * gain))
    left, top = (width - new_w) // 2, (height - new_h) // 2
    resized = cv2.resize(image[..., :3], (new_w, new_h),
                         interpolation=cv2.INTER_AREA if gain < 1 else cv2.INTER_LINEAR)
    canvas = np.full((height, width, 3), _PAD, np.uint8)
    canvas[top:top + new_h, left:left + new_w] = resized
    rgb = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB)
    tensor = (rgb.transpose(2, 0, 1)[None].astype(np.float32) / np.float32(255))
    return np.ascontiguousarray(tensor), Letterbox(new_w / w, new_h / h, left, top)


def _rows(output: np.ndarray, classes: int | None, layout: str) -> tuple[np.ndarray, str]:
    """One box per row, and the layout: v5 rows (5 + C values) or v8 rows (4 + C)."""
    out = np.asarray(output, np.float32)
    while out.ndim > 2 and out.shape[0] == 1:
        out = out[0]
    if out.ndim != 2:
        raise InputError(f"YOLO output must be [1, N, 5+C] or [1, 4+C, N], got {list(output.shape)}")
    a, b = out.shape
    if layout == "auto":
        if classes is not None:
            fits = [name for name, ok in (("v5", b == 5 + classes),
                                          ("v8", a == 4 + classes or b == 4 + classes)) if ok]
            if len(fits) != 1:
                what = "both" if fits else "neither"
                raise ConfigError(f"YOLO output {list(out.shape)} with {classes} labels fits {what} "
                                  "of v5 [N, 5+C] and v8 [4+C, N]: pass --layout v5 or v8")
            layout = fits[0]
        else:  # attributes are the short axis; ultralytics (v8) puts them first
            layout = "v8" if a < b else "v5"
    if layout == "v8":  # [4+C, N] is the ultralytics export; [N, 4+C] is seen after a transpose
        transpose = a == 4 + classes if classes is not None else a < b
        return (out.T if transpose else out), "v8"
    return out, "v5"


def decode(output: np.ndarray, classes: int | None = None, layout: str = "auto"
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes [l, t, r, b] in model input pixels, scores, class ids) of every candidate."""
    rows, layout = _rows(output, classes, layout)
    first = 5 if layout == "v5" else 4
    if rows.shape[1] <= first:
        raise InputError(f"YOLO {layout} output has {rows.shape[1]} values per box: no class scores")
    cls = rows[:, first:]
    if layout == "v5":
        cls = cls * rows[:, 4:5]  # objectness × class probability
    ids = cls.argmax(axis=1)
    scores = cls[np.arange(len(cls)), ids]
    cx, cy, bw, bh = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    return boxes.astype(np.float64), scores.astype(np.float64), ids.astype(np.int64)


def read_labels(path: Path) -> list[str]:
    """One label per line (a ``coco.names`` / ``labels.txt`` file); trailing blank lines ignored."""
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read labels {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    while lines and not lines[-1]:
        lines.pop()
    if not lines or not all(lines):
        raise InputError(f"labels {path}: expected one non-empty label per line")
    return lines


def onnxruntime_installed() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


@dataclass(frozen=True)
class YoloOptions:
    model: Path = option(help="YOLO-format ONNX model file")
    labels: Path | None = option(None, help="labels file, one per line (default: class0, class1, ...)")
    threshold: float = option(0.25, help="minimum box score (objectness × class for v5)")
    iou: float = option(0.45, help="NMS: overlap above which the weaker box of a class is dropped")
    layout: str = option("auto", help="output layout", choices=list(LAYOUTS))
    size: int = option(640, help="input size for a model whose input size is dynamic")
    max_detections: int = option(300, help="most boxes per image")

    def validate(self) -> None:
        if not 0.0 <= self.threshold <= 1.0 or not 0.0 < self.iou <= 1.0:
            raise ConfigError("yolo: threshold must be in [0, 1] and iou in (0, 1]")
        if self.size < 32 or self.max_detections < 1:
            raise ConfigError("yolo: size must be at least 32 and max_detections at least 1")


@OBJECT_DETECTORS.register(
    "yolo", options=YoloOptions, available=onnxruntime_installed,
    description="a YOLO-format ONNX model (v5 [N,5+C] or v8 [4+C,N] output) on ONNX Runtime")
class YoloDetector:
    """A YOLO ONNX model: letterbox, one ONNX Runtime call, decoding, class-wise NMS."""

    name = "yolo"

    def __init__(self, options: YoloOptions, **context: Any) -> None:
        self.options = options
        self.labels = read_labels(options.labels) if options.labels is not None else None
        if not options.model.is_file():
            raise InputError(f"YOLO model not found: {options.model}")
        import onnxruntime

        try:
            self._session = onnxruntime.InferenceSession(str(options.model),
                                                         providers=["CPUExecutionProvider"])
        except Exception as exc:  # ONNX Runtime raises its own exception types for bad files
            raise InputError(f"cannot load ONNX model {options.model}: {exc}") from exc
        first = self._session.get_inputs()[0]
        if len(first.shape) != 4:
            raise InputError(f"{options.model.name}: expected an NCHW image input, got {first.shape}")
        h, w = first.shape[2:]
        self.input_name = first.name
        self.input_size = (w if isinstance(w, int) else options.size,
                           h if isinstance(h, int) else options.size)
        self._dtype = np.float16 if first.type == "tensor(float16)" else np.float32

    def label(self, class_id: int) -> str:
        if self.labels is None:
            return f"class{class_id}"
        if class_id >= len(self.labels):
            raise InputError(f"the model gave class {class_id} but the labels file has "
                             f"{len(self.labels)} labels")
        return self.labels[class_id]

    def detect(self, image: np.ndarray) -> list[ObjectDetection]:
        o = self.options
        tensor, fit = letterbox(image, *self.input_size)
        output = self._session.run(None, {self.input_name: tensor.astype(self._dtype)})[0]
        boxes, scores, ids = decode(output, None if self.labels is None else len(self.labels), o.layout)
        keep = scores >= o.threshold
        boxes, scores, ids = boxes[keep], scores[keep], ids[keep]
        order = classwise_nms(boxes, scores, ids, o.iou)[:o.max_detections]
        h, w = image.shape[:2]
        mapped = fit.unmap(boxes[order]) if len(order) else np.zeros((0, 4))
        return [ObjectDetection(self.label(int(ids[i])), float(scores[i]),
                                clip_box(tuple(float(v) for v in box), w, h), source=self.name)
                for i, box in zip(order, mapped, strict=True)]

    def close(self) -> None:
        pass
