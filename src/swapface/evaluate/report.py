"""The report folder: ``evaluate.json``, a source | swapped contact sheet, per-frame plots."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from swapface.core.fileio import atomic_write_bytes
from swapface.core.images import write_image
from swapface.evaluate.plots import COLORS, HLine, Series, line_plot

THUMB_HEIGHT = 180
GAP = 6
JSON_NAME = "evaluate.json"
SHEET_NAME = "contact_sheet.png"
IDENTITY_PLOT = "identity.png"
JITTER_PLOT = "jitter.png"


def thumbnail(image: np.ndarray, height: int = THUMB_HEIGHT) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)


WORST_PER_FIGURE = 2  # frames the sheet shows for each figure, besides the evenly spaced ones


@dataclass
class SheetEntry:
    frame: int
    source: np.ndarray  # thumbnails
    swapped: np.ndarray
    label: str = "source | swapped"


@dataclass
class ContactSheet:
    """Evenly spaced frame pairs, and the worst frames by each figure, collected while the
    videos stream past (a thumbnail is made only for a frame that enters the worst few)."""

    positions: set[int]
    entries: list[SheetEntry] = field(default_factory=list)
    worst: dict[str, list[tuple[float, int, SheetEntry]]] = field(default_factory=dict)

    @classmethod
    def spaced(cls, total: int, count: int) -> ContactSheet:
        if total <= 0:
            return cls(set())
        return cls(set(np.linspace(0, total - 1, min(count, total)).round().astype(int).tolist()))

    def offer(self, position: int, frame: int, source: np.ndarray, swapped: np.ndarray,
              badness: dict[str, tuple[float, str]] | None = None) -> None:
        """``badness``: figure → (score, higher is worse; how to caption it)."""
        thumbs: tuple[np.ndarray, np.ndarray] | None = None  # made once, only when needed

        def pair() -> tuple[np.ndarray, np.ndarray]:
            nonlocal thumbs
            thumbs = thumbs or (thumbnail(source), thumbnail(swapped))
            return thumbs

        if position in self.positions:
            self.entries.append(SheetEntry(frame, *pair()))
        for name, (score, text) in (badness or {}).items():
            kept = self.worst.setdefault(name, [])
            if not np.isfinite(score) or (len(kept) >= WORST_PER_FIGURE and score <= kept[-1][0]):
                continue
            entry = SheetEntry(frame, *pair(), f"worst {name}: {text}")
            kept.append((score, position, entry))
            kept.sort(key=lambda item: -item[0])
            del kept[WORST_PER_FIGURE:]

    def all_entries(self) -> list[SheetEntry]:
        return self.entries + [e for kept in self.worst.values() for _, _, e in kept]

    def render(self, per_row: int = 2) -> np.ndarray:
        """Rows of ``source | swapped`` pairs, each captioned with its frame number (and,
        for the worst frames, the figure that put it there)."""
        entries = self.all_entries()
        if not entries:
            img = np.full((60, 320, 3), 255, np.uint8)
            cv2.putText(img, "no frames compared", (10, 36), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1)
            return img
        caption = 22
        tiles = []
        for e in entries:
            h = THUMB_HEIGHT + caption
            w = e.source.shape[1] + e.swapped.shape[1] + GAP
            tile = np.full((h, w, 3), 255, np.uint8)
            tile[caption:, :e.source.shape[1]] = e.source
            tile[caption:, e.source.shape[1] + GAP:] = e.swapped
            text = f"frame {e.frame}: {e.label}"
            cv2.putText(tile, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
            tiles.append(tile)
        tile_w = max(t.shape[1] for t in tiles)
        rows = [tiles[i:i + per_row] for i in range(0, len(tiles), per_row)]
        th = THUMB_HEIGHT + caption
        sheet = np.full((len(rows) * (th + 2 * GAP) + GAP, per_row * (tile_w + 3 * GAP) + GAP, 3),
                        235, np.uint8)
        for r, row in enumerate(rows):
            for c, tile in enumerate(row):
                y, x = GAP + r * (th + 2 * GAP), GAP + c * (tile_w + 3 * GAP)
                sheet[y:y + th, x:x + tile.shape[1]] = tile
        return sheet


@dataclass
class PerFrame:
    """Per compared frame (source frame numbers); NaN where a frame has no value."""

    frame: list[int] = field(default_factory=list)
    distance_b: list[float] = field(default_factory=list)
    distance_a: list[float] = field(default_factory=list)
    pose_error: list[float] = field(default_factory=list)
    expression_error: list[float] = field(default_factory=list)
    jitter_source: list[float] = field(default_factory=list)
    jitter_swapped: list[float] = field(default_factory=list)
    sharpness: list[float] = field(default_factory=list)  # swapped ÷ source detail, mean of faces
    seam: list[float] = field(default_factory=list)  # seam ΔE over the source's

    def badness(self, i: int) -> dict[str, tuple[float, str]]:
        """Frame ``i``'s figures as (higher is worse, caption) for the contact sheet."""
        return {
            "identity": (self.distance_b[i], f"distance to B {self.distance_b[i]:.2f}"),
            "pose": (self.pose_error[i], f"pose error {self.pose_error[i]:.1f} deg"),
            "expression": (self.expression_error[i], f"expression error {self.expression_error[i]:.3f}"),
            "sharpness": (1.0 - self.sharpness[i], f"sharpness {self.sharpness[i]:.2f}"),
            "seam": (self.seam[i], f"seam dE {self.seam[i]:+.1f}"),
        }


def identity_plot(per: PerFrame, threshold: float) -> np.ndarray:
    return line_plot(
        [Series("swapped to B (reference mean)", per.frame, per.distance_b, COLORS[0]),
         Series("swapped to A (source face)", per.frame, per.distance_a, COLORS[1])],
        "identity distance per frame (dlib 128-d; lower = more alike)", "source frame",
        "distance", [HLine(f"same person < {threshold:g}", threshold)])


def jitter_plot(per: PerFrame) -> np.ndarray:
    return line_plot(
        [Series("source", per.frame, per.jitter_source, COLORS[2]),
         Series("swapped", per.frame, per.jitter_swapped, COLORS[3])],
        "landmark jitter per frame (2nd difference, inter-ocular units)", "source frame", "jitter")


def report_paths(folder: Path) -> dict[str, str]:
    """{kind: path} of every file a report folder holds."""
    names = {"json": JSON_NAME, "contact_sheet": SHEET_NAME, "identity_plot": IDENTITY_PLOT,
             "jitter_plot": JITTER_PLOT}
    return {kind: str(folder / name) for kind, name in names.items()}


def write_report(folder: Path, json_text: str, sheet: ContactSheet, per: PerFrame,
                 threshold: float) -> dict[str, str]:
    """Write every report file atomically (the JSON last); returns :func:`report_paths`."""
    paths = report_paths(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_image(paths["contact_sheet"], sheet.render())
    write_image(paths["identity_plot"], identity_plot(per, threshold))
    write_image(paths["jitter_plot"], jitter_plot(per))
    atomic_write_bytes(paths["json"], json_text.encode("utf-8"))
    return paths
