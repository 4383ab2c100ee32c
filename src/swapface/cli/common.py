"""What every stage command shares: options from dataclass configs, --config files, -q."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from swapface.core.config import add_arguments, build_config, load_config_file


def add_config_options(parser: argparse.ArgumentParser, sections: list[tuple[str, type]]) -> None:
    """Options of each (config-file table, dataclass) pair, plus --config and -q."""
    for name, cls in sections:
        target = parser.add_argument_group(f"{name} options") if len(sections) > 1 else parser
        add_arguments(target, cls)  # type: ignore[arg-type]
    tables = ", ".join(f"[{name}]" for name, _ in sections)
    parser.add_argument("--config", type=Path, help=f"TOML/JSON file with {tables}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def configs_from_args(args: argparse.Namespace, sections: list[tuple[str, type]]) -> list[Any]:
    """One config per section: defaults < config file table < explicit command-line values."""
    values = vars(args)
    return [
        build_config(cls, values, load_config_file(args.config, name) if args.config else {})
        for name, cls in sections
    ]
