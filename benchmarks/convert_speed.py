"""Convert speed end to end: ``swapface convert`` vs a seed-style loop, on a real clip.

Run: .venv/bin/python benchmarks/convert_speed.py [--frames N] [--work DIR] [--model original]

Both paths do the whole job — decode → swap → blend → encode an H.264 MP4 — with the same
model weights (an untrained model saved as a real checkpoint: speed does not depend on
training) and the same faces (one extract of the clip, done once and reused with --work):

* ours: the ``swapface convert`` command in its own process, with its defaults (smoothing,
  extended mask, avg-color, window taper, faces batched across frames, decode/model/blend/
  encode on overlapping threads, audio copied, synthetic-media tags; CPU convolutions tuned
  per layer), then with PyTorch's own convolution kernels, eager and compiled;
* seed-style: what the 2017 deepfakes ``convert`` did — for each frame read with
  cv2.VideoCapture, for each face: a 64×64 crop with cv2.warpAffine, one face through
  encoder → decoder B (batch 1, fp32 eager), warped back with WARP_INVERSE_MAP into a
  full-frame float image, a rect mask (cv2.blur 2) blended in float over the whole frame,
  the frame written as PNG with cv2.imwrite; at the end the PNGs are assembled into an MP4
  (FFmpeg through PyAV, same crf/preset as ours; counted in its time).

frames/s = frames / wall seconds of the whole path; cpu ms/frame = CPU time (all threads,
the convert process included) per frame, the figure to compare when other jobs share the machine. All
figures come from this one run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from swapface.align.records import FaceRecord
from swapface.align.store import AlignmentsStore
from swapface.convert.config import ConvertConfig
from swapface.extract.config import ExtractConfig
from swapface.extract.run import run_extract
from swapface.media.frames_io import assemble_video
from swapface.media.video import iter_video, probe_video
from swapface.media.video_writer import VideoWriter
from swapface.models import build_model
from swapface.models.base import model_options
from swapface.models.checkpoint import freeze_architecture, load_checkpoint, save_checkpoint
from swapface.models.conv_tuning import TUNING_FILE
from swapface.swap.geometry import model_matrix

REPO = Path(__file__).resolve().parents[1]
COVERAGE = 0.625  # ConvertConfig's default: the crop the model was trained on
SEED_BLUR = 2  # the seed's default mask blur


def data_dir() -> Path:
    return Path(os.environ.get("SWAPFACE_TEST_DATA", REPO.parent / "shared" / "data"))


# ------------------------------------------------------------------ setup (not timed)
def prepare_clip(clip: Path, frames: int | None, work: Path) -> Path:
    """The clip itself, or a copy of its first ``frames`` frames (with its audio)."""
    total = probe_video(clip).frame_count
    if frames is None or frames >= total:
        return clip
    short = work / f"{clip.stem}_{frames}.mp4"
    if not short.is_file():
        with VideoWriter(short, probe_video(clip).fps, audio_from=clip, crf=12,
                         preset="veryfast") as writer:
            for index, _, image in iter_video(clip):
                if index >= frames:
                    break
                writer.write(image)
    return short


def prepare_store(clip: Path, work: Path) -> Path:
    """Extract the clip once (faces + alignments store); reused on later runs."""
    store = work / f"{clip.stem}_alignments.db"
    if not store.is_file():
        print(f"extracting {clip.name} (once) ...", file=sys.stderr)
        run_extract(ExtractConfig(input=clip, faces=str(work / f"{clip.stem}_faces"),
                                  alignments=store))
    return store


def prepare_model(name: str, work: Path) -> Path:
    """An untrained model folder with a real checkpoint, as ``swapface train`` leaves it."""
    model_dir = work / f"model_{name}"
    if not model_dir.is_dir() or load_checkpoint(model_dir) is None:
        torch.manual_seed(0)
        model = build_model(name, {})
        freeze_architecture(model_dir, {"model": name, "options": model_options(model),
                                        "input_size": model.input_size,
                                        "output_size": model.output_size})
        save_checkpoint(model_dir, model, None, {"iteration": 0, "seed": 0})
    return model_dir


# ------------------------------------------------------------------ the two paths
class Timer:
    """Wall seconds, and CPU seconds of this process and its finished children (all threads)."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), self._cpu()
        return self

    @staticmethod
    def _cpu() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = self._cpu() - self.cpu


def ours(clip: Path, store: Path, model_dir: Path, out: Path, *options: str) -> tuple[int, Timer, str]:
    """``swapface convert`` exactly as a user runs it (its own process; convolution tuning and
    compile time included: the tuning cache is removed first)."""
    (model_dir / TUNING_FILE).unlink(missing_ok=True)
    command = [sys.executable, "-m", "swapface.cli.main", "convert", str(clip), "-m", str(model_dir),
               "-o", str(out), "--alignments", str(store), "--overwrite", "-q", *options]
    with Timer() as timer:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"swapface convert failed:\n{done.stderr}")
    written = re.search(r"frames: \d+ read, (\d+) written", done.stderr)
    device = re.search(r"frames/s on (\w+)", done.stderr)
    assert written and device, done.stderr
    return int(written.group(1)), timer, device.group(1)


def seed_loop(clip: Path, store: Path, model_dir: Path, out: Path, name: str) -> tuple[int, Timer]:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build_model(name, {})
    checkpoint = load_checkpoint(model_dir, device)
    assert checkpoint is not None
    model.load_state_dict(checkpoint.model)
    model = model.to(device).eval()
    with AlignmentsStore(store, readonly=True) as db:
        faces = {record.index: record.faces for record in db.frames()}
    frames_dir = out.parent / f"{out.stem}_frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    for old in frames_dir.glob("*.png"):
        old.unlink()
    defaults = ConvertConfig(input=clip, model_dir=model_dir, output=out)
    with Timer() as timer:
        count = seed_frames(clip, faces, model, device, frames_dir)
        assemble_video(frames_dir, out, overwrite=True, reference=clip, crf=defaults.crf,
                       preset=defaults.preset)
    return count, timer


def seed_frames(clip: Path, faces: dict[int, list[FaceRecord]], model: torch.nn.Module,
                device: str, frames_dir: Path) -> int:
    """The seed's per-frame, per-face loop; returns the number of frames written."""
    size = model.input_size
    capture = cv2.VideoCapture(str(clip))
    index = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frame_size = (image.shape[1], image.shape[0])
        for face in faces.get(index, []):
            mat = model_matrix(face, COVERAGE, size)
            crop = cv2.warpAffine(image, mat, (size, size))
            # contiguous NCHW (a permuted view would run oneDNN's slower channels-last path)
            x = torch.from_numpy(crop[..., ::-1].astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()
            with torch.no_grad():
                rgb, _ = model.decode(model.encode(x[None].to(device)), "b")
            new_face = np.clip(rgb[0].permute(1, 2, 0).cpu().numpy()[..., ::-1] * 255, 0, 255)
            new_face = new_face.astype(np.uint8)
            new_image = image.copy()
            cv2.warpAffine(new_face, mat, frame_size, new_image, cv2.WARP_INVERSE_MAP,
                           cv2.BORDER_TRANSPARENT)
            mask = np.zeros(image.shape, dtype=float)
            cv2.warpAffine(np.ones(new_face.shape, dtype=float), mat, frame_size, mask,
                           cv2.WARP_INVERSE_MAP, cv2.BORDER_TRANSPARENT)
            mask = cv2.blur(mask, (SEED_BLUR, SEED_BLUR))
            image = (new_image.astype(float) * mask + image.astype(float) * (1 - mask))
            image = image.astype(np.uint8)
        cv2.imwrite(str(frames_dir / f"{index:06d}.png"), image)
        index += 1
    capture.release()
    return index


# ------------------------------------------------------------------ main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=data_dir() / "video" / "woman_a.mp4")
    parser.add_argument("--frames", type=int, default=None,
                        help="only the first N frames (default: all)")
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the extract, model and outputs; reused across runs")
    parser.add_argument("--model", default="original")
    args = parser.parse_args()
    if not args.clip.is_file():
        print(f"clip not found: {args.clip}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        clip = prepare_clip(args.clip, args.frames, work)
        store = prepare_store(clip, work)
        model_dir = prepare_model(args.model, work)
        seed_frames, seed = seed_loop(clip, store, model_dir, work / "seed.mp4", args.model)
        our_frames, our, device = ours(clip, store, model_dir, work / "ours.mp4")
        _, native, _ = ours(clip, store, model_dir, work / "ours_native.mp4", "--cpu-conv", "native")
        _, compiled, _ = ours(clip, store, model_dir, work / "ours_compiled.mp4", "--cpu-conv", "native",
                              "--compile")

    info = probe_video(clip)
    print(f"clip: {args.clip.name}, first {our_frames} frames, {info.width}x{info.height}; "
          f"model {args.model}; device {device}; {os.cpu_count()} CPU threads, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads); "
          f"load average {os.getloadavg()[0]:.1f}")
    seed_fps = seed_frames / seed.wall
    rows = [("swapface convert (incl. ~3 s conv tuning)", our_frames, our),
            ("  --cpu-conv native (PyTorch's kernels)", our_frames, native),
            ("  --cpu-conv native --compile (incl. compile)", our_frames, compiled),
            ("seed-style loop (per face, imwrite, assemble)", seed_frames, seed)]
    print(f"{'pipeline':48s} {'frames':>6s} {'seconds':>8s} {'frames/s':>9s} {'× seed':>7s} "
          f"{'cpu ms/frame':>13s}")
    for name, frames, timer in rows:
        fps = frames / timer.wall
        print(f"{name:48s} {frames:6d} {timer.wall:8.1f} {fps:9.1f} {fps / seed_fps:7.2f} "
              f"{1000 * timer.cpu / frames:13.0f}")
    print("frames/s: frames / wall seconds; cpu ms/frame: this process's CPU time (all threads), "
          "less sensitive to other load on the machine")
    return 0


if __name__ == "__main__":
    sys.exit(main())
