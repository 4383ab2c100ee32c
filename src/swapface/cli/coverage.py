"""``swapface coverage A_FACES B_FACES``: which of A's poses and expressions B's faces cover."""

from __future__ import annotations

import argparse
import sys

from swapface.cli.common import add_config_options, configs_from_args
from swapface.evaluate.coverage import CoverageConfig

SECTIONS: list[tuple[str, type]] = [("coverage", CoverageConfig)]
HELP = "before training: which of A's poses and expressions B's faces cover, and which frames will smudge"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "coverage", help=HELP,
        description="For every face of A the nearest face of B in yaw, pitch, mouth and eye "
        "opening (each over its tolerance); the share of A's faces with no close B face, the "
        "frame ranges where that happens and why ('A opens the mouth wider than B ever does'), "
        "and with -o a PNG of both distributions.")
    add_config_options(parser, SECTIONS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swapface.evaluate.coverage import run_coverage

    (cfg,) = configs_from_args(args, SECTIONS)
    print("\n".join(run_coverage(cfg).lines()), file=sys.stderr)
    return 0
