"""``swapface extract INPUT``: faces, masks and the alignments store from a video or folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from swapface.core.config import add_arguments, build_config, load_config_file
from swapface.extract.config import ExtractConfig


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "extract",
        help="detect, align and mask faces; write face images and an alignments store",
        description="Detect faces, 68-point landmarks, align to the mean face, build masks and "
        "(optionally) identity descriptors. Writes aligned faces with embedded metadata and a "
        "crash-safe SQLite alignments store.",
    )
    add_arguments(parser, ExtractConfig)
    parser.add_argument("--config", type=Path, help="TOML/JSON file with an [extract] table")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swapface.extract.run import run_extract

    values = vars(args)
    file_values = load_config_file(args.config, "extract") if args.config else {}
    cfg = build_config(ExtractConfig, values, file_values)
    summary = run_extract(cfg, show_progress=not args.quiet)
    print("\n".join(summary.lines()), file=sys.stderr)
    return 0
