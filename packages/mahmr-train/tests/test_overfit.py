"""The tiny config overfits a handful of synthetic images (slow: about a minute of training)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from mahmr_train import load_config
from mahmr_train.data.loader import MixtureDataset, collate
from mahmr_train.trainer import Distributed, Trainer

STEPS = 60


@torch.no_grad()
def depth_error(trainer: Trainer) -> float:
    """Mean |predicted - GT| pelvis depth (m) of the GT people, each with its Hungarian match."""
    dataset = MixtureDataset(trainer.dataset.sources, trainer.dataset.pipeline, train=False)
    samples = [dataset[(0, i, 0)] for i in range(len(dataset.sources[0]))]
    batch = collate(samples, trainer.canvas)
    trainer.model.eval()
    out = trainer.model(batch.images, body_layers="all")
    trainer.model.train()
    a = trainer.criterion.match(out.final, batch.targets, 0)
    pred = out.final.joints[a.batch, a.query, 0, 2]
    return float((pred - batch.targets.depths[a.batch, a.target]).abs().mean())


@pytest.mark.slow
def test_tiny_config_overfits(smpl_dir: Path, tmp_path: Path) -> None:
    config = load_config(
        "tiny",
        [
            f'model.smpl_dir="{smpl_dir}"',
            f"optim.max_steps={STEPS}",
            "checkpoint_every=0",
            "log_every=5",
            "validation.datasets=[]",
        ],
    )
    trainer = Trainer(config, tmp_path, distributed=Distributed())
    before = depth_error(trainer)
    trainer.fit()
    after = depth_error(trainer)
    with (tmp_path / "train_log.csv").open() as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    factor = np.mean(losses[:2]) / np.mean(losses[-2:])
    print(
        f"\ntiny overfit: loss {np.mean(losses[:2]):.3f} -> {np.mean(losses[-2:]):.3f} "
        f"(x{factor:.2f} lower), pelvis depth error {before:.3f} -> {after:.3f} m"
    )
    assert factor > 2.0
    assert after < 0.5 * before
