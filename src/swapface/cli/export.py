"""``swapface export -m MODEL_DIR -o model.onnx``: a trained model as one ONNX graph."""

from __future__ import annotations

import argparse
import sys

from swapface.cli.common import add_config_options, configs_from_args
from swapface.swap.export import ExportConfig

SECTIONS: list[tuple[str, type]] = [("export", ExportConfig)]


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "export", help="export a trained model to ONNX (for --engine onnx and other runtimes)",
        description="Write the encoder and one decoder (plus the mask head, when the model has "
        "one) as a single ONNX graph: RGB float NCHW crops in [0, 1] in, face (and mask) out, "
        "fixed face size, dynamic batch. The file's metadata carries sizes, coverage and side, so "
        "`swapface convert -m model.onnx` and `swapface live -m model.onnx` run it on ONNX "
        "Runtime without the model folder. Checked against PyTorch before it is written.")
    add_config_options(parser, SECTIONS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swapface.swap.export import run_export

    (cfg,) = configs_from_args(args, SECTIONS)
    summary = run_export(cfg)
    print("\n".join(summary.lines()), file=sys.stderr)
    return 0
