"""``swapface train -A FACES_A -B FACES_B -m MODEL_DIR``: learn to swap two identities."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from swapface.core.config import add_arguments, build_config, load_config_file


def _sections() -> list[tuple[str, type]]:
    from swapface.train.augment import AugmentConfig
    from swapface.train.config import TrainConfig
    from swapface.train.gan import GanConfig
    from swapface.train.losses import LossConfig

    return [("train", TrainConfig), ("loss", LossConfig), ("augment", AugmentConfig),
            ("gan", GanConfig)]


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train",
        help="train a face-swap model on two face folders",
        description="Train a shared-encoder / two-decoder model on faces written by extract. "
        "Resumes from MODEL_DIR; Ctrl-C finishes the step and saves.",
    )
    for name, cls in _sections():
        group = parser.add_argument_group(f"{name} options")
        add_arguments(group, cls)  # type: ignore[arg-type]
    parser.add_argument("--config", type=Path, help="TOML/JSON file with [train], [loss], [augment], [gan]")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swapface.train.trainer import Trainer

    values = vars(args)
    configs = [
        build_config(cls, values, load_config_file(args.config, name) if args.config else {})
        for name, cls in _sections()
    ]
    summary = Trainer(*configs).run(show_progress=not args.quiet)
    print("\n".join(summary.lines()), file=sys.stderr)
    return 0
