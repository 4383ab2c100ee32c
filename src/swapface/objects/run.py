"""``swapface detect``: run the chosen object detectors over any frame source, draw, report.

Images go to an image file or a folder of PNGs, videos and streams to a video (a video
file's audio copied, frames at their own times), and every frame's objects to one JSON
file (:mod:`swapface.objects.report`). A camera or stream runs until ``--max-frames`` or
Ctrl-C, and what it saw is kept; a video or the JSON of a file input stopped early is
never left half-written (drawn images written so far stay).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from swapface.core.errors import ConfigError, InputError
from swapface.core.images import is_image_path, write_image
from swapface.core.progress import NEVER, SILENT, CancelToken, Progress
from swapface.media.source import FrameSource, open_source
from swapface.media.writers import WRITER_SUFFIXES, FrameWriter, is_writer_path, open_writer
from swapface.objects.base import OBJECT_DETECTORS, ObjectDetector
from swapface.objects.config import DetectConfig
from swapface.objects.draw import draw_detections
from swapface.objects.report import DetectionReport

VIDEO_TAGS = {"comment": "object detections drawn by swapface detect", "generator": "swapface"}


@dataclass
class DetectSummary:
    input: str
    output: str
    json: str
    frames: int = 0
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        found = ", ".join(f"{n} {label}" for label, n in sorted(self.counts.items())) or "nothing"
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        return [f"input:  {self.input}", f"output: {self.output}", f"json:   {self.json}",
                f"found:  {found} in {self.frames} frames",
                f"time:   {self.seconds:.1f} s ({rate:.1f} frames/s)",
                *(f"note:   {p}" for p in self.problems)]


def plan_outputs(cfg: DetectConfig, source: FrameSource) -> tuple[str, Path]:
    """("image" | "folder" | "video", the JSON path), refusing clashes before any work."""
    out = cfg.output
    if source.kind in ("video", "stream"):
        if not is_writer_path(out):
            raise ConfigError(f"a {source.kind} is drawn into a video: -o must end in "
                              f"{', '.join(WRITER_SUFFIXES)}")
        mode = "video"
    elif cfg.input is not None and cfg.input.is_file() and is_image_path(out):
        mode = "image"
    elif is_image_path(out) or is_writer_path(out):
        raise ConfigError(f"a folder of images is drawn into a folder: -o {out.name} is a file name")
    else:
        mode = "folder"
    json_path = cfg.json or (out / "detections.json" if mode == "folder" else out.with_suffix(".json"))
    if cfg.input is not None and out.resolve() == cfg.input.resolve():
        raise ConfigError("output must differ from the input")
    if json_path.suffix.lower() != ".json" or json_path.resolve() == out.resolve():
        raise ConfigError(f"--json {json_path}: give a .json file apart from the drawn output")
    if mode == "folder" and out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} is a file; a folder of images needs a folder path")
    for path in (out, json_path):
        empty_folder = path.is_dir() and not any(path.iterdir())
        if path.exists() and not empty_folder and not cfg.overwrite:
            raise ConfigError(f"output exists: {path} (pass --overwrite to replace it)")
    return mode, json_path


def build_detectors(cfg: DetectConfig) -> list[ObjectDetector]:
    """The object detector plugins ``cfg`` asks for (their models load here)."""
    from swapface.core.runtime import choose_device
    from swapface.faces.detectors import DETECTORS

    gpu = cfg.face_detector in DETECTORS and DETECTORS.get(cfg.face_detector).extra.get("gpu", False)
    device = choose_device(cfg.cpu) if gpu else "cpu"
    built: list[ObjectDetector] = []
    try:
        for name, options in cfg.plugins():
            built.append(OBJECT_DETECTORS.create(name, options, device=device))
    except BaseException:
        for detector in built:
            detector.close()
        raise
    return built


def run_detect(cfg: DetectConfig, progress: Progress = SILENT,
               cancel: CancelToken = NEVER) -> DetectSummary:
    """Detect, draw and report every frame of ``cfg``'s input (see the module docstring)."""
    source = open_source(cfg.input if cfg.input is not None else str(cfg.source))
    mode, json_path = plan_outputs(cfg, source)
    detectors = build_detectors(cfg)
    names = [getattr(d, "source", d.name) for d in detectors]
    report = DetectionReport(cfg.media, source.kind, names)
    summary = DetectSummary(cfg.media, str(cfg.output), str(json_path))
    live = source.kind == "stream"
    total = source.count if cfg.max_frames is None or source.count is None else min(
        source.count, cfg.max_frames)
    start = time.perf_counter()
    try:
        with (contextlib.ExitStack() as stack, contextlib.closing(source.frames()) as frames,
              progress.task("detect", total, "frame") as task):
            writer: FrameWriter | None = None
            for frame in frames:
                if live and cancel.cancelled:
                    break  # a camera stops on Ctrl-C: keep what it saw
                cancel.check()
                objects = [o for d in detectors for o in d.detect(frame.image)]
                drawn = draw_detections(frame.image, objects)
                if mode == "video":
                    if writer is None:  # a stream knows its frame rate once it runs
                        report.fps = float(source.fps) if source.fps else None
                        writer = stack.enter_context(open_writer(
                            cfg.output, source.fps or 30, audio_from=source.audio, metadata=VIDEO_TAGS))
                    timed = not live and frame.time is not None  # camera clocks start anywhere
                    writer.write(drawn, pts=frame.time if timed else None,
                                 duration=frame.duration if timed else None)
                elif mode == "image":
                    write_image(cfg.output, drawn)
                else:
                    stem = frame.face_stem or Path(frame.name).stem
                    write_image(cfg.output / f"{stem}.png", drawn)
                report.add(frame.index, frame.name, frame.timestamp, frame.image.shape, objects)
                task.advance(1, objects=len(objects))
                if cfg.max_frames is not None and len(report.frames) >= cfg.max_frames:
                    break
            if not report.frames:
                cancel.check()
                raise InputError(f"{cfg.media}: no frame or image could be read")
        report.write(json_path)
    finally:
        for detector in detectors:
            detector.close()
    summary.frames = len(report.frames)
    summary.seconds = time.perf_counter() - start
    summary.counts = dict(report.counts)
    summary.problems += source.problems
    return summary
