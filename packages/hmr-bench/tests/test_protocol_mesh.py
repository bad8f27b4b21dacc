"""3DPW / Hi4D protocol on the fixtures against an independent per-person computation."""

import shutil

import numpy as np
import pytest

from hmr_bench import PredictionError, Predictions, evaluate
from hmr_bench.body import pose_bodies
from hmr_bench.datasets import load_ground_truth
from hmr_bench.fixtures import make_predictions
from hmr_bench.joints import H36M_EVAL14
from hmr_bench.protocols.mesh import network_frame


def world_meshes(gt, models):
    """Independent ground truth: pose in the world frame, then move the vertices by the camera."""
    verts = np.zeros((gt.num_people, 6890, 3))
    for gender in ("male", "female"):
        rows = np.flatnonzero(gt.gender == gender)
        pose = np.concatenate([gt.global_orient[rows], gt.body_pose[rows]], 1)
        world = pose_bodies(models.model(gender), gt.betas[rows], pose, gt.transl[rows]).verts
        verts[rows] = np.einsum("nab,nvb->nva", gt.cam_rot[rows], world) + gt.cam_trans[rows, None]
    return verts


def oracle_errors(pred_verts, gt_verts, weights):
    """MPJPE and PVE per person with explicit loops over people."""
    out = []
    for p, g in zip(pred_verts, gt_verts, strict=True):
        pj, gj = weights @ p, weights @ g
        pr, gr = pj - pj[0], gj - gj[0]
        sel = list(H36M_EVAL14)
        mpjpe = 1000 * np.mean([np.linalg.norm(pr[j] - gr[j]) for j in sel])
        pve = 1000 * np.mean(np.linalg.norm((p - pj[0]) - (g - gj[0]), axis=1))
        out.append((mpjpe, pve))
    return np.array(out)


@pytest.mark.parametrize("benchmark", ["3dpw", "hi4d"])
def test_perfect_predictions(benchmark, data, model_dir, models):
    preds = make_predictions(benchmark, data(benchmark), model_dir=model_dir)
    gt = load_ground_truth(benchmark, data(benchmark))
    r = evaluate(benchmark, data(benchmark), preds, "paper", model_dir=model_dir)
    m = r.metrics
    for key in ("mpjpe", "pa_mpjpe", "pve", "pa_pve", "focal_mae_px"):
        assert m[key] < 1e-3, key  # predicted vertices are stored as float32
    assert m["recall"] == 1.0
    # ground truth uses the gendered model, the prediction the neutral one
    matched = r.persons["status"] == 1
    neutral = models.model("neutral").tpose_height(gt.betas[matched])
    gendered = np.array(
        [
            models.model(g).tpose_height(b[None])[0]
            for g, b in zip(gt.gender[matched], gt.betas[matched], strict=True)
        ]
    )
    assert m["height_error_mm"] == pytest.approx(1000 * np.abs(neutral - gendered).mean())


def test_pw3d_noisy_against_oracle_and_filters(data, model_dir, models):
    folder = data("3dpw")
    preds = make_predictions("3dpw", folder, model_dir=model_dir, noise_m=0.03, seed=3)
    gt = load_ground_truth("3dpw", folder)
    gt_verts = world_meshes(gt, models)
    weights = models.regressors.h36m.weights
    for mode, n_gt, n_filtered in (("paper", 8, 1), ("clean", 6, 3)):
        r = evaluate("3dpw", folder, preds, mode, model_dir=model_dir)
        assert (r.metrics["n_gt"], r.metrics["n_filtered"]) == (n_gt, n_filtered)
        rows = np.flatnonzero(r.persons["status"] == 1)
        expected = oracle_errors(
            preds.get("verts")[r.persons["pred_row"][rows]].astype(float), gt_verts[rows], weights
        )
        # the two ground-truth constructions agree to ~1e-8 m (smplx's Rodrigues epsilon)
        np.testing.assert_allclose(r.persons["mpjpe"][rows], expected[:, 0], atol=1e-4)
        np.testing.assert_allclose(r.persons["pve"][rows], expected[:, 1], atol=1e-4)
        assert r.metrics["mpjpe"] == pytest.approx(expected[:, 0].mean(), abs=1e-4)
    # flat_guitar_01 frame 2: both actors outside the image; MA-HMR keeps both (paper)
    paper = evaluate(
        "3dpw", folder, preds, "paper", model_dir=model_dir, filter_keeps_all_if_none_pass=False
    )
    assert paper.metrics["n_gt"] == 6


def test_params_only_predictions_are_posed_with_the_neutral_model(data, model_dir, models):
    folder = data("hi4d")
    full = make_predictions("hi4d", folder, model_dir=model_dir, noise_m=0.01)
    neutral = pose_bodies(models.model(), full.get("betas"), full.get("pose"), full.get("transl"))
    with_meshes = Predictions(
        full.image_keys, full.offsets,
        {**full.fields, "verts": neutral.verts, "joints24": neutral.joints24},
    )  # fmt: skip
    params = Predictions(
        full.image_keys, full.offsets,
        {k: v for k, v in full.fields.items() if k not in ("verts", "joints24")},
    )  # fmt: skip
    a = evaluate("hi4d", folder, with_meshes, "clean", model_dir=model_dir).metrics
    b = evaluate("hi4d", folder, params, "clean", model_dir=model_dir).metrics
    for key in ("mpjpe", "pa_mpjpe", "pve", "pa_pve", "recall", "height_error_mm"):
        assert a[key] == pytest.approx(b[key], rel=1e-12), key


def test_hi4d_false_positives_and_precision(data, model_dir):
    preds = make_predictions("hi4d", data("hi4d"), model_dir=model_dir, false_positives=2)
    m = evaluate("hi4d", data("hi4d"), preds, "paper", model_dir=model_dir).metrics
    assert m["n_false_positives"] == 1  # the second copy has conf 0.2 < 0.3
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((8 / 9, 1.0, 8 / 8.5))


def test_kid_betas_and_height_failure(data, model_dir, tmp_path):
    folder = data("hi4d")
    preds = make_predictions("hi4d", folder, model_dir=model_dir)
    eleven = Predictions(
        preds.image_keys, preds.offsets,
        {**preds.fields, "betas": np.pad(preds.get("betas"), ((0, 0), (0, 1)))},
    )  # fmt: skip
    ten = evaluate("hi4d", folder, preds, "paper", model_dir=model_dir).metrics
    kid = evaluate("hi4d", folder, eleven, "paper", model_dir=model_dir).metrics
    assert kid["height_error_mm"] == pytest.approx(ten["height_error_mm"])  # kid weight 0
    no_kid = shutil.copytree(model_dir, tmp_path / "no_kid")
    (no_kid / "smpl_kid_template.npy").unlink()
    paper = evaluate("hi4d", folder, eleven, "paper", model_dir=no_kid)
    gt_height = paper.persons["gt_height_m"][paper.persons["status"] == 1]
    assert paper.metrics["height_error_mm"] == pytest.approx(1000 * gt_height.mean())  # B12: 0 m
    with pytest.raises(FileNotFoundError, match="kid template"):
        evaluate("hi4d", folder, eleven, "clean", model_dir=no_kid)


def test_bad_predictions(data, model_dir):
    folder = data("3dpw")
    preds = make_predictions("3dpw", folder, model_dir=model_dir)
    verts = preds.get("verts").copy()
    verts[3, 10, 0] = np.nan
    with pytest.raises(
        PredictionError,
        match=r"image 'imageFiles/downtown_arguing_00/image_00001.jpg' person 1: field 'verts'",
    ):
        Predictions(preds.image_keys, preds.offsets, {**preds.fields, "verts": verts})
    empty = Predictions(
        (),
        np.zeros(1, np.int64),
        {
            "conf": np.zeros(0),
            "K": np.zeros((0, 3, 3)),
            "verts": np.zeros((0, 6890, 3)),
            "joints24": np.zeros((0, 24, 3)),
        },
    )
    m = evaluate("3dpw", folder, empty, "paper", model_dir=model_dir).metrics
    assert m["recall"] == 0.0 and np.isnan(m["mpjpe"]) and m["n_gt"] == 8
    no_k = Predictions(
        preds.image_keys, preds.offsets, {k: v for k, v in preds.fields.items() if k != "K"}
    )
    with pytest.raises(PredictionError, match="'K'"):
        evaluate("3dpw", folder, no_k, "paper", model_dir=model_dir)
    small = Predictions(
        preds.image_keys, preds.offsets, {**preds.fields, "verts": preds.get("verts")[:, :100]}
    )
    with pytest.raises(ValueError, match=r"must be \(N, 6890, 3\)"):
        evaluate("3dpw", folder, small, "paper", model_dir=model_dir)


def test_network_frame():
    rate, w, h = network_frame(np.array([1080]), np.array([1920]), 1288)
    assert rate[0] == pytest.approx(1288 / 1920) and (w[0], h[0]) == (724, 1288)
