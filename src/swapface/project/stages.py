"""The project's stages: extract one media item, train the model, convert one video.

Each stage is resumable the way the command under it is (extract ``--skip-existing``, train
from its checkpoint, convert from scratch into a temporary file), and records in
``project.json`` only what finished, so a job killed mid-way re-runs to the same result.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swapface.core.config import from_mapping
from swapface.core.errors import ConfigError, InputError
from swapface.core.progress import CancelToken, Progress

if TYPE_CHECKING:
    from swapface.project.project import Project
    from swapface.swap.options import SwapOptions


def _extract_key(project: Project, person: str, size: int, every_n: int, identity: bool) -> dict[str, Any]:
    """What defines a media item's faces; a change re-extracts it from scratch."""
    refs = project.references(person)
    return {"size": size, "every_n": every_n, "identity": identity or bool(refs),
            "references": sorted(f"{p.name}:{p.stat().st_size}" for p in refs)}


def extract_media(project: Project, person: str, name: str, progress: Progress,
                  cancel: CancelToken, *, size: int = 256, every_n: int = 1,
                  identity: bool = True) -> int:
    """Extract ``person``'s media ``name`` into the person's face folder; faces written."""
    from swapface.extract.config import ExtractConfig
    from swapface.extract.run import run_extract

    media = project.media_path(person, name)
    store = project.store_path(person, name)
    store.parent.mkdir(parents=True, exist_ok=True)
    key = _extract_key(project, person, size, every_n, identity)
    record = project.data["extract"].get(f"{person}/{name}", {})
    if record.get("done") and record.get("key") == key and store.is_file():
        return int(record.get("faces", 0))
    # Same definition: resume what a killed run stored. Changed (new reference photos):
    # start again; extract sets the old store aside and moves its faces to stale/.
    resume = record.get("key") == key
    refs = project.references(person)
    cfg = ExtractConfig(input=media, faces=str(project.faces_dir(person)), alignments=store,
                        size=size, every_n=every_n, identity=key["identity"], filter=refs,
                        skip_existing=resume)
    project.data["extract"][f"{person}/{name}"] = {"done": False, "key": key}
    project.save()
    start = time.perf_counter()
    summary = run_extract(cfg, progress, cancel)
    from swapface.align.store import AlignmentsStore

    with AlignmentsStore(store, readonly=True) as db:
        faces = db.count_faces()
    project.data["extract"][f"{person}/{name}"] = {
        "done": True, "key": key, "faces": faces, "seconds": round(time.perf_counter() - start, 2),
        "filtered": summary.faces_filtered, "frames": summary.frames_total}
    project.save()
    return faces


def train_model(project: Project, progress: Progress, cancel: CancelToken, *, model: str,
                minutes: float, iterations: int, batch_size: int, options: list[str],
                preview_every: int = 0) -> dict[str, Any]:
    """Train (or resume) the project's model within a budget that counts across resumes;
    ``preview_every`` iterations a new ``preview.png`` (0: at every checkpoint)."""
    from swapface.train.config import TrainConfig
    from swapface.train.trainer import Trainer

    a, b = project.person("a"), project.person("b")
    for person in (a, b):
        folder = project.faces_dir(person)
        if not folder.is_dir() or not any(folder.iterdir()):
            raise InputError(f"{person} has no faces yet: add media and preprocess first")
    state = project.data.setdefault("train", {})
    if state.get("model") not in (None, model):
        raise ConfigError(f"the project's model is {state['model']}; it cannot continue as {model} "
                          "(delete the model folder to start over)")
    spent = float(state.get("seconds", 0.0))
    left = minutes - spent / 60
    if left <= 0:
        state.update(stopped_by="time budget", minutes=minutes)
        project.save()
        return dict(state)
    state.update(model=model, minutes=minutes, running=True)
    project.save()
    trainer = Trainer(TrainConfig(faces_a=project.faces_dir(a), faces_b=project.faces_dir(b),
                                  model_dir=project.model_dir, model=model, batch_size=batch_size,
                                  iterations=iterations, minutes=left, model_option=options,
                                  preview_interval=preview_every, tensorboard=False))
    start = time.perf_counter()
    try:
        result = trainer.run(progress, cancel)
    finally:
        state["seconds"] = spent + time.perf_counter() - start
        state["running"] = False
        project.save()
    state.update(iteration=result.iteration, stopped_by=result.stopped_by)
    project.save()
    cancel.check()  # a cancel saved the checkpoint: report it as a cancel, not as done
    return dict(state)


def project_swap_options(project: Project, values: dict[str, Any], face_filter: bool = False
                         ) -> SwapOptions:
    """Swap options for this project from a form, a job or the CLI: file paths never come from
    the caller — ``face_filter`` means A's reference photos, and the exemplar detail reads
    the drawn person's own face folder (B's, or A's with ``swap_model``)."""
    from swapface.swap.options import SwapOptions

    values = {k: v for k, v in values.items() if k not in ("filter", "nfilter", "detail_faces")}
    if values.get("detail", "none") != "none":  # the detail of the face being drawn
        drawn = project.person("a" if values.get("swap_model") else "b")
        values["detail_faces"] = str(project.faces_dir(drawn))
    options = from_mapping(SwapOptions, values, "swap options")
    if face_filter:
        refs = project.references(project.person("a"))
        if not refs:
            raise InputError(f"face_filter needs reference photos of {project.person('a')}")
        options.filter = refs
    return options


def convert_media(project: Project, name: str, progress: Progress, cancel: CancelToken, *,
                  face_filter: bool, photos: bool, swap: dict[str, Any], overwrite: bool,
                  output: Path | None = None) -> tuple[Path, list[str]]:
    """Person A's media ``name`` with B's face → ``outputs/`` (or ``output``); the video's
    path and convert's summary lines."""
    from swapface.convert.config import ConvertConfig
    from swapface.convert.pipeline import run_convert

    a, b = project.person("a"), project.person("b")
    if not project.model_dir.is_dir():
        raise InputError("the project has no model yet: train first")
    options = project_swap_options(project, swap, face_filter)
    stem = Path(name).stem
    outputs = project.path("outputs")
    outputs.mkdir(parents=True, exist_ok=True)
    media = project.media_path(a, name)
    is_video = media.is_file()
    target = output or project.path("outputs", f"{stem}_as_{b}.mp4" if is_video else f"{stem}_as_{b}")
    store = project.store_path(a, name)
    runs = [target] + ([project.path("outputs", f"{stem}_as_{b}_frames")] if photos and is_video else [])
    start = time.perf_counter()
    frames = 0
    for out in runs:
        summary = run_convert(ConvertConfig(
            input=media, model_dir=project.model_dir, output=out,
            alignments=store if store.is_file() else None, overwrite=overwrite, swap=options),
            progress, cancel)
        frames = summary.frames_out
    if target.resolve().is_relative_to(project.dir.resolve()):  # the pages show outputs inside
        project.data["outputs"][name] = {
            "path": str(target.resolve().relative_to(project.dir.resolve())), "frames": frames,
            "at": time.time(), "seconds": round(time.perf_counter() - start, 2),
            "photos": str(runs[-1].relative_to(project.dir)) if photos else None}
        project.save()
    return target, summary.lines()


def evaluate_output(project: Project, name: str, progress: Progress, *,
                    identity_every: int = 2) -> dict[str, Any]:
    """Score the converted ``name`` against its source and B's faces; the key figures."""
    from swapface.evaluate.config import EvaluateConfig
    from swapface.evaluate.run import run_evaluate

    out = project.data["outputs"].get(name)
    if not out:
        raise InputError(f"{name!r} has not been converted yet")
    swapped = project.path(*Path(out["path"]).parts)
    report = project.path("outputs", f"{Path(name).stem}_evaluate")
    result = run_evaluate(EvaluateConfig(
        source=project.media_path(project.person("a"), name), swapped=swapped,
        reference_b=project.faces_dir(project.person("b")), report=report,
        identity_every=identity_every, max_references=40), progress)
    figures = result.to_dict()
    figures.pop("per_frame", None)
    summary = {"report": str(report.relative_to(project.dir)), "lines": result.lines(),
               "figures": figures, "at": time.time()}
    project.data.setdefault("evaluations", {})[name] = summary
    project.save()
    return summary
