"""Live speed: woman_a played at its native 30 fps as the camera, swapped by a trained model.

Run: .venv/bin/python benchmarks/live_speed.py [--model MODEL_DIR] [--frames 300] [--detector hog]

Without ``--model`` a ``lightweight`` 64 px model is trained for ``--train-seconds`` on every
8th frame of woman_a / woman_b first (speed does not depend on how well it is trained). Prints
sustained frames/s shown, median and p95 latency (capture time → frame handed to the
outputs, MJPEG encode included), frames dropped as stale, and the process's CPU use
(all threads, % of one core). Test media: ../shared/data or $SWAPFACE_TEST_DATA.
"""

from __future__ import annotations

import argparse
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
    d = stats.to_dict()
    print("| path | source | fps sustained | latency median | latency p95 | dropped | CPU |")
    print("|---|---|---|---|---|---|---|")
    print(f"| `swapface live` (file at 30 fps, MJPEG out) | woman_a 480×480, {args.detector}, "
          f"upsample {args.upsample}, redetect every {args.redetect_every} | {d['fps']:.1f} | "
          f"{d['latency_median_ms']} ms | "
          f"{d['latency_p95_ms']} ms | {d['dropped']} of {d['captured'] + live.skipped} | "
          f"{cpu * 100:.0f} % of a core |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
