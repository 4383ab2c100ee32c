"""``swapface live`` with a video file as the camera: frames are swapped toward B, stale frames
are dropped (not queued), the badge is drawn, MJPEG and the recording carry the frames."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from swapface.align.store import AlignmentsStore
from swapface.cli.main import main
from swapface.faces.identity import shared_encoder
from swapface.live.outputs import BOUNDARY, MjpegServer
from swapface.live.pipeline import LiveStats, draw_stats
from swapface.live.run import LiveConfig, build_live, run_live
from swapface.media.video import iter_video, probe_video
from tests.extract_helpers import cut_clip

FRAMES = 45


@pytest.fixture(scope="module")
def camera(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short cut of woman_a: the 'camera' (A's face, swapped to B by the session's model)."""
    return cut_clip(data_dir / "video" / "woman_a.mp4", tmp_path_factory.mktemp("live") / "cam.mp4",
                    FRAMES)


def _b_mean(pair) -> np.ndarray:
    with AlignmentsStore(pair.b.store, readonly=True) as store:
        ids = [f.identity for _, _, f in store.faces() if f.identity is not None]
    return np.mean(ids, axis=0)


def test_file_as_camera_swaps_toward_b_and_keeps_latency_bounded(camera, trained, pair):
    shown: dict[int, np.ndarray] = {}
    live = build_live(LiveConfig(model_dir=trained, source=str(camera), realtime=True),
                      lambda image, cap: shown.__setitem__(cap.index, image))
    stats = live.run()
    assert stats.captured + live.skipped == FRAMES
    assert stats.emitted + stats.dropped == FRAMES  # every frame is shown or dropped, none queued
    assert stats.emitted >= FRAMES // 4 and stats.faces >= stats.emitted - 2
    # Paced at the file's own 30 fps: the run lasts about as long as the clip.
    assert stats.seconds >= 0.9 * FRAMES / float(probe_video(camera).fps)
    # Latency is bounded by the pipeline, not by a queue: no frame waits behind many others.
    assert stats.latency(0.95) < 1.0

    source = {i: img for i, _, img in iter_video(camera)}
    index = sorted(shown)[len(shown) // 2]
    out = shown[index]
    assert out[7:9, 7:60].max() == 0 < source[index][7:9, 7:60].max()  # the badge's black box
    assert np.array_equal(out[-60:, -60:], source[index][-60:, -60:])  # background untouched

    # Identity moves toward B compared with the camera frames. A briefly trained decoder draws
    # a soft face far from everyone, so the figure is the lean d(B) − d(A) (as in
    # test_swap_engine): lower means more like B.
    from swapface.faces import FaceFinder

    finder, encoder = FaceFinder.create(), shared_encoder()
    chosen = sorted(shown)[::3]

    def descriptors(images: dict[int, np.ndarray]) -> np.ndarray:
        out = []
        for i in chosen:
            faces = finder.find(images[i])
            assert faces, i
            out.append(encoder.encode(images[i], faces[0].landmarks))
        return np.array(out)

    cam, swapped = descriptors(source), descriptors(shown)
    a, b = cam.mean(axis=0), _b_mean(pair)

    def lean(d: np.ndarray) -> float:
        return float(np.linalg.norm(d - b, axis=1).mean() - np.linalg.norm(d - a, axis=1).mean())

    assert lean(swapped) < lean(cam) - 0.15, (lean(swapped), lean(cam))


def test_without_pacing_every_frame_goes_through_or_is_counted(camera, trained):
    live = build_live(LiveConfig(model_dir=trained, source=str(camera), badge=False,
                                 max_frames=20), lambda image, cap: None)
    stats = live.run()
    assert stats.captured == 20 and stats.emitted + stats.dropped == 20
    assert stats.dropped > 0  # decoding outruns swapping: the newest frame wins


def test_mjpeg_serves_the_newest_frame():
    server = MjpegServer(port=0)
    try:
        image = np.full((48, 64, 3), (10, 200, 30), np.uint8)
        server.push(image)
        with urllib.request.urlopen(server.url, timeout=10) as response:
            assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            head = response.read(200)
            assert head.startswith(f"--{BOUNDARY}".encode())
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            body = head.split(b"\r\n\r\n", 1)[1]
            body += response.read(length - len(body))
        got = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        assert got.shape == image.shape and np.abs(got.astype(int) - image).mean() < 4
        server.stats = {"fps": 24.5, "dropped": 3}
        page = urllib.request.urlopen(server.url.rsplit("/", 1)[0] + "/", timeout=10).read().decode()
        assert "/stats.json" in page and "fps" in page  # the page shows the figures under the picture
        stats = urllib.request.urlopen(server.url.replace("stream.mjpg", "stats.json"), timeout=10)
        assert json.loads(stats.read()) == {"fps": 24.5, "dropped": 3}
    finally:
        server.close()


def test_the_stats_overlay_is_drawn_in_the_bottom_left_only(camera):
    image = next(img for _, _, img in iter_video(camera))
    stats = LiveStats(emitted=50, dropped=4, latencies=[0.05] * 10)
    drawn = draw_stats(image.copy(), stats)
    changed = np.abs(drawn.astype(int) - image).sum(axis=2) > 0
    rows, cols = np.nonzero(changed)
    assert rows.min() > image.shape[0] * 0.8 and cols.max() < image.shape[1] * 0.8
    box = drawn[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    assert (box == 0).all(axis=2).mean() > 0.5 and (box > 200).all(axis=2).any()  # white on black


def test_the_recording_keeps_the_timing_and_the_label(camera, trained, tmp_path):
    out = tmp_path / "rec.mp4"
    stats = run_live(LiveConfig(model_dir=trained, source=str(camera), realtime=True, mjpeg=False,
                                record=out))
    info = probe_video(out)
    assert info.frame_count == stats.emitted
    assert info.duration == pytest.approx(FRAMES / float(probe_video(camera).fps), abs=0.2)  # gaps kept
    import av

    with av.open(str(out)) as container:
        assert container.metadata.get("synthetic_media") == "true"


def test_bad_live_input_is_one_clear_line(tmp_path, capsys, trained):
    assert main(["live", "-m", str(tmp_path / "nope"), "--source", "x.mp4"]) == 2
    assert "model folder not found" in capsys.readouterr().err
    assert main(["live", "-m", str(trained), "--source", str(tmp_path / "missing.mp4"),
                 "--no-mjpeg"]) == 2
    assert "not found" in capsys.readouterr().err


def test_a_missing_virtual_camera_is_one_clear_line(tmp_path, capsys, trained, camera):
    args = ["live", "-m", str(trained), "--source", str(camera), "--no-mjpeg", "--virtual-camera"]
    assert main([*args, str(tmp_path / "video99")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "modprobe v4l2loopback" in err and "Traceback" not in err
    if not any(Path("/dev").glob("video*")):  # CI and this machine: no video devices at all
        assert main([*args, "auto"]) == 2
        assert "no v4l2loopback virtual camera" in capsys.readouterr().err
