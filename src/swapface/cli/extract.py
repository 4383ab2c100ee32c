"""``swapface extract INPUT``: faces, masks and the alignments store from a video or folder."""

from __future__ import annotations

import argparse
import sys

from swapface.cli.common import add_config_options, configs_from_args
from swapface.extract.config import ExtractConfig


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "extract",
        help="detect, align and mask faces; write face images and an alignments store",
        description="Detect faces, 68-point landmarks, align to the mean face, build masks and "
        "(optionally) identity descriptors. Writes aligned faces with embedded metadata and a "
        "crash-safe SQLite alignments store.",
    )
    add_config_options(parser, [("extract", ExtractConfig)])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swapface.extract.run import run_extract

    (cfg,) = configs_from_args(args, [("extract", ExtractConfig)])
    summary = run_extract(cfg, args.progress, args.cancel)
    print("\n".join(summary.lines()), file=sys.stderr)
    return 0
