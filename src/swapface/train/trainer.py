"""The training loop: shared encoder, one decoder per side, safe stops and resumes."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from swapface import __version__
from swapface.align.warp_landmarks import LandmarkBatch
from swapface.core.fileio import atomic_write_bytes
from swapface.core.images import encode_image, write_image
from swapface.core.progress import NEVER, SILENT, CancelToken, Progress
from swapface.core.runtime import Runtime, setup_runtime, shutdown_runtime
from swapface.models import SwapModel, build_model, model_options
from swapface.models.checkpoint import (
    freeze_architecture,
    load_checkpoint,
    read_architecture,
    save_checkpoint,
)
from swapface.train.augment import AugmentConfig, Augmenter
from swapface.train.config import TrainConfig
from swapface.train.data import BatchPrefetcher, FaceSet, SideBatch
from swapface.train.gan import GanConfig, GanObjective
from swapface.train.guard import TrainingDiverged, check_gradients, check_weights
from swapface.train.losses import FaceLoss, LossConfig
from swapface.train.losslog import LossLog
from swapface.train.preview import preview_grid
from swapface.train.provenance import check_training_faces
from swapface.train.refine import RefinerTraining

log = logging.getLogger(__name__)
PREVIEW_SAMPLES = 6


class _BothSides(nn.Module):
    """One forward for both identities, so DDP sees every generator parameter used once per step.

    Only the encoder and decoders are registered: DDP syncs what a module registers, and a
    GAN's discriminators are not used in this forward — they get DDP wrappers of their own
    (:meth:`GanObjective.distribute`), each synced by its own backward in the D step.
    """

    def __init__(self, model: SwapModel) -> None:
        super().__init__()
        self.encoder, self.decoders = model.encoder, model.decoders
        self.__dict__["model"] = model  # called, not registered (nn.Module would register it)

    def forward(self, xa: torch.Tensor, xb: torch.Tensor) -> tuple[Any, Any]:
        # One encoder pass over both batches (no layer mixes samples: there is no batch norm):
        # bigger GEMMs, and one weight transform per step where a convolution needs one.
        z = self.model.encode(torch.cat([xa, xb]))
        za, zb = z.split([xa.shape[0], xb.shape[0]])
        # The decoders' own outputs: refiners train apart, on these (train/refine.py).
        return self.model.decode_base(za, "a"), self.model.decode_base(zb, "b")


@dataclass
class TrainSummary:
    model_dir: str
    start_iteration: int
    iteration: int
    seconds: float
    examples_per_second: float
    last_losses: dict[str, float] = field(default_factory=dict)
    stopped_by: str = "iterations"

    def lines(self) -> list[str]:
        losses = ", ".join(f"{k} {v:.4f}" for k, v in self.last_losses.items())
        return [
            f"iterations: {self.start_iteration} → {self.iteration} ({self.stopped_by})",
            f"speed:      {self.examples_per_second:.1f} EG/s over {self.seconds:.0f} s",
            f"losses:     {losses}",
            f"model:      {self.model_dir}",
        ]


class Trainer:
    def __init__(self, cfg: TrainConfig, loss_cfg: LossConfig | None = None,
                 aug_cfg: AugmentConfig | None = None, gan_cfg: GanConfig | None = None) -> None:
        self.cfg = cfg
        self.loss_cfg = loss_cfg or LossConfig()
        self.aug_cfg = aug_cfg or AugmentConfig()
        self.gan_cfg = gan_cfg or GanConfig()
        self.gan: GanObjective | None = None
        self.rt: Runtime = setup_runtime(cfg.cpu, cfg.precision)
        self._stop_reason: str | None = None
        self._base_lr: list[list[float]] = []
        self._cancel: CancelToken = NEVER
        self.model, self.iteration = self._build_model()
        self.sets = (FaceSet(cfg.faces_a), FaceSet(cfg.faces_b))
        if self.rt.is_main:
            check_training_faces(cfg.model_dir, cfg.faces_a, self.sets[0].names, cfg.faces_b,
                                 self.sets[1].names, resuming=self.iteration > 0,
                                 allow_new=cfg.new_faces)
        if self.sets[0].size != self.sets[1].size:
            log.warning("face sizes differ (A %d px, B %d px); B is resized to A",
                        self.sets[0].size, self.sets[1].size)
            self.sets = (self.sets[0], FaceSet(cfg.faces_b, self.sets[0].size))
        if cfg.balance_pose:
            for faces in self.sets:
                faces.balance_pose()
        if self.aug_cfg.warp_to_landmarks:  # each face's 10 closest faces, found once
            a, b = self.sets
            same = self.aug_cfg.warp_partners == "same"
            a.match_partners(a if same else b)
            b.match_partners(b if same else a)
        self.augmenter = Augmenter(self.aug_cfg, self.sets[0].size, self.model.input_size,
                                   cfg.coverage, self.rt.device)
        self.loss = FaceLoss(self.loss_cfg).to(self.rt.device)
        self.refiner: RefinerTraining | None = None
        if len(self.model.refiners):
            self.refiner = RefinerTraining(self.model, self.aug_cfg, self.sets[0].size, cfg.coverage,
                                           self.loss_cfg, self.rt.device, self.rt.autocast)
            if self._refiner_state is not None:
                self.refiner.optimizer.load_state_dict(self._refiner_state)

    # ------------------------------------------------------------------ setup
    def _build_model(self) -> tuple[SwapModel, int]:
        cfg, rt = self.cfg, self.rt
        frozen_path = cfg.model_dir / "model.json"
        options = cfg.parsed_model_options()
        name = cfg.model
        if name is None:
            frozen = read_architecture(cfg.model_dir) if frozen_path.is_file() else {}
            name = frozen.get("model", "original")
            options = options or frozen.get("options", {})
        torch.manual_seed(cfg.seed)
        model = build_model(name, options)
        # coverage belongs to the model: convert and evaluate must crop faces the same way.
        spec = {"model": name, "options": model_options(model),
                "input_size": model.input_size, "output_size": model.output_size,
                "coverage": cfg.coverage}
        if rt.is_main:
            freeze_architecture(cfg.model_dir, spec)
        model.to(rt.device)
        if self._channels_last():
            model.to(memory_format=torch.channels_last)
        lr = cfg.lr if cfg.lr is not None else getattr(model, "default_lr", 5e-5)
        betas = getattr(model, "default_betas", (0.5, 0.999))
        # A GAN's discriminators live in the model (saved with it) but have their own optimizer.
        params = getattr(model, "generator_parameters", model.parameters)()
        # Refiners have their own optimizer (train/refine.py) and are never in the swap loss.
        refiner_ids = {id(p) for p in model.refiners.parameters()}
        params = [p for p in params if id(p) not in refiner_ids]
        # The fused kernel updates all parameters in one pass: 33 vs 327 ms per step for
        # `original` on the 2-core CPU (for-each implementation), same update rule.
        self.optimizer = torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
        if getattr(model, "has_discriminator", False):
            self.gan = GanObjective(model, self.gan_cfg)
        checkpoint = load_checkpoint(cfg.model_dir, rt.device)
        iteration = 0
        self._refiner_state: dict[str, Any] | None = None
        if checkpoint is not None:
            model.load_state_dict(checkpoint.model)
            if checkpoint.optimizer is not None:
                self.optimizer.load_state_dict(checkpoint.optimizer)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
            if self.gan is not None and "discriminator" in checkpoint.extra_optimizers:
                self.gan.optimizer.load_state_dict(checkpoint.extra_optimizers["discriminator"])
            self._refiner_state = checkpoint.extra_optimizers.get("refiner")
            iteration = int(checkpoint.state["iteration"])
            log.info("resumed %s at iteration %d", checkpoint.path, iteration)
        return model, iteration

    def _spent(self, start_iteration: int, elapsed: float) -> float:
        """Fraction of this run's budget spent: iterations or minutes, whichever ends first."""
        cfg = self.cfg
        by_iterations = (self.iteration - start_iteration) / max(1, cfg.iterations - start_iteration)
        by_time = elapsed / (cfg.minutes * 60) if cfg.minutes > 0 else 0.0
        return min(1.0, max(by_iterations, by_time))

    def _maybe_stop_warping(self, spent: float) -> None:
        """Random warp off once ``warp_until`` of this run's budget is spent: the last part
        trains on undistorted faces, which sharpens what the decoders draw."""
        aug = self.augmenter.cfg
        if not aug.random_warp or aug.warp_until >= 1.0:
            return
        if spent >= aug.warp_until:
            self.augmenter.cfg = dataclasses.replace(aug, random_warp=False)
            log.info("random warp off at iteration %d (%.0f%% of the budget)", self.iteration,
                     100 * spent)

    def _set_lr(self, done: int, spent: float) -> None:
        """Warm-up over the first ``lr_warmup`` steps of this run, then constant or cosine
        decay over the rest of the budget (the refiners' optimizer follows the same curve)."""
        cfg = self.cfg
        factor = 1.0
        if cfg.lr_schedule == "cosine":
            factor = cfg.lr_final + (1.0 - cfg.lr_final) * 0.5 * (1.0 + math.cos(math.pi * spent))
        if done < cfg.lr_warmup:
            factor *= (done + 1) / (cfg.lr_warmup + 1)
        optimizers = [self.optimizer] + ([self.refiner.optimizer] if self.refiner else [])
        if not self._base_lr:  # the configured rates, read once per run
            self._base_lr = [[g["lr"] for g in opt.param_groups] for opt in optimizers]
        for opt, rates in zip(optimizers, self._base_lr, strict=True):
            for group, rate in zip(opt.param_groups, rates, strict=True):
                group["lr"] = rate * factor

    def _channels_last(self) -> bool:
        cl = self.cfg.channels_last
        return self.rt.device.type == "cuda" if cl is None else cl

    def _wrapped(self) -> nn.Module:
        """The generator as the step calls it: DDP-wrapped when distributed (a GAN's
        discriminators get their own wrappers), then compiled where configured."""
        net: nn.Module = _BothSides(self.model)
        if self.rt.device.type == "cpu" and self.rt.dtype is None and self.cfg.cpu_conv == "tuned":
            self._tune_convolutions(net)
        if self.rt.distributed:
            ids = [self.rt.device.index] if self.rt.device.type == "cuda" else None

            def ddp(module: nn.Module) -> nn.Module:
                return nn.parallel.DistributedDataParallel(module, device_ids=ids)

            net = ddp(net)
            if self.gan is not None:
                self.gan.distribute(ddp)
            if self.refiner is not None:
                self.refiner.distribute(ddp)
        use_compile = self.cfg.compile if self.cfg.compile is not None else self.rt.device.type == "cuda"
        if use_compile:
            net = torch.compile(net)  # type: ignore[assignment]
        return net

    def _tune_convolutions(self, net: nn.Module) -> None:
        """Per-layer fastest CPU convolution algorithm at this batch size (timed once per
        machine and model folder, then read from conv_tuning.json)."""
        from swapface.models.conv_tuning import TUNING_FILE, tune_convolutions

        size = self.model.input_size
        x = torch.zeros(self.cfg.batch_size, 3, size, size)
        began = time.perf_counter()
        chosen = tune_convolutions(net, lambda: net(x, x), training=True,
                                   cache_file=self.cfg.model_dir / TUNING_FILE)
        faster = sum(a != "native" for a in chosen.values())
        log.info("CPU convolutions: %d of %d layers use a faster algorithm (%.1f s to choose)",
                 faster, len(chosen), time.perf_counter() - began)

    # ------------------------------------------------------------------ one step
    def _to_tensor(self, batch: np.ndarray) -> torch.Tensor:
        """uint8 [N,H,W,BGR+masks] → float [N,RGB+masks,H,W] in [0,1] on the device."""
        t = torch.from_numpy(batch).to(self.rt.device, non_blocking=True)
        t = t.permute(0, 3, 1, 2).float().div_(255.0)
        t = t[:, [2, 1, 0, *range(3, t.shape[1])]]  # models and colour jitter work in RGB
        if self._channels_last():
            t = t.contiguous(memory_format=torch.channels_last)
        return t

    def _layout(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` in the memory layout the model runs in, chosen explicitly.

        Views (the permuted batch, the LAB jitter's output) carry odd strides and every op
        after them follows the input's layout; the convs then ran ~20 % slower on an AVX2 CPU
        than in plain NCHW.
        """
        fmt = torch.channels_last if self._channels_last() else torch.contiguous_format
        return t.contiguous(memory_format=fmt)

    def _landmarks(self, batch: SideBatch) -> LandmarkBatch | None:
        """The batch's landmarks on the device, for warp to landmarks (else not needed)."""
        if not self.aug_cfg.warp_to_landmarks or batch.partners is None or batch.partner_count is None:
            return None
        return LandmarkBatch(torch.from_numpy(batch.landmarks), torch.from_numpy(batch.partners),
                             torch.from_numpy(batch.partner_count)).to(self.rt.device)

    def step(self, net: nn.Module, batch_a: SideBatch, batch_b: SideBatch,
             generator: torch.Generator) -> dict[str, float]:
        sides, stored = [], []
        for raw in (batch_a, batch_b):
            t = self._to_tensor(raw.faces)
            params = self.augmenter.sample_params(t.shape[0], generator, self._landmarks(raw))
            sides.append(self.augmenter.render(t[:, :3], t[:, 3:], params))
            stored.append((t[:, :3], t[:, 3:], params))
        with self.rt.autocast():
            (pa, ma), (pb, mb) = net(self._layout(sides[0].inputs), self._layout(sides[1].inputs))
        total = torch.zeros((), device=self.rt.device)
        parts: dict[str, float] = {}
        fakes = []
        decoded = {"a": pa, "b": pb}
        for side, batch, pred, mask in (("a", sides[0], pa, ma), ("b", sides[1], pb, mb)):
            tm = batch.target_masks
            pred, mask = pred.float(), None if mask is None else mask.float()
            if self.gan is not None:  # faceswap-GAN judges the face blended into its input
                pred = self.gan.blend(pred, mask, batch.inputs)
            loss, side_parts = self.loss(
                pred, batch.targets,
                face_mask=tm[:, 0:1], eye_mask=tm[:, 1:2], mouth_mask=tm[:, 2:3],
                # faceswap-GAN's mask is unsupervised (only regularised by the GAN objective)
                pred_mask=mask if self.gan is None else None,
            )
            if self.gan is not None:
                adv, adv_parts = self.gan.generator_loss(side, batch.inputs, pred, batch.targets,
                                                         mask, tm[:, 1:2])
                loss = loss + adv
                side_parts.update(adv_parts)
                fakes.append(pred.detach())
            total = total + loss
            parts[f"loss_{side}"] = float(loss.detach())
            parts.update({f"{k}_{side}": v for k, v in side_parts.items()})
        if not torch.isfinite(total):
            raise TrainingDiverged(
                f"loss became {float(total.detach())} at iteration {self.iteration + 1}; stopped without "
                f"saving — the last good checkpoint in {self.cfg.model_dir} is kept. Lower --lr or "
                "use --precision fp32."
            )
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        check_gradients(self.model.parameters(), "model", self.iteration + 1, self.cfg.model_dir)
        self.optimizer.step()
        if self.gan is not None:
            for side, batch, fake in zip("ab", sides, fakes, strict=True):
                d_parts = self.gan.discriminator_step(side, batch.inputs, batch.targets, fake)
                parts.update({f"{k}_{side}": v for k, v in d_parts.items()})
        if self.refiner is not None:
            for side, (faces, masks, params) in zip("ab", stored, strict=True):
                parts.update(self.refiner.step(side, decoded[side], faces, masks, params))
        return parts

    # ------------------------------------------------------------------ outputs
    def _preview_faces(self) -> tuple[torch.Tensor, torch.Tensor]:
        out = []
        for faces in self.sets:
            n = min(PREVIEW_SAMPLES, len(faces))
            picks = np.linspace(0, len(faces) - 1, n).round().astype(int)
            data = [faces.load(int(i)) for i in picks]
            stack = np.stack([d for d in data if d is not None])
            t = self._to_tensor(stack)
            out.append(self.augmenter.center(t[:, :3], None)[0])
        return out[0], out[1]

    def write_preview(self, preview_faces: tuple[torch.Tensor, torch.Tensor]) -> Path:
        grid = preview_grid(self.model, *preview_faces, self.rt.autocast(),
                            blend=self.gan.blend if self.gan is not None else None)
        path = self.cfg.model_dir / "preview.png"
        write_image(path, grid)
        if self.cfg.timelapse:
            atomic_write_bytes(self.cfg.model_dir / "timelapse" / f"{self.iteration:07d}.jpg",
                               encode_image(grid, ".jpg"))
        return path

    def save(self, snapshot: bool = False) -> None:
        state = {"iteration": self.iteration, "seed": self.cfg.seed, "swapface": __version__,
                 "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        extra = {"discriminator": self.gan.optimizer} if self.gan is not None else {}
        if self.refiner is not None:
            extra["refiner"] = self.refiner.optimizer
        check_weights([self.model], self.iteration, self.cfg.model_dir)  # GAN critics included
        save_checkpoint(self.cfg.model_dir, self.model, self.optimizer, state,
                        keep=self.cfg.keep_checkpoints, snapshot=snapshot, extra_optimizers=extra)

    # ------------------------------------------------------------------ loop
    def run(self, progress: Progress = SILENT, cancel: CancelToken = NEVER) -> TrainSummary:
        """Train until the iterations, the time budget or ``cancel``; save on every way out.

        A cancel finishes the current step and saves it: ``stopped_by`` then names the
        cancel's reason (SIGINT, SIGTERM, ...), never "iterations" or "time budget".
        """
        cfg, rt = self.cfg, self.rt
        start_iteration = self.iteration
        self._cancel = cancel
        log_file = (LossLog(cfg.model_dir / "loss_log.csv", start_iteration, cfg.tensorboard)
                    if rt.is_main else None)
        net = self._wrapped()  # before the prefetch thread starts: tuning times the CPU alone
        prefetch = BatchPrefetcher(self.sets, cfg.batch_size,
                                   seed=cfg.seed * 1_000_003 + start_iteration * 7919 + rt.rank)
        generator = torch.Generator().manual_seed(cfg.seed * 31 + start_iteration + 1000 * rt.rank)
        preview_faces = self._preview_faces() if rt.is_main else None
        preview_every = cfg.preview_interval or cfg.save_interval
        task = (progress if rt.is_main else SILENT).task("train", cfg.iterations, "it",
                                                         initial=start_iteration)
        parts: dict[str, float] = {}
        began = time.perf_counter()
        deadline = began + cfg.minutes * 60 if cfg.minutes > 0 else math.inf
        if cfg.minutes > 0:  # "5:00 left", not the hours the iteration cap would take
            task.set_time_limit(cfg.minutes * 60)
        stopped_by = "iterations"
        try:
            while self.iteration < cfg.iterations:
                if cfg.lr_schedule != "constant" or cfg.lr_warmup:
                    self._set_lr(self.iteration - start_iteration,
                                 self._spent(start_iteration, time.perf_counter() - began))
                a, b = prefetch.next()
                parts = self.step(net, a, b, generator)
                self.iteration += 1
                elapsed = time.perf_counter() - began
                eg = cfg.batch_size * 2 * (self.iteration - start_iteration) * rt.world_size / elapsed
                task.advance(1, loss_a=parts["loss_a"], loss_b=parts["loss_b"], eg_per_s=eg)
                if log_file is not None:
                    log_file.append(self.iteration, elapsed, parts)
                self._maybe_stop_warping(self._spent(start_iteration, elapsed))
                stop = self._agree_to_stop(time.perf_counter() > deadline)
                if rt.is_main:
                    if self.iteration % cfg.save_interval == 0 or stop:
                        self.save()
                        log_file and log_file.flush()
                    if cfg.snapshot_interval and self.iteration % cfg.snapshot_interval == 0:
                        self.save(snapshot=True)
                    if preview_faces is not None and (self.iteration % preview_every == 0 or stop):
                        self.write_preview(preview_faces)
                if stop:
                    stopped_by = self._stop_reason or "time budget"
                    break
            else:
                if rt.is_main and self.iteration % cfg.save_interval:
                    self.save()
                if rt.is_main and preview_faces is not None:
                    self.write_preview(preview_faces)
        finally:
            task.close()
            prefetch.close()
            if log_file is not None:
                log_file.close()
            shutdown_runtime(rt)
        seconds = time.perf_counter() - began
        done = self.iteration - start_iteration
        return TrainSummary(str(cfg.model_dir), start_iteration, self.iteration, seconds,
                            cfg.batch_size * 2 * done * rt.world_size / seconds if seconds else 0.0,
                            {k: v for k, v in parts.items() if k.startswith("loss_")}, stopped_by)

    def _agree_to_stop(self, timed_out: bool) -> bool:
        """Every rank stops at the same step, or DDP would hang waiting for the others."""
        if self._cancel.cancelled and self._stop_reason is None:
            self._stop_reason = self._cancel.reason or "cancelled"
            log.warning("%s: finishing this step and saving", self._stop_reason)
        if timed_out and self._stop_reason is None:
            self._stop_reason = "time budget"
        stop = self._stop_reason is not None
        if self.rt.distributed:
            flag = torch.tensor([1.0 if stop else 0.0], device=self.rt.device)
            torch.distributed.all_reduce(flag)
            stop = bool(flag.item() > 0)
            if stop and self._stop_reason is None:
                self._stop_reason = "another rank"
        return stop
