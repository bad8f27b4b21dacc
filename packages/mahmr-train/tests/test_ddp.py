"""Two processes (torchrun, gloo on CPU) make the same update as one process with their batch."""

from __future__ import annotations

import csv
import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("ddp_worker.py")
spec = importlib.util.spec_from_file_location("ddp_worker", WORKER)
worker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(worker)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_processes_equal_one_with_the_combined_batch(smpl_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(_free_port()),
    ]
    subprocess.run(
        [*launch, str(WORKER), str(tmp_path / "ddp"), str(smpl_dir), "1"],
        check=True,
        env=env,
        timeout=600,
    )
    worker.main(str(tmp_path / "one"), str(smpl_dir), 2)
    ddp = torch.load(tmp_path / "ddp" / "weights.pt", weights_only=True)
    one = torch.load(tmp_path / "one" / "weights.pt", weights_only=True)
    diff = max(float((ddp[k] - one[k]).abs().max()) for k in one)
    assert diff < 1e-6, diff
    # the logged loss of the two processes is their mean: the loss of the combined batch
    losses = []
    for run in ("ddp", "one"):
        with (tmp_path / run / "train_log.csv").open() as f:
            losses.append(float(next(csv.DictReader(f))["loss"]))
    assert abs(losses[0] - losses[1]) < 1e-5 * abs(losses[1])
