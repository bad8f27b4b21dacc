"""hmr-render imports no deep-learning stack, and no torch-free package depends on it."""

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import hmr_render

PACKAGES = Path(__file__).resolve().parents[2]


def test_importing_every_module_pulls_in_no_torch():
    modules = [m.name for m in pkgutil.iter_modules(hmr_render.__path__, "hmr_render.")]
    assert "hmr_render.raster" in modules and "hmr_render.pictures" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(','.join(sorted(m for m in ('torch', 'smplx', 'matplotlib') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_torch_free_packages_do_not_depend_on_it():
    for name in ("dto-core", "hmr-bench", "dto-humans-hub"):
        project = tomllib.loads((PACKAGES / name / "pyproject.toml").read_text())["project"]
        assert not any(d.startswith("hmr-render") for d in project["dependencies"]), name
