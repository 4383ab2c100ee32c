"""``swapface sort INPUT_DIR --by METHOD``: order, group and undo-ably rename extracted faces."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from swapface.cli.common import add_config_options, configs_from_args

HELP = "sort/group extracted faces by sharpness, pose, colour, identity, ... (undoable)"


def register(sub: argparse._SubParsersAction) -> None:
    from swapface.curate.config import SortConfig
    from swapface.curate.features import SORT_METHODS

    methods = "\n".join(f"  {m.name:17s} {m.description}" for m in SORT_METHODS)
    parser = sub.add_parser(
        "sort",
        help=HELP,
        description="Sort a folder of faces written by `swapface extract`. Renames in place "
        "with a numeric prefix (or writes to --output), optionally into sub-folders by "
        "--group-by. Every rename is logged to sort_log_<time>.json; --undo LOG restores "
        "the names.",
        epilog="methods:\n" + methods,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", nargs="?", type=Path, metavar="INPUT_DIR",
                        help="folder of extracted faces")
    add_config_options(parser, [("sort", SortConfig)])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swapface.curate.config import SortConfig
    from swapface.curate.sort import sort_faces, undo_sort

    (cfg,) = configs_from_args(args, [("sort", SortConfig)])
    summary = undo_sort(cfg.undo) if cfg.undo else sort_faces(cfg, args.progress)
    print("\n".join(summary.lines()), file=sys.stderr)
    return 0
