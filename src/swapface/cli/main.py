"""``swapface`` entry point. Each command module exposes ``register(subparsers)``.

The driver owns the process: it applies the process-wide settings
(:func:`~swapface.core.runtime.configure_process`) before anything heavy loads, turns Ctrl-C
and SIGTERM into a cancel of the running command (which then finishes its step and saves),
and renders progress. User errors (:class:`SwapfaceError`) and system errors (disk full,
permission denied, a locked database, out of memory) print one readable line and exit
non-zero; a cancel exits 130 after the stage has saved what it finished.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sqlite3
import sys

from swapface import __version__
from swapface.cli.progress import CliProgress
from swapface.core.errors import Cancelled, SwapfaceError
from swapface.core.progress import CancelToken
from swapface.core.runtime import cancel_on_signals, configure_process

# One-line help per command. Only the command being run is imported, so `swapface video
# info` never pays for torch or dlib.
COMMANDS = {
    "video": "export frames, assemble frames into a video, show video info",
    "extract": "detect, align and mask faces; write face images and an alignments store",
    "alignments": "inspect and convert alignments stores",
    "coverage": "before training: which of A's poses and expressions B's faces cover",
    "train": "train a face-swap model on two face folders",
    "sort": "sort and group extracted faces (sharpness, pose, colour, identity, ...)",
    "convert": "swap faces in a video or image folder with a trained model",
    "run": "extract both videos, train and convert in one resumable project",
    "live": "swap a camera, stream or paced video in real time (MJPEG, recording)",
    "export": "export a trained model to ONNX (for --engine onnx and other runtimes)",
    "detect": "draw and list hands, people, faces or YOLO-model objects in images, videos and streams",
    "project": "projects: persons with videos and photos, preprocess, train, convert",
    "ui": "start the web UI (projects, face grid, training, preview, convert, evaluate)",
    "evaluate": "score a swapped video: identity, pose, expression, flicker, reconstruction",
    "plugins": "list every plugin (detectors, masks, models, ...) with its options",
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


def _system_error(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    if isinstance(exc, MemoryError):
        return "out of memory (try a smaller --batch-size or fewer --workers)"
    return str(exc)


def main(argv: list[str] | None = None) -> int:
    configure_process()  # before torch loads: see swapface.core.runtime
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
    )
    args.progress = CliProgress(quiet=getattr(args, "quiet", False))
    args.cancel = CancelToken()
    name = f"swapface {args.command}"
    try:
        with cancel_on_signals(args.cancel):
            return int(args.func(args) or 0)
    except Cancelled:
        print(f"{name}: interrupted; what was complete is kept, partial files are removed",
              file=sys.stderr)
        return Cancelled.exit_code
    except SwapfaceError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{name}: interrupted; what was complete is kept, partial files are removed",
              file=sys.stderr)
        return 130
    except (OSError, MemoryError, sqlite3.Error) as exc:
        logging.getLogger(__name__).debug("%s failed", name, exc_info=True)  # shown with -v
        print(f"{name}: error: {_system_error(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
