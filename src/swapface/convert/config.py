"""Options of ``swapface convert`` — the single source for the CLI and config files.

What the swap looks like (mask, colour, sharpening, face choice) is
:class:`~swapface.swap.options.SwapOptions` (table ``[swap]``), shared with the preview, live
mode and the web UI; this module holds what the video driver adds (table ``[convert]``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.swap.loading import ENGINES
from swapface.swap.options import SwapOptions

# Compiling costs ~7 s and saves ~7 ms per face (original, 2-core CPU): worth it past ~1000.
COMPILE_MIN_FACES = 2000
_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_ranges(texts: list[str]) -> list[tuple[int, int]]:
    """``["10-50", "90"]`` → ``[(10, 50), (90, 90)]`` (inclusive frame indices)."""
    ranges = []
    for text in texts:
        match = _RANGE.match(str(text))
        if not match:
            raise ConfigError(f"bad frame range {text!r}; use START-END or N")
        lo = int(match.group(1))
        hi = int(match.group(2)) if match.group(2) is not None else lo
        if hi < lo:
            raise ConfigError(f"bad frame range {text!r}: end before start")
        ranges.append((lo, hi))
    return ranges


@dataclass
class ConvertConfig:
    input: Path = option(help="video file or folder of images", positional=True)
    model_dir: Path = option(help="trained model folder, or a .onnx file from swapface export",
                             flags=["-m", "--model-dir"])
    output: Path = option(
        help="output video (.mp4/.mkv/.mov), animated .gif, a folder of PNG frames, or with "
        "--preview-frame a .png/.jpg still", flags=["-o", "--output"])
    alignments: Path | None = option(
        None, help="alignments store (default: <input>_alignments.db next to the input)"
    )
    preview_frame: int | None = option(
        None, help="swap only this frame and write OUTPUT as a source | swapped still (a quick "
        "look at the settings; no video pass)")
    frame_ranges: list[str] = option([], help="swap only these frames, e.g. 10-50 90-100")
    discard_frames: bool = option(False, help="with --frame-ranges: drop frames outside the ranges")
    faces: Path | None = option(
        None, flags=["--faces", "--input-aligned-dir"], aliases=["input_aligned_dir"],
        help="face folder: swap only the faces still present in it (after cleaning it)"
    )
    smooth: bool | None = option(
        None, help="temporal smoothing of landmarks along face tracks (default: on for video)"
    )
    smooth_window: int = option(5, help="frames in the centred smoothing window (odd, ≥ 3)")
    crf: int = option(18, help="H.264 quality (lower is better)")
    preset: str = option("medium", help="H.264 encoder preset")
    overwrite: bool = option(False, help="replace an existing output")
    batch_size: int = option(8, help="faces per model batch")
    compile: bool | None = option(
        None, help="compile the model with torch.compile (~7 s once, then ~1.2× faster inference; "
        f"default: on for jobs of {COMPILE_MIN_FACES}+ faces when no conv layer is tuned)"
    )
    cpu: bool = option(False, help="run the model on the CPU even when CUDA is present")
    engine: str = option(
        "auto", choices=list(ENGINES),
        help="inference engine: onnx (ONNX Runtime; a model folder is exported once per checkpoint "
             "and cached in it), torch, or auto (ONNX Runtime on the CPU where it measures faster, "
             "PyTorch on CUDA)")
    cpu_conv: str = option(
        "tuned", choices=["tuned", "native"],
        help="fp32 convolutions on the CPU: time oneDNN, im2col GEMM and Winograd per layer and "
             "keep the fastest (tuned), or PyTorch's own kernels (native)",
    )
    swap: SwapOptions = option(SwapOptions(), cli=False,
                               help="how faces are swapped (the [swap] table)")

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError("--batch-size must be at least 1")
        if self.smooth_window < 3 or self.smooth_window % 2 == 0:
            raise ConfigError("--smooth-window must be an odd number ≥ 3")
        if self.preview_frame is not None and self.preview_frame < 0:
            raise ConfigError("--preview-frame must be a frame index ≥ 0")
        self.ranges = parse_ranges(self.frame_ranges)
        if self.discard_frames and not self.ranges:
            raise ConfigError("--discard-frames needs --frame-ranges")

    def in_ranges(self, index: int) -> bool:
        return not self.ranges or any(lo <= index <= hi for lo, hi in self.ranges)
