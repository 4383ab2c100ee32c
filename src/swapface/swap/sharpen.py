"""Sharpeners for the swapped face: model output is usually softer than the frame around it.

Every method is a plugin ``SHARPEN_METHODS.create(name, {"amount": ..., "radius": ...})``
returning ``sharpen(image: uint8 BGR) -> uint8 BGR`` (same shape; any channel count):

* ``none`` — identity (a copy); takes no options.
* ``box`` — ``image + amount · (image − box_blur(image))``, box of side ``2·round(radius)+1``.
* ``gaussian`` — the same with a Gaussian blur of sigma ``radius``.
* ``unsharp`` — classic unsharp mask (as in GIMP/Photoshop): the Gaussian difference is
  added only where its magnitude reaches ``threshold`` grey levels, so flat areas and
  fine noise are left alone.

``amount`` is the strength (1.0 = add the full high-pass once) and ``radius`` is in pixels.
A flat image has no detail to boost and comes back unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.core.registry import NoOptions, Registry

Sharpen = Callable[[np.ndarray], np.ndarray]

SHARPEN_METHODS: Registry[Sharpen] = Registry("sharpen method")

DEFAULT_AMOUNT = 1.0
DEFAULT_RADIUS = 1.0
DEFAULT_THRESHOLD = 5.0


@dataclass(frozen=True)
class SharpenOptions:
    amount: float = option(DEFAULT_AMOUNT, help="strength: 1.0 adds the high-pass detail once")
    radius: float = option(DEFAULT_RADIUS, help="blur radius in pixels of the model's output")

    def validate(self) -> None:
        if not self.amount >= 0:
            raise ConfigError(f"sharpen amount must be >= 0, got {self.amount}")
        if not self.radius > 0:
            raise ConfigError(f"sharpen radius must be > 0 px, got {self.radius}")


@dataclass(frozen=True)
class UnsharpOptions(SharpenOptions):
    threshold: float = option(DEFAULT_THRESHOLD, help="only differences of at least this many "
                              "grey levels are boosted (flat areas and noise stay)")

    def validate(self) -> None:
        super().validate()
        if not self.threshold >= 0:
            raise ConfigError(f"unsharp threshold must be >= 0 grey levels, got {self.threshold}")


def _check_image(image: np.ndarray) -> None:
    if image.dtype != np.uint8:
        raise TypeError(f"sharpen expects a uint8 image, got {image.dtype}")


def _boost(image: np.ndarray, blurred: np.ndarray, amount: float, threshold: float = 0.0) -> np.ndarray:
    """``image + amount · (image − blurred)``; the difference is dropped where |diff| < threshold."""
    img = image.astype(np.float32)
    detail = img - blurred
    if threshold > 0:
        detail[np.abs(detail) < threshold] = 0.0
    return np.clip(np.rint(img + np.float32(amount) * detail), 0, 255).astype(np.uint8)


@SHARPEN_METHODS.register("none", description="no sharpening (default)")
def _none(options: NoOptions) -> Sharpen:
    def sharpen(image: np.ndarray) -> np.ndarray:
        _check_image(image)
        return image.copy()

    return sharpen


@SHARPEN_METHODS.register("box", options=SharpenOptions,
                          description="add the difference to a box blur of side 2·radius+1")
def _box(options: SharpenOptions) -> Sharpen:
    options.validate()
    amount, side = options.amount, 2 * max(1, round(options.radius)) + 1

    def sharpen(image: np.ndarray) -> np.ndarray:
        _check_image(image)
        blurred = cv2.blur(image.astype(np.float32), (side, side), borderType=cv2.BORDER_REFLECT_101)
        return _boost(image, blurred, amount)

    return sharpen


def _gaussian_blur(image: np.ndarray, radius: float) -> np.ndarray:
    return cv2.GaussianBlur(image.astype(np.float32), (0, 0), sigmaX=radius, sigmaY=radius,
                            borderType=cv2.BORDER_REFLECT_101)


@SHARPEN_METHODS.register("gaussian", options=SharpenOptions,
                          description="add the difference to a Gaussian blur of sigma radius")
def _gaussian(options: SharpenOptions) -> Sharpen:
    options.validate()

    def sharpen(image: np.ndarray) -> np.ndarray:
        _check_image(image)
        return _boost(image, _gaussian_blur(image, options.radius), options.amount)

    return sharpen


@SHARPEN_METHODS.register("unsharp", options=UnsharpOptions,
                          description="unsharp mask (as in GIMP): the Gaussian difference where it "
                          "reaches threshold")
def _unsharp(options: UnsharpOptions) -> Sharpen:
    options.validate()

    def sharpen(image: np.ndarray) -> np.ndarray:
        _check_image(image)
        return _boost(image, _gaussian_blur(image, options.radius), options.amount, options.threshold)

    return sharpen
