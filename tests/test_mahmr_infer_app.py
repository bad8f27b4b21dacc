"""apps/infer: a saved (tiny, random-weight) model and the synthetic SMPL files -> JSON + OBJ.

A smoke test of the command line plumbing; the numbers of a random model mean nothing."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dto_core.synthetic_body import write_synthetic_smpl_dir
from hmr_bench.predictions import read_predictions
from mahmr_model import MAHMR, tiny

ROOT = Path(__file__).resolve().parents[1]


def test_infer_writes_predictions_and_meshes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    MAHMR(tiny()).save_pretrained(tmp_path / "model")
    write_synthetic_smpl_dir(tmp_path / "smpl")
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(
        tmp_path / "images" / "a.png"
    )
    Image.fromarray(rng.integers(0, 256, (90, 60), dtype=np.uint8)).save(
        tmp_path / "images" / "b.jpg"
    )
    out = tmp_path / "out" / "predictions.json"
    proc = subprocess.run(
        [
            sys.executable, str(ROOT / "apps" / "infer"), str(tmp_path / "images"),
            "--model", str(tmp_path / "model"), "--smpl-dir", str(tmp_path / "smpl"),
            "--conf", "0.0", "--fov-deg", "50", "--out", str(out),
            "--meshes", str(tmp_path / "meshes"),
            "--predictions", str(tmp_path / "bench.npz"),
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "a.png: 8 people" in proc.stdout
    report = json.loads(out.read_text())
    assert [Path(r["file"]).name for r in report["images"]] == ["a.png", "b.jpg"]
    first = report["images"][0]
    assert first["image_size"] == [120, 160] and first["camera_source"] == "fov"
    assert math.isclose(first["fov_deg"], 50.0, rel_tol=1e-5)
    person = first["persons"][0]
    assert (
        len(person["betas"]) == 11
        and len(person["joints"]) == 45
        and len(person["keypoints_2d"]) == 45
    )
    meshes = sorted((tmp_path / "meshes").glob("*.obj"))
    assert len(meshes) == 16
    lines = meshes[0].read_text().splitlines()
    assert sum(line.startswith("v ") for line in lines) == 6890
    assert sum(line.startswith("f ") for line in lines) == 13776

    # hmr-bench's prediction file holds the same people as the JSON report
    bench = read_predictions(tmp_path / "bench.npz")
    assert bench.image_keys == ("a.png", "b.jpg")
    counts = [len(r["persons"]) for r in report["images"]]
    np.testing.assert_array_equal(bench.offsets, np.cumsum([0, *counts]))
    np.testing.assert_allclose(bench.fields["conf"][0], person["score"], rtol=1e-6)
    np.testing.assert_allclose(bench.fields["transl"][0], person["transl"], rtol=1e-6)
    np.testing.assert_allclose(
        bench.fields["pose"][0], person["global_orient"] + person["body_pose"], rtol=1e-6
    )
    np.testing.assert_allclose(bench.fields["joints24"][0], person["joints"][:24], rtol=1e-6)
    np.testing.assert_allclose(bench.fields["K"][0], first["intrinsics"], rtol=1e-6)
    assert bench.fields["verts"].shape == (sum(counts), 6890, 3)
