"""Running an extract into a temp folder and reading back what it wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swapface.align.records import FrameRecord
from swapface.align.store import AlignmentsStore
from swapface.extract.config import ExtractConfig
from swapface.extract.run import ExtractSummary, run_extract


def extract(input: Path, out: Path, **options: Any) -> tuple[ExtractSummary, list[FrameRecord]]:
    options.setdefault("workers", 1)
    cfg = ExtractConfig(input=input, faces=str(out / "faces"), alignments=out / "alignments.db",
                        **options)
    summary = run_extract(cfg)
    with AlignmentsStore(out / "alignments.db", readonly=True) as store:
        frames = list(store.frames(with_masks=True))
    return summary, frames


def cut_clip(source: Path, target: Path, frames: int, *, audio: bool = False) -> Path:
    """The first ``frames`` frames of ``source`` as a new H.264 clip (audio copied with
    ``audio``): short test inputs made at test time, never committed."""
    from swapface.media.video import iter_video, probe_video
    from swapface.media.video_writer import VideoWriter

    with VideoWriter(target, probe_video(source).fps, audio_from=source if audio else None,
                     crf=12, preset="ultrafast") as writer:
        for index, _, image in iter_video(source):
            if index >= frames:
                break
            writer.write(image)
    return target
