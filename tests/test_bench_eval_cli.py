"""apps/eval end to end on fixtures written by `python -m hmr_bench.fixtures`."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hmr_bench import Predictions, write_predictions
from hmr_bench.fixtures.__main__ import main as write_fixture

ROOT = Path(__file__).resolve().parents[1]


def load_app():
    spec = importlib.util.spec_from_file_location(
        "eval_app", ROOT / "apps" / "eval" / "__main__.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    """apps/eval caches the posed 3DPW / Hi4D ground truth: in the test's folder, not ~/.cache."""
    monkeypatch.setenv("HMR_BENCH_CACHE", str(tmp_path / "gt_cache"))


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    cache = {}

    def get(benchmark, layout="official"):
        if benchmark not in cache:
            path = tmp_path_factory.mktemp(benchmark)
            write_fixture([benchmark, str(path), "--layout", layout])
            cache[benchmark] = path
        return cache[benchmark]

    return get


@pytest.mark.parametrize(
    ("benchmark", "key"), [("rh", "pcdr@0.2/all"), ("hi4d", "mpjpe"), ("mupots", "pck_all")]
)
def test_eval_app_prints_table_and_writes_results(fixtures, tmp_path, capsys, benchmark, key):
    folder = fixtures(benchmark)
    out = tmp_path / "results"
    args = [benchmark, "--data", folder / "data", "--pred", folder / "predictions.npz"]
    args += ["--model-dir", folder / "smpl", "--mode", "clean", "--out", out]
    assert load_app().main([str(a) for a in args]) == 0
    captured = capsys.readouterr()
    assert "(paper Tables" in captured.out and "MA-HMR w. DH" in captured.out
    assert "ground truth + noise (fixture)" in captured.out
    assert "100%" in captured.err  # the progress bar finished
    doc = json.loads((out / f"{benchmark}_clean.json").read_text())
    assert doc["mode"] == "clean" and doc["metrics"][key] is not None
    cached = list((tmp_path / "gt_cache").glob("*/verts.npy"))
    assert len(cached) == (benchmark == "hi4d")  # the posed ground truth of Hi4D only
    assert doc["provenance"]["prediction_meta"]["noise_m"] == 0.02
    assert sorted(p.name for p in out.iterdir()) == [
        f"{benchmark}_clean.json", f"{benchmark}_clean_persons.csv", f"{benchmark}_clean_table.csv",
    ]  # fmt: skip


def test_eval_app_flag_overrides_and_errors(fixtures, tmp_path, capsys):
    folder = fixtures("rh")
    app = load_app()
    base = ["rh", "--data", str(folder / "data"), "--pred", str(folder / "predictions.npz")]
    base += ["--out", str(tmp_path / "r")]
    app.main([*base, "--set", "rh_gt_index_bug=false", "--set", "conf_thresh=0.5"])
    doc = json.loads((tmp_path / "r" / "rh_paper.json").read_text())
    assert doc["config"]["rh_gt_index_bug"] is False and doc["config"]["conf_thresh"] == 0.5
    assert "B4" not in capsys.readouterr().out
    with pytest.raises(SystemExit, match="expected FLAG=VALUE"):
        app.main([*base, "--set", "no_such_flag=1"])
    with pytest.raises(SystemExit, match="expected true or false"):
        app.main([*base, "--set", "rh_gt_index_bug=maybe"])


def test_eval_command_line_entry_point(fixtures, tmp_path):
    """The real command (`uv run apps/eval ...` runs the folder's __main__.py)."""
    folder = fixtures("rh")
    args = [
        "rh",
        "--data",
        folder / "data",
        "--pred",
        folder / "predictions.npz",
        "--out",
        tmp_path,
    ]
    proc = subprocess.run(
        [sys.executable, ROOT / "apps" / "eval", *args], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert "CHMR + DTO" in proc.stdout and (tmp_path / "rh_paper_table.csv").is_file()
    bad = [
        sys.executable,
        ROOT / "apps" / "eval",
        "3dpw",
        "--data",
        tmp_path,
        "--pred",
        folder / "predictions.npz",
    ]
    proc = subprocess.run(bad, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode != 0 and "no 3dpw data found" in proc.stderr


def test_eval_app_bad_inputs_are_named_before_the_work(fixtures, tmp_path):
    folder = fixtures("rh")
    app = load_app()
    pred = folder / "predictions.npz"
    base = ["rh", "--data", str(folder / "data")]
    (tmp_path / "taken").write_text("x")
    # --out is checked first: the missing data folder is not even looked at
    with pytest.raises(SystemExit, match=r"--out .*taken is an existing file; give a folder"):
        app.main(["rh", "--data", str(tmp_path / "nowhere"), "--pred", str(pred), "--out",
                  str(tmp_path / "taken")])  # fmt: skip
    with pytest.raises(SystemExit, match=r"is under the file .*taken"):
        app.main([*base, "--pred", str(pred), "--out", str(tmp_path / "taken" / "sub")])
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(pred.read_bytes()[:3000])
    text = tmp_path / "notes.npz"
    text.write_text("conf 0.9\n")
    other = tmp_path / "pw3d.npz"
    write_predictions(other, Predictions(
        ("imageFiles/downtown_bar_00/image_00000.jpg",), np.array([0, 1]), {"conf": np.ones(1)}
    ))  # fmt: skip
    for path, message in (
        (truncated, r"truncated\.npz: truncated or damaged \.npz file"),
        (text, r"notes\.npz: is a text file, not an \.npz prediction file"),
        (other, r"not rh ground-truth images.*they look like 3dpw image keys"),
    ):
        with pytest.raises(SystemExit, match=message):
            app.main([*base, "--pred", str(path), "--out", str(tmp_path / "r")])
    assert not (tmp_path / "r").exists()


def test_eval_app_help_shows_the_fixture_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_app().main(["--help"])
    assert exit_info.value.code == 0
    assert "uv run python -m hmr_bench.fixtures 3dpw" in capsys.readouterr().out
