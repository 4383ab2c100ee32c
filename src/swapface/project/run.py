"""``swapface run``: extract A and B, train, convert A with B's face — one resumable project.

The project folder holds ``project.json`` (inputs, options, stage status), ``a/`` and ``b/``
(faces and alignments stores), ``model/``. A stage is recorded as done only after it
finishes, so re-running the same command picks up where it stopped.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swapface.convert.config import ConvertConfig
from swapface.convert.pipeline import run_convert
from swapface.core.config import option, to_dict
from swapface.core.errors import ConfigError, InputError
from swapface.core.fileio import atomic_write_bytes
from swapface.core.progress import NEVER, SILENT, CancelToken, Progress
from swapface.extract.config import ExtractConfig
from swapface.extract.run import run_extract
from swapface.train.config import TrainConfig
from swapface.train.trainer import Trainer

STAGES = ("extract_a", "extract_b", "train", "convert")
PROJECT_FILE = "project.json"
# Options that shape a stage's result, and the stages they shape.
_DEFINING = {"size": ("extract_a", "extract_b", "train"), "every_n_b": ("extract_b", "train"),
             "model": ("train",)}
FORMAT = 1


@dataclass
class RunConfig:
    a_video: Path = option(help="video whose faces are replaced (identity A)", positional=True)
    b_video: Path = option(help="video of the face to put in (identity B)", positional=True)
    output: Path = option(help="output video", flags=["-o", "--output"])
    project: Path | None = option(
        None, help="project folder (default: <OUTPUT stem>_project next to the output)"
    )
    model: str = option("lightweight", help="model architecture for training")
    iterations: int = option(20_000, help="training iterations (total, across resumes)")
    minutes: float = option(5.0, help="training time budget in minutes (total, across resumes)")
    batch_size: int = option(16, help="training faces per side per iteration")
    every_n_b: int = option(1, help="extract every N-th frame of B for training")
    size: int = option(256, help="aligned face size in pixels")
    overwrite: bool = option(False, help="replace an existing output video")

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ConfigError("--iterations must be at least 1")
        if self.minutes <= 0:
            raise ConfigError("--minutes must be positive")
        if self.batch_size < 1:
            raise ConfigError("--batch-size must be at least 1")
        if self.every_n_b < 1:
            raise ConfigError("--every-n-b must be at least 1")

    @property
    def project_dir(self) -> Path:
        if self.project is not None:
            return self.project
        return self.output.parent / f"{self.output.stem}_project"


@dataclass
class RunSummary:
    project: str
    output: str
    stages: dict[str, str] = field(default_factory=dict)  # name -> "done" / "skipped"
    seconds: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"project: {self.project}", f"output:  {self.output}"]
        for name in STAGES:
            state = self.stages.get(name, "-")
            took = f" in {self.seconds[name]:.1f} s" if name in self.seconds else ""
            out.append(f"  {name:<10} {state}{took}")
        out.append(f"total:   {sum(self.seconds.values()):.1f} s")
        return out


def _input_info(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"input video not found: {path}")
    return {"path": str(path.resolve()), "size": path.stat().st_size}


class Project:
    """``project.json``: written atomically after every change."""

    def __init__(self, cfg: RunConfig) -> None:
        self.dir = cfg.project_dir
        self.path = self.dir / PROJECT_FILE
        inputs = {"a": _input_info(cfg.a_video), "b": _input_info(cfg.b_video)}
        if self.path.is_file():
            try:
                self.data = json.loads(self.path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise ConfigError(f"cannot read {self.path}: {exc}") from exc
            if not (isinstance(self.data, dict) and isinstance(self.data.get("stages"), dict)
                    and all(isinstance(v, dict) for v in self.data["stages"].values())):
                raise ConfigError(f"{self.path} is damaged (not a swapface project file)")
            if not isinstance(self.data.get("format"), int) or self.data["format"] > FORMAT:
                raise ConfigError(f"{self.path} was written by a newer swapface "
                                  f"(format {self.data.get('format')!r}); upgrade swapface")
            for name in STAGES:
                self.data["stages"].setdefault(name, {"done": False})
            if self.data.get("inputs") != inputs:
                raise ConfigError(
                    f"project {self.dir} was made for other input videos "
                    f"({self.data.get('inputs', {}).get('a', {}).get('path')}, "
                    f"{self.data.get('inputs', {}).get('b', {}).get('path')}); "
                    "pass a different --project or output"
                )
            self._compare_options(cfg)
        else:
            self.data = {"format": FORMAT, "inputs": inputs,
                         "stages": {name: {"done": False} for name in STAGES},
                         "train_seconds": 0.0}
        self.data["output"] = str(cfg.output.resolve())
        self.data["options"] = to_dict(cfg)

    def _compare_options(self, cfg: RunConfig) -> None:
        """Refuse options that would mix with work already done under other ones; a larger
        training budget re-opens training (and so convert) instead."""
        before = self.data.get("options")
        if not isinstance(before, dict):
            return
        now = to_dict(cfg)
        for key, stages in _DEFINING.items():
            if key in before and before[key] != now[key] and any(
                    self.started(stage) for stage in stages):
                flag = "--" + key.replace("_", "-")
                raise ConfigError(
                    f"project {self.dir} was made with {flag} {before[key]}, this run asks for "
                    f"{now[key]}: its {'/'.join(s for s in stages if self.started(s))} would mix "
                    f"both; use {flag} {before[key]}, or another --project")
        grew = any(isinstance(before.get(k), int | float) and now[k] > before[k]
                   for k in ("iterations", "minutes"))
        if grew and self.done("train"):
            self.data["stages"]["train"] = {"done": False}
            self.data["stages"]["convert"] = {"done": False}

    def started(self, stage: str) -> bool:
        folder = {"extract_a": "a", "extract_b": "b", "train": "model"}.get(stage)
        return self.done(stage) or (folder is not None and (self.dir / folder).exists())

    def done(self, stage: str) -> bool:
        return bool(self.data["stages"].get(stage, {}).get("done"))

    def mark(self, stage: str, seconds: float, **extra: Any) -> None:
        self.data["stages"][stage] = {"done": True, "seconds": round(seconds, 3), **extra}
        self.save()

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.data, indent=2, sort_keys=True) + "\n"
        atomic_write_bytes(self.path, text.encode("utf-8"))


def _say(lines: list[str] | str) -> None:
    print("\n".join([lines] if isinstance(lines, str) else lines), file=sys.stderr, flush=True)


def run_project(cfg: RunConfig, progress: Progress = SILENT, cancel: CancelToken = NEVER) -> RunSummary:
    for name in ("a_video", "b_video"):
        path: Path = getattr(cfg, name)
        if path.resolve() == cfg.output.resolve():
            raise ConfigError("output must differ from the inputs")
    project = Project(cfg)
    converted_to = project.data["stages"]["convert"].get("output")
    if project.done("convert") and converted_to != str(cfg.output.resolve()):
        project.data["stages"]["convert"] = {"done": False}  # a new output for this project
    redo_convert = cfg.overwrite and project.done("convert")
    if cfg.output.exists() and not cfg.overwrite and not project.done("convert"):
        raise ConfigError(f"output exists: {cfg.output} (pass --overwrite to replace it)")
    if project.done("convert") and not cfg.output.exists():
        redo_convert = True  # the output was deleted: make it again
    project.save()
    summary = RunSummary(str(project.dir), str(cfg.output))
    pdir = project.dir

    for stage, video, side, every_n in (("extract_a", cfg.a_video, "a", 1),
                                        ("extract_b", cfg.b_video, "b", cfg.every_n_b)):
        if project.done(stage):
            _say(f"== {stage}: already done, skipped")
            summary.stages[stage] = "skipped"
            continue
        _say(f"== {stage}: faces of {video} (every_n={every_n}) → {pdir / side}")
        start = time.perf_counter()
        result = run_extract(ExtractConfig(
            input=video, faces=str(pdir / side / "faces"),
            alignments=pdir / side / "alignments.db", every_n=every_n, size=cfg.size,
            skip_existing=True), progress, cancel)
        _say(result.lines())
        took = time.perf_counter() - start
        project.mark(stage, took, faces=result.faces_written)
        summary.stages[stage], summary.seconds[stage] = "done", took

    if project.done("train"):
        _say("== train: already done, skipped")
        summary.stages["train"] = "skipped"
    else:
        _train(cfg, project, summary, progress, cancel)

    if project.done("convert") and not redo_convert:
        _say(f"== convert: already done, skipped ({cfg.output})")
        summary.stages["convert"] = "skipped"
    else:
        _say(f"== convert: {cfg.a_video} with B's face → {cfg.output}")
        start = time.perf_counter()
        result = run_convert(ConvertConfig(
            input=cfg.a_video, model_dir=pdir / "model", output=cfg.output,
            alignments=pdir / "a" / "alignments.db", overwrite=cfg.overwrite or redo_convert),
            progress, cancel)
        _say(result.lines())
        took = time.perf_counter() - start
        _side_by_side(cfg, pdir)
        project.mark("convert", took, frames=result.frames_out, output=str(cfg.output.resolve()))
        summary.stages["convert"], summary.seconds["convert"] = "done", took
    return summary


def _side_by_side(cfg: RunConfig, pdir: Path) -> Path | None:
    """``side_by_side.png`` in the project: the middle frame with a face, source | swapped."""
    from swapface.align.store import AlignmentsStore
    from swapface.convert.preview import side_by_side

    with AlignmentsStore(pdir / "a" / "alignments.db", readonly=True) as store:
        indices = [index for index, _, faces in store.frame_face_counts() if faces]
    if not indices:
        return None
    try:
        path = side_by_side(cfg.a_video, cfg.output, pdir / "side_by_side.png",
                            index=indices[len(indices) // 2])
    except (ValueError, OSError) as exc:  # a preview must never fail the run
        _say(f"side-by-side still not written: {exc}")
        return None
    _say(f"side-by-side still: {path}")
    return path


def _train(cfg: RunConfig, project: Project, summary: RunSummary, progress: Progress,
           cancel: CancelToken) -> None:
    pdir = project.dir
    spent = float(project.data.get("train_seconds", 0.0))
    left = cfg.minutes - spent / 60
    start = time.perf_counter()
    if left <= 0:
        _say(f"== train: time budget of {cfg.minutes:g} min already spent")
        project.mark("train", 0.0, stopped_by="time budget")
        summary.stages["train"], summary.seconds["train"] = "done", 0.0
        return
    _say(f"== train: {cfg.model}, up to {cfg.iterations} iterations or {left:.1f} more min "
         f"→ {pdir / 'model'}")
    trainer = Trainer(TrainConfig(
        faces_a=pdir / "a" / "faces", faces_b=pdir / "b" / "faces", model_dir=pdir / "model",
        model=cfg.model, batch_size=cfg.batch_size, iterations=cfg.iterations, minutes=left))
    try:
        result = trainer.run(progress, cancel)
    finally:
        project.data["train_seconds"] = spent + (time.perf_counter() - start)
        project.save()
    _say(result.lines())
    took = time.perf_counter() - start
    summary.seconds["train"] = took
    if cancel.cancelled:  # SIGINT / SIGTERM: saved, resumable, not done
        cancel.check()
    project.mark("train", took, iteration=result.iteration, stopped_by=result.stopped_by)
    summary.stages["train"] = "done"
