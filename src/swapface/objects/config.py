"""``DetectConfig``: every option of ``swapface detect`` (config-file table ``[detect]``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.objects.base import OBJECT_DETECTORS

BUILTIN_CLASSES = ("hand", "person", "face")
PERSON_DETECTORS = ("pose", "hog")


@dataclass
class DetectConfig:
    output: Path = option(help="drawn output: an image file or a folder for images, a video file "
                               "(.mp4 .mkv .mov .gif) for a video or a stream", flags=["-o", "--output"])
    # The CLI adds INPUT itself: an optional positional (INPUT or --source) that the
    # dataclass → argparse bridge has no form for.
    input: Path | None = option(None, help="image, image folder or video file", cli=False)
    source: str | None = option(None, help="a camera (0, /dev/video0) or stream URL, instead of INPUT")
    json: Path | None = option(
        None, help="detections JSON (default: OUTPUT with .json, or OUTPUT/detections.json)")
    classes: str | None = option(
        None, help="built-in classes, comma-separated: hand,person,face (default: all three; "
                   "none when --model is given)")
    model: Path | None = option(None, help="a YOLO-format ONNX model whose classes are detected too")
    labels: Path | None = option(None, help="the model's labels, one per line")
    threshold: float = option(0.25, help="minimum score of a YOLO box")
    iou: float = option(0.45, help="YOLO NMS overlap threshold")
    layout: str = option("auto", help="YOLO output layout", choices=["auto", "v5", "v8"])
    person_detector: str = option("pose", help="person plugin: MediaPipe pose or OpenCV HOG",
                                  choices=list(PERSON_DETECTORS))
    face_detector: str = option("hog", help="face detector plugin (swapface plugins detector)")
    hand_options: dict[str, Any] = option({}, help="hands plugin options, key=value")
    person_options: dict[str, Any] = option({}, help="person plugin options, key=value")
    face_options: dict[str, Any] = option({}, help="faces plugin options, key=value")
    max_frames: int | None = option(None, help="stop after this many frames (a stream runs until Ctrl-C)")
    overwrite: bool = option(False, help="replace existing outputs")
    cpu: bool = option(False, help="run neural face detectors on the CPU even when CUDA is present")

    def __post_init__(self) -> None:
        if (self.input is None) == (self.source is None):
            raise ConfigError("give either INPUT (an image, folder or video) or --source (a camera "
                              "or stream), not both")
        if self.labels is not None and self.model is None:
            raise ConfigError("--labels names the classes of a --model")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError("--max-frames must be at least 1")
        unknown = sorted(set(self.class_list) - set(BUILTIN_CLASSES))
        if unknown:
            raise ConfigError(f"unknown class(es) {', '.join(unknown)}: the built-in classes are "
                              f"{', '.join(BUILTIN_CLASSES)} (other classes need a --model)")
        if not self.class_list and self.model is None:
            raise ConfigError("nothing to detect: name --classes or give a --model")
        for name, values in self.plugins():  # bad plugin options fail now, not mid-video
            OBJECT_DETECTORS.options(name, values)

    @property
    def class_list(self) -> list[str]:
        """The built-in classes asked for, in order, each once."""
        words = [w.strip().lower() for w in (self.classes or "").split(",") if w.strip()]
        if not words and self.model is None and not self.classes:
            words = list(BUILTIN_CLASSES)
        return list(dict.fromkeys(words))

    @property
    def media(self) -> str:
        """What to open: the INPUT path or the --source text."""
        return str(self.input) if self.input is not None else str(self.source)

    def plugins(self) -> list[tuple[str, dict[str, Any]]]:
        """(object detector plugin, its options) for each class asked for, the YOLO model last."""
        import swapface.objects  # noqa: F401  (registers the plugins)

        chosen = {"hand": ("hands", self.hand_options),
                  "person": (self.person_detector, self.person_options),
                  "face": ("faces", {"detector": self.face_detector, **self.face_options})}
        out = [chosen[c] for c in self.class_list]
        if self.model is not None:
            out.append(("yolo", {"model": self.model, "labels": self.labels, "threshold": self.threshold,
                                 "iou": self.iou, "layout": self.layout}))
        return out
