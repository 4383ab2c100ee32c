"""What the robustness cases and kill chains share: a workspace built from the real test
media (in a temp folder, never in the repository), the CLI run as a user runs it, and a
snapshot that shows whether anything outside a case's own folder changed."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from swapface.media.video import iter_video, probe_video
from swapface.media.video_writer import VideoWriter

CLIP_FRAMES = 40
TRACEBACK = "Traceback (most recent call last)"


@dataclass
class Ran:
    rc: int
    out: str
    err: str
    seconds: float

    @property
    def traceback(self) -> bool:
        return TRACEBACK in self.out or TRACEBACK in self.err

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if ": error:" in line]


def cli(args: list[str], cwd: Path, timeout: float = 300) -> Ran:
    """``swapface ARGS`` in a fresh interpreter, as a user would run it."""
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "swapface.cli.main", *map(str, args)],
                              cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env=_env())
    except subprocess.TimeoutExpired as exc:
        return Ran(124, str(exc.stdout or ""), f"timed out after {timeout} s", timeout)
    return Ran(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - start)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # cases run side by side on a 2-core machine
    return env


def popen(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    """``swapface ARGS`` in its own process group (so a kill reaches its workers too)."""
    return subprocess.Popen([sys.executable, "-m", "swapface.cli.main", *map(str, args)],
                            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True, env=_env())


def snapshot(root: Path, exclude: Path | None = None) -> dict[str, tuple[int, str]]:
    """Every file below ``root`` (except ``exclude``): size and content hash."""
    out: dict[str, tuple[int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if exclude is not None and (here == exclude or exclude in here.parents):
            dirnames[:] = []
            continue
        for name in filenames:
            path = here / name
            try:
                data = path.read_bytes()
            except OSError:
                continue
            out[str(path.relative_to(root))] = (len(data), hashlib.blake2b(data, digest_size=8).hexdigest())
    return out


def make_clip(source: Path, target: Path, frames: int = CLIP_FRAMES) -> Path:
    """The first ``frames`` frames of ``source``, with its audio."""
    with VideoWriter(target, probe_video(source).fps, audio_from=source, crf=18,
                     preset="ultrafast") as writer:
        for index, _, image in iter_video(source):
            if index >= frames:
                break
            writer.write(image)
    return target


@dataclass
class Workspace:
    """Inputs every case may read (and must not change)."""

    root: Path
    data: Path  # the shared test media folder
    clip_a: Path
    clip_b: Path
    stills: Path  # a folder of three real photos
    faces_a: Path
    store_a: Path
    faces_b: Path
    model: Path  # a tiny trained model
    sentinel: Path  # a user's folder nothing may touch

    def case_dir(self, name: str) -> Path:
        path = self.root / "cases" / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def build_workspace(root: Path, data: Path, say=print) -> Workspace:
    """Clips, face folders and a briefly trained model, all under ``root`` (~40 s)."""
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    clip_a = make_clip(data / "video" / "woman_a.mp4", media / "clip_a.mp4")
    clip_b = make_clip(data / "video" / "woman_b.mp4", media / "clip_b.mp4")
    stills = media / "stills"
    stills.mkdir(exist_ok=True)
    for name in ("obama.jpg", "biden.jpg", "two_people.jpg"):
        shutil.copy(data / "stills" / name, stills / name)
    sentinel = root / "sentinel"
    sentinel.mkdir(exist_ok=True)
    shutil.copy(data / "stills" / "obama2.jpg", sentinel / "holiday.jpg")
    (sentinel / "notes.txt").write_text("precious\n")
    for side, clip in (("a", clip_a), ("b", clip_b)):
        say(f"workspace: extract {clip.name}")
        ran = cli(["extract", clip, "--faces", root / side / "faces", "--alignments",
                   root / side / "alignments.db", "--size", "64", "--every-n", "2",
                   "--workers", "1", "-q"], root)
        if ran.rc != 0:
            raise RuntimeError(f"workspace extract failed: {ran.err[-500:]}")
    for fmt in ("seed", "faceswap"):
        ran = cli(["alignments", "export", root / "a" / "alignments.db",
                   root / f"export_{fmt}.json", "--format", fmt], root)
        if ran.rc != 0:
            raise RuntimeError(f"workspace export failed: {ran.err[-500:]}")
    say("workspace: train a tiny model")
    ran = cli(["train", "-A", root / "a" / "faces", "-B", root / "b" / "faces", "-m",
               root / "model", "--model", "lightweight", "--iterations", "20", "--batch-size", "4",
               "--save-interval", "20", "--cpu-conv", "native", "--no-tensorboard", "-q"], root)
    if ran.rc != 0:
        raise RuntimeError(f"workspace train failed: {ran.err[-500:]}")
    # Convert times its convolutions once per model folder (conv_tuning.json): do it here, so
    # the cases that convert only read the model folder.
    ran = cli(["convert", clip_a, "-m", root / "model", "--alignments", root / "a" / "alignments.db",
               "-o", root / "warm.mp4", "-q"], root)
    if ran.rc != 0:
        raise RuntimeError(f"workspace convert failed: {ran.err[-500:]}")
    return Workspace(root, data, clip_a, clip_b, stills, root / "a" / "faces",
                     root / "a" / "alignments.db", root / "b" / "faces", root / "model", sentinel)
