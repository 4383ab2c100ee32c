"""``swapface sort INPUT_DIR --by METHOD``: order, group and undo-ably rename extracted faces."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from swapface.core.config import add_arguments, build_config, load_config_file

HELP = "sort/group extracted faces by sharpness, pose, colour, identity, ... (undoable)"


def register(sub: argparse._SubParsersAction) -> None:
    from swapface.curate.config import SortConfig
    from swapface.curate.features import METHODS

    methods = "\n".join(f"  {name:17s} {m.help}" for name, m in METHODS.items())
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
    add_arguments(parser, SortConfig)
    parser.add_argument("--config", type=Path, help="TOML/JSON file with a [sort] table")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swapface.curate.config import SortConfig
    from swapface.curate.sort import sort_faces, undo_sort

    values = vars(args)
    file_values = load_config_file(args.config, "sort") if args.config else {}
    cfg = build_config(SortConfig, values, file_values)
    summary = undo_sort(cfg.undo) if cfg.undo else sort_faces(cfg, show_progress=not args.quiet)
    print("\n".join(summary.lines()), file=sys.stderr)
    return 0
