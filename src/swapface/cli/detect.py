"""``swapface detect INPUT|--source CAMERA -o OUT``: hands, people, faces and YOLO objects."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from swapface.cli.common import add_config_options, configs_from_args
from swapface.objects.config import DetectConfig

SECTIONS: list[tuple[str, type]] = [("detect", DetectConfig)]


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "detect", help="draw and list hands, people, faces or YOLO-model objects in images, "
                       "videos and streams",
        description="Detect objects offline and draw their boxes: hands (MediaPipe palm "
        "detection + 21 landmarks), people (MediaPipe pose, or OpenCV HOG), faces (any face "
        "detector plugin) and the classes of any YOLO-format ONNX model (--model, --labels). "
        "Writes the drawn image, folder or video (audio kept) and a JSON of every frame's "
        "objects: class, score, box [l, t, r, b] in pixels, and hand landmarks.")
    # Optional positional: INPUT or --source (the config bridge has only required ones).
    parser.add_argument("input", nargs="?", type=Path, default=None, metavar="INPUT",
                        help="image, image folder or video file (or use --source)")
    add_config_options(parser, SECTIONS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swapface.objects.run import run_detect

    if args.input is None:  # absent: leave INPUT to the config file, if it names one
        del args.input
    (cfg,) = configs_from_args(args, SECTIONS)
    summary = run_detect(cfg, args.progress, args.cancel)
    print("\n".join(summary.lines()), file=sys.stderr)
    return 130 if args.cancel.cancelled else 0
