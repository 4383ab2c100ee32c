"""Options of ``swapface evaluate`` — the single source for the CLI and config files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from swapface.convert.config import parse_ranges
from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.faces.finder import FinderOptions


@dataclass(kw_only=True)
class EvaluateConfig(FinderOptions):
    """Faces are found on both videos as :class:`FinderOptions` say (extract's options)."""

    source: Path = option(help="the original video (or frame folder) of identity A")
    swapped: Path = option(help="the converted video (or frame folder) to judge")
    reference_b: Path = option(
        help="faces of identity B: a face folder from extract, a folder of photos, one image "
        "or a video"
    )
    model_dir: Path | None = option(
        None, help="trained model: also score reconstruction (A→A, B→B) on held-out faces",
        flags=["-m", "--model-dir"],
    )
    faces_a: Path | None = option(None, help="held-out face folder of A for reconstruction (-m)")
    faces_b: Path | None = option(None, help="held-out face folder of B for reconstruction (-m)")
    report: Path | None = option(
        None, help="report folder for evaluate.json and the PNGs "
        "(default: <SWAPPED without extension>_evaluate next to it)"
    )
    frame_ranges: list[str] = option(
        [], help="source frames the swapped video holds, as given to convert --frame-ranges with "
        "--discard-frames (e.g. 800-1007); default: the swapped video has every source frame"
    )
    sample_ranges: list[str] = option(
        [], help="compare only these source frames (e.g. 300-389) of a swapped video that holds "
        "every frame: a quick check of a sample instead of the whole video"
    )
    track: bool = option(True, help="track faces between full detections (as in extract on the CPU)")
    identity_every: int = option(
        1, help="identity descriptors on every N-th compared frame (the dlib ResNet costs ~90 ms "
        "per face on a CPU)"
    )
    max_references: int = option(100, help="at most this many B reference faces (evenly spaced)")
    max_faces: int = option(200, help="reconstruction: at most this many faces per side")
    coverage: float | None = option(
        None, help="reconstruction: fraction of the aligned face the model sees "
        "(default: as recorded in the model folder)"
    )
    sheet_frames: int = option(8, help="frame pairs on the contact sheet")
    def __post_init__(self) -> None:
        super().__post_init__()
        if self.identity_every < 1:
            raise ConfigError("--identity-every must be at least 1")
        if self.max_references < 1:
            raise ConfigError("--max-references must be at least 1")
        if self.max_faces < 1:
            raise ConfigError("--max-faces must be at least 1")
        if self.coverage is not None and not 0.0 < self.coverage <= 1.0:
            raise ConfigError("--coverage must be in (0, 1]")
        if self.sheet_frames < 1:
            raise ConfigError("--sheet-frames must be at least 1")
        if self.model_dir is not None and self.faces_a is None and self.faces_b is None:
            raise ConfigError("-m/--model-dir needs --faces-a and/or --faces-b (held-out faces)")
        self.ranges = parse_ranges(self.frame_ranges)
        self.samples = parse_ranges(self.sample_ranges)
        if self.ranges and self.samples:
            raise ConfigError("--sample-ranges needs a swapped video with every frame; it cannot "
                              "be combined with --frame-ranges")

    def in_ranges(self, index: int) -> bool:
        return not self.ranges or any(lo <= index <= hi for lo, hi in self.ranges)

    def sampled(self, index: int) -> bool:
        return not self.samples or any(lo <= index <= hi for lo, hi in self.samples)

    @property
    def report_dir(self) -> Path:
        """Where the report goes: ``--report``, else next to the swapped video."""
        if self.report is not None:
            return self.report
        base = self.swapped.with_suffix("") if self.swapped.is_file() else self.swapped
        return base.parent / f"{base.name}_evaluate"
