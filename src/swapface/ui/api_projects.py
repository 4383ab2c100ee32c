"""Routes: projects, persons' media and reference photos, jobs, and files of a project."""

from __future__ import annotations

import shutil
from typing import Any

from fastapi import APIRouter, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, PlainTextResponse
from pydantic import BaseModel, Field

from swapface.core.config import from_mapping
from swapface.core.errors import ConfigError
from swapface.project.jobs import KINDS
from swapface.project.options import PreprocessOptions, ProjectConvertOptions, TrainOptions
from swapface.project.project import Project, check_name, list_projects, open_project
from swapface.swap.options import SwapOptions
from swapface.ui.app import state
from swapface.ui.security import confined
from swapface.ui.uploads import receive_upload

router = APIRouter(prefix="/api")

# Files of a project the pages may show: previews, outputs, reports (never media or stores
# by an arbitrary path: those have their own routes).
SERVED = ("model/preview.png", "outputs/", "side_by_side.png")


class NewProject(BaseModel):
    name: str = Field(max_length=80)
    person_a: str = Field(max_length=80)
    person_b: str = Field(max_length=80)


class Confirm(BaseModel):
    confirm: str = Field(max_length=80)


class NewJob(BaseModel):
    kind: str
    params: dict[str, Any] = Field(default_factory=dict)


def project_of(request: Request, name: str) -> Project:
    confined(state(request).workspace, check_name(name, "project"))
    return open_project(state(request).workspace, name)


@router.get("/projects")
def projects(request: Request) -> list[dict[str, Any]]:
    ws = state(request).workspace
    out = []
    for name in list_projects(ws):
        try:
            p = open_project(ws, name)
        except ConfigError as exc:
            out.append({"name": name, "error": str(exc)})
            continue
        out.append({"name": name, "persons": p.data["persons"],
                    "media": sum(len(v) for v in p.data["media"].values()),
                    "trained": bool(p.data.get("train", {}).get("iteration")),
                    "outputs": len(p.data.get("outputs", {}))})
    return out


@router.post("/projects")
def create_project(request: Request, body: NewProject) -> dict[str, Any]:
    p = Project.create(state(request).workspace, body.name, body.person_a, body.person_b)
    return p.status()


@router.get("/projects/{name}")
def project_status(request: Request, name: str) -> dict[str, Any]:
    p = project_of(request, name)
    jobs = [j.to_dict() for j in state(request).queue.list(name, limit=50)]
    return {**p.status(), "jobs": jobs, "evaluations": p.data.get("evaluations", {})}


@router.post("/projects/{name}/delete")
def delete_project(request: Request, name: str, body: Confirm) -> dict[str, str]:
    p = project_of(request, name)
    if body.confirm != name:
        raise HTTPException(400, "type the project's name to confirm deleting it")
    if state(request).queue.active(name):
        raise HTTPException(409, "the project has queued or running jobs: cancel them first")
    shutil.rmtree(p.dir)
    state(request).previewers.pop(name, None)
    return {"deleted": name}


@router.post("/projects/{name}/persons/{person}/media")
async def upload_media(request: Request, name: str, person: str, file: UploadFile) -> dict[str, Any]:
    p = project_of(request, name)
    p.side_of(person)
    with receive_upload(state(request), file, kinds=("video", "photo")) as path:
        added = p.add(person, path, name=check_name(file.filename, "media"))
    return {"added": added, **p.status()}


@router.post("/projects/{name}/persons/{person}/references")
async def upload_reference(request: Request, name: str, person: str,
                           file: UploadFile) -> dict[str, Any]:
    p = project_of(request, name)
    p.side_of(person)
    with receive_upload(state(request), file, kinds=("photo",)) as path:
        added = p.add_reference(person, path)
    return {"added": added, **p.status()}


@router.post("/projects/{name}/persons/{person}/media/{media}/delete")
def delete_media(request: Request, name: str, person: str, media: str) -> dict[str, Any]:
    p = project_of(request, name)
    p.remove(person, check_name(media, "media"))
    return p.status()


# ---------------------------------------------------------------------- jobs
_PARAMS = {"extract": PreprocessOptions, "train": TrainOptions}


def _check_params(p: Project, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Job parameters checked now, against the same dataclasses as the CLI (not mid-job)."""
    if kind in _PARAMS:
        extra = {k: params.pop(k) for k in ("person",) if k in params}
        from_mapping(_PARAMS[kind], params, f"{kind} options")
        if "person" in extra:
            p.side_of(str(extra["person"]))
        return {**params, **extra}
    video = params.get("video")
    if not any(m["name"] == video for m in p.media(p.person("a"))):
        raise ConfigError(f"{p.person('a')} has no media {video!r}")
    if kind == "convert":
        swap = params.get("swap", {})
        if not isinstance(swap, dict):
            raise ConfigError("swap options must be a table")
        from_mapping(SwapOptions, swap, "swap options")
        rest = {k: v for k, v in params.items() if k not in ("video", "swap")}
        from_mapping(ProjectConvertOptions, rest, "convert options")
    elif set(params) - {"video"}:
        raise ConfigError(f"unknown evaluate option(s): {', '.join(sorted(set(params) - {'video'}))}")
    return params


@router.post("/projects/{name}/jobs")
def submit_job(request: Request, name: str, body: NewJob) -> dict[str, Any]:
    p = project_of(request, name)
    if body.kind not in KINDS:
        raise HTTPException(400, f"unknown job kind {body.kind!r}")
    params = _check_params(p, body.kind, dict(body.params))
    job_id = state(request).queue.submit(body.kind, name, params)
    job = state(request).queue.get(job_id)
    assert job is not None
    return job.to_dict()


def _job(request: Request, job_id: int) -> Any:
    job = state(request).queue.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job


@router.get("/jobs/{job_id}")
def job_status(request: Request, job_id: int) -> dict[str, Any]:
    return _job(request, job_id).to_dict()  # type: ignore[no-any-return]


@router.get("/jobs/{job_id}/log")
def job_log(request: Request, job_id: int) -> PlainTextResponse:
    _job(request, job_id)
    path = state(request).queue.log_path(job_id)
    text = path.read_text(encoding="utf-8", errors="replace")[-200_000:] if path.is_file() else ""
    return PlainTextResponse(text)


@router.post("/jobs/{job_id}/cancel")
def cancel_job(request: Request, job_id: int) -> dict[str, Any]:
    _job(request, job_id)
    return {"state": state(request).queue.cancel(job_id)}


@router.post("/jobs/{job_id}/retry")
def retry_job(request: Request, job_id: int) -> dict[str, Any]:
    _job(request, job_id)
    state(request).queue.retry(job_id)
    return _job(request, job_id).to_dict()  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- files
@router.get("/projects/{name}/file/{path:path}")
def project_file(request: Request, name: str, path: str) -> FileResponse:
    """A preview, output or report file of the project (confined to the project folder)."""
    p = project_of(request, name)
    if not (path in SERVED or any(path.startswith(s) for s in SERVED if s.endswith("/"))):
        raise HTTPException(404, "not found")
    target = confined(p.dir, path)
    if not target.is_file():
        raise HTTPException(404, "not found")
    return FileResponse(target, headers={"Cache-Control": "no-store"})
