"""A run SIGKILLed at several points and started again with the same arguments writes the same
shards as an uninterrupted run: no row lost, none duplicated (the `apps/dto run` CLI in a
subprocess, killed while the teachers run and between parts)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def command(photos_dir: Path, smpl_dir: Path, out: Path) -> list[str]:
    return [
        sys.executable, str(ROOT / "apps" / "dto"), "run",
        "--images", str(photos_dir / "images"), "--out", str(out),
        "--teachers", str(photos_dir / "simulated.toml"), "--device", "cpu", "--chunk", "2",
        "--smpl-model-dir", str(smpl_dir),
    ]  # fmt: skip


def run_until(args: list[str], ready, timeout: float = 600.0) -> None:
    """Start the CLI, SIGKILL it as soon as `ready()` holds; fail if it finished first."""
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if process.poll() is not None:
                pytest.fail(f"the run ended (exit {process.returncode}) before the kill point")
            if time.monotonic() > deadline:
                pytest.fail("kill point not reached in time")
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()


@pytest.mark.slow
def test_sigkill_at_several_points_then_resume(photos_dir, smpl_dir, reference_run, tmp_path):
    out = tmp_path / "killed"
    args = command(photos_dir, smpl_dir, out)
    rank = out / "ranks" / "rank-00000-of-00001"
    persons = out / "cache" / "persons"
    # the listing starts with the two broken files (chunk 0), then the photos: kill once the
    # teachers have cached the first photo (inside chunk 1), then once part 2 of 4 is written
    run_until(args, lambda: len(list(persons.rglob("*.npz"))) >= 3)
    assert not (rank / "parts" / "part-000001.npz").exists()
    run_until(args, lambda: (rank / "parts" / "part-000002.npz").is_file())
    assert not (rank / "report.json").exists()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def digests(dataset: Path) -> list[tuple[str, str]]:
        splits = json.loads((dataset / "manifest.json").read_text())["families"]["annotations"]
        return [(s["path"], s["sha256"]) for sp in splits["splits"].values() for s in sp["shards"]]

    assert digests(out / "dataset") == digests(reference_run / "dataset")
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == json.loads((reference_run / "report.json").read_text())["images"]
    # a kill inside a write leaves at most a hidden temporary file, never read: in the shared
    # cache it stays (another process may be writing there), the share's own folder is swept
    assert not list((out / "ranks").rglob("*.tmp")) and not list((out / "dataset").rglob("*.tmp"))
