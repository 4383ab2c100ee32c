"""``swapface convert INPUT -m MODEL -o OUTPUT``: swap faces in a video or image folder."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from swapface.cli.common import add_config_options, configs_from_args
from swapface.convert.config import ConvertConfig
from swapface.swap.options import SwapOptions

SECTIONS: list[tuple[str, type]] = [("convert", ConvertConfig), ("swap", SwapOptions)]


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "convert",
        help="swap faces in a video or image folder with a trained model",
        description="Swap every face in the alignments store with the trained model, blend it "
        "into the frame and write a video (audio copied, labelled as synthetic media) or a "
        "folder of PNG frames with synthetic-media metadata.",
    )
    add_config_options(parser, SECTIONS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg, swap = configs_from_args(args, SECTIONS)
    cfg = dataclasses.replace(cfg, swap=swap)
    if cfg.preview_frame is not None:
        from swapface.convert.preview import run_preview

        summary = run_preview(cfg)
    else:
        from swapface.convert.pipeline import run_convert

        summary = run_convert(cfg, args.progress, args.cancel)
    print("\n".join(summary.lines()), file=sys.stderr)
    return 0
