"""Live speed: woman_a played at its native 30 fps as the camera, swapped by a trained model.

Run: .venv/bin/python benchmarks/live_speed.py [--model MODEL_DIR] [--frames 300] [--detector hog]
     [--browser-seconds 15] [--no-browser]

Without ``--model`` a ``lightweight`` 64 px model is trained for ``--train-seconds`` on every
8th frame of woman_a / woman_b first (speed does not depend on how well it is trained). Prints
sustained frames/s shown, median and p95 latency (capture time → frame handed to the
outputs, MJPEG encode included), frames dropped as stale, and the process's CPU use
(all threads, % of one core). Test media: ../shared/data or $SWAPFACE_TEST_DATA.

The browser row measures the web UI's Live page in headless Chromium (Debian's) whose fake
camera plays the same clip (a y4m of it) at 30 fps: the page grabs each camera frame, sends
it as JPEG over the WebSocket and draws the swapped frame; latency is grab → drawn, in the
page. CPU there is the ``swapface ui`` process alone (Chromium's own share is not counted).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from swapface.core.runtime import configure_process  # noqa: E402

configure_process()

from swapface.live.outputs import MjpegServer  # noqa: E402
from swapface.live.run import LiveConfig, build_live  # noqa: E402
from tests.conftest import find_data_dir  # noqa: E402
from tests.extract_helpers import extract  # noqa: E402


def train_model(data: Path, root: Path, seconds: float) -> Path:
    from swapface.train.config import TrainConfig
    from swapface.train.trainer import Trainer

    for side in "ab":
        extract(data / "video" / f"woman_{side}.mp4", root / side, every_n=8, size=128)
    model = root / "model"
    Trainer(TrainConfig(faces_a=root / "a" / "faces", faces_b=root / "b" / "faces", model_dir=model,
                        model="lightweight", batch_size=16, minutes=seconds / 60,
                        tensorboard=False)).run()
    return model


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--detector", default="hog")
    parser.add_argument("--redetect-every", type=int, default=8)
    parser.add_argument("--upsample", type=int, default=0)
    parser.add_argument("--train-seconds", type=float, default=45)
    parser.add_argument("--browser-seconds", type=float, default=15)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    data = find_data_dir()
    if data is None:
        sys.exit("test media not found: set SWAPFACE_TEST_DATA or provide ../shared/data")
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or train_model(data, Path(tmp), args.train_seconds)
        server = MjpegServer(port=0)
        live = build_live(LiveConfig(model_dir=model, source=str(data / "video" / "woman_a.mp4"),
                                     realtime=True, max_frames=args.frames, detector=args.detector,
                                     redetect_every=args.redetect_every, upsample=args.upsample),
                          lambda image, cap: server.push(image))
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        stats = live.run()
        cpu = (cpu_seconds() - cpu0) / (time.perf_counter() - wall0)
        server.close()
        browser = None if args.no_browser else browser_path(data, model, Path(tmp), args)
    d = stats.to_dict()
    print("| path | source | fps sustained | latency median | latency p95 | dropped | CPU |")
    print("|---|---|---|---|---|---|---|")
    print(f"| `swapface live` (file at 30 fps, MJPEG out) | woman_a 480×480, {args.detector}, "
          f"upsample {args.upsample}, redetect every {args.redetect_every} | {d['fps']:.1f} | "
          f"{d['latency_median_ms']} ms | "
          f"{d['latency_p95_ms']} ms | {d['dropped']} of {d['captured'] + live.skipped} | "
          f"{cpu * 100:.0f} % of a core |")
    if browser is not None:
        b = browser
        print(f"| web UI Live page (Chromium fake camera → WebSocket → canvas) | woman_a 480×480 y4m "
              f"at 30 fps, hog, redetect every 8 | {b['fps_overall']:.1f} | "
              f"{b['latency_median_ms']:.0f} ms | {b['latency_p95_ms']:.0f} ms | "
              f"{b['skipped'] + b['dropped']} of {b['camera']} camera frames | "
              f"{b['cpu'] * 100:.0f} % of a core (server) |")
    return 0


def process_cpu(pid: int) -> float:
    """CPU seconds of a process (user + system) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def browser_path(data: Path, model: Path, root: Path, args: argparse.Namespace) -> dict | None:
    import shutil
    import signal

    from swapface.project.project import Project
    from tests.test_ui_e2e import CHROMIUM, FLAGS
    from tests.ui_helpers import start_ui, write_y4m

    if not CHROMIUM.is_file():
        print("(browser row skipped: /usr/bin/chromium is missing)", file=sys.stderr)
        return None
    from playwright.sync_api import sync_playwright

    p = Project.create(root / "ws", "bench", "a", "b")
    shutil.copytree(model, p.model_dir, dirs_exist_ok=True)
    camera = write_y4m(data / "video" / "woman_a.mp4", root / "camera.y4m", frames=args.frames)
    proc, url = start_ui(root / "ws", "--workers", "0")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=[
                *FLAGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={camera}"])
            page = browser.new_page()
            page.goto(f"{url}/#/p/bench/live")
            page.wait_for_selector("#live-start:not([disabled])")
            page.click("#live-start")
            page.wait_for_function("() => window.swapfaceLive?.shown >= 5", timeout=120_000)
            page.evaluate("() => { const f = window.swapfaceLive; f.camera = f.sent = f.shown = "
                          "f.skipped = f.dropped = 0; f.latencies = []; f.started = performance.now(); }")
            cpu0 = process_cpu(proc.pid)
            time.sleep(args.browser_seconds)
            figures = page.evaluate("() => window.swapfaceLive.summary()")
            figures["cpu"] = (process_cpu(proc.pid) - cpu0) / args.browser_seconds
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    return figures


if __name__ == "__main__":
    sys.exit(main())
