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

from swapface.align.pose import head_pose
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
class FaceRow:
    media: str
    id: int
    frame: int
    file: str | None
    blur: float
    yaw: float
    pitch: float
    size: float
    identity: np.ndarray | None

    def to_dict(self) -> dict[str, Any]:
        return {"key": f"{self.media}:{self.id}", "media": self.media, "id": self.id,
                "frame": self.frame, "file": self.file, "blur": round(self.blur, 1),
                "yaw": round(self.yaw, 1), "pitch": round(self.pitch, 1), "size": round(self.size)}


def _stamp(path: Path) -> tuple[int, ...]:
    out = []
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            st = p.stat()
            out += [st.st_mtime_ns, st.st_size]
        except FileNotFoundError:
            out += [0, 0]
    return tuple(out)


def _rows(ui: UiState, store: Path, media: str) -> list[FaceRow]:
    stamp = _stamp(store)
    with ui.lock:
        cached = ui.grids.get(str(store))
    if cached is not None and cached[0] == stamp:
        return list(cached[1])
    rows = []
    with AlignmentsStore(store, readonly=True) as db:
        for index, _, face in db.faces():
            yaw, pitch, _ = head_pose(face.landmarks)
            rows.append(FaceRow(media, int(face.id or 0), index, face.file, float(face.blur or 0.0),
                                yaw, pitch, float(face.box[2] - face.box[0]), face.identity))
    with ui.lock:
        ui.grids[str(store)] = (stamp, rows)
    return list(rows)


def _person_rows(request: Request, p: Project, person: str) -> list[FaceRow]:
    rows: list[FaceRow] = []
    for item in p.media(person):
        store = p.store_path(person, item["name"])
        if store.is_file():
            rows += _rows(state(request), store, item["name"])
    return rows


def _identity_order(rows: list[FaceRow], group: bool) -> tuple[list[FaceRow], list[int]]:
    """Rows by identity (the least like the person first: wrong faces are found at once);
    with ``group``, clustered at dlib's threshold, largest group first."""
    from swapface.curate.features import identity_clusters

    have = [r for r in rows if r.identity is not None]
    rest = [r for r in rows if r.identity is None]
    if not have:
        return rows, [0] * len(rows)
    values = np.stack([r.identity for r in have])  # type: ignore[misc]
    centre = np.median(values, axis=0)
    distance = np.linalg.norm(values - centre, axis=1)
    if not group:
        order = np.argsort(-distance, kind="stable")
        return [have[i] for i in order] + rest, [0] * len(rows)
    labels = identity_clusters(values, 0.6) if len(have) > 1 else np.zeros(1, int)
    sizes = np.bincount(labels)
    rank = {lab: r for r, lab in enumerate(np.argsort(-sizes, kind="stable"))}
    order = sorted(range(len(have)), key=lambda i: (rank[labels[i]], distance[i]))
    return [have[i] for i in order] + rest, [rank[labels[i]] for i in order] + [-1] * len(rest)


@router.get("")
def faces(request: Request, name: str, person: str, sort: str = "frame", group: str = "none",
          page: int = Query(0, ge=0), per_page: int = Query(200, ge=1)) -> dict[str, Any]:
    p = project_of(request, name)
    p.side_of(person)
    if sort not in SORTS:
        raise HTTPException(400, f"sort must be one of {', '.join(SORTS)}")
    per_page = min(per_page, state(request).limits.page_size)
    rows = _person_rows(request, p, person)
    groups = [0] * len(rows)
    if sort == "identity" or group == "identity":
        rows, groups = _identity_order(rows, group == "identity")
    elif sort == "blur":
        rows.sort(key=lambda r: r.blur)  # blurriest first: those are the ones to throw out
    elif sort == "pose":
        rows.sort(key=lambda r: -abs(r.yaw))
    elif sort == "size":
        rows.sort(key=lambda r: r.size)
    else:
        rows.sort(key=lambda r: (r.media, r.frame))
    start = page * per_page
    chosen = [{**r.to_dict(), "group": g} for r, g in
              zip(rows[start:start + per_page], groups[start:start + per_page], strict=True)]
    return {"total": len(rows), "page": page, "per_page": per_page, "faces": chosen,
            "groups": len(set(groups) - {-1})}


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
        found = next(((i, f) for i, _, f in db.faces() if f.id == face_id), None)
        if found is None:
            raise HTTPException(404, f"no face {face_id}")
        record = db.frame(found[0], with_masks=True)
    frame = open_source(p.media_path(person, media)).read(found[0])
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
