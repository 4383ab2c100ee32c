"""``swapface train -A FACES_A -B FACES_B -m MODEL_DIR``: learn to swap two identities."""

from __future__ import annotations

import argparse
import sys

from swapface.cli.common import add_config_options, configs_from_args


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
    add_config_options(parser, _sections())
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swapface.train.trainer import Trainer

    summary = Trainer(*configs_from_args(args, _sections())).run(args.progress, args.cancel)
    print("\n".join(summary.lines()), file=sys.stderr)
    # Stopped by Ctrl-C/SIGTERM: saved, but not finished — `train && convert` must not go on.
    return 130 if args.cancel.cancelled else 0
