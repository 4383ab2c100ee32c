"""``swapface run``: extract A and B, train, convert A with B's face — one resumable project.

A thin driver over :class:`~swapface.project.project.Project`: the project folder
(``<OUTPUT stem>_project`` by default) is an ordinary project, with the two videos as the
media of persons named after them, so ``swapface project status`` and ``swapface ui`` open
it too. ``project.json``'s ``run`` table records the inputs, the options and which stages
finished; a stage is recorded as done only after it finishes, so re-running the same command
picks up where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swapface.core.config import option, to_dict
from swapface.core.errors import ConfigError, InputError, SwapfaceError
from swapface.core.progress import NEVER, SILENT, CancelToken, Progress
from swapface.project.presets import QUALITIES, preset
from swapface.project.project import NAME_PATTERN, PROJECT_FILE, Project

if TYPE_CHECKING:
    import numpy as np

STAGES = ("extract_a", "extract_b", "train", "convert")
# Options that shape a stage's result, and the stages they shape.
_DEFINING = {"size": ("extract_a", "extract_b", "train"), "every_n_b": ("extract_b", "train"),
             "model": ("train",), "model_option": ("train",)}


@dataclass
class RunConfig:
    a_video: Path = option(help="video whose faces are replaced (identity A)", positional=True)
    b_video: Path = option(help="video of the face to put in (identity B)", positional=True)
    output: Path = option(help="output video", flags=["-o", "--output"])
    project: Path | None = option(
        None, help="project folder (default: <OUTPUT stem>_project next to the output)"
    )
    quality: str = option(
        "good", choices=list(QUALITIES),
        help="preset of model, options and budget: preview (2 CPU min), good (5 CPU min), best "
        "(20 CPU min); larger models and budgets on CUDA")
    model: str | None = option(None, help="model architecture (default: the --quality preset's; "
                               "then its model options are yours: --model-option)")
    model_option: list[str] = option([], help="architecture options as key=value (with --model)")
    iterations: int = option(20_000, help="training iterations (total, across resumes)")
    minutes: float | None = option(
        None, help="training time budget in minutes, total across resumes (default: the preset's)")
    batch_size: int = option(16, help="training faces per side per iteration")
    every_n_b: int = option(1, help="extract every N-th frame of B for training")
    size: int = option(256, help="aligned face size in pixels")
    overwrite: bool = option(False, help="replace an existing output video")
    detail: bool = option(True, help="convert with B's own fine detail (eyes, lips, skin) from its "
                          "closest extracted faces, warped onto each frame (--detail exemplars)")
    mouth: str = option("auto", choices=["swap", "source", "auto"],
                        help="swap: B's mouth as the model draws it; source: the mouth opening "
                        "(teeth, tongue) stays A's own; auto: A's own only where A opens the "
                        "mouth wider than B's faces ever do (MediaPipe face mesh)")
    summary: bool = option(True, help="end with a quality summary (identity, sharpness, seam) "
                           "measured on a sample of the converted frames")

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ConfigError("--iterations must be at least 1")
        if self.minutes is not None and self.minutes <= 0:
            raise ConfigError("--minutes must be positive")
        if self.model_option and self.model is None:
            raise ConfigError("--model-option needs --model (the --quality preset sets its own)")
        if self.batch_size < 1:
            raise ConfigError("--batch-size must be at least 1")
        if self.every_n_b < 1:
            raise ConfigError("--every-n-b must be at least 1")

    def resolved(self, device: str) -> RunConfig:
        """This config with the ``--quality`` preset's model, options and budget filled in
        where the user gave none (what the run records and compares on a resume)."""
        chosen = preset(self.quality, device)
        model_option = list(self.model_option) if self.model else list(chosen.model_option)
        return dataclasses.replace(self, model=self.model or chosen.model, model_option=model_option,
                                   minutes=self.minutes if self.minutes is not None else chosen.minutes)

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
    quality: list[str] = field(default_factory=list)  # the quality summary's lines

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


def _safe(text: str, fallback: str) -> str:
    return text if NAME_PATTERN.match(text) and ".." not in text and not text.endswith(".") \
        else fallback


class RunProject:
    """A project made and driven by ``swapface run``; its ``run`` table in ``project.json``."""

    def __init__(self, cfg: RunConfig) -> None:
        if cfg.model is None or cfg.minutes is None:  # what is recorded and compared is concrete
            from swapface.core.runtime import choose_device

            cfg = cfg.resolved(choose_device(False))
        folder = cfg.project_dir
        inputs = {"a": _input_info(cfg.a_video), "b": _input_info(cfg.b_video)}
        if (folder / PROJECT_FILE).is_file():
            self.project = self._reopen(folder, inputs)
            self._compare_options(cfg)
        else:
            name = folder.name
            if not NAME_PATTERN.match(name):
                raise ConfigError(f"project folder name {name!r}: use letters, digits, '.', '_', "
                                  "'-' and spaces (pass another --project)")
            a, b = (_safe(v.stem, side) for v, side in ((cfg.a_video, "a"), (cfg.b_video, "b")))
            if a == b:
                a, b = f"{a}_a", f"{b}_b"
            self.project = Project.create(folder.parent, name, a, b)
            for person, video, side in ((a, cfg.a_video, "a"), (b, cfg.b_video, "b")):
                self.project.add(person, video, name=_safe(video.name, f"{side}{video.suffix}"))
            self.project.data["run"] = {"inputs": inputs,
                                        "stages": {s: {"done": False} for s in STAGES},
                                        "media": {s: self.project.media(self.project.person(s))[0]["name"]
                                                  for s in "ab"}}
        self.run = self.project.data["run"]
        self.run["options"] = to_dict(cfg)
        self.run["output"] = str(cfg.output.resolve())

    @staticmethod
    def _reopen(folder: Path, inputs: dict[str, Any]) -> Project:
        try:
            data = json.loads((folder / PROJECT_FILE).read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict) and "stages" in data and "kind" not in data:
            raise ConfigError(f"{folder} was made by an older swapface run; delete it or pass "
                              "another --project")
        try:
            project = Project.open(folder)
        except ConfigError as exc:
            raise ConfigError(f"{folder / PROJECT_FILE} is damaged ({exc})") from None
        run = project.data.get("run")
        if not (isinstance(run, dict) and isinstance(run.get("stages"), dict)
                and isinstance(run.get("media"), dict)):
            raise ConfigError(f"{folder} is a project that swapface run did not make; use "
                              "`swapface project` on it, or pass another --project")
        if run.get("inputs") != inputs:
            known = run.get("inputs") or {}
            raise ConfigError(
                f"project {folder} was made for other input videos "
                f"({known.get('a', {}).get('path')}, {known.get('b', {}).get('path')}); "
                "pass a different --project or output")
        for side in "ab":
            project.media_path(project.person(side), str(run["media"][side]))  # checked names
        return project

    def _compare_options(self, cfg: RunConfig) -> None:
        """Refuse options that would mix with work already done under other ones; a larger
        training budget re-opens training (and so convert) instead."""
        before = self.project.data["run"].get("options")
        if not isinstance(before, dict):
            return
        now = to_dict(cfg)
        for key, stages in _DEFINING.items():
            started = [s for s in stages if self.started(s)]
            if key in before and before[key] != now[key] and started:
                flag = "--" + key.replace("_", "-")
                raise ConfigError(
                    f"project {self.project.dir} was made with {flag} {before[key]}, this run asks "
                    f"for {now[key]}: its {'/'.join(started)} would mix both; use {flag} "
                    f"{before[key]}, or another --project")
        grew = any(isinstance(before.get(k), int | float) and now[k] > before[k]
                   for k in ("iterations", "minutes"))
        if grew and self.done("train"):
            self.project.data["run"]["stages"]["train"] = {"done": False}
            self.project.data["run"]["stages"]["convert"] = {"done": False}

    # ------------------------------------------------------------------ stage state
    def media(self, side: str) -> tuple[str, str]:
        return self.project.person(side), str(self.project.data["run"]["media"][side])

    def started(self, stage: str) -> bool:
        if self.done(stage):
            return True
        if stage.startswith("extract_"):
            return self.project.store_path(*self.media(stage[-1])).exists()
        return stage == "train" and self.project.model_dir.exists()

    def done(self, stage: str) -> bool:
        return bool(self.project.data["run"]["stages"].get(stage, {}).get("done"))

    def mark(self, stage: str, seconds: float, **extra: Any) -> None:
        self.project.data["run"]["stages"][stage] = {"done": True, "seconds": round(seconds, 3), **extra}
        self.project.save()


def _say(lines: list[str] | str) -> None:
    print("\n".join([lines] if isinstance(lines, str) else lines), file=sys.stderr, flush=True)


def run_project(cfg: RunConfig, progress: Progress = SILENT, cancel: CancelToken = NEVER) -> RunSummary:
    from swapface.core.runtime import choose_device
    from swapface.project.stages import convert_media, extract_media

    cfg = cfg.resolved(choose_device(False))

    for name in ("a_video", "b_video"):
        path: Path = getattr(cfg, name)
        if path.resolve() == cfg.output.resolve():
            raise ConfigError("output must differ from the inputs")
    if (cfg.output.exists() and not cfg.overwrite and not (cfg.project_dir / PROJECT_FILE).is_file()):
        raise ConfigError(f"output exists: {cfg.output} (pass --overwrite to replace it)")
    rp = RunProject(cfg)
    p = rp.project
    stages = rp.run["stages"]
    if rp.done("convert") and stages["convert"].get("output") != str(cfg.output.resolve()):
        stages["convert"] = {"done": False}  # a new output for this project
    redo_convert = cfg.overwrite and rp.done("convert")
    if cfg.output.exists() and not cfg.overwrite and not rp.done("convert"):
        raise ConfigError(f"output exists: {cfg.output} (pass --overwrite to replace it)")
    if rp.done("convert") and not cfg.output.exists():
        redo_convert = True  # the output was deleted: make it again
    p.save()
    summary = RunSummary(str(p.dir), str(cfg.output))

    for stage, side, every_n in (("extract_a", "a", 1), ("extract_b", "b", cfg.every_n_b)):
        if rp.done(stage):
            _say(f"== {stage}: already done, skipped")
            summary.stages[stage] = "skipped"
            continue
        person, media = rp.media(side)
        _say(f"== {stage}: faces of {media} (every_n={every_n}) → {p.faces_dir(person)}")
        start = time.perf_counter()
        faces = extract_media(p, person, media, progress, cancel, size=cfg.size, every_n=every_n,
                              identity=False)
        took = time.perf_counter() - start
        _say(f"faces:  {faces} in {took:.1f} s")
        rp.mark(stage, took, faces=faces)
        summary.stages[stage], summary.seconds[stage] = "done", took

    if rp.done("train"):
        _say("== train: already done, skipped")
        summary.stages["train"] = "skipped"
    else:
        _train(cfg, rp, summary, progress, cancel)

    if rp.done("convert") and not redo_convert:
        _say(f"== convert: already done, skipped ({cfg.output})")
        summary.stages["convert"] = "skipped"
    else:
        _say(f"== convert: {cfg.a_video} with B's face → {cfg.output}")
        start = time.perf_counter()
        auto = cfg.mouth == "auto"
        swap = swap_settings(cfg, _landmarks(rp, "b") if auto else (),
                             _landmarks(rp, "a") if auto else ())
        _say(_mouth_line(cfg, swap))
        _, lines = convert_media(p, rp.media("a")[1], progress, cancel, face_filter=False,
                                 photos=False, swap=swap,
                                 overwrite=cfg.overwrite or redo_convert, output=cfg.output)
        _say(lines)
        took = time.perf_counter() - start
        _side_by_side(cfg, rp)
        rp.mark("convert", took, output=str(cfg.output.resolve()))
        summary.stages["convert"], summary.seconds["convert"] = "done", took
        if cfg.summary:
            start = time.perf_counter()
            summary.quality = _quality_lines(cfg, rp)
            _say(summary.quality)
            summary.seconds["quality"] = time.perf_counter() - start
    return summary


def swap_settings(cfg: RunConfig, b_landmarks: Iterable[np.ndarray] = (),
                  a_landmarks: Iterable[np.ndarray] = ()) -> dict[str, Any]:
    """The convert settings ``cfg`` asks for (SwapOptions fields; the project fills in B's
    faces). ``--mouth auto`` reads B's stored faces' 68 points (``b_landmarks``) for how wide
    B's mouth opens, and A's (``a_landmarks``): when A never opens wider, the face mesh,
    a fifth of convert's time, would change nothing and is not run."""
    import numpy as np

    from swapface.align.landmarks import mouth_opening
    from swapface.faces.mesh import mesh_available
    from swapface.swap.masks import MeshMaskOptions

    swap: dict[str, Any] = {"detail": "exemplars"} if cfg.detail else {}
    if cfg.mouth == "source":
        swap.update(mask_type="mesh", mask_options={"mouth": "source"})
    elif cfg.mouth == "auto" and mesh_available():  # else the model's mouth, as before
        mouth = MeshMaskOptions.wide_for(np.array([mouth_opening(lm) for lm in b_landmarks]))
        widest_a = max((mouth_opening(lm) for lm in a_landmarks), default=np.inf)
        if widest_a > mouth.get("wide_from", 0.0):
            swap.update(mask_type="mesh", mask_options=mouth)
    return swap


def _mouth_line(cfg: RunConfig, swap: dict[str, Any]) -> str:
    from swapface.faces.mesh import mesh_available

    mouth = swap.get("mask_options", {})
    if mouth.get("mouth") == "wide":
        return (f"mouth:  B's as the model draws it; A's own teeth and tongue show through where "
                f"A opens wider than B's faces do (mouth opening {mouth['wide_from']:.2f} → "
                f"{mouth['wide_to']:.2f})")
    if mouth.get("mouth") == "source":
        return "mouth:  A's own mouth opening (teeth, tongue) in every frame"
    if cfg.mouth == "auto" and not mesh_available():
        return "mouth:  B's as the model draws it (the face mesh needs mediapipe, not installed)"
    if cfg.mouth == "auto":
        return "mouth:  B's as the model draws it (A never opens the mouth wider than B's faces do)"
    return "mouth:  B's as the model draws it"


def _landmarks(rp: RunProject, side: str) -> list[np.ndarray]:
    """The 68 points of every face stored for ``side``'s video."""
    from swapface.align.store import AlignmentsStore

    with AlignmentsStore(rp.project.store_path(*rp.media(side)), readonly=True) as store:
        return [face.landmarks for _, _, face in store.faces()]


def _quality_lines(cfg: RunConfig, rp: RunProject) -> list[str]:
    from swapface.evaluate.ceiling import detail_ceiling
    from swapface.media.source import open_source
    from swapface.project.summary import quality_summary

    p = rp.project
    (a_person, a_name), (b_person, b_name) = rp.media("a"), rp.media("b")
    try:  # ~5 s for two short clips (every 10th stored face of each); only a remark if it fails
        ceiling = detail_ceiling(p.media_path(a_person, a_name), p.store_path(a_person, a_name),
                                 p.media_path(b_person, b_name), p.store_path(b_person, b_name),
                                 every=10)
    except SwapfaceError:
        ceiling = None
    return quality_summary(cfg.a_video, cfg.output, p.faces_dir(p.person("b")),
                           open_source(cfg.a_video).count, p.dir / "quality_sample", ceiling)


def _side_by_side(cfg: RunConfig, rp: RunProject) -> Path | None:
    """``side_by_side.png`` in the project: the middle frame with a face, source | swapped."""
    from swapface.align.store import AlignmentsStore
    from swapface.convert.preview import side_by_side

    with AlignmentsStore(rp.project.store_path(*rp.media("a")), readonly=True) as store:
        indices = [index for index, _, faces in store.frame_face_counts() if faces]
    if not indices:
        return None
    try:
        path = side_by_side(cfg.a_video, cfg.output, rp.project.dir / "side_by_side.png",
                            index=indices[len(indices) // 2])
    except (ValueError, OSError) as exc:  # a preview must never fail the run
        _say(f"side-by-side still not written: {exc}")
        return None
    _say(f"side-by-side still: {path}")
    return path


def _coverage_lines(p: Project) -> list[str]:
    """What B's faces cover of A's poses and expressions (``swapface coverage``), said before
    training so a user knows which frames will smudge before spending the budget."""
    from swapface.evaluate.coverage import CoverageConfig, run_coverage

    try:
        cov = run_coverage(CoverageConfig(faces_a=p.faces_dir(p.person("a")),
                                          faces_b=p.faces_dir(p.person("b"))))
    except SwapfaceError as exc:
        return [f"coverage: not measured ({exc})"]
    lines = cov.lines()
    more = [f"… {len(cov.gaps) - 3} more ranges: swapface coverage {p.faces_dir(p.person('a'))} "
            f"{p.faces_dir(p.person('b'))}"] if len(cov.gaps) > 3 else []
    return ["== coverage: A's poses and expressions against B's faces", *lines[:8], *more]


def _train(cfg: RunConfig, rp: RunProject, summary: RunSummary, progress: Progress,
           cancel: CancelToken) -> None:
    from swapface.project.stages import train_model

    p = rp.project
    _say(_coverage_lines(p))
    spent = float(p.data.get("train", {}).get("seconds", 0.0))
    assert cfg.model is not None and cfg.minutes is not None  # resolved from the preset
    options = " ".join(cfg.model_option)
    _say(f"== train: {cfg.model}{f' ({options})' if options else ''} [--quality {cfg.quality}], up to "
         f"{cfg.iterations} iterations or {max(0.0, cfg.minutes - spent / 60):.1f} more min → "
         f"{p.model_dir}")
    start = time.perf_counter()
    state = train_model(p, progress, cancel, model=cfg.model, minutes=cfg.minutes,
                        iterations=cfg.iterations, batch_size=cfg.batch_size,
                        options=list(cfg.model_option))
    took = time.perf_counter() - start
    _say(f"trained: {state.get('iteration', 0)} iterations ({state.get('stopped_by')})")
    summary.seconds["train"] = took
    rp.mark("train", took, iteration=state.get("iteration", 0), stopped_by=state.get("stopped_by"))
    summary.stages["train"] = "done"
