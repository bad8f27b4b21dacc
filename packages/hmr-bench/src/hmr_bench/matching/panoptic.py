"""CMU Panoptic nearest-pose matching (CRMH; MA-HMR evaluate_panoptic).

glb_vis = joints visible for EVERY ground-truth person of the image. Distance(g, p) = Euclidean
norm of the flattened difference of the two root-relative H36M-17 poses with the joints outside
glb_vis zeroed. Each ground truth takes its nearest prediction (ties: lowest index); a prediction
may serve several ground truths (counted as a mismatch image) and there is no threshold, hence no
misses. Location is ignored: only root-relative poses are compared. `one_to_one=True` (clean)
solves the assignment with scipy linear_sum_assignment instead, leaving surplus ground truths
unmatched.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["match_nearest_pose", "pose_distance"]


def pose_distance(gt_rel: np.ndarray, pred_rel: np.ndarray, gt_visible: np.ndarray) -> np.ndarray:
    """(G, P) distances of root-relative poses gt_rel (G, 17, 3), pred_rel (P, 17, 3) m over the
    joints visible for all ground truths (gt_visible (G, 17))."""
    glb = np.all(np.asarray(gt_visible, dtype=bool), axis=0).astype(np.float64)[None, :, None]
    diff = (glb * np.asarray(gt_rel))[:, None] - (glb * np.asarray(pred_rel))[None, :]
    return np.sqrt(np.einsum("gpjc,gpjc->gp", diff, diff))


def match_nearest_pose(
    gt_rel: np.ndarray, pred_rel: np.ndarray, gt_visible: np.ndarray, one_to_one: bool = False
) -> np.ndarray:
    """Index (G,) of the prediction used for each ground truth (-1: none available)."""
    num_gt = len(gt_rel)
    if len(pred_rel) == 0 or num_gt == 0:
        return np.full(num_gt, -1, np.int64)
    dist = pose_distance(gt_rel, pred_rel, gt_visible)
    if not one_to_one:
        return np.argmin(dist, axis=1).astype(np.int64)
    rows, cols = linear_sum_assignment(dist)
    out = np.full(num_gt, -1, np.int64)
    out[rows] = cols
    return out
