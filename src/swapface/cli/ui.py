"""``swapface ui``: the web UI on 127.0.0.1 (projects, faces, training, preview, convert)."""

from __future__ import annotations

import argparse

from swapface.cli.common import add_config_options, configs_from_args
from swapface.ui.server import UiConfig


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "ui", help="start the web UI (projects, face grid, training, preview, convert, evaluate)",
        description="Serve the web UI and run its job queue. Listens on 127.0.0.1 by default; "
        "on any other --host every request needs the access token printed at start.")
    add_config_options(parser, [("ui", UiConfig)])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swapface.ui.server import serve

    (cfg,) = configs_from_args(args, [("ui", UiConfig)])
    return serve(cfg)
