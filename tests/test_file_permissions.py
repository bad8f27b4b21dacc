"""Files written through temp-and-rename get the usual permissions (0o666 less the umask), not
mkstemp's 0o600: the demo's JSON, the evaluation's JSON/CSV, model.safetensors (mahmr-model and
dto-humans-hub), the synthetic SMPL folder and regressors."""

from __future__ import annotations

import importlib.util
import os
import stat
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def umask_022():
    saved = os.umask(0o022)
    yield
    os.umask(saved)


def modes(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_demo_json(tmp_path):
    spec = importlib.util.spec_from_file_location("dto_app", ROOT / "apps" / "dto" / "__main__.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    assert app.main(["demo", "--scenes", "5", "--out", str(tmp_path / "dto_demo.json")]) == 0
    assert modes(tmp_path) == {"dto_demo.json": 0o644}


def test_eval_outputs_synthetic_smpl_and_regressors(tmp_path):
    from dto_core.synthetic_body import write_synthetic_smpl_dir
    from hmr_bench import evaluate
    from hmr_bench.fixtures import make_predictions, make_rh_fixture
    from hmr_bench.regressors import write_synthetic_regressors
    from hmr_bench.tables import write_results

    write_synthetic_smpl_dir(tmp_path / "smpl")
    write_synthetic_regressors(tmp_path / "smpl")
    data = make_rh_fixture(tmp_path / "rh")
    result = evaluate("rh", data, make_predictions("rh", data), "clean")
    written = write_results(result, tmp_path / "eval", "ours")
    assert len(written) == 3
    for folder in ("smpl", "eval"):
        found = modes(tmp_path / folder)
        assert len(found) >= 3 and set(found.values()) == {0o644}, found


def test_model_safetensors(tmp_path):
    from dto_humans_hub.checkpoint import save_checkpoint
    from mahmr_model import MAHMR, tiny

    MAHMR(tiny()).save_pretrained(tmp_path / "mahmr")
    save_checkpoint(tmp_path / "hub", {"w": np.zeros(3, np.float32)}, {"variant": "tiny"})
    assert modes(tmp_path / "mahmr")["model.safetensors"] == 0o644
    assert modes(tmp_path / "hub")["model.safetensors"] == 0o644
