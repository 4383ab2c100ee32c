"""The web UI's Live page: the browser's camera (Chromium with a fake camera fed from a y4m made
of a real clip) swapped through the WebSocket, hot settings, a server-side source as MJPEG, and
the socket's access checks."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from swapface.media.video import iter_video
from swapface.project.project import Project
from swapface.ui.app import create_app
from tests.extract_helpers import cut_clip
from tests.test_live import _b_mean
from tests.test_ui_e2e import CHROMIUM, FLAGS
from tests.ui_helpers import start_ui, wait_for, write_y4m

NAME = "live_demo"
BASE = "http://127.0.0.1"
WS = "ws://127.0.0.1"  # the Host the socket checks, as a browser on the page sends it
CSRF = {"X-Swapface-CSRF": "1"}


@pytest.fixture(scope="module")
def site(data_dir: Path, trained: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A workspace whose project has the session's trained model and a short clip of A."""
    root = tmp_path_factory.mktemp("ui_live")
    p = Project.create(root / "ws", NAME, "anna", "bella")
    clip = cut_clip(data_dir / "video" / "woman_a.mp4", root / "anna_talks.mp4", 60)
    p.add("anna", clip)
    shutil.copytree(trained, p.model_dir, dirs_exist_ok=True)
    camera = write_y4m(clip, root / "camera.y4m", frames=45)
    return {"root": root, "ws": root / "ws", "clip": clip, "camera": camera}


def _decode(data_url: str) -> np.ndarray:
    raw = base64.b64decode(data_url.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)


def _descriptors(images: list[np.ndarray]) -> np.ndarray:
    from swapface.faces import FaceFinder
    from swapface.faces.identity import shared_encoder

    finder, encoder = FaceFinder.create(), shared_encoder()
    found = []
    for image in images:
        faces = finder.find(image)
        assert faces
        found.append(encoder.encode(image, faces[0].landmarks))
    return np.array(found)


def _lean(d: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """d(B) − d(A) of dlib descriptors: lower means more like B (as in test_live)."""
    return float(np.linalg.norm(d - b, axis=1).mean() - np.linalg.norm(d - a, axis=1).mean())


# ---------------------------------------------------------------------- Chromium, fake camera
@pytest.fixture(scope="module")
def camera_browser(site):
    if not CHROMIUM.is_file():
        if os.environ.get("CI"):
            pytest.fail("/usr/bin/chromium is missing: .ci/run installs Debian's chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    flags = [*FLAGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
             f"--use-file-for-fake-video-capture={site['camera']}"]
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=flags)
        yield browser
        browser.close()


def test_browser_camera_is_swapped_toward_b_and_settings_apply_while_running(camera_browser, site,
                                                                              pair):
    proc, url = start_ui(site["ws"])
    try:
        page = camera_browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/#/p/{NAME}/live")
        page.wait_for_selector("#live-start:not([disabled])")
        page.click("#live-start")
        page.wait_for_function("() => window.swapfaceLive?.shown >= 24", timeout=60_000)
        figures = page.evaluate("() => window.swapfaceLive.summary()")
        assert figures["fps"] > 3 and figures["latency_median_ms"] < 1000, figures
        assert figures["server"].get("swapped", 0) >= 1, figures  # the server's own figures arrive
        snaps = page.evaluate("() => window.swapfaceLive.snapshots()")
        assert len(snaps) >= 8
        sent = [_decode(s["sent"]) for s in snaps[-8:]]
        shown = [_decode(s["shown"]) for s in snaps[-8:]]
        # the SYNTHETIC badge's black box (JPEG-soft), where the camera frame is not black
        assert shown[0][7:9, 10:50].mean() < 8 < sent[0][7:9, 10:50].mean()

        # The camera is A; the frames coming back lean toward B.
        cam, swapped = _descriptors(sent), _descriptors(shown)
        a, b = cam.mean(axis=0), _b_mean(pair)
        assert _lean(swapped, a, b) < _lean(cam, a, b) - 0.15, (_lean(swapped, a, b), _lean(cam, a, b))

        shots = Path(os.environ.get("SWAPFACE_SCREENSHOTS") or site["root"])
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "live_camera.png"))

        # Swap off while running: the next frames come back as sent (JPEG round trip aside).
        page.click("#live-badge")
        page.click("#live-swap")
        page.wait_for_timeout(300)
        shown_before = page.evaluate("() => window.swapfaceLive.shown")
        page.wait_for_function(f"() => window.swapfaceLive.shown >= {shown_before + 10}", timeout=30_000)
        snaps = page.evaluate("() => window.swapfaceLive.snapshots()")[-4:]
        for s in snaps:
            diff = np.abs(_decode(s["sent"]).astype(int) - _decode(s["shown"]).astype(int))
            assert diff.mean() < 2.5, diff.mean()  # the face untouched and no badge
        same_before = [np.abs(x.astype(int) - y.astype(int)).mean() for x, y in zip(sent, shown, strict=True)]
        assert min(same_before) > 2.5  # while swapping, the frames did differ

        page.click("#live-stop")
        assert not errors, errors
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def test_server_source_streams_mjpeg_in_the_page(camera_browser, site):
    proc, url = start_ui(site["ws"])
    try:
        page = camera_browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{url}/#/p/{NAME}/live")
        page.wait_for_selector("#live-start:not([disabled])")
        page.select_option("#live-mode", "server")
        page.fill("#live-source", "anna_talks.mp4")
        page.click("#live-start")
        page.wait_for_function("() => document.querySelector('#live-stream').naturalWidth > 0",
                               timeout=60_000)
        page.wait_for_function("() => document.querySelector('#live-stats').textContent.includes('fps')",
                               timeout=10_000)
        size = page.evaluate("() => [document.querySelector('#live-stream').naturalWidth,"
                             " document.querySelector('#live-stream').naturalHeight]")
        assert size == [480, 480]
        page.click("#live-stop")
        page.wait_for_selector("#live-start:not([disabled])")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


# ---------------------------------------------------------------------- API and socket
def test_socket_swaps_frames_and_refuses_bad_input(site):
    c = TestClient(create_app(site["ws"]), base_url=BASE)
    frames = [img for i, _, img in iter_video(site["clip"]) if i < 6]
    with c.websocket_connect(f"{WS}/api/projects/{NAME}/live/socket",
                             headers={"Origin": BASE}) as ws:
        ws.send_bytes(b"\x00\x00\x00\x07" + b"not a jpeg")
        assert "not a JPEG" in ws.receive_json()["error"]
        ws.send_text('{"options": {"mask_type": "nope"}}')
        assert "not applied" in ws.receive_json()["error"]
        replies = []
        for i, img in enumerate(frames):
            ws.send_bytes(struct.pack(">I", 100 + i) + cv2.imencode(".jpg", img)[1].tobytes())
            while True:
                msg = ws.receive()
                if msg.get("bytes"):
                    replies.append(msg["bytes"])
                    break
        ids = [struct.unpack(">I", r[:4])[0] for r in replies]
        assert ids == [100 + i for i in range(len(frames))]
        out = cv2.imdecode(np.frombuffer(replies[-1][4:], np.uint8), cv2.IMREAD_COLOR)
        assert out.shape == frames[-1].shape
        assert np.abs(out.astype(int) - frames[-1].astype(int)).mean() > 2  # swapped + badge


def test_socket_access_is_checked(site):
    app = create_app(site["ws"])
    c = TestClient(app, base_url=BASE)
    for headers in ({"Origin": "http://evil.example"}, {}):  # another site; no Origin at all
        with pytest.raises(WebSocketDisconnect) as err, \
                c.websocket_connect(f"{WS}/api/projects/{NAME}/live/socket", headers=headers):
            pass
        assert err.value.code == 1008
    tokened = TestClient(create_app(site["ws"], token="s3cret", host="0.0.0.0"), base_url=BASE)
    with pytest.raises(WebSocketDisconnect), \
            tokened.websocket_connect(f"{WS}/api/projects/{NAME}/live/socket", headers={"Origin": BASE}):
        pass
    with tokened.websocket_connect(f"{WS}/api/projects/{NAME}/live/socket?token=s3cret",
                                   headers={"Origin": BASE}) as ws:
        ws.send_text('{"swap": false}')
        assert ws.receive_json() == {"settings": "applied"}
    with pytest.raises(WebSocketDisconnect), \
            c.websocket_connect(f"{WS}/api/projects/..%2f..%2fetc/live/socket", headers={"Origin": BASE}):
        pass  # no route: refused before it is accepted
    with c.websocket_connect(f"{WS}/api/projects/nobody/live/socket", headers={"Origin": BASE}) as ws:
        assert "no swapface project" in ws.receive_json()["error"]
        with pytest.raises(WebSocketDisconnect):
            ws.receive_json()


def test_server_source_is_a_camera_url_or_a_video_of_a_never_a_path(site):
    c = TestClient(create_app(site["ws"]), base_url=BASE)
    for source in ("/etc/passwd", "../anna_talks.mp4", "file:///etc/passwd", str(site["clip"])):
        r = c.post(f"/api/projects/{NAME}/live/start", json={"source": source}, headers=CSRF)
        assert r.status_code == 400 and "source must be" in r.json()["error"], (source, r.text)
    assert c.get(f"/api/projects/{NAME}/live").json() == {"running": False}
    r = c.post(f"/api/projects/{NAME}/live/start", json={"source": "anna_talks.mp4"}, headers=CSRF)
    assert r.status_code == 200 and r.json()["running"]
    assert c.post(f"/api/projects/{NAME}/live/start", json={"source": "anna_talks.mp4"},
                  headers=CSRF).status_code == 409
    wait_for(lambda: c.get(f"/api/projects/{NAME}/live").json()["stats"]["emitted"] > 3, 30,
             "frames from the server source")
    r = c.post(f"/api/projects/{NAME}/live/settings", json={"swap": False}, headers=CSRF)
    assert r.json()["swap"] is False
    assert c.post(f"/api/projects/{NAME}/live/settings", json={"options": {"color": "nope"}},
                  headers=CSRF).status_code == 400
    stopped = c.post(f"/api/projects/{NAME}/live/stop", headers=CSRF).json()
    assert stopped["running"] is False and stopped["stats"]["faces"] > 0
