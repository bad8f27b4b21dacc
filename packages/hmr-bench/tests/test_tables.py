"""Paper tables, MA-HMR rounding and the JSON / CSV writers."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from hmr_bench import evaluate, format_like_mahmr, format_table, write_results
from hmr_bench.fixtures import make_predictions
from hmr_bench.tables import BENCHMARK_TABLES, table_rows


def test_every_reference_row_fits_its_columns():
    for spec in BENCHMARK_TABLES.values():
        for row in spec.reference:
            assert len(row.values) == len(spec.columns)
    rh = {r.method + str(r.fine_tuned): r.values for r in BENCHMARK_TABLES["rh"].reference}
    assert rh["MA-HMR w. DHTrue"] == (67.76, 75.57, 76.81, 75.77, 75.35, 0.926)
    pan = {r.method + str(r.fine_tuned): r.values for r in BENCHMARK_TABLES["panoptic"].reference}
    assert pan["MA-HMR w. DHFalse"][-1] == 79.6


def test_rh_table_json_csv(data, tmp_path):
    preds = make_predictions("rh", data("rh"), skip_images=("nopred4.jpg",))
    r = evaluate("rh", data("rh"), preds, "clean")
    text = format_table(r, "fixture")
    assert "CHMR + DTO" in text and "75.35" in text and "fixture" in text
    assert f"{100 * r.metrics['pcdr@0.2/all']:.2f}" in text
    ours = table_rows(r, "fixture")[-1]
    assert ours["all"] == pytest.approx(100 * 5 / 5.9) and ours["PCK"] == 1.0
    printed = format_like_mahmr(r)
    assert printed["PCRD_0.2"] == round(100 * 5 / 5.9, 2) and "PCRD_0.2_kid" in printed
    paths = write_results(r, tmp_path / "out", "fixture", {"run": 1})
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)
    doc = json.loads(paths[0].read_text())
    assert doc["mode"] == "clean" and doc["config"]["rh_gt_index_bug"] is False
    assert doc["metrics"]["pcdr_cd"] is None  # NaN is written as null
    assert doc["provenance"] == {"run": 1}
    rows = list(csv.DictReader(paths[2].open()))
    assert len(rows) == int(r.persons["image"].size) and rows[0]["image_key"] == "bk00001.jpg"


def test_mahmr_rounding_mesh(data, model_dir):
    preds = make_predictions("3dpw", data("3dpw"), model_dir=model_dir, noise_m=0.02)
    r = evaluate("3dpw", data("3dpw"), preds, "paper", model_dir=model_dir)
    printed = format_like_mahmr(r)
    assert printed["MPJPE"] == round(r.metrics["mpjpe"], 1)
    assert printed["height_error"] == round(r.metrics["height_error_mm"] / 1000, 4)
    assert set(printed) == {"recall", "MPJPE", "PA-MPJPE", "MVE", "PA-MVE", "focal", "height_error"}
    assert np.isfinite(list(printed.values())).all()


def test_importing_hmr_bench_never_imports_torch():
    code = (
        "import sys, hmr_bench, hmr_bench.fixtures, hmr_bench.adapters\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
