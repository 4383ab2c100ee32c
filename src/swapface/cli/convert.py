"""``swapface convert INPUT -m MODEL -o OUTPUT``: swap faces in a video or image folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from swapface.convert.config import ConvertConfig
from swapface.core.config import add_arguments, build_config, load_config_file


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "convert",
        help="swap faces in a video or image folder with a trained model",
        description="Swap every face in the alignments store with the trained model, blend it "
        "into the frame and write a video (audio copied, labelled as synthetic media) or a "
        "folder of PNG frames with synthetic-media metadata.",
    )
    add_arguments(parser, ConvertConfig)
    parser.add_argument("--config", type=Path, help="TOML/JSON file with a [convert] table")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swapface.convert.pipeline import run_convert

    values = vars(args)
    file_values = load_config_file(args.config, "convert") if args.config else {}
    cfg = build_config(ConvertConfig, values, file_values)
    summary = run_convert(cfg, show_progress=not args.quiet)
    print("\n".join(summary.lines()), file=sys.stderr)
    return 0
