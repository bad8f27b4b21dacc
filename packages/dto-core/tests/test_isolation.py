"""dto-core depends on numpy and scipy only."""

import pkgutil
import subprocess
import sys

import dto_core


def test_importing_every_module_pulls_in_no_deep_learning_stack():
    modules = [m.name for m in pkgutil.iter_modules(dto_core.__path__, "dto_core.")]
    assert "dto_core.solve" in modules and "dto_core.body" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "heavy = ('torch', 'smplx', 'chumpy', 'transformers', 'timm')\n"
        "bad = sorted(m for m in heavy if m in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
