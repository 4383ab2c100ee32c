"""``swapface video frames|assemble|info``: video ⇄ image folders, and what a video holds."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from swapface.core.config import add_arguments, build_config, option
from swapface.core.errors import ConfigError
from swapface.core.progress import Progress


@dataclass
class FramesOptions:
    input: Path = option(help="video file to export", positional=True)
    out_dir: Path = option(help="folder for the images and frames.json", positional=True)
    every_n: int = option(1, help="write every n-th frame only")
    fps: Fraction | None = option(
        None, help="write one frame per 1/FPS seconds (first frame of each interval); "
        "e.g. 5, 29.97 or 30000/1001",
    )
    format: str = option("png", help="image format", choices=["png", "jpg"])


@dataclass
class AssembleOptions:
    frames_dir: Path = option(help="folder of images, taken in natural order", positional=True)
    output: Path = option(help="video to write (.mp4, .m4v, .mov or .mkv)", positional=True)
    reference: Path | None = option(
        None, help="video whose frame rate and audio the output gets (e.g. the original clip)"
    )
    fps: Fraction | None = option(
        None, help="frame rate (overrides the reference's; default: reference, the folder's "
        "frames.json, else 30)",
    )
    crf: int = option(18, help="H.264 quality, 0 (lossless) to 51; lower is better")
    preset: str = option(
        "medium", help="x264 speed/size trade-off",
        choices=["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                 "slower", "veryslow"],
    )
    overwrite: bool = option(False, help="replace an existing output (never the reference)")


@dataclass
class InfoOptions:
    input: Path = option(help="video file", positional=True)
    json: bool = option(False, help="print JSON instead of text")


_SUBCOMMANDS = {"frames": FramesOptions, "assemble": AssembleOptions, "info": InfoOptions}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "video",
        help="export a video's frames, assemble frames into a video, show video info",
        description="Frame-exact conversion between videos and image folders, and video info.",
    )
    commands = parser.add_subparsers(dest="video_command", required=True, metavar="SUBCOMMAND")
    frames = commands.add_parser(
        "frames",
        help="write a video's frames as images plus frames.json",
        description="Write every decoded frame (or every n-th, or one per 1/FPS s) as "
        "<stem>_<index:06d>.<ext>, the index being the source frame number, plus a frames.json "
        "manifest with each frame's index and timestamp.",
    )
    add_arguments(frames, FramesOptions)
    assemble = commands.add_parser(
        "assemble",
        help="encode a folder of images into an H.264 video",
        description="One video frame per image (natural order), at the reference's frame rate "
        "and with its audio when --reference is given. The output is written atomically.",
    )
    add_arguments(assemble, AssembleOptions)
    info = commands.add_parser("info", help="show a video's streams, size, rate and length")
    add_arguments(info, InfoOptions)
    for sub_parser in (frames, assemble):
        sub_parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = build_config(_SUBCOMMANDS[args.video_command], vars(args), {})
    if isinstance(cfg, FramesOptions):
        return _run_frames(cfg, args.progress)
    if isinstance(cfg, AssembleOptions):
        return _run_assemble(cfg, args.progress)
    return _run_info(cfg)


def _run_frames(cfg: FramesOptions, progress: Progress) -> int:
    from swapface.media.frames_io import export_frames

    if cfg.fps is not None and cfg.every_n != 1:
        raise ConfigError("use either --every-n or --fps, not both")
    summary = export_frames(
        cfg.input, cfg.out_dir, every_n=cfg.every_n, fps=cfg.fps, fmt=cfg.format,
        progress=progress,
    )
    print("\n".join(summary.lines()), file=sys.stderr)
    return 0


def _run_assemble(cfg: AssembleOptions, progress: Progress) -> int:
    from swapface.media.frames_io import assemble_video

    summary = assemble_video(
        cfg.frames_dir, cfg.output, reference=cfg.reference, fps=cfg.fps, crf=cfg.crf,
        preset=cfg.preset, overwrite=cfg.overwrite, progress=progress,
    )
    print("\n".join(summary.lines()), file=sys.stderr)
    return 0


def _run_info(cfg: InfoOptions) -> int:
    from swapface.media.video import probe_video

    info = probe_video(cfg.input)
    if cfg.json:
        print(json.dumps(info.as_dict(), indent=2))
        return 0
    fps = info.fps
    rate = f"{float(fps):.3f}".rstrip("0").rstrip(".")
    if fps.denominator != 1:
        rate += f" ({fps.numerator}/{fps.denominator})"
    frames = str(info.frame_count) if info.frame_count_exact else f"~{info.frame_count} (estimated)"
    audio = info.audio_codec if info.has_audio else "none"
    print(
        f"file:     {info.path}\n"
        f"video:    {info.codec}, {info.width}x{info.height}, {info.pix_fmt}\n"
        f"fps:      {rate}\n"
        f"frames:   {frames}\n"
        f"duration: {info.duration:.3f} s\n"
        f"audio:    {audio}"
    )
    return 0
