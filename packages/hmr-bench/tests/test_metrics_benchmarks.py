"""MuPoTS 3D PCK and Panoptic MPJPE: worked examples and loop oracles."""

import numpy as np
import pytest

from hmr_bench.joints import (
    J24_TO_H36M_CORRECT,
    MUPOTS_PARENTS,
    MUPOTS_ROOT,
    MUPOTS_TRAVERSAL,
    PANOPTIC_COCO19_TO_J24,
)
from hmr_bench.metrics import (
    joint_errors,
    panoptic_gt_h36m,
    panoptic_mpjpe,
    pck_fraction,
    pck_per_person,
    scale_to_gt_bones,
)


def scale_loop(pred, gt):
    """mpii_map_to_gt_bone_lengths as MA-HMR's _scale_to_gt loops it."""
    out = pred.copy()
    for j in MUPOTS_TRAVERSAL:
        parent = MUPOTS_PARENTS[j]
        length = np.linalg.norm(gt[j] - gt[parent])
        bone = pred[j] - pred[parent]
        out[j] = out[parent] + bone * length / (np.linalg.norm(bone) + 1e-8)
    return out


def test_bone_rescaling_matches_loop_and_keeps_gt_lengths():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(5, 17, 3)) * 300
    pred = rng.normal(size=(5, 17, 3)) * 250
    ours = scale_to_gt_bones(pred, gt)
    for i in range(5):
        np.testing.assert_allclose(ours[i], scale_loop(pred[i], gt[i]), atol=1e-9)
    parents = list(MUPOTS_PARENTS)
    np.testing.assert_allclose(
        np.linalg.norm(ours - ours[:, parents], axis=-1),
        np.linalg.norm(gt - gt[:, parents], axis=-1),
        atol=1e-6,
    )
    np.testing.assert_array_equal(ours[:, MUPOTS_ROOT], pred[:, MUPOTS_ROOT])


def test_unmatched_and_occluded_pck():
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(2, 17, 3)) * 300
    errors = joint_errors(gt, gt, np.array([True, False]))[:, :14]
    assert errors[0].max() < 1e-6 and (errors[1] == 1e5).all()
    per_person = pck_per_person(errors)
    assert per_person.tolist() == pytest.approx([1.0, 0.0], abs=1e-8)
    # a fully occluded, unmatched person scores 1 under MA-HMR's formula (0 / 1e-8)
    counted = np.ones((2, 14), bool)
    counted[1] = False
    assert pck_per_person(errors, counted)[1] == pytest.approx(1.0)
    # "All" counts the miss, "Matched" excludes it
    assert per_person.mean() == pytest.approx(0.5) and per_person[0] == 1.0


def test_pck_tie_rules_differ_at_threshold():
    errors = np.array([[150.0, 10.0]])
    assert pck_per_person(errors)[0] == pytest.approx(1.0)  # MA-HMR: only e > 150 is wrong
    assert pck_fraction(errors) == 0.5  # official: e < 150 is right


def test_panoptic_76_47_example():
    kpts3d = np.zeros((1, 24, 4))
    kpts3d[0, list(PANOPTIC_COCO19_TO_J24), 3] = 1.0  # the 15 J24 slots Panoptic fills
    kpts3d[0, :, :3] = np.random.default_rng(2).normal(size=(24, 3))
    gt_rel, vis = panoptic_gt_h36m(kpts3d)
    assert vis[0].sum() == 14 and not vis[0, [7, 9, 10]].any()  # root + 13 joints
    pred = gt_rel.copy()
    pred[0, 1:, 0] += 0.1  # every non-root joint 100 mm off
    assert panoptic_mpjpe(pred, gt_rel, vis)[0] == pytest.approx(1300 / 17)  # 76.47 mm
    assert panoptic_mpjpe(pred, gt_rel, vis, divisor=None)[0] == pytest.approx(100.0)


def test_panoptic_root_shift():
    kpts3d = np.zeros((1, 24, 4))
    kpts3d[0, :, 3] = 1.0
    kpts3d[0, 14, :3] = [0.0, 1.0, 5.0]
    kpts3d[0, 2, :3] = [-0.1, 1.0, 5.0]  # right hip level with the body centre
    gt_rel, _ = panoptic_gt_h36m(kpts3d)
    assert list(J24_TO_H36M_CORRECT)[:2] == [14, 2]
    # the body centre is moved 0.06 m up (y down) and becomes the root: the hip sits below it
    np.testing.assert_allclose(gt_rel[0, 0], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(gt_rel[0, 1], [-0.1, 0.06, 0.0])
    np.testing.assert_array_equal(kpts3d[0, 14, :3], [0.0, 1.0, 5.0])  # input untouched
