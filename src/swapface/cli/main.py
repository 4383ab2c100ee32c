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

# One-line help per command. Only the command being run is imported, so `swapface video
# info` never pays for torch or dlib.
COMMANDS = {
    "video": "export frames, assemble frames into a video, show video info",
    "extract": "detect, align and mask faces; write face images and an alignments store",
    "alignments": "inspect and convert alignments stores",
    "train": "train a face-swap model on two face folders",
    "sort": "sort and group extracted faces (sharpness, pose, colour, identity, ...)",
    "convert": "swap faces in a video or image folder with a trained model",
    "run": "extract both videos, train and convert in one resumable project",
    "evaluate": "score a swapped video: identity, pose, expression, flicker, reconstruction",
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swapface", description="Face swapping in video: extract, curate, train, convert."
    )
    parser.add_argument("--version", action="version", version=f"swapface {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    words = [a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("-")]
    chosen = words[0] if words and words[0] in COMMANDS else None
    for name, help_text in COMMANDS.items():
        if chosen in (None, name):
            importlib.import_module(f"swapface.cli.{name}").register(sub)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argv)
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
