"""CMU Panoptic nearest-pose matching (CRMH; MA-HMR evaluate_panoptic).

glb_vis = joints visible for EVERY ground-truth person of the image (MA-HMR: the visibility
values summed over the people are >= people - 0.1, the same for 0 / 1 values). Distance(g, p) =
Euclidean norm of the flattened difference of the two root-relative H36M-17 poses with the joints
outside glb_vis zeroed; `float32=True` computes it as MA-HMR's `vectorize_distance` does,
sqrt(|a|^2 + |b|^2 - 2 a.b) in float32, where near ties can flip and a negative square gives
NaN (which argmin then picks). Each ground truth takes its nearest prediction (ties: lowest
index); a prediction may serve several ground truths (counted as a mismatch image) and there is
no threshold, hence no misses. Location is ignored: only root-relative poses are compared.
`one_to_one=True` (clean) solves the assignment with scipy linear_sum_assignment instead, leaving
surplus ground truths unmatched.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["match_nearest_pose", "pose_distance"]


GLOBAL_VIS_SLACK = 0.1
"""MA-HMR: a joint is used for matching when its visibility summed over the people is >= people
- 0.1 ("to avoid in-accuracy in float point number")."""


def pose_distance(
    gt_rel: np.ndarray, pred_rel: np.ndarray, gt_visible: np.ndarray, float32: bool = False
) -> np.ndarray:
    """(G, P) distances of root-relative poses gt_rel (G, 17, 3), pred_rel (P, 17, 3) m over the
    joints visible for all ground truths (gt_visible (G, 17), bool or visibility values)."""
    vis = np.asarray(gt_visible, dtype=np.float64)
    glb = (vis.sum(axis=0) >= len(vis) - GLOBAL_VIS_SLACK).astype(np.float64)[None, :, None]
    a, b = glb * np.asarray(gt_rel), glb * np.asarray(pred_rel)
    if not float32:
        diff = a[:, None] - b[None, :]
        return np.sqrt(np.einsum("gpjc,gpjc->gp", diff, diff))
    a = a.reshape(len(a), -1).astype(np.float32)
    b = b.reshape(len(b), -1).astype(np.float32)
    square = np.sum(a**2, axis=1)[:, None] + np.sum(b**2, axis=1)[None, :] - 2 * (a @ b.T)
    with np.errstate(invalid="ignore"):
        return np.sqrt(square)


def match_nearest_pose(
    gt_rel: np.ndarray,
    pred_rel: np.ndarray,
    gt_visible: np.ndarray,
    one_to_one: bool = False,
    float32: bool = False,
) -> np.ndarray:
    """Index (G,) of the prediction used for each ground truth (-1: none available)."""
    num_gt = len(gt_rel)
    if len(pred_rel) == 0 or num_gt == 0:
        return np.full(num_gt, -1, np.int64)
    dist = pose_distance(gt_rel, pred_rel, gt_visible, float32)
    if not one_to_one:
        return np.argmin(dist, axis=1).astype(np.int64)
    rows, cols = linear_sum_assignment(np.nan_to_num(dist))  # NaN: a float32 distance ~ 0
    out = np.full(num_gt, -1, np.int64)
    out[rows] = cols
    return out
