"""The web UI's API: confinement of every path, upload limits, token, CSRF, GET is read-only."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from swapface.align.store import AlignmentsStore
from swapface.project.project import Project
from swapface.ui.app import Limits, create_app

BASE = "http://127.0.0.1:8765"
CSRF = {"X-Swapface-CSRF": "1"}
SECRET = "top secret outside the workspace"


@pytest.fixture(scope="module")
def site(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A workspace with project ``demo`` (alice's photo folder extracted), a secret file next
    to the workspace, and links inside the project that point at it."""
    root = tmp_path_factory.mktemp("ui_api")
    (root / "secret.txt").write_text(SECRET)
    ws = root / "ws"
    p = Project.create(ws, "demo", "alice", "bob")
    photos = root / "photos"
    photos.mkdir()
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg", "two_people.jpg"):
        shutil.copy(data_dir / "stills" / name, photos / name)
    p.add("alice", photos)
    p.preprocess(persons=["alice"], size=64)
    outputs = p.dir / "outputs"
    outputs.mkdir()
    (outputs / "ok.txt").write_text("fine")
    os.symlink(root, outputs / "link_dir")
    os.symlink(root / "secret.txt", outputs / "link_file")
    return {"root": root, "ws": ws, "project": p.dir}


def client(ws: Path, **kwargs) -> TestClient:
    return TestClient(create_app(ws, **kwargs), base_url=BASE)


TRAVERSALS = [
    "/api/projects/demo/file/outputs/%2e%2e/%2e%2e/secret.txt",
    "/api/projects/demo/file/outputs/..%2f..%2f..%2fsecret.txt",
    "/api/projects/demo/file/%2f" + "etc%2fpasswd",
    "/api/projects/demo/file/outputs/%2fetc%2fpasswd",
    "/api/projects/demo/file/outputs/..%5c..%5c..%5csecret.txt",
    "/api/projects/demo/file/outputs/link_dir/secret.txt",  # a link inside pointing out
    "/api/projects/demo/file/outputs/link_file",
    "/api/projects/demo/file/outputs/ok.txt%00.png",
    "/api/projects/demo/file/project.json",  # inside, but not a served file
    "/api/projects/..%2f..%2fsecret.txt/file/outputs/ok.txt",
    "/api/projects/%2e%2e/file/outputs/ok.txt",
    "/api/projects/demo/faces/alice/..%2f..%2f..%2f..%2fsecret.txt/1/thumb.jpg",
    "/api/projects/demo/faces/..%2f..%2fbob/photos/1/thumb.jpg",
    "/api/projects/demo/faces?person=..%2f..%2f",
    "/api/projects/demo/videos/..%2f..%2f..%2fsecret.txt",
    "/api/projects/demo/preview.jpg?video=..%2F..%2F..%2Fsecret.txt",
]


@pytest.mark.parametrize("url", TRAVERSALS)
def test_paths_that_leave_the_workspace_are_refused(site, url):
    response = client(site["ws"]).get(url)
    assert 400 <= response.status_code < 500
    assert SECRET not in response.text
    assert response.headers["content-type"].startswith("application/json")  # errors are JSON


def test_a_served_file_inside_is_given(site):
    response = client(site["ws"]).get("/api/projects/demo/file/outputs/ok.txt")
    assert response.status_code == 200 and response.text == "fine"


def _jpeg(size: int = 64) -> bytes:
    noise = np.random.default_rng(0).integers(0, 255, (size, size, 3), np.uint8)
    return cv2.imencode(".jpg", noise)[1].tobytes()


def _media(site) -> list:
    return Project.open(site["project"]).media("alice")


def test_uploads_are_limited_by_size_type_and_content(site):
    before = _media(site)
    small = client(site["ws"], limits=Limits(upload_bytes=4096))
    data = _jpeg(256)
    r = small.post("/api/projects/demo/persons/alice/references", headers=CSRF,
                   files={"file": ("ref.jpg", data, "image/jpeg")})
    assert r.status_code == 413 and "upload limit" in r.json()["error"]
    web = client(site["ws"])
    r = web.post("/api/projects/demo/persons/alice/media", headers=CSRF,
                 files={"file": ("clip.mp4", b"not a video at all" * 100, "video/mp4")})
    assert r.status_code == 415 and "not a readable video" in r.json()["error"]
    r = web.post("/api/projects/demo/persons/alice/media", headers=CSRF,
                 files={"file": ("notes.txt", b"hello", "text/plain")})
    assert r.status_code == 415
    r = web.post("/api/projects/demo/persons/alice/references", headers=CSRF,
                 files={"file": ("../../evil.jpg", _jpeg(), "image/jpeg")})
    assert r.status_code == 400 and not (site["root"] / "evil.jpg").exists()
    # A PNG whose header claims 30 000 × 30 000 pixels is refused from its header.
    png = bytearray(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    png[16:24] = (30000).to_bytes(4, "big") + (30000).to_bytes(4, "big")
    r = web.post("/api/projects/demo/persons/alice/references", headers=CSRF,
                 files={"file": ("huge.png", bytes(png), "image/png")})
    assert r.status_code == 413
    assert _media(site) == before
    assert not any((site["ws"] / ".uploads").rglob("*.*"))  # nothing left behind


def test_the_oversize_check_refuses_before_reading_the_body(site):
    small = client(site["ws"], limits=Limits(upload_bytes=1000))
    r = small.post("/api/projects/demo/persons/alice/media", headers=CSRF,
                   files={"file": ("big.mp4", io.BytesIO(b"\0" * (3 << 20)), "video/mp4")})
    assert r.status_code == 413 and "request too large" in r.json()["error"]  # the Guard, not the copy


def test_a_token_is_required_off_loopback(site):
    open_web = client(site["ws"], token="s3cret-token", host="0.0.0.0")
    assert open_web.get("/api/projects").status_code == 401
    assert open_web.get("/api/projects", headers={"X-Swapface-Token": "wrong"}).status_code == 401
    assert open_web.get("/api/projects", headers={"X-Swapface-Token": "s3cret-token"}).status_code == 200
    first = open_web.get("/?token=s3cret-token")
    assert first.status_code == 200 and "swapface_token" in first.headers["set-cookie"]
    assert open_web.get("/api/projects").status_code == 200  # the cookie now
    loopback = client(site["ws"])
    assert loopback.get("/api/projects").status_code == 200
    assert loopback.get("/api/projects", headers={"Host": "evil.example:8765"}).status_code == 400


def test_state_changes_need_post_with_the_csrf_header_and_our_origin(site):
    web = client(site["ws"])
    body = {"name": "other", "person_a": "a", "person_b": "b"}
    assert web.post("/api/projects", json=body).status_code == 403
    assert web.post("/api/projects", json=body, headers={**CSRF, "Origin": "http://evil.example"}
                    ).status_code == 403
    assert not (site["ws"] / "other").exists()
    r = web.post("/api/projects", json=body, headers={**CSRF, "Origin": BASE})
    assert r.status_code == 200 and (site["ws"] / "other" / "project.json").is_file()
    r = web.post("/api/projects/other/delete", json={"confirm": "wrong"}, headers=CSRF)
    assert r.status_code == 400 and (site["ws"] / "other").exists()
    assert web.post("/api/projects/other/delete", json={"confirm": "other"}, headers=CSRF).status_code == 200
    assert not (site["ws"] / "other").exists()


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(("-shm", "-wal"))}


def test_get_never_changes_state(site):
    web = client(site["ws"])
    with AlignmentsStore(Project.open(site["project"]).store_path("alice", "photos"), readonly=True) as db:
        face = db.face_refs()[0].id
    before = _snapshot(site["ws"])
    jobs_before = web.get("/api/projects/demo").json()["jobs"]
    reads = ["/", "/api/info", "/api/projects", "/api/projects/demo", "/api/projects/demo/train",
             "/api/forms/swap", "/api/forms/train", "/api/projects/demo/faces?person=alice&sort=identity",
             f"/api/projects/demo/faces/alice/photos/{face}/thumb.jpg",
             f"/api/projects/demo/faces/alice/photos/{face}/frame.jpg"]
    for url in reads:
        assert web.get(url).status_code == 200, url
    # Every state-changing route refuses GET.
    writes = ["/api/projects/demo/delete", "/api/projects/demo/jobs", "/api/projects/demo/faces/delete",
              "/api/projects/demo/persons/alice/media",
              "/api/projects/demo/persons/alice/media/photos/delete",
              "/api/jobs/1/cancel", "/api/jobs/1/retry"]
    for url in writes:
        assert web.get(url).status_code in (404, 405), url
    assert _snapshot(site["ws"]) == before
    assert web.get("/api/projects/demo").json()["jobs"] == jobs_before


def test_the_grid_pages_sorts_and_deletes_faces_in_step_with_the_store(site, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(site["ws"], ws, symlinks=True)
    web = client(ws)
    grid = web.get("/api/projects/demo/faces?person=alice&sort=blur&per_page=2").json()
    assert grid["total"] >= 5 and len(grid["faces"]) == 2
    assert grid["faces"][0]["blur"] <= grid["faces"][1]["blur"]
    whole = web.get("/api/projects/demo/faces?person=alice&group=identity").json()
    assert whole["groups"] >= 2  # obama and biden (and the two people's photo)
    p = Project.open(ws / "demo")
    store = p.store_path("alice", "photos")
    with AlignmentsStore(store, readonly=True) as db:
        count = db.count_faces()
    chosen = [f["key"] for f in whole["faces"][:2]]
    r = web.post("/api/projects/demo/faces/delete", json={"person": "alice", "faces": chosen}, headers=CSRF)
    assert r.status_code == 200 and r.json()["removed"] == 2
    with AlignmentsStore(store, readonly=True) as db:
        assert db.count_faces() == count - 2
        left = {ref.file for ref in db.face_refs()}
    on_disk = {f.name for f in p.faces_dir("alice").glob("*.png")}
    assert on_disk == left  # folder and store in step
    assert len(list((p.dir / "persons" / "alice" / "deleted").iterdir())) == 2  # nothing lost
    bad = web.post("/api/projects/demo/faces/delete", json={"person": "alice", "faces": ["photos:999999"]},
                   headers=CSRF)
    assert bad.status_code == 404


def test_jobs_are_checked_when_submitted(site):
    web = client(site["ws"])
    bad = [{"kind": "train", "params": {"model": "nope"}}, {"kind": "train", "params": {"minutes": -1}},
           {"kind": "convert", "params": {"video": "missing.mp4"}}, {"kind": "mine", "params": {}},
           {"kind": "extract", "params": {"person": "carol"}},
           {"kind": "convert", "params": {"video": "photos", "swap": {"mask_type": "nope"}}}]
    for body in bad:
        r = web.post("/api/projects/demo/jobs", json=body, headers=CSRF)
        assert r.status_code == 400, body
        assert "error" in r.json()
    assert web.get("/api/projects/demo").json()["jobs"] == []
