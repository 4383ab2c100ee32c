"""``swapface`` entry point. Each command module exposes ``register(subparsers)``.

User errors (:class:`SwapfaceError`) print one readable line and exit non-zero; Ctrl-C
exits 130 after the stage has saved what it finished.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from swapface import __version__
from swapface.core.errors import SwapfaceError

# Modules are imported lazily by name so `swapface video info` never loads dlib or torch.
COMMANDS = ("video", "extract", "alignments")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swapface", description="Face swapping in video: extract, curate, train, convert."
    )
    parser.add_argument("--version", action="version", version=f"swapface {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"swapface.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except SwapfaceError as exc:
        print(f"swapface {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"swapface {args.command}: interrupted; finished work was saved", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
