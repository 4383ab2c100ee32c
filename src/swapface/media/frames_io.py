"""Video ⇄ image folder: frame-exact export with a manifest, and assembly back into a video.

:func:`export_frames` writes every decoded frame (or every n-th, or one per 1/F seconds)
as ``<stem>_<index:06d>.<ext>`` — the index is the frame's position in the source, so
names line up with everything else swapface writes — plus ``frames.json`` describing them.
:func:`assemble_video` turns a folder of images back into an H.264 video with exactly one
frame per image, optionally at the rate of a reference video and with its audio.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from swapface.core.errors import ConfigError, InputError
from swapface.core.fileio import atomic_write_bytes, is_writable_dir
from swapface.core.images import ImageReadError, read_image, write_image
from swapface.core.progress import SILENT, Progress
from swapface.media.source import ImageFolderSource, VideoFileSource
from swapface.media.video import probe_video
from swapface.media.video_writer import VideoWriter

log = logging.getLogger(__name__)

MANIFEST_NAME = "frames.json"
FRAME_FORMATS = ("png", "jpg")
OUTPUT_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")
X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast",
    "medium", "slow", "slower", "veryslow",
)
DEFAULT_FPS = Fraction(30)

T = TypeVar("T")
R = TypeVar("R")


def _rate(seconds: float, count: int) -> str:
    return f"{count / seconds:.0f} frames/s" if seconds > 0 else "-"


# ---------------------------------------------------------------------- export


@dataclass
class ExportSummary:
    source: Path
    out_dir: Path
    manifest: Path
    fps: Fraction  # source frame rate
    container_frames: int  # what the container says (may be an estimate)
    decoded: int  # frames actually decoded
    written: int  # image files written
    every_n: int
    sample_fps: Fraction | None
    format: str
    seconds: float
    problems: list[str] = field(default_factory=list)
    stale_files: list[str] = field(default_factory=list)  # older frames of this source left

    @property
    def complete(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        selection = (
            f" at {float(self.sample_fps):g} fps" if self.sample_fps
            else f", every {self.every_n}th" if self.every_n > 1 else ""
        )
        out = [
            f"frames: wrote {self.written} {self.format} frames{selection} of {self.decoded} "
            f"decoded (container: {self.container_frames}) to {self.out_dir} in "
            f"{self.seconds:.1f} s ({_rate(self.seconds, self.decoded)}); "
            f"manifest {self.manifest.name}"
        ]
        out += [f"warning: {p}" for p in self.problems]
        if self.stale_files:
            out.append(
                f"warning: {len(self.stale_files)} frame file(s) of {self.source.name} from an "
                f"earlier export are also in {self.out_dir} (e.g. {self.stale_files[0]}); "
                "they are not in the manifest"
            )
        return out


def _sample_interval(timestamp: float, start: float, fps: Fraction) -> int:
    # The epsilon keeps a frame exactly on an interval boundary (0.1 s at 10 fps from a
    # 30 fps clip: 3 * (1/30) * 10 = 0.9999999999999999) in the interval it starts.
    return math.floor((timestamp - start) * float(fps) + 1e-6)


def _prefetched(items: Iterable[T], fn: Callable[[T], R], pool: ThreadPoolExecutor,
                depth: int) -> Iterator[R]:
    """``map(fn, items)`` run ``depth`` items ahead on ``pool``, results in order."""
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= depth:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def export_frames(
    source: str | Path,
    out_dir: str | Path,
    *,
    every_n: int = 1,
    fps: Fraction | float | None = None,
    fmt: str = "png",
    jpg_quality: int = 95,
    progress: Progress = SILENT,
) -> ExportSummary:
    """Write the frames of a video as images plus a ``frames.json`` manifest.

    Every decoded frame is written (``every_n=1``), or every ``every_n``-th one, or — with
    ``fps`` — the first frame of each ``1/fps`` interval of presentation time. Names use
    the source frame index: ``<stem>_<index:06d>.<fmt>``. Nothing is padded, duplicated
    or dropped; a stream that breaks off yields what could be decoded and a problem entry.
    Each image carries its source, index and timestamp as embedded metadata.
    """
    started = time.perf_counter()
    fmt = fmt.lower().lstrip(".")
    if fmt == "jpeg":
        fmt = "jpg"
    if fmt not in FRAME_FORMATS:
        raise ConfigError(f"frame format must be one of {', '.join(FRAME_FORMATS)}, not {fmt!r}")
    if every_n < 1:
        raise ConfigError(f"--every-n must be at least 1, got {every_n}")
    sample_fps = Fraction(fps).limit_denominator(1001000) if fps is not None else None
    if sample_fps is not None and sample_fps <= 0:
        raise ConfigError(f"--fps must be positive, got {fps}")
    if sample_fps is not None and every_n != 1:
        raise ConfigError("use either --every-n or --fps, not both")

    source = Path(source)
    if Path(source).is_dir() or not Path(source).exists():
        raise InputError(f"{source} is not a video file")
    src = VideoFileSource.open(source)
    info = probe_video(source)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output {out_dir} exists and is not a folder")
    if not is_writable_dir(out_dir):
        raise InputError(f"cannot write to {out_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)

    entries: list[dict[str, Any]] = []
    start_ts: float | None = None
    last_interval = -1
    decoded = 0

    def selected() -> Iterator[tuple[Path, np.ndarray, dict[str, Any]]]:
        nonlocal start_ts, last_interval, decoded
        for frame in src.frames(every_n=every_n):
            decoded = frame.index + 1
            ts = frame.timestamp
            if ts is None:  # no timestamp from the container: the nominal one
                ts = frame.index / float(info.fps)
            if start_ts is None:
                start_ts = ts
            if sample_fps is not None:
                interval = _sample_interval(ts, start_ts, sample_fps)
                if interval <= last_interval:
                    continue
                last_interval = interval
            name = f"{frame.name}.{fmt}"
            entry = {"name": name, "index": frame.index, "timestamp": round(ts, 6)}
            entries.append(entry)
            meta = {"source": source.name, "frame_index": frame.index,
                    "timestamp": entry["timestamp"]}
            yield out_dir / name, frame.image, meta
            task.advance(frame.index + 1 - task.done)

    def write(job: tuple[Path, np.ndarray, dict[str, Any]]) -> None:
        path, image, meta = job
        write_image(path, image, meta)

    task = progress.task(f"frames {source.name}", src.count or None, "frame")
    try:
        # Image encoding (PNG/JPEG, fsync) runs on worker threads while the next frames decode.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="frames-out") as pool:
            for _ in _prefetched(selected(), write, pool, depth=8):
                pass
    finally:
        task.close()
    decoded = src.decoded if src.decoded is not None else decoded

    manifest = out_dir / MANIFEST_NAME
    data = {
        "version": 1,
        "source": str(source.resolve()),
        "fps": float(info.fps),
        "fps_fraction": f"{info.fps.numerator}/{info.fps.denominator}",
        "width": info.width,
        "height": info.height,
        "container_frames": info.frame_count,
        "decoded_frames": decoded,
        "start_time": entries[0]["timestamp"] if entries else None,  # first frame's time
        "every_n": every_n,
        "sample_fps": float(sample_fps) if sample_fps is not None else None,
        "format": fmt,
        "frames": entries,
        "problems": list(src.problems),
    }
    atomic_write_bytes(manifest, _manifest_text(data).encode("utf-8"))

    written = {e["name"] for e in entries}
    own = re.compile(re.escape(src.stem) + r"_\d{6}\.(png|jpg)$")
    stale = sorted(p.name for p in out_dir.iterdir() if own.match(p.name) and p.name not in written)
    for problem in src.problems:
        log.warning("%s", problem)
    return ExportSummary(
        source=source, out_dir=out_dir, manifest=manifest, fps=info.fps,
        container_frames=info.frame_count, decoded=decoded, written=len(entries),
        every_n=every_n, sample_fps=sample_fps, format=fmt,
        seconds=time.perf_counter() - started, problems=list(src.problems), stale_files=stale,
    )


def _manifest_text(data: dict[str, Any]) -> str:
    """Pretty JSON with one line per frame entry (readable and diffable at 100k frames)."""
    head = json.dumps({k: v for k, v in data.items() if k != "frames"}, indent=1,
                      ensure_ascii=False)
    frames = ",\n".join("  " + json.dumps(e, ensure_ascii=False) for e in data["frames"])
    return head[:-2] + ',\n "frames": [\n' + frames + ("\n" if frames else "") + " ]\n}\n"


def read_manifest(frames_dir: str | Path) -> dict[str, Any] | None:
    """The ``frames.json`` of an export folder, or None when absent or unreadable."""
    path = Path(frames_dir) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------------- assemble


@dataclass
class AssembleSummary:
    frames_dir: Path
    output: Path
    fps: Fraction
    fps_from: str  # "--fps", "reference", "frames.json" or "default"
    images: int  # image files found
    frames: int  # frames written (== images)
    width: int
    height: int
    padded: bool  # odd-sized frames were padded to even sizes
    audio: bool  # audio was copied from the reference
    reference: Path | None
    seconds: float
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        audio = f", audio from {self.reference.name}" if self.audio and self.reference else ""
        pad = " (padded to even size)" if self.padded else ""
        out = [
            f"assemble: wrote {self.frames} frames from {self.images} images, "
            f"{self.width}x{self.height}{pad} at {float(self.fps):g} fps ({self.fps_from}){audio} "
            f"to {self.output} in {self.seconds:.1f} s ({_rate(self.seconds, self.frames)})"
        ]
        out += [f"warning: {p}" for p in self.problems]
        return out


def _choose_fps(fps: Fraction | float | None, reference: Path | None,
                frames_dir: Path) -> tuple[Fraction, str]:
    if fps is not None:
        rate = Fraction(fps).limit_denominator(1001000)
        if rate <= 0:
            raise ConfigError(f"--fps must be positive, got {fps}")
        return rate, "--fps"
    if reference is not None:
        return probe_video(reference).fps, "reference"
    manifest = read_manifest(frames_dir)
    if manifest:
        try:
            if manifest.get("sample_fps"):
                return Fraction(manifest["sample_fps"]).limit_denominator(1001000), "frames.json"
            rate = Fraction(str(manifest["fps_fraction"])) / int(manifest.get("every_n") or 1)
            return rate, "frames.json"
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            log.warning("%s: ignoring unreadable frame rate", frames_dir / MANIFEST_NAME)
    return DEFAULT_FPS, "default"


def assemble_video(
    frames_dir: str | Path,
    output: str | Path,
    *,
    reference: str | Path | None = None,
    fps: Fraction | float | None = None,
    crf: int = 18,
    preset: str = "medium",
    metadata: dict[str, str] | None = None,
    overwrite: bool = False,
    progress: Progress = SILENT,
) -> AssembleSummary:
    """Encode the images of ``frames_dir`` (natural order) into an H.264 video, atomically.

    One output frame per image file. The frame rate is ``fps``, else the reference's, else
    the rate recorded in the folder's ``frames.json``, else 30. Audio of ``reference`` is
    copied, aligned to its first video frame and cut at the end of the new video. An image
    that cannot be read is replaced by the previous frame (reported as a problem) so the
    timing, and lip sync with the audio, stay intact. An existing ``output`` is replaced only
    with ``overwrite``, and never when it is the reference (its audio is read while writing).
    """
    started = time.perf_counter()
    frames_dir, output = Path(frames_dir), Path(output)
    reference = Path(reference) if reference is not None else None
    if not 0 <= crf <= 51:
        raise ConfigError(f"--crf must be between 0 and 51, got {crf}")
    if preset not in X264_PRESETS:
        raise ConfigError(f"--preset must be one of {', '.join(X264_PRESETS)}, not {preset!r}")
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ConfigError(
            f"output must end in {', '.join(OUTPUT_SUFFIXES)} (H.264 video), got {output.name!r}"
        )
    if not frames_dir.is_dir():
        raise InputError(f"frames folder not found: {frames_dir}")
    if output.is_dir():
        raise InputError(f"output {output} is a folder")
    if not is_writable_dir(output.parent):
        raise InputError(f"cannot write to {output.parent}")
    if reference is not None:
        probe_video(reference)  # a clear InputError now rather than after encoding
        if output.exists() and output.samefile(reference):
            raise ConfigError(f"the output {output} is the reference video: write elsewhere")
    if output.exists() and not overwrite:
        raise ConfigError(f"output exists: {output} (pass --overwrite to replace it)")
    rate, rate_from = _choose_fps(fps, reference, frames_dir)

    src = ImageFolderSource.open(frames_dir)
    if not src.files:
        raise InputError(f"no images in {frames_dir}")
    problems: list[str] = []
    missing = 0  # unreadable images before the first readable one
    previous: np.ndarray | None = None

    def load(path: Path) -> np.ndarray | ImageReadError:
        try:
            return read_image(path)
        except ImageReadError as exc:
            return exc

    task = progress.task(f"assemble {output.name}", len(src.files), "frame")
    try:
        with VideoWriter(output, rate, audio_from=reference, crf=crf, preset=preset,
                         metadata=metadata) as writer, \
                ThreadPoolExecutor(max_workers=2, thread_name_prefix="frames-in") as pool:
            for path, image in zip(src.files, _prefetched(src.files, load, pool, depth=8),
                                   strict=True):
                if isinstance(image, ImageReadError):
                    problems.append(f"{image}; used the previous frame instead")
                    log.warning("%s", problems[-1])
                    if previous is None:
                        missing += 1
                        continue
                    image = previous
                try:
                    for _ in range(missing + 1):
                        writer.write(image)
                except ValueError as exc:
                    raise InputError(f"{path.name}: {exc}") from exc
                missing = 0
                previous = image
                task.advance()
            if previous is None:
                raise InputError(f"none of the {len(src.files)} images in {frames_dir} is readable")
    finally:
        task.close()

    height, width = previous.shape[:2]
    written = writer.frames_written
    if written != len(src.files):  # cannot happen; a cheap guard for the frame-exact promise
        problems.append(f"wrote {written} frames for {len(src.files)} images")
    return AssembleSummary(
        frames_dir=frames_dir, output=output, fps=writer.fps, fps_from=rate_from,
        images=len(src.files), frames=written, width=width, height=height,
        padded=writer.padded, audio=writer.audio_packets_written > 0, reference=reference,
        seconds=time.perf_counter() - started, problems=problems,
    )
