"""Shared fixtures: the real test media live outside the repository (never copied in).

The tests run under the same process settings as the ``swapface`` commands
(:func:`swapface.core.runtime.configure_process`, applied here before torch loads). The
session fixtures extract each training clip once and train one small model on them;
tests read those folders and must copy them before changing anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from swapface.core.runtime import configure_process

configure_process()

REPO = Path(__file__).resolve().parents[1]


def find_data_dir() -> Path | None:
    env = os.environ.get("SWAPFACE_TEST_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for path in candidates:
        if (path / "SOURCES.md").is_file():
            return path
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``cuda`` run only where CUDA is (``benchmarks/gpu_check.sh``)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = find_data_dir()
    if path is None:
        pytest.skip("test media not found: set SWAPFACE_TEST_DATA or provide ../shared/data")
    return path


@dataclass(frozen=True)
class Side:
    video: Path
    faces: Path  # face folder (128 px faces)
    store: Path  # its alignments store


@dataclass(frozen=True)
class Pair:
    """woman_a (every 20th frame, no identities stored) and woman_b (every 8th, with them)."""

    a: Side
    b: Side


PAIR_EVERY_N = {"a": 20, "b": 8}


@pytest.fixture(scope="session")
def pair(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Pair:
    """One extraction of each training clip for the whole session (read-only for tests)."""
    from tests.extract_helpers import extract

    root = tmp_path_factory.mktemp("pair")
    sides = {}
    for side in "ab":
        video = data_dir / "video" / f"woman_{side}.mp4"
        extract(video, root / side, every_n=PAIR_EVERY_N[side], size=128, identity=side == "b")
        sides[side] = Side(video, root / side / "faces", root / side / "alignments.db")
    return Pair(sides["a"], sides["b"])


TRAINED_ITERATIONS = 200


@pytest.fixture(scope="session")
def trained(pair: Pair, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``lightweight`` model (64 px, mask head) briefly trained on the pair: its decoders
    already draw their own person, enough to move identity (read-only for tests)."""
    from swapface.train.config import TrainConfig
    from swapface.train.trainer import Trainer

    model_dir = tmp_path_factory.mktemp("trained") / "model"
    Trainer(TrainConfig(faces_a=pair.a.faces, faces_b=pair.b.faces, model_dir=model_dir,
                        model="lightweight", batch_size=16, iterations=TRAINED_ITERATIONS,
                        save_interval=TRAINED_ITERATIONS, model_option=["learn_mask=true"],
                        tensorboard=False)).run()
    return model_dir
