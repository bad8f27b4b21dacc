"""Every loss against a hand-computed value, the aggregation, and validity gating."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import pytest
import torch

from mahmr_train.config import CompatConfig, LossConfig, LossWeights, MatcherConfig
from mahmr_train.losses import (
    Criterion,
    betas_l1,
    box_l1,
    focal_terms,
    fov_terms,
    giou_terms,
    inverse_depth_l1,
    joints2d_l1,
    joints3d_l1,
    ordinal_depth_terms,
    pose_l1,
    relative_metric_terms,
)

LN2 = math.log(2)


def test_focal_loss_from_logits() -> None:
    logits = torch.tensor([0.0, 0.0, math.log(3.0)])  # p = 0.5, 0.5, 0.75
    labels = torch.tensor([1.0, 0.0, 1.0])
    expected = [0.25 * 0.25 * LN2, 0.75 * 0.25 * LN2, 0.25 * 0.0625 * -math.log(0.75)]
    torch.testing.assert_close(focal_terms(logits, labels, 0.25, 2.0), torch.tensor(expected))
    # large logits stay finite (BCE on probabilities would clamp log at -100)
    assert torch.isfinite(focal_terms(torch.tensor([-200.0]), torch.tensor([1.0]), 0.25, 2)).all()


def test_box_terms() -> None:
    pred = torch.tensor([[0.25, 0.5, 0.5, 1.0], [0.125, 0.25, 0.25, 0.5], [0.5, 0.5, 0.2, 0.2]])
    gt = torch.tensor([[0.75, 0.5, 0.5, 1.0], [0.75, 0.75, 0.5, 0.5], [0.5, 0.5, 0.2, 0.2]])
    torch.testing.assert_close(box_l1(pred, gt), torch.tensor([0.5, 1.375, 0.0]))
    # touching halves: IoU 0, hull = union -> GIoU 0; far corners: hull 1, union 0.375 -> -0.625
    torch.testing.assert_close(giou_terms(pred, gt), torch.tensor([1.0, 1.625, 0.0]))


def test_pose_loss_on_matrices_and_axis_angle() -> None:
    rz = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 deg about z
    pred = torch.eye(3).repeat(1, 24, 1, 1)
    pred[0, 0] = rz
    gt = torch.zeros(1, 72)
    torch.testing.assert_close(pose_l1(pred, gt), torch.tensor([4.0 / 216]))
    torch.testing.assert_close(pose_l1(pred, gt, axis_angle=True), torch.tensor([math.pi / 2 / 72]))


def test_betas_joints_and_depth_terms() -> None:
    weights = torch.tensor(LossConfig().betas_weights)
    got = betas_l1(torch.ones(1, 11), torch.zeros(1, 11), weights)
    torch.testing.assert_close(got, torch.tensor([17.04 / 11]))
    gt = torch.rand(2, 45, 3)
    pred = gt + torch.tensor([0.3, -0.2, 5.0])  # a translation: root-relative error 0
    pred[1, 7, 0] += 0.1
    torch.testing.assert_close(
        joints3d_l1(pred, gt), torch.tensor([0.0, 0.1 / 135]), atol=1e-6, rtol=0
    )
    gt2 = torch.zeros(1, 45, 2)
    pred2 = torch.full((1, 45, 2), 10.0)
    mask = torch.zeros(1, 45, dtype=torch.bool)
    mask[0, :3] = True  # 3 joints = 6 of 90 entries count, the mean is over all 90
    torch.testing.assert_close(
        joints2d_l1(pred2, gt2, mask, 100), torch.tensor([6 * 10 / 90 / 100])
    )
    # d~ = f_gt d / f = 1000 * 5 / 500 = 10
    got = inverse_depth_l1(
        torch.tensor([5.0, 5.0]),
        torch.tensor([500.0, 500.0]),
        torch.tensor([1000.0, 1000.0]),
        torch.tensor([10.0, 5.0]),
    )
    torch.testing.assert_close(got, torch.tensor([0.0, 0.1]), atol=1e-6, rtol=0)


def test_relative_metric_loss_pairs_and_reductions() -> None:
    # image 0: gt [5, 5.5, 7]: only (0, 1) within 1 m; pred gap 1 vs gt 0.5 -> log 1.5
    # image 1: gt [3, 3.8, 3.9], pred all 3: log 1.8, log 1.9, log 1.1
    gt = torch.tensor([5.0, 5.5, 7.0, 3.0, 3.8, 3.9])
    pred = torch.tensor([5.0, 6.0, 7.0, 3.0, 3.0, 3.0])
    image = torch.tensor([0, 0, 0, 1, 1, 1])
    total, count = relative_metric_terms(pred, gt, image, 1.0, per_image=False)
    pairs = [math.log(1.5), math.log(1.8), math.log(1.9), math.log(1.1)]
    assert count == 4 and math.isclose(float(total) / 4, sum(pairs) / 4, rel_tol=1e-6)
    total, count = relative_metric_terms(pred, gt, image, 1.0, per_image=True)
    per_image = (pairs[0] + sum(pairs[1:]) / 3) / 2
    assert count == 2 and math.isclose(float(total) / 2, per_image, rel_tol=1e-6)
    total, count = relative_metric_terms(pred[:1], gt[:1], image[:1], 1.0, per_image=True)
    assert float(total) == 0.0 and float(count) == 0.0


def test_ordinal_depth_loss() -> None:
    pred = torch.tensor([2.0, 3.0, 2.5])
    layers = torch.tensor([0, 1, 1])  # 1 and 2 behind 0, same layer as each other
    total, count = ordinal_depth_terms(pred, layers, torch.zeros(3, dtype=torch.long))
    softplus = lambda x: math.log1p(math.exp(x))  # noqa: E731
    expected = softplus(-1.0) + softplus(-0.5) + 0.5
    assert int(count) == 3 and math.isclose(float(total), expected, rel_tol=1e-6)


def test_fov_loss_is_asymmetric() -> None:
    got = fov_terms(torch.tensor([1.0, 0.5]), torch.tensor([0.8, 0.8]), 3.0)
    torch.testing.assert_close(got, torch.tensor([3 * 0.04, 0.09]))


def _criterion(compat: CompatConfig | None = None, aux: bool = True, **weights: float) -> Criterion:
    all_terms = {f.name: 1.0 for f in dataclasses.fields(LossWeights)}
    config = LossConfig(weights=LossWeights(**{**all_terms, **weights}), aux=aux)
    return Criterion(config, compat or CompatConfig(), MatcherConfig(), canvas=224)


def test_criterion_keys_weights_and_total(make_output: Callable, make_targets: Callable) -> None:
    out = make_output(2, 4, layers=3)
    targets = make_targets([2, 1])
    result = _criterion(poses=5.0)(out, targets)
    keys = set(result.terms)
    assert {"confs", "poses", "j3ds", "depths_mt", "fov", "map_confs", "map_scales"} <= keys
    assert {"poses.0", "poses.1"} <= keys and "fov.0" not in keys and "map_confs.1" not in keys
    expected = sum(
        v * (5.0 if k.split(".")[0] == "poses" else 1.0) for k, v in result.terms.items()
    )
    torch.testing.assert_close(result.total, expected)
    assert len(result.assignment) == 3
    result.total.backward()
    assert all(torch.isfinite(p.grad).all() for p in (out.final.boxes, out.final.joints, out.fov))


def test_two_d_only_images_give_no_3d_or_relative_loss(
    make_output: Callable, make_targets: Callable
) -> None:
    out = make_output(2, 4)
    targets = make_targets([2, 2], has_3d=[True, False])
    base = _criterion(aux=False)(out, targets).terms
    # garbage 3D ground truth on the 2D-only image changes nothing and does not crash
    poisoned = dataclasses.replace(
        targets,
        poses=torch.where(targets.has_3d[:, None, None], targets.poses, torch.nan),
        betas=torch.where(targets.has_3d[:, None, None], targets.betas, torch.nan),
        joints_3d=torch.where(targets.has_3d[:, None, None, None], targets.joints_3d, torch.nan),
        depths=torch.where(targets.has_3d[:, None], targets.depths, torch.nan),
    )
    result = _criterion(aux=False)(out, poisoned)
    for key in ("poses", "betas", "j3ds", "depths", "depths_mt", "j2ds", "boxes", "confs"):
        torch.testing.assert_close(result.terms[key], base[key], msg=key)
    # gradients of the 3D terms do not reach the 2D-only image's predictions
    three_d = sum(result.terms[k] for k in ("poses", "betas", "j3ds", "depths", "depths_mt"))
    grads = torch.autograd.grad(three_d, [out.final.joints, out.final.betas])
    assert all(float(g[1].abs().sum()) == 0.0 for g in grads)
    assert any(float(g[0].abs().sum()) > 0.0 for g in grads)
    # a batch of 2D-only images: every 3D term is exactly 0
    only_2d = dataclasses.replace(poisoned, has_3d=torch.tensor([False, False]))
    terms = _criterion(aux=False)(out, only_2d).terms
    assert all(
        float(terms[k].detach()) == 0.0 for k in ("poses", "betas", "j3ds", "depths", "depths_mt")
    )
    assert float(terms["j2ds"].detach()) > 0


def test_normalisers_and_reduce(make_output: Callable, make_targets: Callable) -> None:
    """Terms are sums over the batch divided by counts passed through `reduce`."""
    out, targets = make_output(2, 4), make_targets([2, 1])
    crit = _criterion(aux=False)
    local = crit(out, targets).terms
    doubled = crit(out, targets, reduce=lambda x: 2 * x).terms
    for key in ("boxes", "poses", "confs", "map_confs", "fov"):
        torch.testing.assert_close(doubled[key], local[key] / 2, msg=key)


def test_fov_compat_sum_and_detect_all_negatives(
    make_output: Callable, make_targets: Callable
) -> None:
    out, targets = make_output(3, 4), make_targets([1, 1, 1])
    mean = _criterion(aux=False)(out, targets).terms["fov"]
    summed = _criterion(CompatConfig(fov_sum=True), aux=False)(out, targets).terms["fov"]
    # same GT camera (fx = fy): the official sum over 3 images = mean * 3; ours * 32 (reference)
    torch.testing.assert_close(summed * 32 / 3, mean)
    # images that do not annotate everybody get no negatives: confs only from matched queries
    partial = dataclasses.replace(targets, detect_all=torch.tensor([False, False, False]))
    result = _criterion(aux=False, confs=1.0)(out, partial)
    logits = out.final.conf_logits
    a = result.assignment
    expected = focal_terms(logits[a.batch, a.query], torch.ones(3), 0.25, 2.0).mean()
    torch.testing.assert_close(result.terms["confs"], expected)


@pytest.mark.parametrize("per_image", [True, False])
def test_relative_metric_compat_switch(
    per_image: bool, make_output: Callable, make_targets: Callable
) -> None:
    out, targets = make_output(2, 4), make_targets([3, 2])
    compat = CompatConfig(rm_pairs_batch_mean=not per_image)
    result = _criterion(compat, aux=False)(out, targets)
    a = result.assignment
    pred = out.final.joints[a.batch, a.query, 0, 2]
    gt = targets.depths[a.batch, a.target]
    total, count = relative_metric_terms(pred, gt, a.batch, 1.0, per_image)
    torch.testing.assert_close(result.terms["depths_mt"], total / count.clamp(min=1))
