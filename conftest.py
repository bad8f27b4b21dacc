"""The test suite needs the whole workspace, while a plain `uv run` installs only the root
project's light dependencies (see pyproject.toml). When pytest runs under `uv run` and a workspace
member is missing, install them all (`uv sync --all-packages --inexact`: nothing is removed) and
start the same pytest command again."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

ROOT = Path(__file__).parent
SYNCED = "METRIC_HMR_TESTS_SYNCED"
"""Set for the restarted pytest: a sync that did not help stops with an error, not a loop."""


def missing_members() -> list[str]:
    """Names of the workspace members (packages/*) not installed in this environment."""
    missing = []
    for pyproject in sorted(ROOT.glob("packages/*/pyproject.toml")):
        name = tomllib.loads(pyproject.read_text())["project"]["name"]
        try:
            distribution(name)
        except PackageNotFoundError:
            missing.append(name)
    return missing


def pytest_configure(config: pytest.Config) -> None:
    uv = os.environ.get("UV")  # set by `uv run`
    missing = missing_members()
    if not missing or not uv:
        return
    if os.environ.get(SYNCED):
        raise pytest.UsageError(
            f"{', '.join(missing)} still missing after `uv sync --all-packages`: check its output"
        )
    print(
        f"the tests need the whole workspace ({', '.join(missing)} not installed): "
        "uv sync --all-packages --inexact",
        file=sys.stderr,
        flush=True,
    )
    code = subprocess.run([uv, "sync", "--all-packages", "--inexact"], cwd=ROOT).returncode
    if code:
        raise pytest.UsageError(f"`uv sync --all-packages` failed (exit status {code}): see above")
    os.environ[SYNCED] = "1"
    os.execv(sys.executable, [sys.executable, "-m", "pytest", *config.invocation_params.args])
