"""3DPW / Hi4D protocol on the fixtures against an independent per-person computation."""

import shutil

import numpy as np
import pytest

from hmr_bench import PredictionError, Predictions, ProtocolConfig, evaluate
from hmr_bench.body import BodyModels, pose_bodies
from hmr_bench.datasets import load_ground_truth
from hmr_bench.datasets.smpl_gt import SMPLGroundTruth
from hmr_bench.fixtures import make_predictions
from hmr_bench.fixtures.predictions import smpl_gt_bodies
from hmr_bench.joints import H36M_EVAL14
from hmr_bench.protocols import evaluate_pw3d
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
    # flat_guitar_01 frame 2: both actors outside the image; MA-HMR crashes there, paper mode
    # skips the image (its people are not counted), clean mode filters them
    for mode, n_filtered, n_skipped in (("paper", 1, 1), ("clean", 3, 0)):
        r = evaluate("3dpw", folder, preds, mode, model_dir=model_dir)
        m = r.metrics
        assert (m["n_gt"], m["n_filtered"], m["n_skipped_images"]) == (6, n_filtered, n_skipped)
        rows = np.flatnonzero(r.persons["status"] == 1)
        expected = oracle_errors(
            preds.get("verts")[r.persons["pred_row"][rows]].astype(float), gt_verts[rows], weights
        )
        # the two ground-truth constructions agree to ~1e-8 m (smplx's Rodrigues epsilon); the
        # float32 predicted meshes are regressed in float32 (joints within ~1e-6 m at 5 m)
        np.testing.assert_allclose(r.persons["mpjpe"][rows], expected[:, 0], atol=1e-3)
        np.testing.assert_allclose(r.persons["pve"][rows], expected[:, 1], atol=1e-4)
        assert r.metrics["mpjpe"] == pytest.approx(expected[:, 0].mean(), abs=1e-3)


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
    assert m["recall"] == 0.0 and np.isnan(m["mpjpe"]) and m["n_gt"] == 6
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


def test_network_frame_official_rounding():
    rate, w, h = network_frame(np.array([1080, 1037, 1449]), np.array([1920, 20, 9]), 1288)
    assert rate[0] == np.float32(np.float32(1 / 1920) * 1288)
    assert w.tolist() == [724, 1288, 1288]  # 1288 / 1037 * 1037 = 1287.99... in float64
    assert h.tolist() == [1288, 24, 7]  # float32: int(0.888889 * 9) = int(7.99999) = 7
    rate, w, h = network_frame(np.array([1080, 1037, 1449]), np.array([1920, 20, 9]), 1288, False)
    assert rate[0] == 1288 / 1920 and w.tolist() == [724, 1288, 1288]
    assert h.tolist() == [1288, 24, 8]  # 1288 * 9 // 1449


def test_network_frame_equals_mahmr_torch_arithmetic():
    """MA-HMR: rate = 1288 / torch.tensor(long side) (float32, computed as reciprocal() * 1288),
    short side int(rate * short side); checked on every size pair up to 1024 px."""
    torch = pytest.importorskip("torch")
    w, h = (a.ravel() for a in np.meshgrid(np.arange(1, 1025), np.arange(1, 1025)))
    tw, th = torch.from_numpy(w), torch.from_numpy(h)
    landscape = tw >= th
    rate = torch.where(landscape, 1288 / tw, 1288 / th)
    short = torch.where(landscape, rate * th, rate * tw).to(torch.int64)
    ours_rate, ours_w, ours_h = network_frame(w, h, 1288)
    np.testing.assert_array_equal(ours_w, torch.where(landscape, 1288, short).numpy())
    np.testing.assert_array_equal(ours_h, torch.where(landscape, short, 1288).numpy())
    np.testing.assert_array_equal(ours_rate, rate.numpy().astype(np.float64))


EVAL14 = list(H36M_EVAL14)
K60 = np.array([[60.0, 0.0, 24.0], [0.0, 60.0, 32.0], [0.0, 0.0, 1.0]])
CONF_F32 = float(np.float32(0.3))  # a float64 copy of MA-HMR's float32(0.3)


def official_scene(models):
    """Three 48 x 64 px images seen by a camera with world y up: image 0 [A, B, C] with B out of
    the image, image 1 [D] out of the image (nobody visible), image 2 [E]. Predictions: A and C
    perfect, a copy of A shifted 0.3 m with conf float32(0.3); D perfect; none in image 2. The
    predicted focal lengths are off by 3, 11 and 7 px (per person: 63 and 71 px)."""
    x = np.array([-0.6, 4.0, 0.6, 4.0, 0.0])
    betas = np.zeros((5, 10))
    betas[:, 0] = [0.0, 2.5, -1.0, 0.0, 0.5]  # different heights
    pose = np.zeros((5, 72))
    pose[:, 3:] = np.random.default_rng(1).normal(0, 0.1, (5, 69))
    gt = SMPLGroundTruth(
        benchmark="3dpw",
        image_keys=("a.jpg", "b.jpg", "c.jpg"),
        width=np.full(3, 48),
        height=np.full(3, 64),
        sequence=("s",) * 3,
        offsets=np.array([0, 3, 4, 5]),
        betas=betas,
        global_orient=pose[:, :3],
        body_pose=pose[:, 3:],
        transl=np.column_stack([x, np.zeros(5), np.full(5, -5.0)]),
        cam_rot=np.tile(np.diag([1.0, -1.0, -1.0]), (5, 1, 1)),
        cam_trans=np.zeros((5, 3)),
        K=np.tile(K60, (5, 1, 1)),
        gender=np.full(5, "male"),
    )
    rows = np.array([0, 2, 0, 3])
    pose_c, transl_c, verts, joints = smpl_gt_bodies(gt, models, rows)
    shift = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-0.3, 0.0, 0.0], [0.0, 0.0, 0.0]])
    k_person = np.tile(K60, (4, 1, 1))
    k_person[:, 0, 0] = [63.0, 63.0, 63.0, 71.0]
    k_image = np.tile(K60, (3, 1, 1))
    k_image[:, 0, 0] = [63.0, 71.0, 67.0]
    fields = {
        "conf": np.array([0.9, 0.9, CONF_F32, 0.9]),
        "verts": verts + shift[:, None],
        "joints24": joints + shift[:, None],
        "transl": transl_c + shift,
        "pose": pose_c,
        "betas": gt.betas[rows],
        "K": k_person,
    }
    preds = Predictions(gt.image_keys, np.array([0, 3, 4, 4]), fields, {}, {"K": k_image})
    return gt, preds


def test_official_gt_height_index_nobody_visible_focal_and_conf(models):
    gt, preds = official_scene(models)
    heights = models.model("male").tpose_height(gt.betas)
    paper = evaluate_pw3d(preds, gt, "paper", models=models)
    clean = evaluate_pw3d(preds, gt, "clean", models=models)
    for r in (paper, clean):
        assert r.persons["status"][[0, 2, 4]].tolist() == [1, 1, 0]
        assert r.metrics["recall"] == pytest.approx(2 / 3)
        assert r.metrics["mpjpe"] < 1e-6 and r.metrics["n_gt"] == 3  # A, C and E (missed)
    # item 1: C, the second person left by the filter, gets the second person's (B's) height
    assert paper.persons["height_row"][[0, 2]].tolist() == [0, 1]
    assert paper.persons["gt_height_m"][2] == pytest.approx(heights[1])
    assert clean.persons["height_row"][[0, 2]].tolist() == [0, 2]
    assert clean.persons["gt_height_m"][2] == pytest.approx(heights[2])
    assert any("another person's ground-truth height" in n for n in paper.notes)
    # item 2: image 1 (nobody visible) is skipped in paper mode; clean filters D and counts its
    # prediction as a false positive
    assert paper.persons["status"][3] == -2 and paper.metrics["n_skipped_images"] == 1
    assert clean.persons["status"][3] == -1 and clean.metrics["n_skipped_images"] == 0
    # float32 confidences: the float32(0.3) copy of A is dropped in paper mode only
    assert paper.metrics["n_false_positives"] == 0
    assert clean.metrics["n_false_positives"] == 2  # the copy of A and D's prediction
    # item 3: the focal error averages over every evaluated image, with or without predictions
    assert (paper.metrics["focal_mae_px"], paper.metrics["n_focal_images"]) == (5.0, 2)
    assert (clean.metrics["focal_mae_px"], clean.metrics["n_focal_images"]) == (7.0, 3)
    rate = 1288 / 64
    assert paper.metrics["focal_mae_px_network"] == pytest.approx(5.0 * rate, rel=1e-6)
    # a version-1 file has no per-image intrinsics: only images with a prediction count
    v1 = Predictions(preds.image_keys, preds.offsets, preds.fields)
    paper1 = evaluate_pw3d(v1, gt, "paper", models=models)
    clean1 = evaluate_pw3d(v1, gt, "clean", models=models)
    assert (paper1.metrics["focal_mae_px"], clean1.metrics["focal_mae_px"]) == (3.0, 7.0)
    assert any("format version 1" in n for n in paper1.notes)


def test_h36m_joints_about_the_translation(data, model_dir, tmp_path):
    """MA-HMR regresses R (v - t) + t; with rows that do not sum to 1 it differs from R v."""
    folder = shutil.copytree(model_dir, tmp_path / "smpl")
    weights = np.load(folder / "J_regressor_h36m_correct.npy")
    weights[1:] *= np.linspace(0.9, 1.1, 16)[:, None]  # rows 1-16 no longer sum to 1
    np.save(folder / "J_regressor_h36m_correct.npy", weights)
    models = BodyModels.load(folder)
    pw = data("3dpw")
    preds = make_predictions("3dpw", pw, model_dir=folder, noise_m=0.03, seed=5)
    gt = load_ground_truth("3dpw", pw)
    about = evaluate_pw3d(preds, gt, "paper", models=models)
    plain = evaluate_pw3d(preds, gt, "paper", models=models,
                          config=ProtocolConfig.paper(h36m_about_transl=False))  # fmt: skip
    clean = evaluate_pw3d(preds, gt, "clean", models=models)
    rows = np.flatnonzero(about.persons["status"] == 1)
    p_rows = about.persons["pred_row"][rows]
    _, transl, gt_verts, _ = smpl_gt_bodies(gt, models, rows)
    pred_verts = preds.get("verts")[p_rows].astype(float)
    for result, official in ((about, True), (plain, False), (clean, False)):
        expected = []
        for p, g, tp, tg in zip(pred_verts, gt_verts, preds.get("transl")[p_rows], transl,
                                strict=True):  # fmt: skip
            pj = weights @ (p - tp) + tp if official else weights @ p
            gj = weights @ (g - tg) + tg if official else weights @ g
            pr, gr = pj - pj[0], gj - gj[0]
            expected.append(1000 * np.linalg.norm(pr[EVAL14] - gr[EVAL14], axis=1).mean())
        # (float32 meshes are regressed in float32: ~1e-6 m)
        np.testing.assert_allclose(result.persons["mpjpe"][rows], expected, atol=1e-3)
    assert abs(about.metrics["mpjpe"] - plain.metrics["mpjpe"]) > 0.5  # mm: not a rounding
    no_transl = Predictions(
        preds.image_keys, preds.offsets, {k: v for k, v in preds.fields.items() if k != "transl"}
    )
    with pytest.raises(PredictionError, match="need 'transl'"):
        evaluate_pw3d(no_transl, gt, "paper", models=models)
    evaluate_pw3d(no_transl, gt, "clean", models=models)  # R v needs no translation


def test_only_an_image_nobody_sees(models):
    gt, preds = official_scene(models)
    fields = ("betas", "global_orient", "body_pose", "transl", "cam_rot", "cam_trans", "K")
    one = SMPLGroundTruth(
        "3dpw", ("b.jpg",), gt.width[:1], gt.height[:1], ("s",), np.array([0, 1]),
        *(getattr(gt, f)[3:4] for f in fields), gt.gender[3:4],
    )  # fmt: skip
    d = Predictions(("b.jpg",), np.array([0, 1]), {k: v[3:4] for k, v in preds.fields.items()})
    paper = evaluate_pw3d(d, one, "paper", models=models).metrics
    clean = evaluate_pw3d(d, one, "clean", models=models).metrics
    assert (paper["n_skipped_images"], paper["n_false_positives"], paper["n_gt"]) == (1, 0, 0)
    assert (clean["n_skipped_images"], clean["n_false_positives"], clean["n_gt"]) == (0, 1, 0)
    assert np.isnan(paper["recall"]) and np.isnan(paper["focal_mae_px"])
