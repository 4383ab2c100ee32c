"""The few lines ``swapface run`` ends with: how the swap looks, judged on a sample of frames.

``swapface evaluate`` measures identity, detail and seams on three short windows of the
converted video (start, middle, end); :func:`describe` turns the figures into words a user
acts on. The thresholds are the quality targets of ``benchmarks/quality.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

from swapface.core.errors import SwapfaceError
from swapface.evaluate.run import EvaluateResult

WINDOW = 30  # frames per sampled window: enough for the jitter figure, ~4 s to score on a CPU


def sample_ranges(frame_count: int, windows: int = 3, window: int = WINDOW) -> list[str]:
    """``windows`` evenly spread runs of ``window`` consecutive frames (or every frame)."""
    if frame_count <= windows * window:
        return [f"0-{max(0, frame_count - 1)}"]
    step = (frame_count - window) / (windows - 1)
    return [f"{round(i * step)}-{round(i * step) + window - 1}" for i in range(windows)]


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def describe(result: EvaluateResult, ceiling: float | None = None) -> list[str]:
    """Identity, sharpness and seam in words, each with its figure. ``ceiling``: the sharpness
    a perfect copy of B would reach (:func:`swapface.evaluate.ceiling.detail_ceiling`), said
    when B's own footage is what holds the face back."""
    out = []
    closer = result.identity.closer_to_b
    if _finite(closer):
        verdict = ("reads as B" if closer >= 0.95 else "mostly reads as B" if closer >= 0.8
                   else "still looks much like A: train longer (--quality best) or add B footage")
        out.append(f"identity:  {verdict} ({closer:.0%} of the sampled faces are closer to B than to A)")
    sharp = result.detail.sharpness_ratio
    if _finite(sharp):
        verdict = ("as detailed as the video around it" if sharp >= 0.7
                   else "a little softer than the video" if sharp >= 0.5
                   else "visibly softer than the video (skin and eyes lack detail)" if sharp >= 0.25
                   else "blurred compared with the video: train longer (--quality best)")
        out.append(f"sharpness: {verdict} ({sharp:.2f} of the source's fine detail)")
        if _finite(ceiling) and ceiling < 0.7 and sharp < 0.7:
            near = sharp >= 0.8 * ceiling
            out.append(f"           B's own video holds only {ceiling:.2f} of A's detail: "
                       + ("the swap is close to what B's footage allows (sharper B footage would help)"
                          if near else "more training can still gain, sharper B footage more"))
    seam = result.detail.seam_delta_e
    if _finite(seam):
        verdict = ("the face's tone blends into the skin around it" if seam <= 2.0
                   else "a faint tone edge at the face's border" if seam <= 5.0
                   else "a visible tone edge at the border: try another --color or a wider blur")
        out.append(f"seam:      {verdict} (ΔE {seam:+.1f} over the source's own border)")
    return out


def quality_summary(source: Path, swapped: Path, faces_b: Path, frame_count: int,
                    report: Path, ceiling: float | None = None) -> list[str]:
    """``== quality`` lines for the end of a run; one line saying why when it cannot measure."""
    from swapface.evaluate import EvaluateConfig, run_evaluate

    ranges = sample_ranges(frame_count)
    try:
        result = run_evaluate(EvaluateConfig(source=source, swapped=swapped, reference_b=faces_b,
                                             sample_ranges=ranges, report=report, sheet_frames=4,
                                             max_references=50))
    except SwapfaceError as exc:
        return [f"== quality: not measured ({exc})"]
    frames = result.frames.compared
    return [f"== quality of the swap, judged on {frames} sampled frames ({', '.join(ranges)})",
            *describe(result, ceiling),
            f"details:   {report} (swapface evaluate for the whole video)"]
