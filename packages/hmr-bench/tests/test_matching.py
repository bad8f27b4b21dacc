"""Greedy AGORA matcher (parity and quirk), Hungarian against brute force, MuPoTS and Panoptic."""

import itertools

import numpy as np
import pytest

from hmr_bench.matching import (
    DegenerateBoxError,
    box_iou_plus1,
    greedy_match,
    hungarian_match,
    match_keypoints_2d,
    match_keypoints_2d_images,
    match_mupots,
    match_nearest_pose,
    spectral_norm_cost,
)


def test_spectral_norm_not_frobenius():
    pred = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    gt = np.zeros((1, 2, 2))
    assert spectral_norm_cost(pred, gt)[0, 0] == pytest.approx(1.0)  # Frobenius: 1.414


def test_spectral_norm_matches_numpy_and_masks_rows():
    rng = np.random.default_rng(0)
    pred, gt = rng.normal(size=(3, 14, 2)) * 50, rng.normal(size=(4, 14, 2)) * 50
    valid = rng.random((4, 14)) > 0.3
    cost = spectral_norm_cost(pred, gt, valid)
    for p, g in itertools.product(range(3), range(4)):
        r = pred[p][valid[g]] - gt[g][valid[g]]
        assert cost[p, g] == pytest.approx(np.linalg.norm(r, 2), rel=1e-12)


def test_iou_plus_one_convention():
    a = np.array([[0.0, 0.0, 9.0, 9.0]])
    b = np.array([[5.0, 5.0, 14.0, 14.0]])
    assert box_iou_plus1(a, b)[0, 0] == pytest.approx(25 / 175)
    assert box_iou_plus1(a / 10, b / 10)[0, 0] == pytest.approx(1.96 / 5.26)  # 0.3726


def test_greedy_early_termination_quirk():
    cost = np.array([[0.0, 1.0], [5.0, 2.0]])
    iou = np.array([[1.0, 0.0], [0.0, 1.0]])
    paper = greedy_match(cost, iou, 0.1, fp_counter_quirk=True)
    assert paper.pairs.tolist() == [[0, 0]]
    assert paper.unmatched_gt.tolist() == [1] and paper.unmatched_pred.tolist() == [1]
    clean = greedy_match(cost, iou, 0.1, fp_counter_quirk=False)
    assert clean.pairs.tolist() == [[0, 0], [1, 1]]
    assert hungarian_match(cost, iou, 0.1).pairs.tolist() == [[0, 0], [1, 1]]


def test_greedy_skips_taken_members_within_a_round():
    cost = np.array([[0.0, 1.0], [0.5, 3.0]])
    iou = np.ones((2, 2))
    m = greedy_match(cost, iou, 0.1)
    assert m.pairs.tolist() == [[0, 0], [1, 1]]  # (0,1) and (1,0) are skipped, not counted


def test_greedy_ties_follow_argmin_order():
    m = greedy_match(np.ones((2, 2)), np.ones((2, 2)), 0.1)
    assert m.pairs.tolist() == [[0, 0], [1, 1]]


def test_empty_inputs():
    for p, g in ((0, 3), (2, 0), (0, 0)):
        m = match_keypoints_2d(np.zeros((p, 24, 2)), np.zeros((g, 24, 2)), iou_thresh=0.1)
        assert len(m.pairs) == 0 and len(m.unmatched_pred) == p and len(m.unmatched_gt) == g
        assert m.gt_to_pred(g).tolist() == [-1] * g


def test_keypoint_matching_end_to_end_and_degenerate_boxes():
    rng = np.random.default_rng(1)
    gt = rng.uniform(0, 100, (3, 24, 2)) + np.array([[[0, 0]], [[300, 0]], [[600, 0]]])
    pred = gt[[2, 0]] + rng.normal(size=(2, 24, 2))
    m = match_keypoints_2d(pred, gt, iou_thresh=0.1)
    assert sorted(m.pairs.tolist()) == [[0, 2], [1, 0]] and m.unmatched_gt.tolist() == [1]
    flat = pred.copy()
    flat[0, :, 1] = 5.0  # zero-height box
    with pytest.raises(DegenerateBoxError):
        match_keypoints_2d(flat, gt, iou_thresh=0.1)
    m = match_keypoints_2d(flat, gt, iou_thresh=0.1, degenerate_boxes="zero_iou")
    assert m.pairs.tolist() == [[1, 0]]
    with pytest.raises(ValueError, match="must both be"):
        match_keypoints_2d(pred[:, :14], gt, iou_thresh=0.1)


def brute_force(cost, allowed):
    """Most matches on allowed pairs, then the least total cost, by enumeration."""
    num_pred, num_gt = cost.shape
    best = (0, 0.0, ())
    for size in range(1, min(num_pred, num_gt) + 1):
        for preds in itertools.combinations(range(num_pred), size):
            for gts in itertools.permutations(range(num_gt), size):
                if all(allowed[p, g] for p, g in zip(preds, gts, strict=True)):
                    total = sum(cost[p, g] for p, g in zip(preds, gts, strict=True))
                    if size > best[0] or (size == best[0] and total < best[1]):
                        best = (size, total, tuple(zip(preds, gts, strict=True)))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_hungarian_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    num_pred, num_gt = rng.integers(1, 5, 2)
    cost = rng.uniform(0, 10, (num_pred, num_gt))
    iou = rng.uniform(0, 0.3, (num_pred, num_gt))
    size, total, pairs = brute_force(cost, iou >= 0.1)
    m = hungarian_match(cost, iou, 0.1)
    assert len(m.pairs) == size
    assert cost[m.pairs[:, 0], m.pairs[:, 1]].sum() == pytest.approx(total)
    assert sorted(map(tuple, m.pairs.tolist())) == sorted(pairs)


def test_mupots_per_axis_box_and_order():
    gt = np.zeros((2, 13, 2))
    gt[1] += 500.0
    pred = np.zeros((3, 13, 2))
    pred[0, :, 0] = 39.0  # inside the 40 px box on every joint
    pred[1, :, :] = 30.0  # Euclidean 42 px but per-axis 30: also inside
    pred[2] = 520.0
    assert match_mupots(gt, pred).tolist() == [0, 2]  # tie 13 vs 13 -> lowest index
    pred[0, :, 0] = 40.0  # |dx| = 40 is not < 40
    assert match_mupots(gt, pred).tolist() == [1, 2]
    assert match_mupots(gt, pred[:0]).tolist() == [-1, -1]  # no predictions: all missed
    # a taken prediction is not reused
    assert match_mupots(np.zeros((2, 13, 2)), pred[1:2]).tolist() == [0, -1]


def test_panoptic_nearest_pose_allows_duplicates():
    rng = np.random.default_rng(2)
    gt = rng.normal(size=(3, 17, 3))
    pred = gt[[0]] + 0.01
    vis = np.ones((3, 17), bool)
    assert match_nearest_pose(gt, pred, vis).tolist() == [0, 0, 0]
    assert match_nearest_pose(gt, pred, vis, one_to_one=True).tolist() == [0, -1, -1]
    # joints not visible for every ground truth are ignored
    vis[1, 5] = False
    far = gt.copy()
    far[:, 5] += 100.0
    assert match_nearest_pose(gt, far, vis).tolist() == [0, 1, 2]


@pytest.mark.parametrize("matcher", ["greedy", "hungarian"])
@pytest.mark.parametrize("quirk", [True, False])
def test_batched_images_equal_per_image_matching(matcher, quirk):
    """match_keypoints_2d_images against match_keypoints_2d called image by image."""
    rng = np.random.default_rng(7)
    preds, gts, p_counts, g_counts = [], [], [], []
    for _ in range(300):
        g = rng.uniform(0, 60, (int(rng.integers(0, 4)), 24, 2)) * [1, 2]
        near = g[rng.permutation(len(g))] + rng.normal(0, 8, g.shape)
        p = np.concatenate([near, rng.uniform(0, 60, (int(rng.integers(0, 3)), 24, 2))])
        if len(p) and rng.random() < 0.05:
            p[0, :, 1] = 5.0  # a zero-height box
        preds.append(p)
        gts.append(g)
        p_counts.append(len(p))
        g_counts.append(len(g))
    kwargs = {"iou_thresh": 0.1, "matcher": matcher, "fp_counter_quirk": quirk}
    batched = match_keypoints_2d_images(
        np.concatenate(preds), np.concatenate(gts), p_counts, g_counts,
        degenerate_boxes="zero_iou", **kwargs,
    )  # fmt: skip
    for p, g, m in zip(preds, gts, batched, strict=True):
        one = match_keypoints_2d(p, g, degenerate_boxes="zero_iou", **kwargs)
        assert m.pairs.tolist() == one.pairs.tolist()
        assert m.unmatched_pred.tolist() == one.unmatched_pred.tolist()
        assert m.unmatched_gt.tolist() == one.unmatched_gt.tolist()
    names = [f"img{i}" for i in range(len(preds))]
    with pytest.raises(DegenerateBoxError, match=r"image 'img\d+': prediction \d+ / ground"):
        match_keypoints_2d_images(
            np.concatenate(preds), np.concatenate(gts), p_counts, g_counts, names=names, **kwargs
        )
