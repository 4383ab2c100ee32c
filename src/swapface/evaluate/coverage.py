"""What B's faces can teach a model about A's frames, before any training: ``swapface coverage``.

A decoder only learns to draw the poses and expressions its person shows: when A opens the
mouth wider, or turns further, than B ever does, those frames of A smudge. For every face
of A this finds the nearest face of B in four figures — yaw and pitch (degrees, from the
landmarks' head pose) and mouth and eye opening (inter-ocular units, as evaluate measures
expression) — each divided by a tolerance, so one unit is "just as close as still helps".
A frame whose nearest B is more than one unit away is *uncovered*; the figure that is
furthest out names why, and consecutive uncovered frames are reported as ranges.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from swapface.align.landmarks import eye_opening, mouth_opening
from swapface.align.pose import head_pose
from swapface.core.config import option
from swapface.core.errors import ConfigError, InputError

FIGURES = ("yaw", "pitch", "mouth", "eyes")
UNITS = {"yaw": "°", "pitch": "°", "mouth": "", "eyes": ""}
WORDS = {"yaw": ("turns the head further to the right", "turns the head further to the left"),
         "pitch": ("tilts the head further down", "tilts the head further up"),
         "mouth": ("opens the mouth wider", "closes the mouth tighter"),
         "eyes": ("opens the eyes wider", "closes the eyes further")}


@dataclass
class CoverageConfig:
    faces_a: Path = option(help="face folder of A (whose frames will be swapped)", positional=True)
    faces_b: Path = option(help="face folder of B (whose face is put in)", positional=True)
    output: Path | None = option(None, help="write the two distributions as a PNG here",
                                 flags=["-o", "--output"])
    json_out: Path | None = option(None, help="also write the figures as JSON", flags=["--json"])
    yaw_tolerance: float = option(10.0, help="degrees of yaw that still count as close")
    pitch_tolerance: float = option(10.0, help="degrees of pitch that still count as close")
    mouth_tolerance: float = option(0.08, help="mouth opening (inter-ocular units) still close")
    eyes_tolerance: float = option(0.04, help="eye opening (inter-ocular units) still close")
    max_gap: int = option(2, help="join uncovered faces into one range across this many frames")

    def __post_init__(self) -> None:
        for name in FIGURES:
            if getattr(self, f"{name}_tolerance") <= 0:
                raise ConfigError(f"--{name}-tolerance must be above 0")

    @property
    def tolerances(self) -> np.ndarray:
        return np.array([getattr(self, f"{name}_tolerance") for name in FIGURES])


def face_figures(landmarks: np.ndarray) -> np.ndarray:
    """(n, 68, 2) frame landmarks → (n, 4): yaw, pitch, mouth and eye opening."""
    out = np.zeros((len(landmarks), len(FIGURES)))
    for i, lm in enumerate(landmarks):
        yaw, pitch, _roll = head_pose(lm)
        out[i] = yaw, pitch, mouth_opening(lm), eye_opening(lm)
    return out


@dataclass
class Gap:
    first: int  # frame indices of A, inclusive
    last: int
    faces: int
    reason: str  # the figure furthest out
    direction: int  # +1: A's value is above B's (nearest or largest), -1: below
    outside: bool  # A's value is outside the range of all B's faces, not only the nearest's

    def words(self, b_range: tuple[float, float]) -> str:
        unit = UNITS[self.reason]
        lo, hi = b_range
        frames = f"frame {self.first}" if self.first == self.last else f"frames {self.first}–{self.last}"
        if self.outside:
            what = WORDS[self.reason][0 if self.direction > 0 else 1]
            return (f"{frames} of A ({self.faces} face(s)): A {what} than B ever does "
                    f"(B {self.reason} {lo:.2f}{unit} to {hi:.2f}{unit}); expect a smudge there")
        return (f"{frames} of A ({self.faces} face(s)): B has no face with this pose and expression "
                f"together (furthest off: {self.reason}); expect a softer face there")


@dataclass
class Coverage:
    a_frames: np.ndarray  # (n,) frame index of each A face
    a: np.ndarray  # (n, 4) figures of A's faces
    b: np.ndarray  # (m, 4) of B's
    distance: np.ndarray  # (n,) to the nearest B face, in tolerance units
    nearest: np.ndarray  # (n,) index of that B face
    gaps: list[Gap] = field(default_factory=list)

    @property
    def covered(self) -> np.ndarray:
        return self.distance <= 1.0

    @property
    def share_uncovered(self) -> float:
        return float((~self.covered).mean()) if len(self.distance) else 0.0

    def b_range(self, figure: str) -> tuple[float, float]:
        column = self.b[:, FIGURES.index(figure)]
        return float(column.min()), float(column.max())

    def lines(self) -> list[str]:
        n = len(self.distance)
        out = [f"coverage: {n - int((~self.covered).sum())} of {n} faces of A have a close face of B "
               f"({100 * (1 - self.share_uncovered):.1f} %), from {len(self.b)} faces of B"]
        for name in FIGURES:
            col_a, col_b = self.a[:, FIGURES.index(name)], self.b[:, FIGURES.index(name)]
            out.append(f"  {name:6s} A {col_a.min():7.2f} … {col_a.max():6.2f}   "
                       f"B {col_b.min():7.2f} … {col_b.max():6.2f}{UNITS[name]}")
        if not self.gaps:
            out.append("every pose and expression of A has a close example in B")
        out += [gap.words(self.b_range(gap.reason)) for gap in self.gaps[:12]]
        if len(self.gaps) > 12:
            out.append(f"… and {len(self.gaps) - 12} more ranges (see --json)")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"faces_a": len(self.a), "faces_b": len(self.b),
                "share_uncovered": round(self.share_uncovered, 4),
                "b_ranges": {name: self.b_range(name) for name in FIGURES},
                "gaps": [{"first": g.first, "last": g.last, "faces": g.faces, "reason": g.reason,
                          "direction": g.direction, "outside": g.outside} for g in self.gaps],
                "faces": [{"frame": int(f), "distance": round(float(d), 3),
                           **{k: round(float(v), 3) for k, v in zip(FIGURES, row, strict=True)}}
                          for f, d, row in zip(self.a_frames, self.distance, self.a, strict=True)]}


def measure(a_frames: np.ndarray, a_landmarks: np.ndarray, b_landmarks: np.ndarray,
            tolerances: np.ndarray, max_gap: int = 2) -> Coverage:
    """Coverage of A's faces (frame indices + landmarks) by B's landmarks."""
    from scipy.spatial import cKDTree

    if not len(a_landmarks) or not len(b_landmarks):
        raise InputError("coverage needs faces of both A and B")
    a, b = face_figures(a_landmarks), face_figures(b_landmarks)
    distance, nearest = cKDTree(b / tolerances).query(a / tolerances)
    result = Coverage(np.asarray(a_frames), a, b, distance, nearest)
    result.gaps = _gaps(result, tolerances, max_gap)
    return result


def _gaps(cov: Coverage, tolerances: np.ndarray, max_gap: int) -> list[Gap]:
    order = np.argsort(cov.a_frames, kind="stable")
    lo, hi = cov.b.min(axis=0), cov.b.max(axis=0)
    spacing = _spacing(cov.a_frames)
    gaps: list[Gap] = []
    for i in order:
        if cov.covered[i]:
            continue
        # why: the figure furthest outside B's range (or, inside it, furthest from the nearest B)
        beyond = np.maximum(cov.a[i] - hi, lo - cov.a[i]) / tolerances
        off = np.abs(cov.a[i] - cov.b[cov.nearest[i]]) / tolerances
        outside = bool(beyond.max() > 0)
        k = int(np.argmax(beyond)) if outside else int(np.argmax(off))
        direction = 1 if cov.a[i, k] > cov.b[cov.nearest[i], k] else -1
        frame = int(cov.a_frames[i])
        last = gaps[-1] if gaps else None
        same = last is not None and (last.reason, last.direction, last.outside) == (
            FIGURES[k], direction, outside)
        if last is not None and same and frame - last.last <= max_gap + 1 + spacing:
            last.last, last.faces = frame, last.faces + 1
        else:
            gaps.append(Gap(frame, frame, 1, FIGURES[k], direction, outside))
    return sorted(gaps, key=lambda g: -g.faces)


def _spacing(frames: np.ndarray) -> int:
    """The usual step between A's extracted frames (extract --every-n): neighbours, not gaps."""
    steps = np.diff(np.unique(frames))
    return int(np.median(steps)) - 1 if len(steps) else 0


def read_face_folder(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(frame indices, frame landmarks) of every face file with readable metadata."""
    from swapface.curate.jobs.common import face_files
    from swapface.faces.meta import FaceFileMeta

    if not folder.is_dir():
        raise InputError(f"face folder not found: {folder}")
    metas = [m for m in (FaceFileMeta.read(p) for p in face_files(folder)) if m is not None]
    if not metas:
        raise InputError(f"{folder} has no extracted face files (run swapface extract first)")
    return (np.array([m.frame_index for m in metas], np.int64),
            np.stack([np.asarray(m.landmarks, np.float64) for m in metas]))


def run_coverage(cfg: CoverageConfig) -> Coverage:
    from swapface.core.fileio import atomic_write_bytes

    a_frames, a_lm = read_face_folder(cfg.faces_a)
    _, b_lm = read_face_folder(cfg.faces_b)
    result = measure(a_frames, a_lm, b_lm, cfg.tolerances, cfg.max_gap)
    if cfg.output is not None:
        from swapface.core.images import write_image

        write_image(cfg.output, coverage_image(result))
    if cfg.json_out is not None:
        atomic_write_bytes(cfg.json_out, json.dumps(result.to_dict(), indent=1).encode())
    return result


def coverage_image(cov: Coverage) -> np.ndarray:
    """Two scatters side by side: pose (yaw × pitch) and expression (mouth × eyes); B's faces,
    A's covered faces and A's uncovered ones in their own colours."""
    from swapface.evaluate.plots import COLORS, Series, line_plot

    panels = []
    for (fx, fy), title in ((("yaw", "pitch"), "pose: yaw (x) vs pitch (y), degrees"),
                            (("mouth", "eyes"), "expression: mouth (x) vs eye (y) opening")):
        ix, iy = FIGURES.index(fx), FIGURES.index(fy)
        ok = cov.covered
        # B drawn last, on top: where B has faces is what the picture is about
        series = [Series("A, close B face", cov.a[ok, ix], cov.a[ok, iy], COLORS[2], points=True),
                  Series("A, no close B face", cov.a[~ok, ix], cov.a[~ok, iy], COLORS[3], points=True),
                  Series("B", cov.b[:, ix], cov.b[:, iy], COLORS[0], points=True)]
        panels.append(line_plot(series, title, fx, fy, size=(640, 480)))
    return np.hstack(panels)
