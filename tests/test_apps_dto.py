"""apps/dto demo: runs, prints the synthetic label and a table, writes its JSON atomically; its
depth-order column is hmr-bench's PCDR_0.2 on layers built from the true depths."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dto_core.synthetic import sample_crowds
from hmr_bench.metrics import pcdr

ROOT = Path(__file__).resolve().parents[1]


def load_app():
    spec = importlib.util.spec_from_file_location("dto_app", ROOT / "apps" / "dto" / "__main__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_runs_and_writes_json(tmp_path):
    out = tmp_path / "results" / "demo.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "apps" / "dto"),
            "demo",
            "--scenes",
            "300",
            "--seed",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "SYNTHETIC" in proc.stdout and "PCDR_0.2 %" in proc.stdout
    report = json.loads(out.read_text())
    assert report["synthetic"] is True and report["scenes"] == 300
    rows = {r["method"]: r for r in report["rows"]}
    assert set(rows) == {"teacher", "paper +D", "paper +D+X", "official +D", "official +D+X"}
    for name, row in rows.items():
        assert name in proc.stdout
        assert 0.0 <= row["pcdr_0.2"] <= 1.0
        assert set(row["pcdr_0.2_by_age"]) <= {"adult", "teen", "kid", "baby"}
    # DTO's inter-human depth term beats the teacher on depth, height and depth order here
    assert rows["paper +D"]["depth_error_m"] < rows["teacher"]["depth_error_m"]
    assert rows["paper +D"]["height_error_cm"] < rows["teacher"]["height_error_cm"]
    assert rows["paper +D"]["pcdr_0.2"] > rows["teacher"]["pcdr_0.2"]
    assert list(out.parent.iterdir()) == [out]  # no temp file left behind


def test_depth_layers_rule():
    app = load_app()
    # scene 0 (input order shuffled): 5.0, 5.2, 5.35 share a layer with the front person 5.0
    # only up to 5.3: 5.35 opens layer 1 (5.45 joins it: 0.1 behind 5.35); 7.0 is layer 2
    depth = np.array([5.35, 5.0, 7.0, 5.2, 5.45, 3.0, 3.31])
    layers = app.depth_layers(depth, np.array([0, 5, 7]))
    assert layers.tolist() == [1, 0, 2, 0, 1, 0, 1]
    assert app.rh_age_labels(np.array([0.5, 3.0, 7.9, 8.0, 14.9, 15.0, 80.0])).tolist() == [
        3, 2, 2, 1, 1, 0, 0,
    ]  # fmt: skip


def test_demo_column_is_hmr_bench_pcdr():
    app = load_app()
    crowds = sample_crowds(50, seed=3)
    row = app.evaluate(crowds, crowds.teacher_depth, crowds.teacher_height)
    layers = app.depth_layers(crowds.depth, crowds.offsets)
    expected = pcdr(
        crowds.teacher_depth, layers, app.rh_age_labels(crowds.age), image_index=crowds.scene_index
    )
    assert row["pcdr_0.2"] == pytest.approx(expected.all)
    # true depths order every pair of different layers correctly
    truth = app.evaluate(crowds, crowds.depth, crowds.height)
    assert truth["pcdr_0.2"] > row["pcdr_0.2"]
