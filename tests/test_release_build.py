""".ci/build_dists.py (the release workflow's build step): every package builds an sdist and a
wheel carrying the root LICENSE, and a dist without it, or a version off the tag, is reported."""

from __future__ import annotations

import importlib.util
import os
import shutil
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_build_dists():
    spec = importlib.util.spec_from_file_location("build_dists", ROOT / ".ci" / "build_dists.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not (os.environ.get("UV") or shutil.which("uv")), reason="needs uv")
def test_every_package_builds_with_the_license_and_a_missing_one_is_reported(tmp_path, capsys):
    build_dists = load_build_dists()
    out = tmp_path / "dist"
    assert build_dists.main([str(out)]) == 0
    packages = sorted(ROOT.glob("packages/*/pyproject.toml"))
    assert len(list(out.glob("*.whl"))) == len(list(out.glob("*.tar.gz"))) == len(packages)
    assert "every wheel and sdist carries the LICENSE" in capsys.readouterr().out

    wheel = sorted(out.glob("*.whl"))[0]
    stripped = tmp_path / wheel.name
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(stripped, "w") as dst:
        for item in src.infolist():
            if not item.filename.endswith("/licenses/LICENSE"):
                dst.writestr(item, src.read(item))
    shutil.move(stripped, wheel)
    problems = build_dists.check_dists(out, version=None)
    assert len(problems) == 1 and problems[0].startswith(f"{wheel.name}: no "), problems

    problems = build_dists.check_dists(out, version="99.0.0")
    assert sum("the tag says 99.0.0" in p for p in problems) == len(packages)
