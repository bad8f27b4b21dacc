"""The loop on the tiny model: exact resumption, stage transfers, bad --init, atomic checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from mahmr_model import MAHMR, CheckpointError, tiny
from mahmr_train import load_config
from mahmr_train.checkpoint import find_checkpoint, load_init, transfer_state
from mahmr_train.trainer import Distributed, Trainer, cosine_schedule

CPU = Distributed()


def _config(smpl_dir: Path, *extra: str):
    return load_config(
        "tiny",
        [
            f'model.smpl_dir="{smpl_dir}"',
            "optim.max_steps=4",
            "checkpoint_every=0",
            "data.augment.enabled=true",
            "model.denoising=true",
            "data.batch_size=2",
            "validation.datasets=[]",
            *extra,
        ],
    )


def test_resume_continues_exactly(smpl_dir: Path, tmp_path: Path) -> None:
    """4 steps in one run equal 2 steps + resume + 2 steps (augmentation and DN noise on; epochs
    of 3 steps: the resume starts mid-epoch, the run crosses an epoch)."""
    config = _config(smpl_dir)
    one = Trainer(config, tmp_path / "one", distributed=CPU)
    one.fit()
    half = Trainer(config, tmp_path / "two", distributed=CPU)
    half.fit(stop_after=2)
    assert half.step == 2 and find_checkpoint(tmp_path / "two").name == "step_00000002"
    resumed = Trainer(config, tmp_path / "two", resume=True, distributed=CPU)
    assert resumed.step == 2
    resumed.fit()
    a, b = one.model.state_dict(), resumed.model.state_dict()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6
    fresh = Trainer(config, tmp_path / "three", distributed=CPU).model.state_dict()
    assert max(float((a[k] - fresh[k]).abs().max()) for k in a) > 1e-4  # it did train
    # the final weights load with from_pretrained; the logs have one row per log step
    final = MAHMR.from_pretrained(tmp_path / "one" / "final")
    assert torch.equal(final.state_dict()["conf_head.weight"], a["conf_head.weight"])
    rows = (tmp_path / "two" / "train_log.csv").read_text().splitlines()
    assert rows[0].startswith("step,epoch,loss,") and len(rows) == 3


def test_resume_refuses_another_config(smpl_dir: Path, tmp_path: Path) -> None:
    Trainer(_config(smpl_dir), tmp_path, distributed=CPU).fit(stop_after=1)
    with pytest.raises(ValueError, match=r"optim.lr: 0.002 -> 0.003"):
        Trainer(_config(smpl_dir, "optim.lr=3e-3"), tmp_path, resume=True, distributed=CPU)
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        Trainer(_config(smpl_dir), tmp_path / "empty", resume=True, distributed=CPU)


def test_no_half_written_checkpoint(
    smpl_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = Trainer(_config(smpl_dir), tmp_path, distributed=CPU)
    trainer.fit(stop_after=1)
    before = sorted(os.listdir(tmp_path / "checkpoints"))

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    trainer.step += 1
    with pytest.raises(OSError, match="disk full"):
        trainer.save()
    assert sorted(os.listdir(tmp_path / "checkpoints")) == before  # no temp folder left
    assert find_checkpoint(tmp_path).name == "step_00000001"


def test_init_transfer_rules_and_wrong_variants(kid_body, tmp_path: Path) -> None:
    torch.manual_seed(0)
    stage1 = MAHMR(tiny(num_betas=10, fov_head=False, variant="sat_hmr_stage1"))
    stage1.save_pretrained(tmp_path / "s1")
    final = MAHMR(tiny())
    with pytest.raises(
        CheckpointError, match="'sat_hmr_stage1' model but this stage trains a 'tiny'"
    ):
        load_init(final, tmp_path / "s1")
    # the allowed transfer with the same architecture: zero kid rows, fresh FoV head
    target = MAHMR(tiny(variant="mahmr"))
    fov_before = target.fov_head.layers[-1].bias.clone()
    notes = transfer_state(target, stage1.state_dict(), stage1.config)
    assert any("kid coefficient" in v for v in notes.values())
    assert torch.equal(target.fov_head.layers[-1].bias, fov_before)
    head = target.shape_heads[1].layers[-1]
    assert (
        torch.equal(head.weight[10], torch.zeros_like(head.weight[10]))
        and float(head.bias[10].detach()) == 0
    )
    torch.testing.assert_close(head.weight[:10], stage1.shape_heads[1].layers[-1].weight)
    assert float(target.mean_shape[10]) == 0.0
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_init(final, tmp_path / "nothing.bin")


def test_cosine_schedule_with_warmup() -> None:
    f = cosine_schedule(10, 2)
    assert [f(0), f(1), f(2)] == [0.0, 0.5, 1.0]
    assert abs(f(6) - 0.5) < 1e-12 and f(10) == 0.0


def test_tensorboard_scalars_equal_the_csv_log(smpl_dir: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    Trainer(_config(smpl_dir, "tensorboard=true", "log_every=1"), tmp_path, distributed=CPU).fit(
        stop_after=2
    )
    lines = (tmp_path / "train_log.csv").read_text().splitlines()
    columns, rows = lines[0].split(","), [ln.split(",") for ln in lines[1:]]
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == [1, 2]
    logged = [float(r[columns.index("loss")]) for r in rows]
    np.testing.assert_allclose([e.value for e in loss], logged, rtol=1e-6)
    assert "train/lr" in events.Tags()["scalars"]


def test_tensorboard_without_the_package_says_what_to_install(
    smpl_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorboard" else real(name, *a),
    )
    with pytest.raises(ValueError, match=r'pip install "mahmr-train\[tensorboard\]"'):
        Trainer(_config(smpl_dir, "tensorboard=true"), tmp_path, distributed=CPU)
