"""The training loop: AdamW, cosine schedule with warm-up, gradient clipping and accumulation,
bf16 autocast on CUDA, optional `torch.compile`, DDP through torch's launcher (`torchrun`; the
same code runs as one process), exact resumption, periodic validation, CSV logs.

    trainer = Trainer(load_config("tiny"), "runs/tiny")
    summary = trainer.fit()

Processes: `torchrun --nproc-per-node G` sets RANK / WORLD_SIZE / LOCAL_RANK; each process
takes its slice of every global batch (`data.batch_size` images) and DDP averages gradients.
Loss normalisers are averaged over processes, so W processes with batch B make the same update
as one process with batch W B. Backend: NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib.util
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from mahmr_model import MAHMR, get_config

from .checkpoint import (
    CONFIG_FILE,
    STATE_FILE,
    find_checkpoint,
    load_init,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .config import TrainConfig, config_from_dict, config_to_dict
from .data.bodies import BodyModels
from .data.loader import Batch, EpochBatches, EpochPlan, MixtureDataset, make_loader
from .data.pipeline import SamplePipeline
from .data.readers import build_source
from .denoising import build_denoising
from .losses import Criterion
from .validate import evaluate_batches

__all__ = ["Distributed", "StepLog", "Trainer", "build_model", "cosine_schedule"]

logger = logging.getLogger(__name__)
CPU = torch.device("cpu")


@dataclass(frozen=True)
class Distributed:
    """This process's place: rank, world size, device."""

    rank: int = 0
    world: int = 1
    device: torch.device = CPU

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: str = "auto") -> Distributed:
        """Join the process group when launched by torchrun (WORLD_SIZE > 1), else one process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
        dev = torch.device(f"cuda:{local}" if cuda else "cpu")
        if cuda:
            torch.cuda.set_device(dev)
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
        return cls(rank, world, dev)

    def mean(self, value: Tensor) -> Tensor:
        """Average over processes (identity for one process)."""
        if self.world == 1:
            return value
        value = value.detach().clone().float()
        dist.all_reduce(value)
        return value / self.world

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def cosine_schedule(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """Learning-rate factor: linear warm-up from 0, then cosine decay to 0 at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def build_model(config: TrainConfig, device: torch.device, init: str | None = None) -> MAHMR:
    """The network of a config with its body model, initial weights and mean parameters."""
    spec = config.model
    model = MAHMR(get_config(spec.variant, denoising=spec.denoising))
    bodies = BodyModels(spec.smpl_dir, model.config.num_betas)
    model.set_body(bodies.layer("neutral"))
    init = init or spec.init
    if init:
        for key, why in load_init(model, init).items():
            logger.info("init: %s not loaded (%s)", key, why)
    else:
        if spec.dinov2:
            model.load_dinov2(spec.dinov2)
        mean_params = spec.mean_params
        if mean_params is None and bodies.model_dir is not None:
            candidate = bodies.model_dir / "smpl_mean_params.npz"
            mean_params = str(candidate) if candidate.is_file() else None
        if mean_params:
            model.load_mean_params(mean_params)
    if spec.grad_checkpointing:
        model.set_grad_checkpointing()
    if spec.compile:
        model.compile_blocks()
    return model.to(device)


@dataclass
class StepLog:
    """Running sums of logged values between two log lines."""

    sums: dict[str, float] = dataclasses.field(default_factory=dict)
    count: int = 0
    samples: int = 0
    start: float = dataclasses.field(default_factory=time.perf_counter)

    def add(self, values: dict[str, float], samples: int) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1
        self.samples += samples

    def means(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.start
        out = {k: v / max(1, self.count) for k, v in self.sums.items()}
        out["samples_per_s"] = self.samples / elapsed if elapsed > 0 else math.nan
        return out


class _CSV:
    """Append rows to a CSV file; the header is the first row's keys (extended columns are an
    error: every row of a run has the same keys)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] | None = None
        if path.is_file() and path.stat().st_size:
            with path.open() as f:
                self.columns = next(csv.reader(f))

    def write(self, row: dict[str, Any]) -> None:
        if self.columns is None:
            self.columns = list(row)
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(self.columns)
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([row.get(c, "") for c in self.columns])


class _TensorBoard:
    """The logs as TensorBoard scalars in `folder` (torch.utils.tensorboard; the optional
    `tensorboard` package, `pip install "mahmr-train[tensorboard]"`)."""

    def __init__(self, folder: Path) -> None:
        if importlib.util.find_spec("tensorboard") is None:
            raise ValueError(
                "tensorboard=true needs the tensorboard package: "
                'pip install "mahmr-train[tensorboard]" (or set tensorboard=false: CSV logs only)'
            )
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(folder))

    def write(self, prefix: str, step: int, row: dict[str, Any]) -> None:
        for key, value in row.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.writer.add_scalar(f"{prefix}/{key}", value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class Trainer:
    """One training run.

    Args:
        config: the stage (see `mahmr_train.config`).
        out_dir: run folder: `train_log.csv`, `val_log.csv`, `checkpoints/`, `final/` (the
            model in the `mahmr-model` format), `tensorboard/` with `config.tensorboard`.
        resume: continue from the latest checkpoint in `out_dir` (its config must be `config`).
        init: weights to start from (overrides `config.model.init`).
        distributed: process placement (default: from the environment).
    """

    def __init__(
        self,
        config: TrainConfig,
        out_dir: str | os.PathLike[str],
        *,
        resume: bool = False,
        init: str | None = None,
        distributed: Distributed | None = None,
    ) -> None:
        self.config = config
        self.out = Path(out_dir)
        self.dist = distributed or Distributed.from_env()
        self.board = (
            _TensorBoard(self.out / "tensorboard")
            if config.tensorboard and self.dist.main
            else None
        )
        torch.manual_seed(config.optim.seed)
        device = self.dist.device
        checkpoint = find_checkpoint(self.out) if resume else None
        if checkpoint is not None:
            saved = config_from_dict(json.loads((checkpoint / CONFIG_FILE).read_text()))
            if saved != config:
                diff = _config_diff(config_to_dict(saved), config_to_dict(config))
                raise ValueError(f"{checkpoint}: saved with another config: {diff}")
            init = str(checkpoint)
        self.model = build_model(config, device, init)
        self.canvas = self.model.config.input_size
        self.bodies = BodyModels(config.model.smpl_dir, self.model.config.num_betas)
        self.criterion = Criterion(config.loss, config.compat, config.matcher, self.canvas)

        data = config.data
        sources = [build_source(spec, data.root, self.bodies) for spec in data.datasets]
        if not sources:
            raise ValueError("the config has no training datasets (data.datasets)")
        weights = None if data.datasets[0].weight is None else [s.weight for s in data.datasets]
        self.plan = EpochPlan(
            [len(s) for s in sources], weights, data.epoch_size, config.optim.seed
        )
        self.dataset = MixtureDataset(sources, self._pipeline(train=True), train=True)
        global_batch = data.batch_size * self.dist.world
        self.micro_per_epoch = self.plan.steps_per_epoch(global_batch)
        if self.micro_per_epoch < config.optim.accumulation:
            raise ValueError(
                f"an epoch of {self.plan.epoch_size} images holds fewer than one optimiser step "
                f"of {config.optim.accumulation} x {global_batch} images"
            )
        self.steps_per_epoch = self.micro_per_epoch // config.optim.accumulation
        self.total_steps = config.optim.max_steps or config.optim.epochs * self.steps_per_epoch

        params = _parameter_groups(self.model, config)
        self.optimizer = torch.optim.AdamW(
            params, betas=config.optim.betas, weight_decay=config.optim.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, cosine_schedule(self.total_steps, config.optim.warmup_steps)
        )
        self.step = 0
        self._saved = -1
        if checkpoint is not None:
            state = torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=True)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            set_rng_state(state["rng"])
            self.step = int(state["step"])
            if int(state["world"]) * int(state["batch_size"]) != global_batch:
                raise ValueError(
                    f"{checkpoint}: global batch {state['world']} x {state['batch_size']}, "
                    f"now {self.dist.world} x {data.batch_size}: the data position would change"
                )
        self.wrapped: torch.nn.Module = self.model
        if self.dist.world > 1:
            self.wrapped = DistributedDataParallel(
                self.model,
                device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=True,
            )
        precision = config.optim.precision
        self.autocast = device.type == "cuda" and precision in ("auto", "bf16")
        if precision == "bf16" and device.type != "cuda":
            self.autocast = False
            logger.info("bf16 autocast is used on CUDA only; training in float32 on %s", device)

    # ------------------------------------------------------------------------------------------
    def _pipeline(self, train: bool) -> SamplePipeline:
        data = self.config.data
        return SamplePipeline(
            self.canvas,
            self.bodies,
            data.augment,
            self.config.compat,
            min_visible=data.min_visible_joints,
            box_enlarge=data.box_enlarge,
            max_redraws=data.max_redraws,
        )

    def _batches(self, epoch: int, start: int) -> Iterator[Batch]:
        data = self.config.data
        sampler = EpochBatches(
            self.plan, epoch, data.batch_size, self.dist.rank, self.dist.world, start
        )
        loader = make_loader(
            self.dataset, sampler, self.canvas, num_workers=data.num_workers,
            pin_memory=data.pin_memory and self.dist.device.type == "cuda",
            seed=self.config.optim.seed + epoch, rank=self.dist.rank,
        )  # fmt: skip
        return iter(loader)

    def _micro_step(self, batch: Batch, step: int, micro: int, sync: bool) -> dict[str, float]:
        """Forward, loss and backward of one micro-batch (gradients scaled by 1 / accumulation)."""
        cfg = self.config
        batch = batch.to(self.dist.device, non_blocking=True)
        plan = None
        if cfg.model.denoising:
            seed = np.random.SeedSequence([cfg.optim.seed, step, micro, self.dist.rank])
            generator = torch.Generator().manual_seed(int(seed.generate_state(1)[0]))
            plan = build_denoising(
                batch.targets, self.model.dn_enc, cfg.denoising, self.model.config.num_queries,
                generator, pgt_content=cfg.compat.dn_pgt_content,
            )  # fmt: skip
        context = (
            contextlib.nullcontext() if sync or self.dist.world == 1 else self.wrapped.no_sync()
        )
        with context:
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
                out = self.wrapped(
                    batch.images,
                    body_layers="all",
                    denoising=None if plan is None else plan.queries,
                )
            result = self.criterion(out, batch.targets, plan, reduce=self.dist.mean)
            (result.total / cfg.optim.accumulation).backward()
        logged = {"loss": float(result.total.detach())}
        logged.update({k: float(v.detach()) for k, v in result.terms.items() if "." not in k})
        return logged

    def fit(
        self,
        stop_after: int | None = None,
        progress: Callable[[dict[str, float]], None] | None = None,
    ) -> dict[str, Any]:
        """Train to the end of the schedule (or `stop_after` more optimiser steps); write a
        checkpoint at the end. `progress(values)` is called after every optimiser step."""
        cfg = self.config
        accumulation = cfg.optim.accumulation
        end = (
            self.total_steps
            if stop_after is None
            else min(self.total_steps, self.step + stop_after)
        )
        train_log = _CSV(self.out / "train_log.csv") if self.dist.main else None
        self.out.mkdir(parents=True, exist_ok=True)
        self.wrapped.train()
        window = StepLog()
        last: dict[str, float] = {}
        while self.step < end:
            epoch, within = divmod(self.step, self.steps_per_epoch)
            batches = self._batches(epoch, within * accumulation)
            while self.step < end and within < self.steps_per_epoch:
                values: dict[str, float] = {}
                for micro in range(accumulation):
                    batch = next(batches)
                    logged = self._micro_step(batch, self.step, micro, micro == accumulation - 1)
                    for k, v in logged.items():
                        values[k] = values.get(k, 0.0) + v / accumulation
                grad_norm = (
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
                    if cfg.optim.grad_clip > 0
                    else _grad_norm(self.model)
                )
                if self.dist.world > 1:  # the batch's loss: the mean over processes
                    keys = list(values)
                    means = self.dist.mean(torch.tensor([values[k] for k in keys]))
                    values = dict(zip(keys, means.tolist(), strict=True))
                values["grad_norm"] = float(grad_norm)
                values["lr"] = self.scheduler.get_last_lr()[-1]
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
                within += 1
                window.add(values, cfg.data.batch_size * self.dist.world * accumulation)
                last = {**values, "step": self.step, "epoch": epoch}
                if progress is not None:
                    progress({**last, "total_steps": self.total_steps})
                if train_log is not None and (self.step % cfg.log_every == 0 or self.step == end):
                    means = window.means()
                    train_log.write({"step": self.step, "epoch": epoch, **means})
                    if self.board is not None:
                        self.board.write("train", self.step, means)
                    window = StepLog()
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save()
                if cfg.validation.every and self.step % cfg.validation.every == 0:
                    self.validate()
        if self._saved != self.step:
            self.save()
        summary: dict[str, Any] = {"step": self.step, "last": last}
        if self.step >= self.total_steps and cfg.validation.datasets:
            summary["validation"] = self.validate()
        if self.dist.main and self.step >= self.total_steps:
            self.model.save_pretrained(self.out / "final")
        if self.board is not None:
            self.board.close()
        self.dist.barrier()
        return summary

    # ------------------------------------------------------------------------------------------
    def save(self) -> Path | None:
        """Checkpoint the current step (main process; the others wait)."""
        path = None
        if self.dist.main:
            state = {
                "step": self.step,
                "world": self.dist.world,
                "batch_size": self.config.data.batch_size,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": rng_state(),
            }
            path = save_checkpoint(
                self.out, self.step, self.model, state, config_to_dict(self.config),
                keep=self.config.keep_checkpoints,
            )  # fmt: skip
        self._saved = self.step
        self.dist.barrier()
        return path

    def validate(self) -> dict[str, dict[str, float]]:
        """Metrics on every validation dataset (main process), appended to `val_log.csv`."""
        results: dict[str, dict[str, float]] = {}
        if self.dist.main:
            log = _CSV(self.out / "val_log.csv")
            val = self.config.validation
            pipeline = SamplePipeline(
                self.canvas, self.bodies, self.config.data.augment, self.config.compat,
                min_visible=self.config.data.min_visible_joints,
            )  # fmt: skip
            for spec in val.datasets:
                source = build_source(spec, self.config.data.root, self.bodies)
                count = len(source) if val.max_images is None else min(len(source), val.max_images)
                dataset = MixtureDataset([source], pipeline, train=False)
                keys = [[(0, i, 0)] for i in range(count)]
                loader = make_loader(
                    dataset, keys, self.canvas, num_workers=self.config.data.num_workers,  # type: ignore[arg-type]
                    pin_memory=False, seed=0, rank=0,
                )  # fmt: skip
                metrics = evaluate_batches(self.model, loader, self.dist.device, val.conf_thresh)
                name = f"{spec.name}/{spec.split}"
                results[name] = metrics
                log.write({"step": self.step, "dataset": name, **metrics})
                if self.board is not None:
                    self.board.write(f"val/{name}", self.step, metrics)
        self.dist.barrier()
        return results


def _parameter_groups(model: MAHMR, config: TrainConfig) -> list[dict[str, Any]]:
    """AdamW groups: encoder parameters (`encoder.*`) at `lr_encoder`, the rest at `lr`."""
    encoder, rest = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (encoder if name.startswith("encoder.") else rest).append(param)
    return [
        {"params": encoder, "lr": config.optim.lr_encoder},
        {"params": rest, "lr": config.optim.lr},
    ]


def _grad_norm(model: MAHMR) -> Tensor:
    grads = [p.grad.detach().norm() for p in model.parameters() if p.grad is not None]
    return torch.stack(grads).norm() if grads else torch.zeros(())


def _config_diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _config_diff(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append(f"{prefix}{key}: {x!r} -> {y!r}")
    return out
