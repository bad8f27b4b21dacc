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
    assert set(rows) == {
        "teacher", "paper +D", "paper +D+X", "official +D", "official +D+X",
        "official compat +D", "official compat +D+X",
    }  # fmt: skip
    for name, row in rows.items():
        assert name in proc.stdout
        assert 0.0 <= row["pcdr_0.2"] <= 1.0
        assert set(row["pcdr_0.2_by_age"]) <= {"adult", "teen", "kid", "baby"}
    # DTO's inter-human depth term beats the teacher on depth, height and depth order here
    assert rows["paper +D"]["depth_error_m"] < rows["teacher"]["depth_error_m"]
    assert rows["paper +D"]["height_error_cm"] < rows["teacher"]["height_error_cm"]
    assert rows["paper +D"]["pcdr_0.2"] > rows["teacher"]["pcdr_0.2"]
    assert list(out.parent.iterdir()) == [out]  # no temp file left behind
    # the table says what its columns mean
    assert "solve ms: one optimize_scenes call on all 300 scenes" in proc.stdout
    assert "kept %: scenes the posterior filter keeps" in proc.stdout
    for row in report["rows"][1:]:
        assert 0 <= row["kept_percent"] <= row["optimised_percent"] <= 100
    # the sweep: per-person error x {+D, +D+X exact X, +D+X measured X}, both variants
    sweep = report["sweep"]
    assert [row["person_noise"] for row in sweep] == pytest.approx(
        [0, 0.01, 0.02, 0.0564, 0.1], abs=1e-4
    )
    assert "X meas./exact" in proc.stdout
    for row in sweep:
        for variant in ("paper", "official"):
            for method in ("+D", "+D+X exact", "+D+X measured"):
                assert row[f"{variant} {method}"]["depth_error_m"] > 0
    # without depth error the exact X beats the measured one (children's teacher scale error)
    clean = sweep[0]
    for variant in ("paper", "official"):
        exact, measured = clean[f"{variant} +D+X exact"], clean[f"{variant} +D+X measured"]
        assert exact["depth_error_m"] < measured["depth_error_m"]


def run_demo_main(capsys, *args):
    """The demo's main() in this process: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        load_app().main(["demo", *args])
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_demo_refuses_bad_arguments_before_the_work(tmp_path, capsys):
    code, _, err = run_demo_main(capsys, "--scenes", "0", "--out", str(tmp_path / "x.json"))
    assert code == 2 and "--scenes: must be at least 1, got 0" in err
    folder = tmp_path / "results"
    folder.mkdir()
    code, out, err = run_demo_main(capsys, "--scenes", "5", "--out", str(folder))
    assert code == 2 and out == ""
    assert f"--out {folder} is a directory; give a file name" in err
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out, err = run_demo_main(
        capsys, "--scenes", "5", "--out", str(blocker / "sub" / "x.json")
    )
    assert code == 2 and out == "" and f"{blocker} is not a directory" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "results"]
    assert list(folder.iterdir()) == []


def test_failed_write_leaves_no_temp_file(tmp_path):
    app = load_app()
    target = tmp_path / "taken"
    target.mkdir()  # os.replace cannot put a file over a directory
    with pytest.raises(OSError):
        app.write_json(target, {"a": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


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
