"""Options of ``swapface sort`` — the single source for the CLI and config files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.curate.features import SORT_METHODS


@dataclass
class SortConfig:
    input: Path | None = option(None, help="folder of extracted faces", cli=False)
    output: Path | None = option(
        None, help="write the sorted faces here instead of renaming in place",
        flags=["-o", "--output"],
    )
    by: str | None = option(None, help="sort method (default: the --group-by method)",
                            choices=SORT_METHODS.names())
    group_by: str | None = option(None, help="put faces into sub-folders by this method",
                                  choices=SORT_METHODS.names())
    bins: int = option(5, help="number of equal-count groups for --group-by")
    threshold: float = option(
        0.6, help="--group-by identity: dlib distance that separates two people"
    )
    keep: bool = option(False, help="with --output: copy the faces, keep the originals")
    undo: Path | None = option(None, help="restore the names recorded in this sort log")
    cache: bool = option(True, help="reuse/save features in .swapface_sort_cache.npz")

    def __post_init__(self) -> None:
        if self.undo is not None:
            return
        if self.input is None:
            raise ConfigError("an input folder is required (or --undo LOG)")
        if self.by is None and self.group_by is None:
            raise ConfigError("choose a method with --by and/or --group-by")
        if self.bins < 1:
            raise ConfigError("--bins must be at least 1")
        if self.threshold <= 0:
            raise ConfigError("--threshold must be positive")
        if self.keep and self.output is None:
            raise ConfigError("--keep needs --output (in-place sorting renames files)")

    @property
    def method(self) -> str:
        return self.by or self.group_by  # type: ignore[return-value]
