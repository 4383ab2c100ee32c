"""``swapface alignments JOB ...``: inspect and convert alignments stores.

Jobs live in :data:`JOBS`, one :class:`Job` each (name, help, an argument builder and a
runner). To add a job (remove-faces, rename, ...): write ``_<job>_args(parser)`` and
``_<job>(args) -> int`` and append a :class:`Job` to :data:`JOBS`; nothing else changes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from swapface.align import interchange
from swapface.align.store import AlignmentsStore
from swapface.core.errors import InputError
from swapface.curate import jobs


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
        summary = store.summary()
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
        "--face-span", type=float, default=interchange.DEFAULT_FACE_SPAN,
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
        size=args.size, face_span=args.face_span, frames_dir=args.frames,
    )
    print(
        f"imported {result.path} ({result.format}) into {args.store}: {result.frames} frames "
        f"({result.new_frames} new, {result.replaced_frames} replaced), {result.faces} faces"
        + (f"; sizes read for {result.sized_frames} frames" if args.frames else "")
    )
    return 0


# ------------------------------------------------------------------------------ curate jobs
def _store_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", type=Path, metavar="STORE", help="alignments store (.db)")


def _json_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _print_backup(backup: Path | None) -> None:
    if backup is not None:
        print(f"backup: {backup}")


def _remove_faces_args(parser: argparse.ArgumentParser) -> None:
    _store_arg(parser)
    parser.add_argument("faces", type=Path, metavar="FACES_DIR", help="face folder of the store")
    parser.add_argument("--force", action="store_true",
                        help="drop the faces even when most of them have no image")


def _remove_faces(args: argparse.Namespace) -> int:
    result = jobs.remove_faces(args.store, args.faces, force=args.force)
    _print_backup(result.backup)
    print(f"removed {len(result.removed)} faces whose files are gone; {result.kept} kept"
          + (f"; {result.relinked} found under new names" if result.relinked else ""))
    return 0


def _rename_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", type=Path, nargs="+", metavar="[STORE] FACES_DIR",
        help="face folder, optionally preceded by the store whose file names to update",
    )


def _rename(args: argparse.Namespace) -> int:
    if len(args.paths) > 2:
        raise InputError("rename takes [STORE] FACES_DIR")
    store, faces = (None, args.paths[0]) if len(args.paths) == 1 else args.paths
    result = jobs.rename_faces(faces, store)
    _print_backup(result.backup)
    print(f"renamed {len(result.renamed)} faces, {result.unchanged} already named, "
          f"{len(result.no_metadata)} without metadata, {len(result.conflicts)} conflicts"
          + (f"; {result.store_updated} store rows updated" if store is not None else ""))
    for line in result.conflicts:
        print(f"  conflict: {line}")
    return 1 if result.conflicts else 0


def _extract_args(parser: argparse.ArgumentParser) -> None:
    _store_arg(parser)
    parser.add_argument("source", type=Path, metavar="SOURCE", help="the video or frames folder")
    parser.add_argument("out", type=Path, metavar="OUT_DIR", help="folder for the face images")
    parser.add_argument("--every-n", type=int, default=1, help="every N-th frame (default 1)")
    parser.add_argument("--size", type=int, default=256, help="face size in px (default 256)")
    parser.add_argument("--large", action="store_true",
                        help="only faces at least --size px wide in the frame (never upscaled)")
    parser.add_argument("--jpg", action="store_true", help="write JPEG instead of PNG")


def _extract(args: argparse.Namespace) -> int:
    result = jobs.extract_faces(args.store, args.source, args.out, every_n=args.every_n,
                                size=args.size, large=args.large, jpg=args.jpg)
    print(f"wrote {len(result.written)} faces from {result.frames} frames to {result.out_dir}"
          + (f"; {result.too_small} smaller than {args.size} px skipped" if args.large else ""))
    return 0


def _print_frames(title: str, frames: jobs.FrameList, as_json: bool) -> None:
    if as_json:
        print(json.dumps(frames.to_dict(), indent=2, ensure_ascii=False))
        return
    print(f"{title}: {len(frames.frames)} of {frames.total} frames")
    for index, name in frames.frames:
        print(f"  {index}\t{name}")


def _missing_frames_args(parser: argparse.ArgumentParser) -> None:
    _store_arg(parser)
    parser.add_argument("source", type=Path, metavar="SOURCE", help="the video or frames folder")
    _json_arg(parser)


def _missing_frames(args: argparse.Namespace) -> int:
    _print_frames("frames not in the store", jobs.missing_frames(args.store, args.source), args.json)
    return 0


def _missing_alignments_args(parser: argparse.ArgumentParser) -> None:
    _store_arg(parser)
    _json_arg(parser)


def _missing_alignments(args: argparse.Namespace) -> int:
    _print_frames("frames without faces", jobs.missing_alignments(args.store), args.json)
    return 0


def _multi_faces_args(parser: argparse.ArgumentParser) -> None:
    _store_arg(parser)
    parser.add_argument("faces", type=Path, nargs="?", metavar="FACES_DIR", help="face folder")
    parser.add_argument("--move", action="store_true",
                        help=f"move their face files to FACES_DIR/{jobs.MULTI_FACES_DIR}/")
    _json_arg(parser)


def _print_refused(names: list[str]) -> None:
    if names:
        print(f"not moved: {len(names)} names outside the folder or already set aside "
              f"(e.g. {names[0]!r})", file=sys.stderr)


def _multi_faces(args: argparse.Namespace) -> int:
    result = jobs.multi_faces(args.store, args.faces, move=args.move)
    if args.json:
        print(json.dumps({"count": len(result.frames), "moved": result.moved,
                          "refused": result.refused, "frames": result.frames},
                         indent=2, ensure_ascii=False))
        return 0
    _print_backup(result.backup)
    print(f"frames with more than one face: {len(result.frames)}"
          + (f"; moved {result.moved} face files" if args.move else ""))
    _print_refused(result.refused)
    for frame in result.frames:
        print(f"  {frame['index']}\t{frame['name']}\t{frame['faces']} faces")
    return 0


def _no_faces_args(parser: argparse.ArgumentParser) -> None:
    _store_arg(parser)
    parser.add_argument("frames", type=Path, nargs="?", metavar="SOURCE_FRAMES_DIR",
                        help="the frames folder the store was extracted from")
    parser.add_argument("--move", action="store_true",
                        help=f"move the frame images to SOURCE_FRAMES_DIR/{jobs.NO_FACES_DIR}/")
    _json_arg(parser)


def _no_faces(args: argparse.Namespace) -> int:
    result = jobs.no_faces(args.store, args.frames, move=args.move)
    if args.json:
        print(json.dumps({"count": len(result.frames), "moved": result.moved,
                          "refused": result.refused,
                          "frames": [{"index": i, "name": n} for i, n in result.frames]},
                         indent=2, ensure_ascii=False))
        return 0
    print(f"frames with no faces: {len(result.frames)}"
          + (f"; moved {result.moved} frame images" if args.move else ""))
    _print_refused(result.refused)
    for index, name in result.frames:
        print(f"  {index}\t{name}")
    return 0


def _draw_args(parser: argparse.ArgumentParser) -> None:
    _store_arg(parser)
    parser.add_argument("source", type=Path, metavar="SOURCE", help="the video or frames folder")
    parser.add_argument("out", type=Path, metavar="OUT_DIR", help="folder for the JPEGs")


def _draw(args: argparse.Namespace) -> int:
    result = jobs.draw_alignments(args.store, args.source, args.out)
    print(f"drew {result.written} frames into {result.out_dir}")
    return 0


def _merge_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", type=Path, metavar="STORE_A", help="first store")
    parser.add_argument("b", type=Path, metavar="STORE_B", help="second store")
    parser.add_argument("out", type=Path, metavar="OUT_STORE", help="new store to write")


def _merge(args: argparse.Namespace) -> int:
    result = jobs.merge_stores(args.a, args.b, args.out)
    print(f"wrote {result.out}: {result.frames} frames, {result.faces} faces, "
          f"{result.duplicates} duplicate faces dropped")
    return 0


def _from_faces_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("faces", type=Path, metavar="FACES_DIR", help="face folder")
    parser.add_argument("out", type=Path, metavar="OUT_STORE", help="store to write")


def _from_faces(args: argparse.Namespace) -> int:
    result = jobs.from_faces(args.faces, args.out)
    _print_backup(result.backup)
    print(f"wrote {result.out}: {result.frames} frames, {result.faces} faces; "
          f"{len(result.skipped)} files skipped")
    return 0


def _smooth_args(parser: argparse.ArgumentParser) -> None:
    _store_arg(parser)
    parser.add_argument("--window", type=int, default=5, help="odd window in frames (default 5)")
    parser.add_argument("--method", choices=jobs.SMOOTH_METHODS, default="savgol",
                        help="savgol (local quadratic, default) or average (moving mean)")
    parser.add_argument("--max-gap", type=int, default=2,
                        help="frames between samples of one track at most (default 2); "
                        "sparser samples are not smoothed")


def _smooth(args: argparse.Namespace) -> int:
    result = jobs.smooth_landmarks(args.store, window=args.window, method=args.method,
                                   max_gap=args.max_gap)
    _print_backup(result.backup)
    print(f"smoothed {result.faces} faces in {result.tracks} tracks; landmarks moved "
          f"{result.mean_shift:.2f} px on average, {result.max_shift:.2f} px at most")
    return 0


JOBS: list[Job] = [
    Job("info", "show counts, schema version and metadata of a store", _info_args, _info),
    Job("export", "write a store to JSON (seed or faceswap format)", _export_args, _export),
    Job("import", "read a JSON alignments file into a store", _import_args, _import),
    Job("remove-faces", "drop faces whose image files were deleted from the face folder",
        _remove_faces_args, _remove_faces),
    Job("rename", "rename face images back to <frame>_<face index> from their metadata",
        _rename_args, _rename),
    Job("extract", "write the store's faces again from the source frames",
        _extract_args, _extract),
    Job("missing-frames", "list source frames that are not in the store",
        _missing_frames_args, _missing_frames),
    Job("missing-alignments", "list frames in the store with no faces",
        _missing_alignments_args, _missing_alignments),
    Job("multi-faces", "list (or move) faces of frames with more than one face",
        _multi_faces_args, _multi_faces),
    Job("no-faces", "list (or move) source frames with no faces", _no_faces_args, _no_faces),
    Job("draw", "draw boxes and landmarks onto the frames", _draw_args, _draw),
    Job("merge", "merge two stores into a new one", _merge_args, _merge),
    Job("from-faces", "rebuild a store from a face folder's embedded metadata",
        _from_faces_args, _from_faces),
    Job("smooth", "temporal smoothing of landmarks along face tracks", _smooth_args, _smooth),
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
