"""MuPoTS-3D identity matching (mpii_multiperson_get_identity_matching.m, MA-HMR `_match_poses`).

Ground truths are visited in annotation order. For each, every still-free prediction scores the
number of matching joints (MPI-17 joints 1..13) whose |dx| < 40 AND |dy| < 40 px in the original
image (a per-axis box test, not a Euclidean distance); the best score wins (ties: the lowest
prediction index) if it is > 0, and that prediction is taken. No prediction: every ground truth
is a miss (the original crashes on an empty argmax).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MUPOTS_MATCH_PX", "match_mupots"]

MUPOTS_MATCH_PX = 40.0
"""Per-axis pixel threshold (original image pixels)."""


def match_mupots(
    gt_2d: np.ndarray, pred_2d: np.ndarray, threshold: float = MUPOTS_MATCH_PX
) -> np.ndarray:
    """Index (G,) of the prediction matched to each ground truth, -1 for none.
    gt_2d (G, J, 2), pred_2d (P, J, 2) px: the matching joints only."""
    gt_2d = np.asarray(gt_2d, dtype=np.float64)
    pred_2d = np.asarray(pred_2d, dtype=np.float64)
    pair = np.full(len(gt_2d), -1, np.int64)
    if len(pred_2d) == 0 or len(gt_2d) == 0:
        return pair
    if gt_2d.shape[1:] != pred_2d.shape[1:]:
        raise ValueError(f"ground truth {gt_2d.shape} and predictions {pred_2d.shape} differ")
    # scores[g, p]: joints within the box; the sequential part is only the taking of predictions
    close = np.all(np.abs(gt_2d[:, None] - pred_2d[None, :]) < threshold, axis=-1)
    scores = close.sum(axis=-1)
    taken = np.zeros(len(pred_2d), bool)
    for g in range(len(gt_2d)):
        s = np.where(taken, 0, scores[g])
        best = int(np.argmax(s))
        if s[best] > 0:
            pair[g] = best
            taken[best] = True
    return pair
