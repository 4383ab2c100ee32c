"""``swapface live -m MODEL --source SRC``: swap a camera, stream or paced video in real time."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from swapface.cli.common import add_config_options, configs_from_args
from swapface.live.run import LiveConfig
from swapface.swap.options import SwapOptions

SECTIONS: list[tuple[str, type]] = [("live", LiveConfig), ("swap", SwapOptions)]


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "live", help="swap a camera, stream or paced video in real time (MJPEG, recording)",
        description="Capture → track → landmarks → causal smoothing → swap → outputs, each on "
        "its own thread; stale frames are dropped rather than queued, so latency stays bounded. "
        "Output: an MJPEG stream on 127.0.0.1 (OBS, VLC, browsers) and/or a recorded file, "
        "with a small 'SYNTHETIC' badge unless --no-badge.")
    add_config_options(parser, SECTIONS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swapface.live.run import run_live

    cfg, swap = configs_from_args(args, SECTIONS)
    stats = run_live(dataclasses.replace(cfg, swap=swap), args.cancel)
    print("\n".join(stats.lines()), file=sys.stderr)
    return 130 if args.cancel.cancelled else 0
