"""The detector interface and registry. Detectors take BGR images and return boxes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.core.registry import Registry


@dataclass
class Detection:
    box: tuple[float, float, float, float]  # left, top, right, bottom in the input image's pixels
    score: float  # detector confidence; scale differs per detector (see each plugin)
    points5: np.ndarray | None = None  # optional detector keypoints (5, 2)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def center(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2

    def mapped(self, scale: float, dx: float = 0.0, dy: float = 0.0) -> Detection:
        """This detection in the coordinates of an image where x' = x / scale + dx."""
        l, t, r, b = self.box
        pts = None if self.points5 is None else self.points5 / scale + (dx, dy)
        return Detection((l / scale + dx, t / scale + dy, r / scale + dx, b / scale + dy),
                         self.score, pts)


@dataclass(frozen=True)
class DetectorOptions:
    """Options every detector takes (a plugin may add its own in a subclass)."""

    upsample: int = option(
        1, help="upsampling: each step halves the smallest face found (~80 px at 0, 40 px at 1)")
    threshold: float | None = option(
        None, help="minimum detector score (each plugin's own scale; default: the plugin's)")

    def validate(self) -> None:
        if not 0 <= self.upsample <= 4:
            raise ConfigError("detector upsample must be between 0 and 4")


class Detector(Protocol):
    """A face detector plugin.

    ``upsample`` follows dlib's meaning for every plugin: each step halves the smallest face
    size found (about 80 px at 0, 40 px at 1). ``None`` uses the plugin's configured value;
    the tracker passes 0 for its small, face-centred crops.
    """

    name: str
    #: boxes are shaped like dlib's HOG boxes, so the dlib 68-point predictor fits them
    dlib_box_style: bool
    # Optional ``batch_size: int`` attribute: frames per detect() call worth batching (>1 for
    # neural detectors); absent means one frame at a time.

    def detect(
        self, images: Sequence[np.ndarray], upsample: int | None = None
    ) -> list[list[Detection]]: ...


DETECTORS: Registry[Detector] = Registry(
    "detector", "see the README, 'Bundled pretrained models'")
