"""``--quality preview|good|best``: model, options and budget in one word, per device.

The CPU rows come from ``benchmarks/quality.py --table`` on this project's 2-core machine
(see the README's quality table): at 5 and 20 CPU minutes the 64 px ``lightweight`` model
with B's exemplar detail at convert (``--detail exemplars``, on in every preset) beat both
a 128 px detail network (``refine_size=128``: half the swap iterations for the same budget,
less sharp) and the frame's own texture (identity fell). The CUDA rows scale the recipe to
what a GPU trains in the same wall time; they are not measured here (no GPU was lent). An
explicit ``--model`` or ``--minutes`` overrides its part of the preset.
"""

from __future__ import annotations

from dataclasses import dataclass

from swapface.core.errors import ConfigError

QUALITIES = ("preview", "good", "best")


@dataclass(frozen=True)
class QualityPreset:
    model: str
    model_option: tuple[str, ...]
    minutes: float
    meaning: str


# (quality, device kind) → preset. "good" is `swapface run`'s default.
PRESETS: dict[tuple[str, str], QualityPreset] = {
    ("preview", "cpu"): QualityPreset("lightweight", (), 2.0, "a first look in 2 minutes"),
    ("good", "cpu"): QualityPreset("lightweight", (), 5.0, "64 px swap trained for 5 minutes"),
    ("best", "cpu"): QualityPreset("lightweight", (), 20.0, "64 px swap trained for 20 minutes"),
    ("preview", "cuda"): QualityPreset("lightweight", (), 3.0, "64 px swap, 3 minutes"),
    ("good", "cuda"): QualityPreset("resnet", ("size=128",), 20.0,
                                    "128 px ResNet swap, 20 minutes"),
    ("best", "cuda"): QualityPreset("resnet", ("size=128",), 90.0,
                                    "128 px ResNet swap, 90 minutes"),
}


def preset(quality: str, device: str) -> QualityPreset:
    """The preset for ``quality`` on ``device`` ("cpu" or "cuda")."""
    key = (quality, "cuda" if device.startswith("cuda") else "cpu")
    if key not in PRESETS:
        raise ConfigError(f"--quality must be one of {', '.join(QUALITIES)}, got {quality!r}")
    return PRESETS[key]
