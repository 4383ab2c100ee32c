"""What a swap looks like: mask, colour, sharpening and their parameters, crop, face choice.

:class:`SwapOptions` is the one description of a swap that ``swapface convert``, the
one-frame preview, live mode and the web UI's form share (config-file table ``[swap]``).
Choices and help come from the plugin registries; each plugin's own parameters go in its
``*_options`` mapping (``--sharpen unsharp --sharpen-options amount=0.8 radius=1.5``) and are
checked against the plugin's options dataclass when the options are made, not mid-video.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.swap.color import COLOR_METHODS
from swapface.swap.exemplars import DETAILS
from swapface.swap.masks import MASKS
from swapface.swap.occlusion import OCCLUSIONS
from swapface.swap.sharpen import SHARPEN_METHODS

SELECT = ("all", "largest")


@dataclass
class SwapOptions:
    mask_type: str = option("extended", help="blend mask", choices=MASKS.names())
    mask_options: dict[str, Any] = option({}, help="mask plugin options, key=value")
    erosion: int = option(0, help="erode (negative: dilate) the mask by N model-output pixels")
    blur_size: int = option(4, help="feather the mask edge by N model-output pixels")
    mask_threshold: float = option(0.0, help="zero mask values below this (0-1)")
    color: str = option("border", help="colour matching", choices=COLOR_METHODS.names())
    color_options: dict[str, Any] = option({}, help="colour plugin options, key=value")
    sharpen: str = option("none", help="sharpening", choices=SHARPEN_METHODS.names())
    sharpen_options: dict[str, Any] = option(
        {}, help="sharpen plugin options, key=value (e.g. amount=0.8 radius=1.5)")
    detail: str = option(
        "none", help="fine detail the model cannot draw: none, or exemplars (B's own eyes, lips and "
        "skin from its closest faces in --detail-faces, warped onto each frame)",
        choices=DETAILS.names())
    detail_options: dict[str, Any] = option(
        {}, help="detail plugin options, key=value (e.g. count=4 amount=1 sigma=1)")
    detail_faces: Path | None = option(None, help="B's face folder (written by extract), for "
                                       "--detail exemplars")
    occlusion: str = option(
        "none", help="keep these in front of the swapped face: hands (MediaPipe, once per frame "
                     "with faces)", choices=OCCLUSIONS.names())
    occlusion_options: dict[str, Any] = option({}, help="occlusion plugin options, key=value")
    coverage: float | None = option(
        None, help="fraction of the aligned face the model sees (default: as the model was trained)")
    swap_model: bool = option(False, help="swap the other way: B → A")
    select: str = option("all", help="which faces of a frame to swap", choices=list(SELECT))
    filter: list[Path] = option([], help="reference image(s): swap only faces of these people")
    nfilter: list[Path] = option([], help="reference image(s): never swap faces of these people")
    ref_threshold: float = option(0.6, help="identity distance for --filter/--nfilter (dlib: 0.6)")

    def __post_init__(self) -> None:
        if self.coverage is not None and not 0.0 < self.coverage <= 1.0:
            raise ConfigError("--coverage must be in (0, 1]")
        if not 0.0 <= self.mask_threshold <= 1.0:
            raise ConfigError("--mask-threshold must be in [0, 1]")
        if self.blur_size < 0:
            raise ConfigError("--blur-size must be >= 0")
        if not 0.0 < self.ref_threshold < 2.0:
            raise ConfigError("--ref-threshold must be in (0, 2)")
        if self.detail != "none" and self.detail_faces is None:
            raise ConfigError(f"--detail {self.detail} needs --detail-faces (B's face folder)")
        if self.select not in SELECT:
            raise ConfigError(f"--select must be one of {', '.join(SELECT)}")
        # Unknown plugins and bad plugin options fail here, before any long work.
        for registry, name, values in ((MASKS, self.mask_type, self.mask_options),
                                       (COLOR_METHODS, self.color, self.color_options),
                                       (SHARPEN_METHODS, self.sharpen, self.sharpen_options),
                                       (DETAILS, self.detail, self.detail_options),
                                       (OCCLUSIONS, self.occlusion, self.occlusion_options)):
            registry.options(name, values)

    @property
    def side(self) -> str:
        """The decoder that draws the new face: B's, or A's with ``swap_model``."""
        return "a" if self.swap_model else "b"

    @property
    def uses_identity(self) -> bool:
        return bool(self.filter or self.nfilter)
