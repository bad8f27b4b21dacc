"""Training throughput of mahmr-train on the CPU, and GPU-hours of the paper's stages (estimated).

    uv run python tools/bench/bench_mahmr_train.py [--steps 8] [--batches 40] [--workers 0 2]
        [--no-flops] [--json F]

1. Input pipeline alone (tiny config: 16 synthetic images, training augmentation on): samples/s
   of a DataLoader over the mixture with each `--workers` count, `--batches` batches of the
   config's size, after the worker start and its prefetch queue (the synthetic images are
   rendered once per process, so later epochs reuse them).
2. Training step alone: samples/s of forward + loss + backward + AdamW on one pre-collated
   batch repeated (no data loading), same config.
   The ratio (pipeline / step) above 1 means data loading is not the bottleneck.
3. Peak memory: resident-set high-water mark of this process after the runs (VmHWM).
4. FLOPs per training sample of the full `mahmr` model at 1288 px: `torch.utils.flop_counter`
   on one forward pass (the bench_mahmr_model `crowd` layout of people: 2494 tokens), SMPL on
   every decoder layer as in training; backward taken as 2x forward (the usual estimate, not
   measured). GPU-hours per stage at the paper's schedule = 3 x forward FLOPs x samples per epoch
   x epochs / (GPU peak x utilisation): an ESTIMATE whose assumptions are printed with it.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from dto_core.synthetic_body import write_synthetic_smpl_dir
from mahmr_model import MAHMR, ImageBatch, SMPLBody, mahmr
from mahmr_train import load_config
from mahmr_train.data.loader import EpochBatches, make_loader
from mahmr_train.trainer import Distributed, Trainer

# the paper's schedule (spec 11): stage 3 ran 13,398 optimiser steps per epoch at a global batch
# of 64 (inferred from the released checkpoint names); stages 1-2 train on the same images with
# CameraHMR's pGT in place of DTO-Humans, so the same epoch size is assumed; 5 epochs per stage.
SAMPLES_PER_EPOCH = 13_398 * 64
EPOCHS = 5
GPU = "NVIDIA A100 (bf16 dense peak 312 TFLOP/s)"
GPU_PEAK = 312e12
UTILISATION = (0.2, 0.4)  # assumed model FLOP utilisation range
NEAR = [(0.2 + 0.3 * i, 0.55, 0.3, 0.75) for i in range(3)]
FAR = [(0.06 + 0.125 * (i % 8), 0.12 + 0.13 * (i // 8), 0.06, 0.15) for i in range(24)]


def crowd_map(side: int, cell: int = 28) -> torch.Tensor:
    """(1, H1, W1, 2) scale map of bench_mahmr_model's `crowd` layout on a square image."""
    rows = 2 * -(-side // (2 * cell))
    probs = torch.zeros(1, rows, rows, 2)
    for cx, cy, w, h in FAR + NEAR:
        x0, x1 = int((cx - w / 2) * side // cell), int((cx + w / 2) * side // cell)
        y0, y1 = int((cy - h / 2) * side // cell), int((cy + h / 2) * side // cell)
        probs[0, y0 : y1 + 1, x0 : x1 + 1] = torch.tensor([1.0, math.hypot(w, h) * side / 1288])
    return probs


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


def batch_keys(trainer: Trainer, count: int) -> list[list[tuple[int, int, int]]]:
    """The first `count` batches of the run's epochs 0, 1, ..."""
    size = trainer.config.data.batch_size
    keys: list[list[tuple[int, int, int]]] = []
    epoch = 0
    while len(keys) < count:
        keys += list(EpochBatches(trainer.plan, epoch, size, 0, 1))
        epoch += 1
    return keys[:count]


def loader(trainer: Trainer, keys: list, workers: int) -> DataLoader:
    return make_loader(
        trainer.dataset, keys, trainer.canvas, num_workers=workers, pin_memory=False, seed=0, rank=0
    )


def pipeline_rate(trainer: Trainer, workers: int, batches: int) -> float:
    warm = max(1, 2 * workers)  # worker start and the prefetch queue (2 batches per worker)
    it = iter(loader(trainer, batch_keys(trainer, batches + warm), workers))
    for _ in range(warm):
        next(it)
    start = time.perf_counter()
    count = sum(len(batch.keys) for batch in it)
    return count / (time.perf_counter() - start)


def step_rate(trainer: Trainer, steps: int) -> float:
    batch = next(iter(loader(trainer, batch_keys(trainer, 1), 0)))
    trainer._micro_step(batch, 0, 0, True)  # warm-up
    trainer.optimizer.zero_grad(set_to_none=True)
    start = time.perf_counter()
    for step in range(steps):
        trainer._micro_step(batch, step, 0, True)
        trainer.optimizer.step()
        trainer.optimizer.zero_grad(set_to_none=True)
    return steps * len(batch.keys) / (time.perf_counter() - start)


def forward_flops(smpl_dir: Path, side: int = 1288) -> tuple[float, int]:
    torch.manual_seed(0)
    model = MAHMR(mahmr()).set_body(SMPLBody.from_dir(smpl_dir, kid=True)).eval()
    model.requires_grad_(False)  # the counter's module tracker needs no autograd state
    batch = ImageBatch.from_tensors([torch.rand(3, side, side)], canvas=1288)
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(batch, body_layers="all", scale_map=crowd_map(side))
    return float(counter.get_total_flops()), len(out.tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8, help="timed training steps")
    parser.add_argument("--batches", type=int, default=40, help="timed pipeline batches")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--no-flops", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
    }
    with tempfile.TemporaryDirectory() as tmp:
        smpl_dir = Path(tmp) / "smpl"
        write_synthetic_smpl_dir(smpl_dir)
        overrides = [
            f'model.smpl_dir="{smpl_dir}"',
            "data.augment.enabled=true",
            "data.datasets.0.num_images=16",
            "validation.datasets=[]",
        ]
        config = load_config("tiny", overrides)
        trainer = Trainer(config, Path(tmp) / "run", distributed=Distributed())
        rates = {w: pipeline_rate(trainer, w, args.batches) for w in args.workers}
        step = step_rate(trainer, args.steps)
        print(f"tiny config, batch {config.data.batch_size}, CPU ({results['machine']})")
        print("| what | samples/s | vs training step |")
        print("|---|---|---|")
        for w, r in rates.items():
            print(f"| input pipeline, {w} workers | {r:.2f} | {r / step:.2f}x |")
        print(f"| training step (forward, loss, backward, AdamW) | {step:.2f} | 1.00x |")
        print(f"peak resident memory: {peak_rss_mib():.0f} MiB")
        results["pipeline_samples_per_s"] = rates
        results["step_samples_per_s"] = step
        results["peak_rss_mib"] = peak_rss_mib()
        if not args.no_flops:
            flops, tokens = forward_flops(smpl_dir)
            per_sample = 3 * flops
            print(
                f"\nmahmr at 1288 px, crowd layout ({tokens} tokens): forward "
                f"{flops / 1e12:.3f} TFLOP; training sample ~ 3x = {per_sample / 1e12:.3f} TFLOP"
            )
            total = per_sample * SAMPLES_PER_EPOCH * EPOCHS
            hours = [total / (GPU_PEAK * u) / 3600 for u in UTILISATION]
            print(
                f"ESTIMATE per stage ({EPOCHS} epochs x {SAMPLES_PER_EPOCH:,} samples, {GPU}, "
                f"{UTILISATION[0]:.0%}-{UTILISATION[1]:.0%} utilisation): "
                f"{hours[1]:.0f}-{hours[0]:.0f} GPU-hours"
            )
            results["forward_tflop"] = flops / 1e12
            results["tokens"] = tokens
            results["gpu_hours_per_stage"] = hours
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
