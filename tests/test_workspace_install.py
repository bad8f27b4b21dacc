"""The first command stays light: `uv run apps/dto demo` runs in an environment holding only
what a plain `uv run` installs (the root project's dependencies in uv.lock, dev group aside)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UV = os.environ.get("UV") or shutil.which("uv")


def uv(*args: str) -> str:
    return subprocess.run([UV, *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(UV is None, reason="needs the uv binary")
def test_demo_runs_with_only_the_plain_uv_run_install(tmp_path):
    requirements = uv(
        "export", "--frozen", "--no-dev", "--no-hashes", "--no-header", "--no-annotate"
    )
    assert "torch" not in requirements
    (tmp_path / "requirements.txt").write_text(requirements.replace("-e ./", f"{ROOT}/"))
    uv("venv", "-q", "--python", sys.executable, str(tmp_path / "venv"))
    python = str(tmp_path / "venv" / "bin" / "python")
    uv("pip", "install", "-q", "--python", python, "-r", str(tmp_path / "requirements.txt"))
    installed = uv("pip", "freeze", "--python", python)
    assert "dto-core" in installed and "torch" not in installed

    out = tmp_path / "demo.json"
    proc = subprocess.run(
        [python, str(ROOT / "apps" / "dto"), "demo", "--scenes", "20", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "PCDR_0.2 %" in proc.stdout and out.is_file()

    # the heavy apps say how to get the whole workspace instead of a ModuleNotFoundError
    heavy = {
        ("dto", "run", "--images", "x", "--out", "y"): "uv run --all-packages apps/dto run",
        ("dto", "demo", "--pixels", "2"): "uv run --all-packages apps/dto demo --pixels",
        ("infer", "x.jpg", "--model", "tiny"): "uv run --all-packages apps/infer",
        ("publish", "dataset", "x", "--dry-run"): "uv run --all-packages apps/publish",
        ("train", "--config", "tiny"): "uv run --all-packages apps/train",
    }
    for (app, *args), hint in heavy.items():
        proc = subprocess.run(
            [python, str(ROOT / "apps" / app), *args], capture_output=True, text=True, cwd=tmp_path
        )
        assert proc.returncode != 0 and hint in proc.stderr, (app, args, proc.stderr)
        assert "Traceback" not in proc.stderr, proc.stderr
