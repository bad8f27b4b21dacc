"""The Hungarian matcher against brute force over permutations, batched GIoU against torchvision."""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.ops import box_convert
from torchvision.ops import generalized_box_iou as tv_giou

from mahmr_train.config import MatcherConfig
from mahmr_train.matcher import generalized_box_iou, hungarian_match, match_cost


def _loop_cost(logit, box, j2d, gt_box, gt_j2d, gt_mask, canvas, cfg):
    """One (query, person) cost with plain Python arithmetic (the spec's formulas)."""
    p = 1 / (1 + math.exp(-logit))
    c_conf = 0.25 * (1 - p) ** 2 * (-math.log(p + 1e-8))
    c_box = sum(abs(a - b) for a, b in zip(box, gt_box, strict=True))
    xyxy = [box_convert(torch.tensor(np.array([x])), "cxcywh", "xyxy") for x in (box, gt_box)]
    c_giou = -float(tv_giou(*xyxy)[0, 0])
    num = den = 0.0
    for j in range(cfg.num_joints):
        for c in range(2):
            m = float(gt_mask[j])
            num += abs(j2d[j][c] - gt_j2d[j][c]) / canvas * m
            den += m
    c_kpts = num / (den + 1e-6)
    return (
        cfg.cost_conf * c_conf
        + cfg.cost_box * c_box
        + cfg.cost_giou * c_giou
        + cfg.cost_kpts * c_kpts
    )


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), counts=st.lists(st.integers(0, 4), min_size=1, max_size=3))
def test_matcher_equals_brute_force(seed: int, counts: list[int]) -> None:
    rng = np.random.default_rng(seed)
    b, q, p, j, canvas = len(counts), 5, max(max(counts), 1), 24, 224
    cfg = MatcherConfig()
    logits = rng.normal(0, 2, (b, q))
    boxes = np.concatenate(
        [rng.uniform(0.2, 0.8, (b, q, 2)), rng.uniform(0.05, 0.4, (b, q, 2))], -1
    )
    gt_boxes = np.concatenate(
        [rng.uniform(0.2, 0.8, (b, p, 2)), rng.uniform(0.05, 0.4, (b, p, 2))], -1
    )
    j2d, gt_j2d = rng.uniform(0, canvas, (b, q, j, 2)), rng.uniform(0, canvas, (b, p, j, 2))
    gt_mask = rng.random((b, p, j)) < 0.8
    t = lambda x: torch.tensor(x)  # noqa: E731
    cost = match_cost(t(logits), t(boxes), t(j2d), t(gt_boxes), t(gt_j2d), t(gt_mask), canvas, cfg)
    assignment = hungarian_match(cost, torch.tensor(counts))
    for i, n in enumerate(counts):
        loop = np.array(
            [
                [
                    _loop_cost(
                        logits[i, a],
                        boxes[i, a],
                        j2d[i, a],
                        gt_boxes[i, c],
                        gt_j2d[i, c],
                        gt_mask[i, c],
                        canvas,
                        cfg,
                    )
                    for c in range(n)
                ]
                for a in range(q)
            ]
        )
        np.testing.assert_allclose(
            cost[i, :, :n].numpy(), loop.reshape(q, n), rtol=1e-5, atol=1e-5
        )  # float32
        chosen = assignment.batch == i
        got = loop[assignment.query[chosen].numpy(), assignment.target[chosen].numpy()].sum()
        best = min(
            (
                sum(loop[r, c] for c, r in enumerate(rows))
                for rows in itertools.permutations(range(q), n)
            ),
            default=0.0,
        )
        assert int(chosen.sum()) == n
        assert sorted(assignment.target[chosen].tolist()) == list(range(n))
        assert abs(got - best) < 1e-5


def test_batched_giou_equals_torchvision() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 6, 4, generator=g)
    b = torch.rand(3, 4, 4, generator=g)
    a[..., 2:] += a[..., :2]
    b[..., 2:] += b[..., :2]
    got = generalized_box_iou(a, b)
    for i in range(3):
        torch.testing.assert_close(got[i], tv_giou(a[i], b[i]))
