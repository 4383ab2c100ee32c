"""``swapface alignments JOB ...``: inspect and convert alignments stores.

Jobs live in :data:`JOBS`, one :class:`Job` each (name, help, an argument builder and a
runner). To add a job (remove-faces, rename, ...): write ``_<job>_args(parser)`` and
``_<job>(args) -> int`` and append a :class:`Job` to :data:`JOBS`; nothing else changes.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from swapface.align import interchange
from swapface.align.store import AlignmentsStore


@dataclass(frozen=True)
class Job:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# ------------------------------------------------------------------------------ info
def _info_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", type=Path, metavar="STORE", help="alignments store (.db)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def _info(args: argparse.Namespace) -> int:
    with AlignmentsStore(args.store, readonly=True) as store:
        summary = interchange.store_summary(store)
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return 0
    span = summary["frame_index_range"]
    lines = [
        f"store:            {summary['path']}",
        f"schema version:   {summary['schema_version']}",
        f"frames:           {summary['frames']}"
        + (f" (index {span[0]}..{span[1]})" if span else "")
        + f", {summary['frames_without_faces']} without faces",
        f"faces:            {summary['faces']}",
    ]
    if summary["faces_by_detector"]:
        lines.append(
            "  by detector:    "
            + ", ".join(f"{k or '?'}: {v}" for k, v in summary["faces_by_detector"].items())
        )
    masks = ", ".join(f"{k}: {v}" for k, v in summary["masks"].items()) or "none"
    lines.append(f"masks:            {masks}")
    lines.append("meta:" + ("" if summary["meta"] else "             none"))
    lines += [f"  {k}: {json.dumps(v, ensure_ascii=False)}" for k, v in summary["meta"].items()]
    print("\n".join(lines))
    return 0


# ------------------------------------------------------------------------------ export
def _export_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", type=Path, metavar="STORE", help="alignments store (.db)")
    parser.add_argument("out", type=Path, metavar="OUT.json", help="JSON file to write")
    parser.add_argument(
        "--format", choices=interchange.FORMATS, default="seed",
        help="seed: face_alignments.json (landmark + warp_matrix); "
        "faceswap: faceswap's alignments export (detected + landmarks_2d). Default: seed",
    )


def _export(args: argparse.Namespace) -> int:
    result = interchange.export_json(args.store, args.out, args.format)
    print(f"wrote {result.path}: {result.frames} frames, {result.faces} faces ({result.format})")
    return 0


# ------------------------------------------------------------------------------ import
def _import_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, metavar="IN.json", help="JSON file to read")
    parser.add_argument(
        "store", type=Path, metavar="STORE",
        help="alignments store (.db); created if missing, otherwise merged into "
        "(frames with the same name have their faces replaced)",
    )
    parser.add_argument(
        "--format", choices=(*interchange.FORMATS, "auto"), default="auto",
        help="input format; auto (default) tells them apart by the faces' keys",
    )
    parser.add_argument(
        "--size", type=int, default=interchange.DEFAULT_SIZE,
        help="aligned face size the matrices map to (default %(default)s)",
    )
    parser.add_argument(
        "--coverage", type=float, default=interchange.DEFAULT_COVERAGE,
        help="fraction of the aligned face the mean face spans (default %(default)s)",
    )
    parser.add_argument(
        "--frames", type=Path, default=None, metavar="DIR",
        help="folder with the frame images, to record each new frame's width/height "
        "(decodes every image once; without it sizes are stored as 0)",
    )


def _import(args: argparse.Namespace) -> int:
    result = interchange.import_json(
        args.source, args.store, args.format,
        size=args.size, coverage=args.coverage, frames_dir=args.frames,
    )
    print(
        f"imported {result.path} ({result.format}) into {args.store}: {result.frames} frames "
        f"({result.new_frames} new, {result.replaced_frames} replaced), {result.faces} faces"
        + (f"; sizes read for {result.sized_frames} frames" if args.frames else "")
    )
    return 0


JOBS: list[Job] = [
    Job("info", "show counts, schema version and metadata of a store", _info_args, _info),
    Job("export", "write a store to JSON (seed or faceswap format)", _export_args, _export),
    Job("import", "read a JSON alignments file into a store", _import_args, _import),
]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "alignments",
        help="inspect and convert alignments stores",
        description="Inspect alignments stores and move them to and from other tools' JSON.",
    )
    jobs = parser.add_subparsers(dest="job", required=True, metavar="JOB")
    for job in JOBS:
        job.add_arguments(jobs.add_parser(job.name, help=job.help, description=job.help))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return next(job for job in JOBS if job.name == args.job).run(args)
