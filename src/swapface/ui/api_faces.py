"""Routes: the face grid (paged, sorted, grouped), one face in its frame, deleting faces.

The grid reads each store once per change (its rows, without arrays but landmarks, are
cached by file stamp) and pages in memory, so 20 000 faces stay fast; thumbnails come
from the store itself. Deleting moves the face files to ``persons/<p>/deleted/`` and lets
the curate job ``remove_faces`` drop their rows, so folder and store stay in step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from swapface.align.pose import approx_yaw
from swapface.align.store import AlignmentsStore
from swapface.core.fileio import contained
from swapface.core.images import encode_image
from swapface.project.project import Project, check_name
from swapface.ui.api_projects import project_of
from swapface.ui.app import UiState, state
from swapface.ui.security import confined

router = APIRouter(prefix="/api/projects/{name}/faces")
SORTS = ("frame", "identity", "blur", "pose", "size")
DELETED_DIR = "deleted"


@dataclass
class Faces:
    """The grid's columns for one person: every media's store, concatenated."""

    media: list[str]
    ids: np.ndarray
    frames: np.ndarray
    files: list[str | None]
    blur: np.ndarray
    yaw: np.ndarray
    size: np.ndarray
    identity: np.ndarray
    has_identity: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def row(self, i: int, group: int) -> dict[str, Any]:
        return {"key": f"{self.media[i]}:{int(self.ids[i])}", "media": self.media[i],
                "id": int(self.ids[i]), "frame": int(self.frames[i]), "file": self.files[i],
                "blur": round(float(self.blur[i]), 1), "yaw": round(float(self.yaw[i]), 1),
                "size": round(float(self.size[i])), "group": group}


def _stamp(path: Path) -> tuple[int, ...]:
    out = []
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            st = p.stat()
            out += [st.st_mtime_ns, st.st_size]
        except FileNotFoundError:
            out += [0, 0]
    return tuple(out)


def _table(ui: UiState, store: Path) -> Any:
    """The store's face table, cached until the store changes."""
    stamp = _stamp(store)
    with ui.lock:
        cached = ui.grids.get(str(store))
    if cached is not None and cached[0] == stamp:
        return cached[1]
    with AlignmentsStore(store, readonly=True) as db:
        table = db.face_table()
    with ui.lock:
        ui.grids[str(store)] = (stamp, table)
    return table


def _person_faces(request: Request, p: Project, person: str) -> Faces:
    tables, media = [], []
    for item in p.media(person):
        store = p.store_path(person, item["name"])
        if store.is_file():
            table = _table(state(request), store)
            tables.append(table)
            media += [item["name"]] * len(table.ids)
    if not tables:
        none = np.zeros(0)
        return Faces([], none, none, [], none, none, none, np.zeros((0, 128)), np.zeros(0, bool))
    cat = np.concatenate
    return Faces(media, cat([t.ids for t in tables]), cat([t.frames for t in tables]),
                 [f for t in tables for f in t.files], cat([t.blur for t in tables]),
                 cat([approx_yaw(t.landmarks) for t in tables]), cat([t.width for t in tables]),
                 cat([t.identity for t in tables]), cat([t.has_identity for t in tables]))


def _identity_order(faces: Faces, group: bool) -> tuple[np.ndarray, np.ndarray]:
    """Order (and group labels) by identity: the least like the person first, so wrong faces
    are found at once; with ``group``, clustered at dlib's threshold, largest group first."""
    from swapface.curate.features import identity_clusters

    have = np.flatnonzero(faces.has_identity)
    rest = np.flatnonzero(~faces.has_identity)
    groups = np.full(len(faces), -1)
    if not len(have):
        return np.arange(len(faces)), np.zeros(len(faces), int)
    values = faces.identity[have]
    distance = np.linalg.norm(values - np.median(values, axis=0), axis=1)
    if not group:
        return np.concatenate([have[np.argsort(-distance, kind="stable")], rest]), np.zeros(len(faces), int)
    labels = identity_clusters(values, 0.6) if len(have) > 1 else np.zeros(1, int)
    rank = np.empty(labels.max() + 1, int)
    rank[np.argsort(-np.bincount(labels), kind="stable")] = np.arange(labels.max() + 1)
    groups[have] = rank[labels]
    order = have[np.lexsort((distance, rank[labels]))]
    return np.concatenate([order, rest]), groups


@router.get("")
def faces(request: Request, name: str, person: str, sort: str = "frame", group: str = "none",
          page: int = Query(0, ge=0), per_page: int = Query(200, ge=1)) -> dict[str, Any]:
    p = project_of(request, name)
    p.side_of(person)
    if sort not in SORTS:
        raise HTTPException(400, f"sort must be one of {', '.join(SORTS)}")
    per_page = min(per_page, state(request).limits.page_size)
    faces = _person_faces(request, p, person)
    groups = np.zeros(len(faces), int)
    if sort == "identity" or group == "identity":
        order, groups = _identity_order(faces, group == "identity")
    elif sort == "blur":
        order = np.argsort(faces.blur, kind="stable")  # blurriest first: the ones to throw out
    elif sort == "pose":
        order = np.argsort(-np.abs(faces.yaw), kind="stable")  # most turned first
    elif sort == "size":
        order = np.argsort(faces.size, kind="stable")  # smallest first
    else:
        order = np.arange(len(faces))  # media, then frame
    page_rows = order[page * per_page:(page + 1) * per_page]
    return {"total": len(faces), "page": page, "per_page": per_page,
            "faces": [faces.row(int(i), int(groups[i])) for i in page_rows],
            "groups": len(set(groups.tolist()) - {-1})}


def _store(p: Project, person: str, media: str) -> Path:
    p.side_of(person)
    store = p.store_path(person, check_name(media, "media"))
    if not store.is_file():
        raise HTTPException(404, "not found")
    return store


@router.get("/{person}/{media}/{face_id}/thumb.jpg")
def thumbnail(request: Request, name: str, person: str, media: str, face_id: int) -> Response:
    store = _store(project_of(request, name), person, media)
    with AlignmentsStore(store, readonly=True) as db:
        data = db.thumbnail(face_id)
    if not data:
        raise HTTPException(404, "no thumbnail")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


@router.get("/{person}/{media}/{face_id}/frame.jpg")
def face_in_frame(request: Request, name: str, person: str, media: str, face_id: int,
                  mask: str = "extended") -> Response:
    """The face's frame with its box, landmarks and stored mask drawn."""
    from swapface.curate.jobs.draw import annotate
    from swapface.media.source import open_source

    p = project_of(request, name)
    store = _store(p, person, media)
    with AlignmentsStore(store, readonly=True) as db:
        ref = next((r for r in db.face_refs() if r.id == face_id), None)  # no arrays decoded
        if ref is None:
            raise HTTPException(404, f"no face {face_id}")
        record = db.frame(ref.frame_index, with_masks=True)
    frame = open_source(p.media_path(person, media)).read(ref.frame_index)
    if frame is None or record is None:
        raise HTTPException(404, "frame not readable")
    image = annotate(frame.image, [f for f in record.faces if f.id == face_id], mask)
    return Response(encode_image(image, ".jpg", jpg_quality=88), media_type="image/jpeg")


class DeleteFaces(BaseModel):
    person: str
    faces: list[str] = Field(max_length=20_000)  # "media:id"


@router.post("/delete")
def delete_faces(request: Request, name: str, body: DeleteFaces) -> dict[str, Any]:
    """Move the chosen faces' files to ``deleted/`` and drop their rows (remove-faces)."""
    from swapface.curate.jobs.clean import remove_faces

    p = project_of(request, name)
    p.side_of(body.person)
    if state(request).queue.active(name):
        raise HTTPException(409, "jobs are queued or running for this project: wait for them")
    by_media: dict[str, set[int]] = {}
    for key in body.faces:
        media, _, fid = key.rpartition(":")
        if not fid.isdigit():
            raise HTTPException(400, f"bad face key {key!r}")
        by_media.setdefault(check_name(media, "media"), set()).add(int(fid))
    faces_dir = p.faces_dir(body.person)
    trash = p.path("persons", body.person, DELETED_DIR)
    removed = 0
    for media, ids in by_media.items():
        store = _store(p, body.person, media)
        with AlignmentsStore(store, readonly=True) as db:
            refs = [r for r in db.face_refs() if r.id in ids]
        if len(refs) != len(ids):
            raise HTTPException(404, f"{media}: {len(ids) - len(refs)} face(s) not in the store")
        for ref in refs:
            path = contained(faces_dir, ref.file) if ref.file else None
            if path is not None and path.is_file():
                target = confined(trash, f"{Path(media).stem}__{Path(ref.file or '').name}")
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
        summary = remove_faces(store, faces_dir)
        removed += len(summary.removed)
    return {"removed": removed}
