"""apps/train: the tiny config for a step, resumed for another; bad input exits with a message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dto_core.synthetic_body import write_synthetic_smpl_dir
from mahmr_model import MAHMR, tiny

ROOT = Path(__file__).resolve().parents[1]
APP = [sys.executable, str(ROOT / "apps" / "train")]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*APP, *args, "--no-progress"], capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_train_resume_and_bad_input(tmp_path: Path) -> None:
    smpl = tmp_path / "smpl"
    write_synthetic_smpl_dir(smpl)
    common = [
        "--smpl-dir",
        str(smpl),
        "--set",
        "optim.max_steps=2",
        "--set",
        "validation.datasets=[]",
    ]
    run = tmp_path / "run"
    first = _run("--config", "tiny", "--out", str(run), "--stop-after", "1", *common)
    assert first.returncode == 0, first.stderr
    assert "step 1 / 2" in first.stdout
    second = _run("--config", "tiny", "--resume", str(run), *common)
    assert second.returncode == 0, second.stderr
    assert "step 2 / 2" in second.stdout
    assert MAHMR.from_pretrained(run / "final").config.variant == "tiny"
    # a dataset folder that does not exist (more bad input: tests of the package)
    bad = _run(
        "--config",
        "tiny",
        "--out",
        str(tmp_path / "x"),
        *common,
        "--set",
        'data.datasets=[{name = "agora"}]',
        "--data-root",
        str(tmp_path / "nodata"),
    )
    assert bad.returncode == 2 and "nodata/agora: agora dataset folder not found" in bad.stderr
    # weights of another variant
    torch.manual_seed(0)
    MAHMR(tiny(num_betas=10, fov_head=False, variant="sat_hmr_stage1")).save_pretrained(
        tmp_path / "s1"
    )
    wrong = _run(
        "--config", "tiny", "--out", str(tmp_path / "y"), "--init", str(tmp_path / "s1"), *common
    )
    assert (
        wrong.returncode == 2
        and "'sat_hmr_stage1' model but this stage trains a 'tiny'" in wrong.stderr
    )
    assert not (tmp_path / "y" / "checkpoints").exists()
