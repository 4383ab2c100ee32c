"""Small line plots drawn with OpenCV: axes, ticks, a legend and threshold lines.

matplotlib is not a dependency (it would be the heaviest package for two PNGs), so the
per-frame plots of the report are drawn here directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
BLACK, GREY, LIGHT = (0, 0, 0), (110, 110, 110), (225, 225, 225)
# BGR: blue, orange, green, red — distinguishable, and readable when printed grey.
COLORS = ((180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214))


@dataclass
class Series:
    label: str
    x: Sequence[float]
    y: Sequence[float]  # NaN leaves a gap
    color: tuple[int, int, int] = COLORS[0]
    points: bool = False  # a scatter of dots instead of a line


@dataclass
class HLine:
    label: str
    y: float
    color: tuple[int, int, int] = COLORS[3]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 × 10^k steps) covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, count)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _label(value: float) -> str:
    if value == round(value):
        return str(round(value))
    return f"{value:.3g}"


def _dashed(img: np.ndarray, p0: tuple[int, int], p1: tuple[int, int], color: tuple[int, int, int],
            dash: int = 8) -> None:
    length = int(math.hypot(p1[0] - p0[0], p1[1] - p0[1]))
    for s in range(0, length, 2 * dash):
        a, b = s / length, min(s + dash, length) / length
        q0 = (round(p0[0] + a * (p1[0] - p0[0])), round(p0[1] + a * (p1[1] - p0[1])))
        q1 = (round(p0[0] + b * (p1[0] - p0[0])), round(p0[1] + b * (p1[1] - p0[1])))
        cv2.line(img, q0, q1, color, 1, cv2.LINE_AA)


def line_plot(series: Sequence[Series], title: str, xlabel: str, ylabel: str,
              hlines: Sequence[HLine] = (), size: tuple[int, int] = (960, 400)) -> np.ndarray:
    """A BGR uint8 image of the series as lines (points where a run has one value)."""
    w, h = size
    left, right, top, bottom = 72, 16, 58, 48  # the legend runs along the top margin
    img = np.full((h, w, 3), 255, np.uint8)
    cv2.putText(img, title, (left, 24), FONT, 0.6, BLACK, 1, cv2.LINE_AA)
    xs = np.concatenate([np.asarray(s.x, np.float64) for s in series] or [np.zeros(0)])
    ys = np.concatenate([np.asarray(s.y, np.float64) for s in series] or [np.zeros(0)])
    ys = np.concatenate([ys, [hl.y for hl in hlines]])
    ok = np.isfinite(ys)
    if not xs.size or not ok.any():
        cv2.putText(img, "no data", (w // 2 - 30, h // 2), FONT, 0.6, GREY, 1, cv2.LINE_AA)
        return img
    x0, x1 = float(xs.min()), float(xs.max())
    if x1 <= x0:
        x0, x1 = x0 - 1, x1 + 1
    y0, y1 = min(0.0, float(ys[ok].min())), float(ys[ok].max())
    y1 = y1 + 0.08 * (y1 - y0) if y1 > y0 else y0 + 1.0
    pw, ph = w - left - right, h - top - bottom

    def px(x: float, y: float) -> tuple[int, int]:
        return (round(left + (x - x0) / (x1 - x0) * pw), round(top + ph - (y - y0) / (y1 - y0) * ph))

    for t in nice_ticks(y0, y1):
        _, yy = px(x0, t)
        cv2.line(img, (left, yy), (left + pw, yy), LIGHT, 1)
        cv2.putText(img, _label(t), (4, yy + 4), FONT, 0.4, GREY, 1, cv2.LINE_AA)
    for t in nice_ticks(x0, x1, 8):
        xx, _ = px(t, y0)
        cv2.line(img, (xx, top + ph), (xx, top + ph + 5), GREY, 1)
        cv2.putText(img, _label(t), (xx - 10, top + ph + 18), FONT, 0.4, GREY, 1, cv2.LINE_AA)
    cv2.rectangle(img, (left, top), (left + pw, top + ph), BLACK, 1)
    cv2.putText(img, xlabel, (left + pw // 2 - 4 * len(xlabel), h - 8), FONT, 0.45, BLACK, 1, cv2.LINE_AA)
    cv2.putText(img, ylabel, (4, top - 12), FONT, 0.45, BLACK, 1, cv2.LINE_AA)
    for hl in hlines:
        _dashed(img, px(x0, hl.y), px(x1, hl.y), hl.color)
    for s in series:
        x, y = np.asarray(s.x, np.float64), np.asarray(s.y, np.float64)
        good = np.isfinite(y)
        if s.points:
            for xi, yi in zip(x[good], y[good], strict=True):
                cv2.circle(img, px(xi, yi), 3, s.color, -1, cv2.LINE_AA)
            continue
        # Split into runs of finite values: a NaN is a gap, not a drop to zero.
        edges = np.flatnonzero(np.diff(np.r_[0, good.astype(np.int8), 0]))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            pts = np.array([px(xi, yi) for xi, yi in zip(x[a:b], y[a:b], strict=True)], np.int32)
            if len(pts) == 1:
                cv2.circle(img, tuple(int(v) for v in pts[0]), 2, s.color, -1, cv2.LINE_AA)
            else:
                cv2.polylines(img, [pts], False, s.color, 1, cv2.LINE_AA)
    entries = [(s.label, s.color, False) for s in series] + [(hl.label, hl.color, True) for hl in hlines]
    lx, ly = left + 8 * len(ylabel), top - 12
    for label, color, dashed in entries:
        if dashed:
            _dashed(img, (lx, ly - 4), (lx + 22, ly - 4), color, 4)
        else:
            cv2.line(img, (lx, ly - 4), (lx + 22, ly - 4), color, 2, cv2.LINE_AA)
        cv2.putText(img, label, (lx + 28, ly), FONT, 0.4, BLACK, 1, cv2.LINE_AA)
        lx += 28 + cv2.getTextSize(label, FONT, 0.4, 1)[0][0] + 24
    return img
