"""Crash-proof checkpoints: safetensors weights + JSON state, switched atomically.

Layout of a model folder::

    model.json                 frozen architecture (model name + options); never rewritten
    latest.json                {"checkpoint": "checkpoints/iter_000500"} — the only pointer
    checkpoints/iter_000500/   model.safetensors, optimizer.safetensors, state.json
    snapshots/iter_010000/     same files, kept forever (--snapshot-interval)

A checkpoint folder is written under a temporary name and renamed when complete, then the
pointer is replaced atomically. A kill at any moment therefore leaves ``latest.json``
pointing at a complete checkpoint. Loading falls back to older checkpoints if the newest
one is unreadable (a disk that lied about a write, a user who deleted a file).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from swapface.core.errors import ConfigError, SwapfaceError
from swapface.core.fileio import atomic_write_bytes, fsync_dir

log = logging.getLogger(__name__)

MODEL_JSON = "model.json"
LATEST = "latest.json"


class CheckpointError(SwapfaceError):
    """No loadable checkpoint, or a save that failed (the previous one is intact)."""


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


# ------------------------------------------------------------------ optimizer state
def _optimizer_tensors(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors (safetensors) and plain JSON."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in state["state"].items():
        for key, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    for pid, values in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(values)
    # JSON has no tuples; optimizers compare and unpack betas as given, so restore the type.
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


# ------------------------------------------------------------------ save / load
@dataclass
class Checkpoint:
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None
    state: dict[str, Any]
    path: Path
    extra_optimizers: dict[str, dict[str, Any]] = field(default_factory=dict)  # e.g. GAN's D


def save_checkpoint(
    model_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    state: dict[str, Any],
    *,
    keep: int = 3,
    snapshot: bool = False,
    extra_optimizers: dict[str, torch.optim.Optimizer] | None = None,
) -> Path:
    """Write a checkpoint and point ``latest.json`` at it; returns its folder.

    ``extra_optimizers`` (name → optimizer, e.g. a discriminator's) are saved beside the main
    one as ``optimizer-<name>.safetensors``.
    """
    iteration = int(state["iteration"])
    parent = model_dir / ("snapshots" if snapshot else "checkpoints")
    parent.mkdir(parents=True, exist_ok=True)
    name = _free_name(parent, iteration)
    final = parent / name
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=parent))
    try:
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / "model.safetensors"))
        meta: dict[str, Any] = {}
        if optimizer is not None:
            tensors, meta = _optimizer_tensors(optimizer.state_dict())
            save_file(tensors, str(tmp / "optimizer.safetensors"))
        extras: dict[str, Any] = {}
        for extra, opt in (extra_optimizers or {}).items():
            tensors, extras[extra] = _optimizer_tensors(opt.state_dict())
            save_file(tensors, str(tmp / f"optimizer-{extra}.safetensors"))
        (tmp / "state.json").write_text(
            json.dumps({**state, "optimizer": meta, "extra_optimizers": extras}, indent=1))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, final)  # a new name: the complete checkpoints stay until pruned
        fsync_dir(parent)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError | SafetensorError):  # safetensors reports a full disk its way
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise CheckpointError(
                f"could not save checkpoint ({why}); the previous checkpoint is intact") from exc
        raise
    if not snapshot:
        write_json(model_dir / LATEST, {"checkpoint": f"checkpoints/{name}", "iteration": iteration})
        _prune(parent, keep)
    return final


def _free_name(parent: Path, iteration: int) -> str:
    """``iter_0000500``, or ``iter_0000500_001`` ... when that iteration is saved again (a
    resume that stops at once): never delete a complete checkpoint to make room for one."""
    name, k = f"iter_{iteration:07d}", 0
    while (parent / name).exists():
        k += 1
        name = f"iter_{iteration:07d}_{k:03d}"
    return name


def _order(path: Path) -> tuple[int, int, str]:
    """Newest first by (iteration, re-save number); odd names last."""
    match = re.fullmatch(r"iter_(\d+)(?:_(\d+))?", path.name)
    if match is None:
        return (-1, -1, path.name)
    return (int(match.group(1)), int(match.group(2) or 0), path.name)


def _prune(parent: Path, keep: int) -> None:
    done = sorted((p for p in parent.iterdir() if p.is_dir() and p.name.startswith("iter_")),
                  key=_order)
    for old in done[: max(0, len(done) - max(1, keep))]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in parent.glob(".iter_*"):  # temp folders of saves that were killed
        shutil.rmtree(stale, ignore_errors=True)


def _read(folder: Path, device: str | torch.device) -> Checkpoint:
    state = json.loads((folder / "state.json").read_text())
    weights = load_file(str(folder / "model.safetensors"), device=str(device))
    optimizer = None
    meta, extras_meta = state.pop("optimizer", {}), state.pop("extra_optimizers", {})
    if (folder / "optimizer.safetensors").is_file():
        tensors = load_file(str(folder / "optimizer.safetensors"), device=str(device))
        optimizer = _optimizer_state(tensors, meta)
    extras = {
        name: _optimizer_state(load_file(str(folder / f"optimizer-{name}.safetensors"),
                                         device=str(device)), extra)
        for name, extra in extras_meta.items()
    }
    return Checkpoint(weights, optimizer, state, folder, extras)


_DAMAGE = (OSError, ValueError, KeyError, TypeError, SafetensorError)


def load_checkpoint(model_dir: Path, device: str | torch.device = "cpu") -> Checkpoint | None:
    """The newest readable checkpoint, or None for a fresh model folder.

    Every ``checkpoints/iter_*`` folder is complete (renamed into place only when written),
    so the newest one wins even when a kill struck before ``latest.json`` was updated. A
    damaged checkpoint falls back to the next older one; a failure that says nothing about
    the files (out of memory, a CUDA error) is raised, never papered over with old weights.
    """
    candidates: list[Path] = []
    folder = model_dir / "checkpoints"
    if folder.is_dir():
        candidates += sorted((p for p in folder.iterdir() if p.is_dir() and p.name.startswith("iter_")),
                             key=_order, reverse=True)
    pointer = model_dir / LATEST
    if pointer.is_file():
        try:
            candidates.append(model_dir / json.loads(pointer.read_text())["checkpoint"])
        except (ValueError, KeyError, TypeError):
            log.warning("%s is damaged; looking for checkpoints directly", pointer)
    if not candidates:
        return None
    for path in dict.fromkeys(candidates):
        try:
            return _read(path, device)
        except MemoryError:
            raise
        except _DAMAGE as exc:
            log.warning("checkpoint %s is unreadable (%s); trying an older one", path, exc)
    raise CheckpointError(f"no readable checkpoint in {model_dir}")


# ------------------------------------------------------------------ frozen architecture
def freeze_architecture(model_dir: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Write ``model.json`` on first use; afterwards refuse any change to it."""
    path = model_dir / MODEL_JSON
    if path.is_file():
        frozen = _read_spec(path)
        if "coverage" in spec and "coverage" not in frozen:
            # Folders from before coverage was recorded: the resumed run's value is the best
            # knowledge there is; record it so convert and evaluate use it from now on.
            frozen = {**frozen, "coverage": spec["coverage"]}
            if frozen == spec:
                write_json(path, frozen)
        if frozen != spec:
            diff = sorted(k for k in set(frozen) | set(spec) if frozen.get(k) != spec.get(k))
            raise ConfigError(
                f"{model_dir} holds a model built with other settings ({', '.join(diff)}: "
                f"{ {k: frozen.get(k) for k in diff} }); use a new model folder or the same settings"
            )
        return frozen
    model_dir.mkdir(parents=True, exist_ok=True)
    write_json(path, spec)
    return spec


def read_architecture(model_dir: Path) -> dict[str, Any]:
    path = model_dir / MODEL_JSON
    if not path.is_file():
        raise CheckpointError(f"{model_dir} is not a swapface model folder (no {MODEL_JSON})")
    return _read_spec(path)


def _read_spec(path: Path) -> dict[str, Any]:
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise CheckpointError(f"{path} is damaged ({exc}); it describes the model's architecture"
                              ) from None
    if not isinstance(spec, dict) or not isinstance(spec.get("model"), str):
        raise CheckpointError(f"{path} is not a swapface model description")
    return spec
