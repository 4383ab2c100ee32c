"""``swapface evaluate --source A --swapped OUT --reference-b B``: score a face swap."""

from __future__ import annotations

import argparse

from swapface.cli.common import add_config_options, configs_from_args
from swapface.evaluate.config import EvaluateConfig


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evaluate",
        help="score a swapped video: identity, pose, expression, flicker, reconstruction",
        description="Compare a swapped video with its source frame by frame: identity (dlib "
        "descriptors against B's reference faces and the source face), head pose, expression "
        "and temporal stability; with -m also reconstruction SSIM/L1 on held-out faces. "
        "Writes evaluate.json, a source | swapped contact sheet and per-frame plots to the "
        "report folder and prints the figures.",
    )
    add_config_options(parser, [("evaluate", EvaluateConfig)])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swapface.evaluate.run import run_evaluate

    (cfg,) = configs_from_args(args, [("evaluate", EvaluateConfig)])
    result = run_evaluate(cfg, args.progress)
    print("\n".join(result.lines()))
    return 0
