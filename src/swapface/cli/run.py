"""``swapface run A_VIDEO B_VIDEO -o OUT``: extract, train and convert in one resumable go."""

from __future__ import annotations

import argparse
import sys

from swapface.cli.common import add_config_options, configs_from_args
from swapface.project.run import RunConfig


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "run",
        help="extract both videos, train and convert in one resumable project",
        description="Put B's face into A's video: extract faces of both videos, train a model "
        "(a short CPU-sized budget by default), convert A's video. Every finished stage is "
        "recorded in the project folder; re-running the same command resumes.",
    )
    add_config_options(parser, [("run", RunConfig)])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swapface.project.run import run_project

    (cfg,) = configs_from_args(args, [("run", RunConfig)])
    summary = run_project(cfg, args.progress, args.cancel)
    print("\n".join(summary.lines()), file=sys.stderr)
    return 0
