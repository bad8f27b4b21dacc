"""The posed ground truth cache of 3DPW / Hi4D and the float32 mesh arithmetic it enables."""

import json
import os
import shutil

import numpy as np
import pytest

from hmr_bench import evaluate
from hmr_bench.body import BodyModels
from hmr_bench.datasets import load_ground_truth
from hmr_bench.fixtures import make_predictions
from hmr_bench.metrics import pa_pve, pve
from hmr_bench.protocols import posed_gt
from hmr_bench.protocols.posed_gt import PosedGroundTruth, cache_key
from hmr_bench.regressors import JointRegressor

KEYS = ("mpjpe", "pa_mpjpe", "pve", "pa_pve", "height_error_mm", "recall", "focal_mae_px")


def metrics(result):
    return {k: result.metrics[k] for k in KEYS}


@pytest.mark.parametrize("benchmark", ["3dpw", "hi4d"])
def test_cache_is_written_once_read_back_and_changes_nothing(
    benchmark, data, model_dir, tmp_path, monkeypatch
):
    folder = data(benchmark)
    preds = make_predictions(benchmark, folder, model_dir=model_dir, noise_m=0.03, seed=2)
    plain = evaluate(benchmark, folder, preds, "paper", model_dir=model_dir)
    clean = evaluate(benchmark, folder, preds, "clean", model_dir=model_dir)
    cold = evaluate(benchmark, folder, preds, "paper", model_dir=model_dir, cache_dir=tmp_path)
    (entry,) = tmp_path.iterdir()
    assert entry.name.startswith(f"{benchmark}-")
    assert sorted(p.name for p in entry.iterdir()) == [
        "h36m.npy", "heights.npy", "joints45.npy", "meta.json", "transl.npy", "verts.npy",
    ]  # fmt: skip
    assert np.load(entry / "verts.npy", mmap_mode="r").dtype == np.float32

    def no_posing(*args, **kwargs):
        raise AssertionError("the warm run posed the ground truth")

    monkeypatch.setattr(posed_gt, "pose_bodies", no_posing)
    warm = evaluate(benchmark, folder, preds, "clean", model_dir=model_dir, cache_dir=tmp_path)
    warm_paper = evaluate(
        benchmark, folder, preds, "paper", model_dir=model_dir, cache_dir=tmp_path
    )
    assert metrics(warm_paper) == metrics(cold)  # cold and warm runs: the same float32 meshes
    for key in KEYS:  # float32 meshes against the float64 ones: far below 0.01 mm
        assert warm_paper.metrics[key] == pytest.approx(plain.metrics[key], abs=1e-5), key
    for key in KEYS:
        assert warm.metrics[key] == pytest.approx(clean.metrics[key], abs=1e-5), key
    assert [p.name for p in tmp_path.iterdir()] == [entry.name]  # nothing new written


def test_cache_key_follows_the_annotations_and_the_body_model(data, model_dir, tmp_path):
    gt = load_ground_truth("3dpw", data("3dpw"))
    models = BodyModels.load(model_dir)
    key = cache_key(gt, models)
    betas = gt.betas.copy()
    betas[3, 0] += 1e-9
    moved = type(gt)(**{**gt.__dict__, "betas": betas})
    assert cache_key(moved, models) != key
    other = shutil.copytree(model_dir, tmp_path / "smpl")
    weights = np.load(other / "J_regressor_h36m_correct.npy")
    np.save(other / "J_regressor_h36m_correct.npy", weights * (1 + 1e-12))
    assert cache_key(gt, BodyModels.load(other)) != key
    assert cache_key(gt, BodyModels.load(model_dir)) == key


def test_damaged_or_unwritable_cache(data, model_dir, tmp_path):
    gt = load_ground_truth("3dpw", data("3dpw"))
    models = BodyModels.load(model_dir)
    with PosedGroundTruth(gt, models, tmp_path) as first:
        reference = first.chunk(0, gt.num_people)
    assert first.status == "written"
    entry = first.folder
    umask = os.umask(0o022)
    os.umask(umask)
    assert entry.stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 0700
    assert (entry / "verts.npy").stat().st_mode & 0o777 == 0o666 & ~umask
    meta = json.loads((entry / "meta.json").read_text())
    (entry / "meta.json").write_text(json.dumps({**meta, "version": -1}))  # an older cache
    with PosedGroundTruth(gt, models, tmp_path) as again:
        assert again.status == "off"  # not read: rebuilt
        rebuilt = again.chunk(0, gt.num_people)
    assert again.status == "written" and json.loads((entry / "meta.json").read_text()) == meta
    np.testing.assert_array_equal(rebuilt.verts, reference.verts)
    with PosedGroundTruth(gt, models, tmp_path) as hit:
        assert hit.status == "hit"
        np.testing.assert_array_equal(hit.chunk(2, 5).h36m, reference.h36m[2:5])
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with PosedGroundTruth(gt, models, blocked) as failed:
        chunk = failed.chunk(0, gt.num_people)
    assert failed.status.startswith("failed")
    np.testing.assert_array_equal(chunk.verts, reference.verts)  # still the cached precision
    with pytest.raises(RuntimeError), PosedGroundTruth(gt, models, tmp_path / "new") as broken:
        broken.chunk(0, 2)
        raise RuntimeError("evaluation failed")
    assert not any((tmp_path / "new").iterdir())  # the half-written cache is removed


def test_float32_mesh_metrics_against_float64():
    """float32 meshes on both sides take the float32 paths; oracle: the float64 computation."""
    rng = np.random.default_rng(0)
    n = 40
    base = rng.normal(0, 0.3, (6890, 3)) * [0.3, 1.0, 0.2]
    rot = np.linalg.qr(rng.normal(size=(n, 3, 3)))[0]
    rot *= np.sign(np.linalg.det(rot))[:, None, None]
    gt = np.einsum("nab,vb->nva", rot, base) + rng.uniform(-2, 2, (n, 1, 3)) + [0, 0, 6]
    pred = gt + rng.normal(0, 0.01, gt.shape) + rng.normal(0, 0.02, (n, 1, 3))
    p32, g32 = pred.astype(np.float32), gt.astype(np.float32)
    p64, g64 = p32.astype(np.float64), g32.astype(np.float64)  # the same numbers in float64
    root_p, root_g = p64[:, 0], g64[:, 0]
    np.testing.assert_allclose(pa_pve(p32, g32), pa_pve(p64, g64), atol=1e-5)
    np.testing.assert_allclose(
        pve(p32, g32, pred_root=root_p, gt_root=root_g),
        pve(p64, g64, pred_root=root_p, gt_root=root_g),
        atol=1e-5,
    )
    weights = rng.random((17, 6890))
    regressor = JointRegressor(weights / weights.sum(axis=1, keepdims=True))
    joints = regressor(p32)
    assert joints.dtype == np.float64
    np.testing.assert_allclose(joints, regressor(p64), atol=3e-6)  # m
