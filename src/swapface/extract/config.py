"""Options of ``swapface extract`` — the single source for the CLI and config files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from swapface.align.masks import MASK_TYPES
from swapface.align.transform import DEFAULT_COVERAGE
from swapface.core.config import option
from swapface.core.errors import ConfigError

DEFAULT_EXPORT = "$path/face_images"


@dataclass
class ExtractConfig:
    input: Path = option(help="video file or folder of images", positional=True)
    detector: str = option("hog", help="face detector plugin (hog, cnn, mtcnn, mediapipe)")
    aligner: str = option(
        "auto", help="68-point landmark plugin: dlib68, mediapipe, or auto (mesh with mediapipe)"
    )
    upsample: int = option(
        1, help="detector upsampling: each step halves the smallest face found (~80 px at 0)"
    )
    size: int = option(256, help="aligned face size in pixels")
    coverage: float = option(
        DEFAULT_COVERAGE, help="fraction of the aligned face the mean face spans; rest is padding"
    )
    max_detection_size: int = option(
        1280, help="detect on a copy downscaled so its long side is at most this (0 = never)"
    )
    min_size: float = option(0.0, help="drop faces whose box area is below this fraction of the frame")
    min_confidence: float | None = option(
        None, help="detector score threshold (hog: SVM margin, default 0; mtcnn: probability)"
    )
    export_path: str = option(
        DEFAULT_EXPORT, help="face folder; $path is replaced by the input without its extension"
    )
    alignments: Path | None = option(
        None, help="alignments store (default: <input>_alignments.db next to the input)"
    )
    jpg: bool = option(False, help="write faces as JPEG instead of PNG")
    every_n: int = option(1, help="process every N-th frame")
    rotate: list[int] = option(
        [], help="angles (degrees) to retry on frames where no face is found, e.g. 90 180 270"
    )
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
    cpu: bool = option(False, help="run neural detectors on the CPU even when CUDA is present")
    track: bool | None = option(
        None, help="track faces between full detections (default: on for video on the CPU)"
    )
    redetect_every: int = option(8, help="with tracking: full-frame detection every N frames")

    def __post_init__(self) -> None:
        if self.size < 16:
            raise ConfigError("--size must be at least 16")
        if not 0.1 <= self.coverage <= 1.0:
            raise ConfigError("--coverage must be between 0.1 and 1.0")
        if self.every_n < 1:
            raise ConfigError("--every-n must be at least 1")
        if self.redetect_every < 1:
            raise ConfigError("--redetect-every must be at least 1")
        if not 0.0 <= self.min_size < 1.0:
            raise ConfigError("--min-size is a fraction of the frame area in [0, 1)")
        if self.upsample < 0 or self.upsample > 4:
            raise ConfigError("--upsample must be between 0 and 4")
        self.rotate = [a % 360 for a in self.rotate if a % 360]

    @property
    def aligner_name(self) -> str:
        if self.aligner != "auto":
            return self.aligner
        return "mediapipe" if self.detector == "mediapipe" else "dlib68"
