"""Pose: does the swapped head point where the source head pointed?

Both faces' yaw / pitch / roll come from :func:`swapface.align.pose.head_pose` (the same
solvePnP fit ``sort --by yaw`` uses); the error is the absolute difference per axis.

A generic 3-D face model reads another person's proportions (a longer nose, a lower chin)
as a slightly different pose, the same on every frame: ``offset`` is that constant part
(swapped − source, per axis) and ``motion_error`` what is left, how well the head follows
the source's movement. On man_a → man_b at 5 CPU minutes pitch is −5.4° off on every frame
while the movement is followed within 1.4°.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from swapface.align.pose import angle_difference, head_pose
from swapface.faces.finder import FoundFace


@dataclass
class PoseFigures:
    faces: int
    yaw_error: float | None  # mean absolute error, degrees
    pitch_error: float | None
    roll_error: float | None
    error: float | None  # mean of the three axes' errors
    max_error: float | None  # worst face (mean of its three axes)
    offset: tuple[float, float, float] | None = None  # mean signed (swapped − source) yaw, pitch, roll
    motion_error: float | None = None  # mean absolute error once the offset is taken away


@dataclass
class PoseMetric:
    errors: list[tuple[float, float, float]] = field(default_factory=list)
    signed: list[np.ndarray] = field(default_factory=list)  # swapped − source, (−180, 180]

    def add(self, source: FoundFace, swapped: FoundFace) -> float:
        """Score one face pair; returns its mean absolute error over the three axes."""
        src, swp = head_pose(source.landmarks), head_pose(swapped.landmarks)
        err = tuple(angle_difference(a, b) for a, b in zip(src, swp, strict=True))
        self.errors.append(err)  # type: ignore[arg-type]
        self.signed.append((np.subtract(swp, src) + 180.0) % 360.0 - 180.0)
        return float(np.mean(err))

    def figures(self) -> PoseFigures:
        if not self.errors:
            return PoseFigures(0, None, None, None, None, None)
        e = np.asarray(self.errors)
        yaw, pitch, roll = (float(v) for v in e.mean(axis=0))
        signed = np.asarray(self.signed)
        offset = signed.mean(axis=0)
        return PoseFigures(len(e), yaw, pitch, roll, float(e.mean()), float(e.mean(axis=1).max()),
                           tuple(float(v) for v in offset),  # type: ignore[arg-type]
                           float(np.abs(signed - offset).mean()))
