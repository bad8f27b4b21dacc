"""Launched by torchrun from test_ddp.py: one optimiser step of the tiny config, weights saved."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from mahmr_train import load_config
from mahmr_train.trainer import Distributed, Trainer


def main(out: str, smpl_dir: str, batch_size: int) -> None:
    config = load_config(
        "tiny",
        [
            f'model.smpl_dir="{smpl_dir}"',
            "optim.max_steps=4",
            "checkpoint_every=0",
            "data.augment.enabled=true",
            f"data.batch_size={batch_size}",
            "validation.datasets=[]",
        ],
    )
    dist = Distributed.from_env("cpu")
    trainer = Trainer(config, out, distributed=dist)
    trainer.fit(stop_after=1)
    if dist.main:
        torch.save(trainer.model.state_dict(), Path(out) / "weights.pt")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
