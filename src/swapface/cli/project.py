"""``swapface project new|add|reference|preprocess|train|convert|status``: the FaceIt workflow."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from swapface.core.config import add_arguments, build_config

DEFAULT_WORKSPACE = "swapface_workspace"


def default_workspace() -> Path:
    return Path(os.environ.get("SWAPFACE_WORKSPACE", DEFAULT_WORKSPACE))


def _common(parser: argparse.ArgumentParser, name: bool = True) -> None:
    parser.add_argument("--workspace", type=Path, default=None,
                        help=f"folder of projects (default: $SWAPFACE_WORKSPACE or ./{DEFAULT_WORKSPACE})")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    if name:
        parser.add_argument("name", help="project name")


def register(sub: argparse._SubParsersAction) -> None:
    from swapface.project.options import PreprocessOptions, ProjectConvertOptions, TrainOptions

    parser = sub.add_parser(
        "project", help="projects: persons with videos and photos, preprocess, train, convert",
        description="Work in a project folder (the FaceIt workflow): two persons, their videos, "
        "photos and reference photos, one model; person A's faces are replaced by person B's.")
    steps = parser.add_subparsers(dest="step", required=True, metavar="STEP")
    p = steps.add_parser("new", help="create a project: NAME PERSON_A PERSON_B")
    _common(p)
    p.add_argument("person_a", help="the person whose face is replaced")
    p.add_argument("person_b", help="the person whose face is put in")
    p = steps.add_parser("add", help="add videos, photos or photo folders to a person")
    _common(p)
    p.add_argument("person")
    p.add_argument("media", nargs="+", type=Path)
    p = steps.add_parser("reference", help="add reference photos of a person (face filter)")
    _common(p)
    p.add_argument("person")
    p.add_argument("images", nargs="+", type=Path)
    p = steps.add_parser("preprocess", help="extract the faces of every video and photo folder")
    _common(p)
    p.add_argument("--person", help="only this person")
    add_arguments(p, PreprocessOptions)
    p = steps.add_parser("train", help="train (or resume) the project's model")
    _common(p)
    add_arguments(p, TrainOptions)
    p = steps.add_parser("convert", help="put B's face into one of A's videos")
    _common(p)
    p.add_argument("video", help="a media name of person A, or a video file (added to A)")
    add_arguments(p, ProjectConvertOptions)
    p = steps.add_parser("status", help="persons, media, faces, training and outputs")
    _common(p)
    p = steps.add_parser("list", help="the workspace's projects")
    _common(p, name=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swapface.project.options import PreprocessOptions, ProjectConvertOptions, TrainOptions
    from swapface.project.project import Project, list_projects, open_project

    workspace = args.workspace or default_workspace()
    values = vars(args)
    if args.step == "list":
        print("\n".join(list_projects(workspace)) or f"no projects in {workspace}")
        return 0
    if args.step == "new":
        project = Project.create(workspace, args.name, args.person_a, args.person_b)
        print(f"created {project.dir}", file=sys.stderr)
        return 0
    project = open_project(workspace, args.name)
    progress, cancel = args.progress, args.cancel
    if args.step == "add":
        for media in args.media:
            print(f"added {project.add(args.person, media)} to {args.person}", file=sys.stderr)
    elif args.step == "reference":
        for image in args.images:
            print(f"reference {project.add_reference(args.person, image)} for {args.person}",
                  file=sys.stderr)
    elif args.step == "preprocess":
        opts = build_config(PreprocessOptions, values, {})
        faces = project.preprocess(progress, cancel, persons=[args.person] if args.person else None,
                                   size=opts.size, every_n=opts.every_n)
        for key, count in faces.items():
            print(f"{key}: {count} faces", file=sys.stderr)
    elif args.step == "train":
        opts = build_config(TrainOptions, values, {})
        state = project.train(progress, cancel, model=opts.model, minutes=opts.minutes,
                              iterations=opts.iterations, batch_size=opts.batch_size,
                              options=opts.model_option)
        print(f"trained {state.get('model')}: {state.get('iteration', 0)} iterations, "
              f"{state.get('seconds', 0) / 60:.1f} min ({state.get('stopped_by')})", file=sys.stderr)
    elif args.step == "convert":
        opts = build_config(ProjectConvertOptions, values, {})
        out = project.convert(args.video, progress, cancel, face_filter=opts.face_filter,
                              photos=opts.photos)
        print(f"wrote {out}", file=sys.stderr)
    print("\n".join(project.lines()), file=sys.stderr if args.step != "status" else sys.stdout)
    return 0
