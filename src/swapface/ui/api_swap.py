"""Routes: option forms, training state (loss, preview), one-frame swap previews, evaluation."""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from swapface.convert.config import ConvertConfig
from swapface.convert.output import synthetic_label
from swapface.core.config import option_specs
from swapface.core.images import encode_image
from swapface.project.options import PreprocessOptions, ProjectConvertOptions, TrainOptions
from swapface.project.project import Project
from swapface.project.stages import project_swap_options
from swapface.swap.options import SwapOptions
from swapface.ui.api_projects import project_of
from swapface.ui.app import state

router = APIRouter(prefix="/api")
FORMS = {"preprocess": PreprocessOptions, "train": TrainOptions, "swap": SwapOptions,
         "convert": ProjectConvertOptions}
# Swap options that name files: not offered in the form (the project's references are).
_NOT_IN_FORM = {"filter", "nfilter", "mask_options", "color_options", "sharpen_options",
                "occlusion_options", "detail_faces", "detail_options"}
VIEWS = ("after", "before", "mask", "split")


def _spec_dicts(specs: list[Any]) -> list[dict[str, Any]]:
    out = []
    for spec in specs:
        if spec.name in _NOT_IN_FORM:
            continue
        item = dataclasses.asdict(spec)
        item["default"] = str(item["default"]) if isinstance(item["default"], Path) else item["default"]
        out.append(item)
    return out


@router.get("/forms/{form}")
def form(form: str) -> list[dict[str, Any]]:
    """The fields of an options dataclass, for a generated form (same as the CLI's options)."""
    if form not in FORMS:
        raise HTTPException(404, f"no form {form!r}")
    return _spec_dicts(option_specs(FORMS[form]))


@router.get("/forms/model/{model}")
def model_form(model: str) -> list[dict[str, Any]]:
    """A model architecture's own options (its registered options dataclass)."""
    from swapface.models import MODELS

    if model not in MODELS:
        raise HTTPException(404, f"no model {model!r}")
    return _spec_dicts(MODELS.get(model).option_specs())


# ---------------------------------------------------------------------- training
def _loss_rows(path: Path, limit: int = 2000) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        rows = [{k: float(v) for k, v in r.items() if v not in (None, "")}
                for r in csv.DictReader(fh)]
    step = max(1, len(rows) // limit)
    return rows[::step]


@router.get("/projects/{name}/train")
def train_state(request: Request, name: str) -> dict[str, Any]:
    p = project_of(request, name)
    model = p.model_dir
    preview = model / "preview.png"
    running = [j.to_dict() for j in state(request).queue.active(name) if j.kind == "train"]
    return {"state": p.data.get("train", {}), "loss": _loss_rows(model / "loss_log.csv"),
            "preview": int(preview.stat().st_mtime_ns) if preview.is_file() else None,
            "job": running[0] if running else None}


# ---------------------------------------------------------------------- preview
def _previewer(request: Request, p: Project) -> Any:
    """The project's loaded model, reloaded when training wrote a newer checkpoint."""
    from swapface.convert.preview import FramePreviewer
    from swapface.models.checkpoint import LATEST

    ui = state(request)
    latest = p.model_dir / LATEST  # rewritten by every checkpoint save
    if not latest.is_file():
        raise HTTPException(409, "no trained model yet: train first")
    stamp = latest.stat().st_mtime_ns
    with ui.lock:
        cached = ui.previewers.get(p.name)
        if cached is None or cached[0] != stamp:
            cached = ui.previewers[p.name] = (stamp, FramePreviewer(p.model_dir))
    return cached[1]


@router.get("/projects/{name}/videos/{video}")
def video_info(request: Request, name: str, video: str) -> dict[str, Any]:
    from swapface.media.source import open_source

    p = project_of(request, name)
    source = open_source(p.media_path(p.person("a"), video))
    fps = getattr(source, "fps", None)
    return {"name": video, "frames": source.count, "fps": float(fps) if fps else None,
            "output": p.data.get("outputs", {}).get(video)}


@router.get("/projects/{name}/preview.jpg")
def preview(request: Request, name: str, video: str, frame: int = Query(0, ge=0),
            view: str = "after", options: str = "{}") -> Response:
    """One frame of A's ``video`` swapped with the options (JSON) given: the after, before,
    mask-overlay or split (before | after) view, as a labelled JPEG."""
    if view not in VIEWS:
        raise HTTPException(400, f"view must be one of {', '.join(VIEWS)}")
    p = project_of(request, name)
    try:
        values = json.loads(options)
    except ValueError:
        raise HTTPException(400, "options must be JSON") from None
    if not isinstance(values, dict):
        raise HTTPException(400, "options must be a JSON object")
    face_filter = bool(values.pop("face_filter", False))  # the project's references, not paths
    swap = project_swap_options(p, values)
    if face_filter:
        swap.filter = p.references(p.person("a"))
    began = time.perf_counter()
    previewer = _previewer(request, p)
    store = p.store_path(p.person("a"), video)
    images = previewer.render(ConvertConfig(
        input=p.media_path(p.person("a"), video), model_dir=p.model_dir, output=Path("preview.jpg"),
        alignments=store if store.is_file() else None, preview_frame=frame, swap=swap))
    if view == "split":
        from swapface.convert.preview import side_by_side_image

        image = side_by_side_image(images.source, images.swapped, images.source.shape[0])
    else:
        image = {"after": images.swapped, "before": images.source, "mask": images.mask}[view]
    label = synthetic_label(content=f"frame {frame} of {video} swapped (preview)")
    data = encode_image(np.ascontiguousarray(image), ".jpg", label if view != "before" else None)
    took = time.perf_counter() - began
    return Response(data, media_type="image/jpeg", headers={
        "Cache-Control": "no-store", "X-Swap-Seconds": f"{images.seconds:.3f}",
        "X-Total-Seconds": f"{took:.3f}", "X-Faces": str(images.faces)})


@router.get("/projects/{name}/evaluation")
def evaluation(request: Request, name: str, video: str) -> dict[str, Any]:
    p = project_of(request, name)
    found = p.data.get("evaluations", {}).get(video)
    if not found:
        raise HTTPException(404, f"{video!r} has not been evaluated yet")
    return dict(found)



