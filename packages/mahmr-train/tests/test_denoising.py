"""Denoising queries: mask structure, slot layout, noise bounds; a real forward pass with them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torchvision.ops import box_convert

from mahmr_model import ImageBatch
from mahmr_train.config import CompatConfig, DenoisingConfig, LossConfig, MatcherConfig
from mahmr_train.denoising import build_denoising, denoising_mask
from mahmr_train.losses import Criterion


def test_mask_blocks() -> None:
    groups, size, queries = 3, 4, 5  # 3 groups of 2 K = 4 slots, 5 learned queries
    blocked = denoising_mask(groups * size, size, queries)
    d = groups * size
    assert blocked.shape == (d + queries, d + queries)
    assert blocked[d:, :d].all()  # learned queries never see denoising queries
    assert not blocked[:, d:].any()  # everybody sees the learned queries
    for g in range(groups):
        rows = slice(g * size, (g + 1) * size)
        assert not blocked[rows, rows].any()  # a group sees itself
        others = torch.ones(d, dtype=torch.bool)
        others[rows] = False
        assert blocked[rows][:, :d][:, others].all()  # and no other group


def test_slots_assignment_and_noise(make_targets: Callable) -> None:
    targets = make_targets([2, 1])
    targets = dataclasses.replace(targets, has_3d=torch.tensor([True, False]))
    encoder = torch.nn.Linear(72 + 11, 8)  # reads the first 8 pose entries unchanged
    with torch.no_grad():
        encoder.weight.zero_()
        encoder.bias.zero_()
        encoder.weight[:, :8] = torch.eye(8)
    plan = build_denoising(
        targets, encoder, DenoisingConfig(groups=2), 5, torch.Generator().manual_seed(0)
    )
    assert plan is not None and plan.size == 2 * 2 * 2 and plan.groups == 2
    # positives: image 0 persons 0, 1 in chunks 0 and 2; image 1 person 0 only
    assert plan.positives[0].nonzero().flatten().tolist() == [0, 1, 4, 5]
    assert plan.positives[1].nonzero().flatten().tolist() == [0, 4]
    a = plan.assignment
    assert a.batch.tolist() == [0, 0, 0, 0, 1, 1]
    assert a.target.tolist() == [0, 1, 0, 1, 0, 0]
    # empty slots (image 1 person 1) hold nothing
    q = plan.queries
    for slot in (1, 3, 5, 7):
        assert (q.content[1, slot] == 0).all() and (q.anchors[1, slot] == 0).all()
    # corner noise: positives move by < 0.4 half-extent, negatives by [0.4, 0.8) (before clamping)
    boxes = box_convert(q.anchors.sigmoid(), "cxcywh", "xyxy")
    gt = box_convert(targets.boxes, "cxcywh", "xyxy")
    half = torch.cat([targets.boxes[..., 2:] / 2] * 2, -1)
    for slot, negative in ((0, False), (2, True), (4, False), (6, True)):
        shift = (boxes[0, slot] - gt[0, 0]).abs() / half[0, 0]
        assert (
            (shift < 0.4 + 1e-4) if not negative else (shift >= 0.4 - 1e-4) & (shift < 0.8 + 1e-4)
        ).all()
    # the 2D-only image's content carries no pose / shape (only noise): |entries| < 0.2 / 0.4
    assert q.content[1, 0].abs().max() < 0.2 + 1e-6
    pgt = build_denoising(
        targets,
        encoder,
        DenoisingConfig(groups=2),
        5,
        torch.Generator().manual_seed(0),
        pgt_content=True,
    )
    assert pgt is not None and pgt.queries.content[1, 0].abs().max() > 0.2


def test_forward_and_loss_with_denoising(make_tiny: Callable, make_targets: Callable) -> None:
    model = make_tiny(denoising=True).train()
    g = torch.Generator().manual_seed(0)
    batch = ImageBatch.from_tensors(
        [torch.rand(3, 224, 168, generator=g), torch.rand(3, 112, 224, generator=g)], canvas=224
    )
    targets = make_targets([2, 1], grid=8)
    plan = build_denoising(targets, model.dn_enc, DenoisingConfig(groups=3), 8, g)
    assert plan is not None
    out = model(batch, body_layers="all", denoising=plan.queries)
    assert out.num_denoising == plan.size == 12
    crit = Criterion(LossConfig(), CompatConfig(), MatcherConfig(), canvas=224)
    result = crit(out, targets, plan)
    assert {"confs_dn", "j2ds_dn", "boxes_dn.0", "poses_dn"} <= set(result.terms)
    assert "map_confs_dn" not in result.terms and "fov_dn" not in result.terms
    assert all(int(q) >= 12 for q in result.assignment.query)  # learned queries only
    result.total.backward()
    assert model.dn_enc.weight.grad is not None and model.dn_enc.weight.grad.abs().sum() > 0
