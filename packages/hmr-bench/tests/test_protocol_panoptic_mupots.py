"""Panoptic and MuPoTS protocols on the fixtures: worked examples, quirks, aggregation."""

import numpy as np
import pytest

from dto_core.camera import project
from hmr_bench import Predictions, ProtocolConfig, evaluate
from hmr_bench.datasets import load_ground_truth
from hmr_bench.datasets.mupots import MuPoTSGroundTruth
from hmr_bench.datasets.panoptic import PanopticGroundTruth
from hmr_bench.fixtures import make_predictions
from hmr_bench.fixtures.mupots import MPI17_TEMPLATE_MM
from hmr_bench.joints import H36M_TO_MPI_MAHMR, MPI_TO_H36M
from hmr_bench.matching import pose_distance
from hmr_bench.protocols import evaluate_mupots, evaluate_panoptic


def replace(preds, **fields):
    return Predictions(preds.image_keys, preds.offsets, {**preds.fields, **fields}, preds.meta)


def test_panoptic_perfect_and_76_47(data):
    folder = data("panoptic")
    preds = make_predictions("panoptic", folder)
    for mode in ("paper", "clean"):
        m = evaluate("panoptic", folder, preds, mode).metrics
        assert m["mean_pooled"] < 1e-9 and m["n_matched"] == 16
    # the worked example on the single-person (ultimatum) images: no matching ambiguity
    single = [k for k in preds.image_keys if "ultimatum" in k]
    sub = Predictions.from_images(
        {k: {f: v[preds.rows(k)] for f, v in preds.fields.items()} for k in single}
    )
    h36m = sub.get("h36m17").copy()
    h36m[:, 1:, 0] += 0.1  # every non-root joint 100 mm off
    gt = load_ground_truth("panoptic", folder)
    rows = np.flatnonzero(np.isin(np.repeat(gt.image_keys, np.diff(gt.offsets)), single))
    visible = gt.kpts3d[rows][:, [2, 1, 0, 3, 4, 5, 12, 9, 10, 11, 8, 7, 6], 3].sum(1)
    assert visible.tolist() == [12.0, 12.0]  # 13 non-root joints, one below the threshold
    r = evaluate("panoptic", folder, replace(sub, h36m17=h36m), "paper")
    np.testing.assert_allclose(r.persons["mpjpe"][rows], 100 * visible / 17)  # 1200 / 17
    assert r.metrics["mpjpe_visible_mean"] == pytest.approx(100.0)
    assert r.metrics["mpjpe/ultimatum"] == pytest.approx(1200 / 17)
    clean = evaluate("panoptic", folder, replace(sub, h36m17=h36m), "clean").metrics
    assert clean["mpjpe/ultimatum"] == pytest.approx(100.0)  # divided by the visible joints
    assert clean["n_missed"] == 14  # images without predictions: people missed, not errors


def test_panoptic_duplicates_and_means(data):
    folder = data("panoptic")
    preds = make_predictions("panoptic", folder)
    first = preds.rows(preds.image_keys[0])  # haggling, camera 00_16: 3 people
    conf = preds.get("conf").copy()
    conf[first.start + 1 : first.stop] = 0.1  # only person 0's prediction is kept
    paper = evaluate("panoptic", folder, replace(preds, conf=conf), "paper")
    assert paper.persons["pred_row"][:3].tolist() == [0, 0, 0]  # one prediction, three people
    assert paper.metrics["mismatch_images"] == 1 and paper.metrics["n_missed"] == 0
    clean = evaluate("panoptic", folder, replace(preds, conf=conf), "clean").metrics
    assert clean["n_missed"] == 2 and clean["mismatch_images"] == 0
    m = paper.metrics
    per_seq = [m[f"mpjpe/{a}"] for a in ("haggling", "mafia", "ultimatum", "pizza")]
    assert m["mean_of_sequences"] == pytest.approx(np.mean(per_seq))
    assert m["mean_pooled"] == pytest.approx(np.nanmean(paper.persons["mpjpe"]))
    assert m["mean_pooled"] != pytest.approx(m["mean_of_sequences"])


def test_panoptic_threshold_halving_persists_in_paper_mode(data):
    folder = data("panoptic")
    preds = make_predictions("panoptic", folder)
    keys = preds.image_keys
    conf = preds.get("conf").copy()
    h36m = preds.get("h36m17").copy()
    conf[preds.rows(keys[0])] = 0.1  # image 0: halved 0.3 -> 0.15 -> 0.075
    second = preds.rows(keys[1])  # image 1 (haggling, camera 00_30), 3 people:
    conf[second] = [0.1, 0.2, 0.2]  # the best pose only passes a lowered threshold
    h36m[second.start + 1 : second.stop] = h36m[second.start]  # the others copy person 0...
    h36m[second.start + 1 : second.stop, 1:, 1] += 0.3  # ...30 cm off
    preds = replace(preds, conf=conf, h36m17=h36m)
    paper = evaluate("panoptic", folder, preds, "paper")
    clean = evaluate("panoptic", folder, preds, "clean")
    assert paper.metrics["final_conf_thresh"] == pytest.approx(0.075)
    assert clean.metrics["final_conf_thresh"] == pytest.approx(0.3)
    # paper: image 1 starts at 0.075 and keeps all three; clean: restarts at 0.3, halves once
    # to 0.15 and loses person 0's prediction (conf 0.1)
    assert paper.persons["pred_row"][3] == second.start
    assert clean.persons["pred_row"][3] != second.start
    assert paper.metrics["thresh_halved_images"] == 1 and clean.metrics["thresh_halved_images"] == 2


def test_mupots_perfect_misses_and_occlusion(data):
    folder = data("mupots")
    preds = make_predictions("mupots", folder)
    for mode in ("paper", "clean"):
        m = evaluate("mupots", folder, preds, mode).metrics
        assert (m["pck_all"], m["pck_matched"], m["n_unmatched"]) == (1.0, 1.0, 0)
    # drop the prediction of TS1 frame 0 subject 2: "All" counts it as 0, "Matched" ignores it
    conf = preds.get("conf").copy()
    conf[2] = 0.0
    r = evaluate("mupots", folder, replace(preds, conf=conf), "paper")
    assert r.metrics["n_unmatched"] == 1 and r.metrics["pck_matched"] == 1.0
    assert r.metrics["pck_all"] == pytest.approx(8 / 9, abs=1e-8)
    # the same person fully occluded: MA-HMR's formula scores it 1 (0 / 1e-8)
    gt = load_ground_truth("mupots", folder)
    from hmr_bench.protocols.mupots import evaluate_mupots

    occluded = type(gt)(
        gt.image_keys,
        gt.sequence,
        gt.offsets,
        gt.annot_2d,
        gt.annot_3d,
        gt.annot_3d_univ,
        gt.vis.copy(),
    )
    occluded.vis[2] = False
    assert evaluate_mupots(replace(preds, conf=conf), occluded, "paper").metrics[
        "pck_all"
    ] == pytest.approx(1.0)
    assert evaluate_mupots(replace(preds, conf=conf), occluded, "clean").metrics["pck_all"] < 1.0


def test_mupots_leg_swapped_visibility_b13(data):
    """TS1 frame 0 subject 1 has its LEFT ankle occluded. MA-HMR's leg-swapped map puts that
    flag on the slot holding the RIGHT ankle: a right-ankle error is masked and a left-ankle
    error counts (paper); with the exact map and the mask it is the other way round. (Ankles are
    leaves of the skeleton: moving one changes no other rescaled joint.)"""
    folder = data("mupots")
    preds = make_predictions("mupots", folder)
    right_ankle, left_ankle = 3, 6  # H36M
    assert H36M_TO_MPI_MAHMR[13] == right_ankle
    results = {}
    for joint in (right_ankle, left_ankle):
        h36m = preds.get("h36m17").copy()
        h36m[1, joint] += [0.5, 0.0, 0.0]
        p = replace(preds, h36m17=h36m)
        paper = evaluate("mupots", folder, p, "paper").persons["pck"][1]
        exact = evaluate(
            "mupots",
            folder,
            p,
            "clean",
            mupots_mask_occluded=True,
            mupots_aggregate="person_pooled",
        ).persons["pck"][1]
        results[joint] = (paper, exact)
    assert results[right_ankle][0] == pytest.approx(1.0)  # masked by the wrong flag
    assert results[left_ankle][0] == pytest.approx(1 - 1 / 13)
    assert results[right_ankle][1] == pytest.approx(1 - 1 / 13)
    assert results[left_ankle][1] == pytest.approx(1.0)


def test_mupots_per_sequence_vs_pooled(data):
    """TS1 has 5 valid people, TS7 4. Ruin one TS7 person: pooled 8/9 of people perfect,
    per-sequence mean (1 + 3/4) / 2."""
    folder = data("mupots")
    preds = make_predictions("mupots", folder)
    h36m = preds.get("h36m17").copy()
    h36m[5, 1:] += 1.0  # TS7 frame 0 subject 0: every joint but the pelvis 1 m off... in 2D too
    conf = preds.get("conf")
    p = replace(preds, h36m17=h36m, conf=conf)
    pooled = evaluate("mupots", folder, p, "paper").metrics
    per_seq = evaluate("mupots", folder, p, "clean", mupots_gt="annot3").metrics
    assert pooled["pck_all"] == pytest.approx(8 / 9, abs=1e-7)
    assert per_seq["pck_all"] == pytest.approx((1 + 3 / 4) / 2)
    assert per_seq["pck_all_per_sequence"] == pytest.approx({"TS1": 1.0, "TS7": 0.75})


ULP = 2.0**-23  # float32 spacing at 1


def panoptic_one_person(weights=None):
    """One ground-truth skeleton at 3 m whose only nonzero root-relative coordinate is the x of
    H36M joint 5 (1 m): J24 slot 4 (left knee); visibility 1 or `weights` (24,)."""
    kpts3d = np.zeros((1, 24, 4))
    kpts3d[0, :, 2] = 3.0
    kpts3d[0, 14, 1] = 0.06  # the body centre, moved 0.06 m up by the protocol
    kpts3d[0, 4, 0] = 1.0
    kpts3d[0, :, 3] = 1.0 if weights is None else weights
    key = "160422_mafia2-00_16_00000001.jpg"
    size = np.array([64]), np.array([48])
    return PanopticGroundTruth((key,), ("mafia",), *size, np.array([0, 1]), kpts3d, kpts3d[..., :3])


def test_panoptic_float32_nearest_pose():
    """MA-HMR's |a|^2 + |b|^2 - 2ab in float32 ties predictions 3 and 1 float32 ulps away (both
    give 0): argmin takes the first, the farther one; float64 takes the nearer one."""
    gt = panoptic_one_person()
    h36m = np.zeros((2, 17, 3))
    h36m[:, :, 2] = 3.0
    h36m[:, 5, 0] = [1.0 + 3 * ULP, 1.0 + ULP]
    preds = Predictions(gt.image_keys, np.array([0, 2]), {"conf": np.full(2, 0.9), "h36m17": h36m})
    chosen = {}
    for name, config in (
        ("paper", ProtocolConfig.paper()),
        ("paper float64", ProtocolConfig.paper(panoptic_distance_float32=False)),
        ("clean", ProtocolConfig.clean()),
    ):
        result = evaluate_panoptic(preds, gt, config.mode, config=config)
        chosen[name] = result.persons["pred_row"].tolist()
    assert chosen == {"paper": [0], "paper float64": [1], "clean": [1]}


def test_panoptic_visibility_weights():
    """A joint of visibility 0.5, 100 mm off: MA-HMR weights its error by 0.5 (paper); clean counts
    a visible joint fully and divides by the visible joints."""
    weights = np.ones(24)
    weights[4] = 0.5  # J24 left knee = H36M 5
    gt = panoptic_one_person(weights)
    h36m = np.zeros((1, 17, 3))
    h36m[:, :, 2] = 3.0
    h36m[0, 5, 0] = 1.1
    preds = Predictions(gt.image_keys, np.array([0, 1]), {"conf": np.ones(1), "h36m17": h36m})
    paper = evaluate_panoptic(preds, gt, "paper").persons["mpjpe"][0]
    unweighted = evaluate_panoptic(
        preds, gt, "paper", config=ProtocolConfig.paper(panoptic_visibility_weights=False)
    ).persons["mpjpe"][0]
    clean = evaluate_panoptic(preds, gt, "clean").persons["mpjpe"][0]
    assert paper == pytest.approx(0.5 * 100 / 17) and unweighted == pytest.approx(100 / 17)
    assert clean == pytest.approx(100 / 16)  # 16 visible non-root joints
    # matching uses a joint when its visibility summed over the people is >= people - 0.1
    g = np.zeros((2, 17, 3))
    p = np.zeros((1, 17, 3))
    p[0, 3, 0] = 1.0
    for v, used in ((0.95, True), (0.85, False)):
        vis = np.ones((2, 17))
        vis[1, 3] = v
        assert pose_distance(g, p, vis)[0, 0] == (1.0 if used else 0.0)


def test_mupots_errors_compared_in_float32():
    """A wrist whose error is 150.000001 mm: within 150 mm once cast to float32 (paper), beyond
    it in float64."""
    mpi = MPI17_TEMPLATE_MM + [0.0, 0.0, 4000.0]
    k = np.array([[1400.0, 0.0, 1024.0], [0.0, 1400.0, 1024.0], [0.0, 0.0, 1.0]])
    h36m = mpi[list(MPI_TO_H36M)]
    people = project(h36m, k)[None], h36m[None], h36m[None], np.ones((1, 17), bool)
    gt = MuPoTSGroundTruth(("TS1/img_000000.jpg",), np.array([1]), np.array([0, 1]), *people)
    bone = mpi[4] - mpi[3]  # MPI right elbow -> right wrist, in the image plane
    length = np.linalg.norm(bone)
    angle = 2 * np.arcsin(150.000001 / (2 * length))
    c, s = np.cos(angle), np.sin(angle)
    moved = mpi.copy()
    moved[4] = mpi[3] + [c * bone[0] - s * bone[1], s * bone[0] + c * bone[1], 0.0]
    assert np.linalg.norm(moved[4] - mpi[4]) == pytest.approx(150.000001, abs=1e-9)
    preds = Predictions(gt.image_keys, np.array([0, 1]), {
        "conf": np.ones(1), "h36m17": moved[list(MPI_TO_H36M)][None] / 1000.0, "K": k[None],
    })  # fmt: skip
    paper = evaluate_mupots(preds, gt, "paper").metrics["pck_all"]
    float64 = evaluate_mupots(
        preds, gt, "paper", config=ProtocolConfig.paper(mupots_error_float32=False)
    ).metrics["pck_all"]
    clean = evaluate_mupots(preds, gt, "clean").metrics["pck_all"]
    assert paper == 1.0 and float64 == pytest.approx(13 / 14) and clean == pytest.approx(13 / 14)
