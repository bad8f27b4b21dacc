"""Hungarian matching of queries to ground-truth people (spec 8).

Cost of query q and person t, all images at once in torch (padded to the most people):
    C = w_conf 0.25 (1 - p)^2 (-log p) + w_box |B_q - B_t|_1 - w_giou GIoU(B_q, B_t)
        + w_kpts sum |J_q - J_t| M_t / (sum M_t + 1e-6)
with p the query's confidence (from its logit), boxes (cx, cy, w, h) / S, the first 22 2D joints
divided by S and M their mask (counted per coordinate). Each image is then solved with scipy's
`linear_sum_assignment` on its own (Q, P_b) block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor
from torchvision.ops import box_convert

from .config import MatcherConfig

__all__ = ["Assignment", "generalized_box_iou", "hungarian_match", "match_cost"]


@dataclass(frozen=True)
class Assignment:
    """Matched pairs of a batch: `batch`, `query`, `target` (M,) int64, image after image."""

    batch: Tensor
    query: Tensor
    target: Tensor

    def __len__(self) -> int:
        return int(self.batch.shape[0])

    @classmethod
    def empty(cls, device: torch.device | str = "cpu") -> Assignment:
        e = torch.zeros(0, dtype=torch.long, device=device)
        return cls(e, e, e)


def generalized_box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise GIoU of (..., N, 4) and (..., M, 4) xyxy boxes -> (..., N, M) (batched
    `torchvision.ops.generalized_box_iou`)."""
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    lt = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])
    rb = torch.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = area_a[..., :, None] + area_b[..., None, :] - inter
    iou = inter / union
    lt_hull = torch.minimum(a[..., :, None, :2], b[..., None, :, :2])
    rb_hull = torch.maximum(a[..., :, None, 2:], b[..., None, :, 2:])
    hull = (rb_hull - lt_hull).clamp(min=0).prod(-1)
    return iou - (hull - union) / hull


@torch.no_grad()
def match_cost(
    conf_logits: Tensor,
    boxes: Tensor,
    joints_2d: Tensor,
    gt_boxes: Tensor,
    gt_joints_2d: Tensor,
    gt_joints_mask: Tensor,
    canvas: int,
    config: MatcherConfig,
    focal_alpha: float = 0.25,
    focal_gamma: float = 2.0,
) -> Tensor:
    """(B, Q, P) matching costs.

    Args:
        conf_logits: (B, Q) detection logits; boxes: (B, Q, 4) cxcywh / S;
        joints_2d: (B, Q, J, 2) predicted 2D joints (px).
        gt_boxes: (B, P, 4); gt_joints_2d: (B, P, J, 2) px; gt_joints_mask: (B, P, J) bool.
        canvas: S (px).
    """
    logits = conf_logits.float()
    prob = logits.sigmoid()
    cost_conf = focal_alpha * (1 - prob) ** focal_gamma * F.softplus(-logits)  # -log p
    cost_box = torch.cdist(boxes.float(), gt_boxes.float(), p=1)
    giou = generalized_box_iou(
        box_convert(boxes.float(), "cxcywh", "xyxy"),
        box_convert(gt_boxes.float(), "cxcywh", "xyxy"),
    )
    n = config.num_joints
    pred = joints_2d[:, :, :n].float() / canvas
    gt = gt_joints_2d[:, :, :n].float() / canvas
    mask = gt_joints_mask[:, :, :n, None].expand_as(gt).float()  # per coordinate
    diff = (pred[:, :, None] - gt[:, None]).abs() * mask[:, None]  # (B, Q, P, n, 2)
    cost_kpts = diff.flatten(3).sum(-1) / (mask.flatten(2).sum(-1)[:, None] + 1e-6)
    return (
        config.cost_conf * cost_conf[:, :, None]
        + config.cost_box * cost_box
        - config.cost_giou * giou
        + config.cost_kpts * cost_kpts
    )


def hungarian_match(cost: Tensor, num_people: Tensor) -> Assignment:
    """Optimal one-to-one assignment per image of (B, Q, P) costs, image b using its first
    `num_people[b]` columns (scipy `linear_sum_assignment`, on the CPU)."""
    device = cost.device
    blocks = cost.detach().float().cpu().numpy()
    counts = num_people.cpu().tolist()
    batch, query, target = [], [], []
    for b, n in enumerate(counts):
        if n == 0:
            continue
        rows, cols = linear_sum_assignment(blocks[b, :, :n])
        batch.append(np.full(len(rows), b))
        query.append(rows)
        target.append(cols)
    if not batch:
        return Assignment.empty(device)
    return Assignment(
        *(torch.from_numpy(np.concatenate(x)).long().to(device) for x in (batch, query, target))
    )
