"""Options of ``swapface extract`` — the single source for the CLI and config files.

How faces are found (detector, aligner, tracking, ...) is :class:`FinderOptions`, shared with
evaluate; extract adds what it writes and where.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from swapface.align.masks import MASK_TYPES
from swapface.align.transform import DEFAULT_FACE_SPAN
from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.faces.finder import FinderOptions

DEFAULT_FACES = "$path/face_images"


@dataclass(kw_only=True)
class ExtractConfig(FinderOptions):
    input: Path = option(help="video file or folder of images", positional=True)
    size: int = option(256, help="aligned face size in pixels")
    face_span: float = option(
        DEFAULT_FACE_SPAN, help="fraction of the aligned face the mean face spans; rest is padding"
    )
    faces: str = option(
        DEFAULT_FACES, flags=["--faces", "--export-path"], aliases=["export_path"],
        help="face folder; $path is replaced by the input without its extension"
    )
    alignments: Path | None = option(
        None, help="alignments store (default: <input>_alignments.db next to the input)"
    )
    jpg: bool = option(False, help="write faces as JPEG instead of PNG")
    every_n: int = option(1, help="process every N-th frame")
    filter: list[Path] = option([], help="reference image(s): keep only faces of these people")
    nfilter: list[Path] = option([], help="reference image(s): drop faces of these people")
    ref_threshold: float = option(0.6, help="identity distance for --filter/--nfilter (dlib: 0.6)")
    identity: bool = option(False, help="store the 128-d dlib identity descriptor of every face")
    blur_threshold: float = option(
        0.0, help="faces with a Laplacian-variance sharpness below this go to blurry/ (0 = off)"
    )
    mask_type: str = option(
        "extended", help="mask written as PNG per face (all types go to the store)",
        choices=list(MASK_TYPES),
    )
    skip_existing: bool = option(False, help="resume: skip frames already in the store")
    debug: bool = option(False, help="write face_bbox/landmarks/aligned/mask debug images")
    workers: int = option(0, help="worker processes (0 = one per CPU core)")
    track: bool | None = option(  # type: ignore[assignment]
        None, help="track faces between full detections (default: on for video on the CPU)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.size < 16:
            raise ConfigError("--size must be at least 16")
        if not 0.1 <= self.face_span <= 1.0:
            raise ConfigError("--face-span must be between 0.1 and 1.0")
        if self.every_n < 1:
            raise ConfigError("--every-n must be at least 1")

    def finder_options(self, track: bool) -> FinderOptions:
        """The face-finding part of these options, with tracking decided."""
        names = [f.name for f in dataclasses.fields(FinderOptions)]
        return FinderOptions(**{**{n: getattr(self, n) for n in names}, "track": track})
