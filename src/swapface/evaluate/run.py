"""``swapface evaluate`` as a Python API: stream both videos once, score every face pair.

Frames of the source (inside ``--frame-ranges``) and of the swapped video are read in
lockstep; faces are found on both with the same detector and aligner
(:mod:`swapface.evaluate.pairing` says why) and paired by position. Each pair feeds the
identity, pose, expression and temporal metrics; frames where one side has no face are
counted, not fatal. With ``-m`` the model's reconstruction is scored on held-out faces.

Both sides track faces between full detections on one schedule: whenever a frame's faces
do not pair up one-to-one, both trackers restart, so a face lost on one side does not leave
the two sides detecting differently (and disagreeing) for the frames after it. A swapped
input with another frame count than the source is compared over the frames both have, in
order, and the mismatch is reported: a truncated output still has figures worth seeing.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from swapface.core.errors import InputError
from swapface.core.fileio import is_writable_dir
from swapface.core.progress import SILENT, Progress
from swapface.evaluate.config import EvaluateConfig
from swapface.evaluate.detail import DetailFigures, DetailMetric
from swapface.evaluate.expression import ExpressionFigures, ExpressionMetric
from swapface.evaluate.identity import (
    IdentityFigures,
    IdentityMetric,
    IdentityReference,
)
from swapface.evaluate.pairing import (
    FacePair,
    compared_frames,
    expected_source_frames,
    make_finders,
    pair_faces,
)
from swapface.evaluate.pose import PoseFigures, PoseMetric
from swapface.evaluate.reconstruction import PASTE_SIZE, ReconstructionFigures, reconstruction
from swapface.evaluate.report import ContactSheet, PerFrame, report_paths, write_report
from swapface.evaluate.temporal import TemporalFigures, TemporalMetric
from swapface.faces.identity import SAME_PERSON, shared_encoder
from swapface.media.source import open_source, readonly_output_dir

NAN = float("nan")


@dataclass
class FrameCounts:
    source: int = 0  # source frames the swapped video should hold (inside --frame-ranges)
    swapped: int = 0  # frames of the swapped video
    compared: int = 0  # frames read from both
    without_source_face: int = 0
    faces_source: int = 0
    faces_paired: int = 0
    faces_missing: int = 0  # source faces with no swapped face at their place
    faces_extra: int = 0  # swapped faces with no source face at their place


@dataclass
class EvaluateResult:
    source: str
    swapped: str
    reference_b: str
    frames: FrameCounts
    identity: IdentityFigures
    pose: PoseFigures
    expression: ExpressionFigures
    temporal: TemporalFigures
    detail: DetailFigures
    reconstruction: ReconstructionFigures | None
    report: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    per_frame: PerFrame = field(default_factory=PerFrame)

    def to_dict(self) -> dict[str, Any]:
        """Every figure, JSON-ready: NaN (no value) becomes null."""
        def clean(value: Any) -> Any:
            if isinstance(value, float):
                return None if not math.isfinite(value) else round(value, 6)
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value

        return clean(dataclasses.asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def lines(self) -> list[str]:
        def f(value: float | None, spec: str = ".3f", unit: str = "") -> str:
            return "n/a" if value is None else f"{value:{spec}}{unit}"

        fr, idt, pose, ex, tm = self.frames, self.identity, self.pose, self.expression, self.temporal
        dt = self.detail
        out = [
            f"frames:         {fr.compared} compared (source {fr.source}, swapped {fr.swapped}), "
            f"{fr.without_source_face} without a source face",
            f"faces:          {fr.faces_paired} paired of {fr.faces_source} source faces, "
            f"{fr.faces_missing} missing on the swapped side, {fr.faces_extra} extra",
            f"identity:       {f(idt.closer_to_b, '.1%')} closer to B than to A, "
            f"{f(idt.under_threshold, '.1%')} under {idt.threshold:g} of B "
            f"({idt.faces} faces, {idt.references_b} B references)",
            f"                mean distance to B {f(idt.mean_distance_b)}, to A {f(idt.mean_distance_a)}"
            f" (source face to B: {f(idt.source_distance_b)})",
            f"pose:           error {f(pose.error, '.2f', '°')} (yaw {f(pose.yaw_error, '.2f')}, "
            f"pitch {f(pose.pitch_error, '.2f')}, roll {f(pose.roll_error, '.2f')}; "
            f"worst face {f(pose.max_error, '.1f', '°')})",
            f"                the same on every frame (B's proportions): "
            f"{'/'.join(f'{v:+.1f}' for v in pose.offset or (math.nan,) * 3)}°; "
            f"movement followed within {f(pose.motion_error, '.2f', '°')}",
            f"expression:     error {f(ex.error, '.4f')} (mouth opening {f(ex.mouth_open_error, '.4f')}, "
            f"eye opening {f(ex.eye_open_error, '.4f')}, eye/mouth points {f(ex.position_error, '.4f')}; "
            "inter-ocular units)",
            f"temporal:       jitter ratio {f(tm.jitter_ratio)} (source {f(tm.jitter_source, '.4f')}, "
            f"swapped {f(tm.jitter_swapped, '.4f')}), frame-difference ratio {f(tm.frame_diff_ratio)} "
            f"(source {f(tm.frame_diff_source, '.1f')}, swapped {f(tm.frame_diff_swapped, '.1f')})",
            f"detail:         sharpness ratio {f(dt.sharpness_ratio)} of the source's "
            f"(least sharp face {f(dt.sharpness_min)}); seam ΔE {f(dt.seam_delta_e, '+.2f')} over "
            f"the source's {f(dt.seam_delta_e_source, '.2f')} (worst {f(dt.seam_delta_e_max, '+.1f')})",
        ]
        rec = self.reconstruction
        if rec is not None:
            parts = [f"{name} SSIM {s.ssim:.4f} L1 {s.l1:.4f}, at {PASTE_SIZE} px SSIM "
                     f"{s.ssim_paste:.4f} (a perfect {rec.size} px face: {s.ssim_paste_ceiling:.4f}) "
                     f"L1 {s.l1_paste:.4f} ({s.faces} faces)"
                     for name, s in (("A→A", rec.a), ("B→B", rec.b)) if s is not None]
            out.append(f"reconstruction: {rec.model} at {rec.size} px: " + "; ".join(parts))
        if self.report:
            out.append(f"report:         {Path(self.report['json']).parent}")
        out.append(f"time:           {self.seconds:.1f} s")
        out += [f"problem: {p}" for p in self.problems[:10]]
        if len(self.problems) > 10:
            out.append(f"... and {len(self.problems) - 10} more problems")
        return out


def _report_dir(cfg: EvaluateConfig) -> Path:
    folder = cfg.report_dir
    if cfg.report is None and not is_writable_dir(folder.parent):
        return readonly_output_dir(folder)  # next to a read-only input: the working directory
    return folder


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else NAN


def run_evaluate(cfg: EvaluateConfig, progress: Progress = SILENT) -> EvaluateResult:
    began = time.perf_counter()
    for path, what in ((cfg.source, "source"), (cfg.swapped, "swapped video"),
                       (cfg.reference_b, "B reference")):
        if not Path(path).exists():
            raise InputError(f"{what} not found: {path}")
    if cfg.model_dir is not None:
        for path in (cfg.model_dir, cfg.faces_a, cfg.faces_b):
            if path is not None and not path.is_dir():
                raise InputError(f"folder not found: {path}")
    source, swapped = open_source(cfg.source), open_source(cfg.swapped)
    counts = FrameCounts(source=expected_source_frames(cfg, source), swapped=swapped.count)
    if cfg.samples:  # the swapped video holds every frame; the same sample of it is read
        counts.swapped = sum(1 for i in range(swapped.count) if cfg.sampled(i))
    if counts.source == 0:
        raise InputError(f"no source frames to compare in {cfg.source}"
                         + (" inside --frame-ranges" if cfg.ranges else ""))
    if counts.swapped == 0:
        raise InputError(f"no frames in the swapped input {cfg.swapped}")
    problems: list[str] = []
    if counts.source != counts.swapped:
        problems.append(
            f"the swapped input has {counts.swapped} frames but the source has {counts.source}"
            + (" inside --frame-ranges" if cfg.ranges else "")
            + f"; compared the first {min(counts.source, counts.swapped)} of each in order "
            "(pass --frame-ranges when convert ran with --frame-ranges --discard-frames)")

    finders = make_finders(cfg)
    encoder = shared_encoder()
    reference = IdentityReference.load(cfg.reference_b, finders[0], encoder, cfg.max_references)
    identity, pose, expression = IdentityMetric(encoder, reference), PoseMetric(), ExpressionMetric()
    temporal, detail = TemporalMetric(), DetailMetric()
    per = PerFrame()
    total = min(counts.source, counts.swapped)
    sheet = ContactSheet.spaced(total, cfg.sheet_frames)
    last = None
    bar = progress.task("evaluate", total, "frame")
    try:
        for position, (sf, wf) in enumerate(compared_frames(cfg, source, swapped)):
            if last is None or sf.index != last + 1:
                for finder in finders:
                    finder.reset()
            last = sf.index
            swapped_image = wf.image
            if swapped_image.shape != sf.image.shape:
                if not any("frame size" in p for p in problems):
                    problems.append(f"swapped frames are {swapped_image.shape[1]}×{swapped_image.shape[0]}, "
                                    f"source {sf.image.shape[1]}×{sf.image.shape[0]}; resized to the source")
                swapped_image = cv2.resize(swapped_image, sf.image.shape[1::-1], interpolation=cv2.INTER_AREA)
            src_faces = finders[0].find(sf.image)
            swp_faces = finders[1].find(swapped_image)
            matched, missing, extra = pair_faces(src_faces, swp_faces)
            if missing or extra:  # one side lost or gained a face: both detect afresh next
                for finder in finders:  # frame, so the two sides track on one schedule again
                    finder.reset()
            pairs = [FacePair(position, sf.index, src_faces[i], swp_faces[j]) for i, j in matched]
            counts.compared += 1
            counts.without_source_face += not src_faces
            counts.faces_source += len(src_faces)
            counts.faces_paired += len(pairs)
            counts.faces_missing += len(missing)
            counts.faces_extra += len(extra)

            to_b, to_a = [], []
            if position % cfg.identity_every == 0:
                for p in pairs:
                    b, a = identity.add(sf.image, p.source, swapped_image, p.swapped)
                    to_b.append(b)
                    to_a.append(a)
            per.frame.append(sf.index)
            per.distance_b.append(_mean(to_b))
            per.distance_a.append(_mean(to_a))
            per.pose_error.append(_mean([pose.add(p.source, p.swapped) for p in pairs]))
            per.expression_error.append(_mean([expression.add(p.source, p.swapped) for p in pairs]))
            scored = [detail.add(sf.image, swapped_image, p.source.landmarks) for p in pairs]
            per.sharpness.append(_mean([sharp for sharp, _ in scored if math.isfinite(sharp)]))
            per.seam.append(_mean([seam for _, seam in scored if math.isfinite(seam)]))
            js, jw = temporal.add_frame(sf.index, sf.image, swapped_image, src_faces, pairs)
            per.jitter_source.append(NAN if js is None else js)
            per.jitter_swapped.append(NAN if jw is None else jw)
            sheet.offer(position, sf.index, sf.image, swapped_image, per.badness(-1))
            bar.advance()
    finally:
        bar.close()
    if counts.compared and not counts.faces_paired:
        problems.append("no face pairs found: nothing to score (no faces in the source, or none "
                        "at the same place in the swapped video)")
    problems += source.problems + swapped.problems

    rec = None
    if cfg.model_dir is not None:
        rec = reconstruction(cfg.model_dir, cfg.faces_a, cfg.faces_b, cfg.coverage, cfg.max_faces,
                             cfg.cpu, progress)
    result = EvaluateResult(str(cfg.source), str(cfg.swapped), str(cfg.reference_b), counts,
                            identity.figures(), pose.figures(), expression.figures(),
                            temporal.figures(), detail.figures(), rec, problems=problems,
                            per_frame=per)
    folder = _report_dir(cfg)
    result.report = report_paths(folder)
    result.seconds = time.perf_counter() - began
    write_report(folder, result.to_json(), sheet, per, SAME_PERSON)
    return result
