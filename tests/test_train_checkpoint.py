"""Checkpoints: bit-exact round trips, rolling backups, kills during saves, disk full."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from torch import nn

from swapface.core.errors import ConfigError
from swapface.models import checkpoint as ckpt
from swapface.swap.model import trained_coverage


def _model_and_optimizer(seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.LeakyReLU(0.1), nn.Conv2d(8, 3, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    for _ in range(3):
        opt.zero_grad()
        model(torch.rand(2, 3, 16, 16)).square().mean().backward()
        opt.step()
    return model, opt


def test_round_trip_is_bit_exact(tmp_path):
    model, opt = _model_and_optimizer()
    ckpt.save_checkpoint(tmp_path, model, opt, {"iteration": 3})
    loaded = ckpt.load_checkpoint(tmp_path)
    assert loaded is not None and loaded.state["iteration"] == 3
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model[key], value)
    model2, opt2 = _model_and_optimizer(seed=1)
    model2.load_state_dict(loaded.model)
    opt2.load_state_dict(loaded.optimizer)
    original, restored = opt.state_dict(), opt2.state_dict()
    assert original["param_groups"] == restored["param_groups"]
    for pid, state in original["state"].items():
        for key, value in state.items():
            assert torch.equal(restored["state"][pid][key], value), (pid, key)


def test_rolling_backups_and_snapshots(tmp_path):
    model, opt = _model_and_optimizer()
    for it in range(1, 6):
        ckpt.save_checkpoint(tmp_path, model, opt, {"iteration": it}, keep=2)
    ckpt.save_checkpoint(tmp_path, model, opt, {"iteration": 5}, snapshot=True)
    kept = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert kept == ["iter_0000004", "iter_0000005"]
    assert (tmp_path / "snapshots" / "iter_0000005" / "model.safetensors").is_file()
    assert ckpt.load_checkpoint(tmp_path).state["iteration"] == 5


def test_falls_back_to_an_older_checkpoint_when_the_newest_is_damaged(tmp_path):
    model, opt = _model_and_optimizer()
    ckpt.save_checkpoint(tmp_path, model, opt, {"iteration": 1})
    newest = ckpt.save_checkpoint(tmp_path, model, opt, {"iteration": 2})
    (newest / "model.safetensors").write_bytes(b"garbage")
    assert ckpt.load_checkpoint(tmp_path).state["iteration"] == 1


def test_saving_an_iteration_again_never_deletes_the_complete_one(tmp_path, monkeypatch):
    """Resume-then-stop saves the same iteration twice; a kill during the second save must
    leave a loadable checkpoint of that iteration (it used to be deleted first)."""
    model, opt = _model_and_optimizer()
    first = ckpt.save_checkpoint(tmp_path, model, opt, {"iteration": 5})

    def killed(*_args, **_kwargs):
        raise KeyboardInterrupt  # the moment after the folder is in place, before latest.json

    monkeypatch.setattr(ckpt, "write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(tmp_path, model, opt, {"iteration": 5, "note": "second"})
    monkeypatch.undo()
    assert first.is_dir()
    loaded = ckpt.load_checkpoint(tmp_path)
    assert loaded.state["iteration"] == 5 and loaded.state.get("note") == "second"
    again = ckpt.save_checkpoint(tmp_path, model, opt, {"iteration": 5, "note": "third"}, keep=2)
    assert ckpt.load_checkpoint(tmp_path).path == again
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "iter_0000005_001", "iter_0000005_002"]


def test_the_newest_complete_checkpoint_wins_over_a_stale_pointer(tmp_path):
    model, opt = _model_and_optimizer()
    ckpt.save_checkpoint(tmp_path, model, opt, {"iteration": 4})
    ckpt.save_checkpoint(tmp_path, model, opt, {"iteration": 6})
    (tmp_path / ckpt.LATEST).write_text('{"checkpoint": "checkpoints/iter_0000004"}')
    assert ckpt.load_checkpoint(tmp_path).state["iteration"] == 6


def test_a_transient_load_error_is_raised_not_replaced_by_older_weights(tmp_path, monkeypatch):
    model, opt = _model_and_optimizer()
    ckpt.save_checkpoint(tmp_path, model, opt, {"iteration": 1})
    ckpt.save_checkpoint(tmp_path, model, opt, {"iteration": 2})
    real_read = ckpt._read

    def out_of_memory(folder, device):
        if folder.name == "iter_0000002":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real_read(folder, device)

    monkeypatch.setattr(ckpt, "_read", out_of_memory)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        ckpt.load_checkpoint(tmp_path)


def test_disk_full_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model, opt = _model_and_optimizer()
    ckpt.save_checkpoint(tmp_path, model, opt, {"iteration": 1})

    def full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt, "save_file", full)
    with pytest.raises(ckpt.CheckpointError, match="No space left"):
        ckpt.save_checkpoint(tmp_path, model, opt, {"iteration": 2})
    monkeypatch.undo()
    assert ckpt.load_checkpoint(tmp_path).state["iteration"] == 1
    assert not list((tmp_path / "checkpoints").glob(".iter_*"))


def test_a_full_disk_reported_by_safetensors_is_a_checkpoint_error(tmp_path, monkeypatch):
    """safetensors raises its own error type (not OSError) when the disk fills up."""
    from safetensors import SafetensorError

    model, opt = _model_and_optimizer()
    ckpt.save_checkpoint(tmp_path, model, opt, {"iteration": 1})

    def full(*_args, **_kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device")

    monkeypatch.setattr(ckpt, "save_file", full)
    with pytest.raises(ckpt.CheckpointError, match="No space left"):
        ckpt.save_checkpoint(tmp_path, model, opt, {"iteration": 2})
    monkeypatch.undo()
    assert ckpt.load_checkpoint(tmp_path).state["iteration"] == 1


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "\xff\xfe", '{"options": {}}'])
def test_a_damaged_model_json_is_one_clear_error(tmp_path, text):
    (tmp_path / "model.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(ckpt.CheckpointError, match=r"model\.json"):
        ckpt.read_architecture(tmp_path)


def test_frozen_architecture_refuses_changes(tmp_path):
    spec = {"model": "original", "options": {"learn_mask": False}}
    ckpt.freeze_architecture(tmp_path, spec)
    assert ckpt.freeze_architecture(tmp_path, dict(spec)) == spec
    with pytest.raises(ConfigError, match="options"):
        ckpt.freeze_architecture(tmp_path, {"model": "original", "options": {"learn_mask": True}})


def test_coverage_is_recorded_and_old_folders_are_upgraded(tmp_path):
    old = {"model": "original", "options": {"learn_mask": False}}
    ckpt.freeze_architecture(tmp_path, old)  # a folder from before coverage was recorded
    assert trained_coverage(ckpt.read_architecture(tmp_path)) == 0.625  # the old default
    ckpt.freeze_architecture(tmp_path, {**old, "coverage": 0.75})
    assert ckpt.read_architecture(tmp_path)["coverage"] == 0.75
    with pytest.raises(ConfigError, match="coverage"):
        ckpt.freeze_architecture(tmp_path, {**old, "coverage": 0.6})


_SAVER = """
import sys, torch
from torch import nn
from swapface.models.checkpoint import save_checkpoint
from pathlib import Path
torch.manual_seed(0)
model = nn.Linear(1024, 2048)  # 8 MB of weights: saves take long enough to be hit
opt = torch.optim.Adam(model.parameters())
model(torch.rand(1, 1024)).sum().backward(); opt.step()
it = 0
while True:
    it += 1
    with torch.no_grad():
        model.weight.fill_(float(it))
    save_checkpoint(Path(sys.argv[1]), model, opt, {"iteration": it}, keep=2)
    print(it, flush=True)
"""


def test_sigkill_during_saves_leaves_a_loadable_checkpoint(tmp_path):
    for attempt in range(3):
        folder = tmp_path / f"run{attempt}"
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(folder)], stdout=subprocess.PIPE,
                                text=True)
        for _ in range(2 + attempt):  # wait for a few complete saves
            assert proc.stdout.readline()
        time.sleep(0.013 * (attempt + 1))  # land somewhere inside a later save
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        loaded = ckpt.load_checkpoint(folder)
        it = loaded.state["iteration"]
        assert it >= 2 + attempt
        # Weights and state belong to the same save.
        assert torch.all(loaded.model["weight"] == float(it))
        assert loaded.optimizer is not None and set(loaded.optimizer["state"][0]) >= {"exp_avg", "step"}


def _resume(pair_dirs, model_dir, **options):
    from swapface.train.config import TrainConfig
    from swapface.train.trainer import Trainer

    a, b = pair_dirs
    return Trainer(TrainConfig(faces_a=a, faces_b=b, model_dir=model_dir, iterations=202,
                               batch_size=4, save_interval=1000, tensorboard=False, **options))


def test_resume_refuses_swapped_or_unrelated_face_folders(pair, trained, tmp_path, data_dir):
    from tests.extract_helpers import extract

    model = tmp_path / "model"
    shutil.copytree(trained, model)
    with pytest.raises(ConfigError, match="-A and -B are swapped"):
        _resume((pair.b.faces, pair.a.faces), model)
    other = tmp_path / "other"
    extract(data_dir / "stills" / "obama.jpg", other, size=128)
    with pytest.raises(ConfigError, match=r"-B .* shares no face"):
        _resume((pair.a.faces, other / "faces"), model)
    # Moved folders still match: the check is by face, not by path.
    moved = tmp_path / "moved_a"
    shutil.copytree(pair.a.faces, moved)
    assert _resume((moved, pair.b.faces), model).iteration == 200
    # Fine-tuning on new faces is a choice the user states.
    assert _resume((pair.a.faces, other / "faces"), model, new_faces=True).iteration == 200
