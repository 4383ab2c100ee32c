"""Web UI speed: how soon ``swapface ui`` answers, one-frame previews, the face grid at 20 000.

Run: .venv/bin/python benchmarks/ui_speed.py [--starts 3] [--previews 12] [--grid-faces 20000]

* ready: ``swapface ui`` started as a process until ``/api/info`` answers 200 (median of
  ``--starts``);
* preview: a project made from 60 frames of each training clip, ``lightweight`` trained 20
  iterations; the first preview request (loads the model), then ``--previews`` requests at
  spread-out frames and views, each timed end to end over HTTP (median and worst);
* grid: a store of ``--grid-faces`` faces (the clip's records repeated), first page cold
  (the store is read once) and warm, sorted by frame, blur and identity.

Test media are read from ../shared/data or $SWAPFACE_TEST_DATA; everything is written to a
temporary folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from swapface.align.records import FrameRecord  # noqa: E402
from swapface.align.store import AlignmentsStore  # noqa: E402
from swapface.project.project import Project  # noqa: E402
from tests.conftest import find_data_dir  # noqa: E402
from tests.extract_helpers import cut_clip  # noqa: E402
from tests.ui_helpers import start_ui  # noqa: E402


def ready_seconds(ws: Path) -> float:
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "swapface.cli.main", "ui", "--workspace", str(ws),
                             "--port", "0", "--workers", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        url = proc.stdout.readline().split()[-1]  # type: ignore[union-attr]
        while True:
            try:
                if httpx.get(url + "api/info", timeout=5).status_code == 200:
                    return time.perf_counter() - began
            except httpx.TransportError:
                time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(30)


def build_project(ws: Path, data: Path, root: Path, grid_faces: int) -> Project:
    p = Project.create(ws, "bench", "alice", "bob")
    for person, side in (("alice", "a"), ("bob", "b")):
        p.add(person, cut_clip(data / "video" / f"woman_{side}.mp4", root / f"{side}.mp4", 60))
    p.preprocess(size=128)
    p.train(model="lightweight", iterations=20, minutes=2, batch_size=8)
    # A big store: the 60 records repeated, under a second media name.
    p.add("alice", root / "a.mp4", name="big.mp4")
    with AlignmentsStore(p.store_path("alice", "a.mp4"), readonly=True) as small:
        records = list(small.frames(with_masks=False))
    with AlignmentsStore(p.store_path("alice", "big.mp4")) as big, big.transaction():
        for i in range(grid_faces):
            rec = records[i % len(records)]
            faces = [dataclasses.replace(f, id=None, file=f"big_{i:06d}_0.png") for f in rec.faces]
            big.put_frame(FrameRecord(i, f"big_{i:06d}", rec.timestamp, rec.width, rec.height, faces))
    return p


def timed_get(client: httpx.Client, url: str) -> tuple[float, httpx.Response]:
    began = time.perf_counter()
    response = client.get(url)
    response.raise_for_status()
    return time.perf_counter() - began, response


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--previews", type=int, default=12)
    parser.add_argument("--grid-faces", type=int, default=20_000)
    args = parser.parse_args()
    data = find_data_dir()
    if data is None:
        sys.exit("test media not found: set SWAPFACE_TEST_DATA or provide ../shared/data")
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ws = root / "ws"
        starts = [ready_seconds(root / "empty") for _ in range(args.starts)]
        rows.append(("swapface ui ready (process start → /api/info 200)",
                     f"{statistics.median(starts):.2f} s median of {len(starts)} "
                     f"(max {max(starts):.2f} s)"))
        print("building the project (extract 2×60 frames, train 20 iterations)…", file=sys.stderr)
        p = build_project(ws, data, root, args.grid_faces)
        proc, url = start_ui(ws, "--workers", "0")
        try:
            # A new connection per request, as a page's parallel requests mostly are (and
            # without the 40 ms delayed-ACK stall of a keep-alive client that sends no body).
            with httpx.Client(base_url=url, timeout=120, headers={"Connection": "close"}) as client:
                base = "/api/projects/bench/preview.jpg?video=a.mp4"
                first, _ = timed_get(client, f"{base}&frame=0")
                rows.append(("preview, first request (loads the model)", f"{first * 1000:.0f} ms"))
                times, swap = [], []
                views = ["after", "mask", "split", "after"]
                for i in range(args.previews):
                    options = json.dumps({"color": ["avg-color", "none"][i % 2], "erosion": i % 3})
                    took, response = timed_get(client, f"{base}&frame={(i * 17) % 60}"
                                               f"&view={views[i % 4]}&options={options}")
                    times.append(took)
                    swap.append(float(response.headers["X-Swap-Seconds"]))
                rows.append(("preview per frame after load (HTTP, end to end)",
                             f"{statistics.median(times) * 1000:.0f} ms median, worst "
                             f"{max(times) * 1000:.0f} ms ({len(times)} frames; swap alone "
                             f"{statistics.median(swap) * 1000:.0f} ms)"))
                grid = "/api/projects/bench/faces?person=alice&per_page=200"
                cold, response = timed_get(client, f"{grid}&sort=frame")
                total = response.json()["total"]
                rows.append((f"face grid, {total} faces, first page cold (reads the stores)",
                             f"{cold * 1000:.0f} ms"))
                for sort in ("frame", "blur", "identity"):
                    warm = [timed_get(client, f"{grid}&sort={sort}&page={k}")[0] for k in (0, 5, 50)]
                    rows.append((f"face grid page, warm, sort={sort}",
                                 f"{statistics.median(warm) * 1000:.0f} ms"))
                thumbs = [timed_get(client, f"/api/projects/bench/faces/alice/a.mp4/{i}/thumb.jpg")[0]
                          for i in range(1, 41)]
                rows.append(("thumbnail from the store", f"{statistics.median(thumbs) * 1000:.1f} ms median"))
        finally:
            proc.terminate()
            proc.wait(30)
        del p
    width = max(len(k) for k, _ in rows)
    print(f"| {'figure':<{width}} | value |\n|{'-' * (width + 2)}|-------|")
    for key, value in rows:
        print(f"| {key:<{width}} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
