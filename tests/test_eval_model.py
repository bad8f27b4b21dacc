"""apps/eval <benchmark> --model on every benchmark fixture with a tiny random-weight model
equals apps/infer --predictions followed by apps/eval --pred on the same images; errors for
missing images and cameras a benchmark does not have. The metrics of a random model mean
nothing: equality of the two routes is what is tested."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hmr_bench.datasets import load_ground_truth
from hmr_bench.fixtures.__main__ import main as write_fixture
from hmr_bench.predictions import read_predictions
from mahmr_infer.benchmarks import image_paths
from mahmr_model import MAHMR, tiny

ROOT = Path(__file__).resolve().parents[1]
KEY_DEPTH = {"rh": 1, "3dpw": 3, "hi4d": 5, "panoptic": 1, "mupots": 2}
LAYOUT = {"rh": "official", "3dpw": "official", "hi4d": "processed", "panoptic": "processed",
          "mupots": "official"}  # fmt: skip
MUPOTS_SIZES = {"TS1": (2048, 2048), "TS7": (1920, 1080)}  # the fixture's cameras


def load_app(name: str):
    spec = importlib.util.spec_from_file_location(
        f"{name}_app", ROOT / "apps" / name / "__main__.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def confident_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with its confidence bias raised, so that its people pass 0.3."""
    folder = tmp_path_factory.mktemp("tiny_confident")
    torch.manual_seed(0)
    model = MAHMR(tiny())
    with torch.no_grad():
        model.conf_head.bias.fill_(1.5)
    model.save_pretrained(folder)
    return folder


def make_fixture(benchmark: str, folder: Path) -> Path:
    write_fixture([benchmark, str(folder), "--layout", LAYOUT[benchmark]])
    data = folder / "data"
    if benchmark == "mupots" and not any(data.rglob("*.jpg")):  # older fixtures: no images
        for key in load_ground_truth("mupots", data).image_keys:
            path = data / "MultiPersonTestSet" / key
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", MUPOTS_SIZES[key.split("/")[0]], (90, 90, 90)).save(path)
    return data


@pytest.mark.parametrize("benchmark", ["rh", "3dpw", "hi4d", "panoptic", "mupots"])
def test_eval_model_equals_infer_then_eval(benchmark, confident_tiny, tmp_path, capsys) -> None:
    data = make_fixture(benchmark, tmp_path / "fixture")
    smpl = tmp_path / "fixture" / "smpl"
    common = [benchmark, "--data", data, "--model-dir", smpl, "--mode", "clean"]
    eval_app = load_app("eval")
    args = [*common, "--model", confident_tiny, "--out", tmp_path / "direct"]
    assert eval_app.main([str(a) for a in args]) == 0
    direct = capsys.readouterr()
    assert "predict: 100%" in direct.err and "MA-HMR tiny" in direct.out  # our row, labelled
    assert not (tmp_path / "direct" / f"{benchmark}_predictions.cache").exists()

    keys = load_ground_truth(benchmark, data).image_keys
    conf = "0.01875" if benchmark == "panoptic" else "0.3"
    infer = [*image_paths(benchmark, data, keys), "--model", confident_tiny, "--smpl-dir", smpl]
    infer += ["--conf", conf, "--render", "none", "--out", tmp_path / "infer"]
    infer += ["--predictions", tmp_path / "p.npz", "--key-depth", KEY_DEPTH[benchmark]]
    assert load_app("infer").main([str(a) for a in infer]) == 0
    args = [*common, "--pred", tmp_path / "p.npz", "--out", tmp_path / "two_step"]
    assert eval_app.main([str(a) for a in args]) == 0
    capsys.readouterr()

    one = read_predictions(tmp_path / "direct" / f"{benchmark}_predictions.npz")
    two = read_predictions(tmp_path / "p.npz")
    assert one.image_keys == two.image_keys == tuple(keys) and one.num_people > 0
    assert sorted(one.fields) == sorted(two.fields)
    for name in one.fields:
        np.testing.assert_array_equal(one.fields[name], two.fields[name], err_msg=name)
    np.testing.assert_array_equal(one.image_fields["K"], two.image_fields["K"])
    assert one.image_fields["K"].shape == (len(keys), 3, 3)
    metrics = [
        json.loads((tmp_path / run / f"{benchmark}_clean.json").read_text())["metrics"]
        for run in ("direct", "two_step")
    ]
    assert metrics[0] == metrics[1]

    if benchmark != "rh":
        return
    # a second run reuses the finished prediction file
    args = [*common, "--model", confident_tiny, "--out", tmp_path / "direct"]
    assert eval_app.main([str(a) for a in args]) == 0
    assert "reusing" in capsys.readouterr().err


def test_eval_model_errors(confident_tiny, tmp_path, capsys) -> None:
    data = make_fixture("rh", tmp_path / "fixture")
    common = ["rh", "--data", str(data), "--out", str(tmp_path / "out")]
    eval_app = load_app("eval")
    cases = [
        ([*common, "--model", "tiny", "--camera", "known"],
         "--camera known: the rh annotations hold no camera intrinsics"),
        ([*common, "--model", str(tmp_path / "missing")], "no such folder, and not a Hub repo"),
        ([*common, "--model", str(confident_tiny)], "no SMPL model folder: pass --model-dir"),
    ]  # fmt: skip
    cases.append(([*common, "--model", "tiny"], "4 of the 4 rh images are missing"))
    for args, message in cases:
        if message.startswith("4 of the 4"):
            for image in (data / "images").iterdir():
                image.unlink()
        with pytest.raises(SystemExit) as caught:
            eval_app.main(args)
        assert message in str(caught.value), (message, caught.value)
        assert "Traceback" not in capsys.readouterr().err
    for extra in ([], ["--pred", "p.npz", "--model", "tiny"]):  # neither, both
        with pytest.raises(SystemExit):
            eval_app.main([*common, *extra])
        assert "give one of --pred FILE, --model" in capsys.readouterr().err
