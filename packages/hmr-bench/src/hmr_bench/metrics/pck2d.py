"""Relative Human 2D PCK ("mPCK"; the official printout calls it "mPCKh_0.6", a misnomer).

Per matched person: the valid ground-truth joints (both coordinates > -1: the evaluator stores
invalid joints at (-2, -2)); scale s = diagonal of the tight box around them,
sqrt((x_max - x_min)^2 + (y_max - y_min)^2) px; a valid joint is correct iff
|p_hat - p| / s < 0.143 ("the head is about 1/7 of the body"); PCK = correct / valid. So the
"1/7 of the person" is 1/7 of the visible-keypoint box diagonal; it is resolution invariant as
long as prediction and ground truth share the pixel frame. People with fewer than 2 valid
joints have no PCK (NaN here; the official code stores -1 and averages it in, quirk B2).
"""

from __future__ import annotations

import numpy as np

from hmr_bench.metrics.procrustes import CHUNK_POINTS

__all__ = ["INVALID_COORD", "MIN_VALID_JOINTS", "RH_PCK_THRESH", "pck2d", "rh_valid_joints"]

RH_PCK_THRESH = 0.143
"""Official RH evaluator `error_thresh` (1/7 rounded)."""
INVALID_COORD = -2.0
"""Coordinate the RH evaluator gives invalid joints."""
MIN_VALID_JOINTS = 2


def rh_valid_joints(gt: np.ndarray) -> np.ndarray:
    """(N, J) validity as the official evaluator derives it: both coordinates > -1."""
    return np.all(np.asarray(gt) > -1.0, axis=-1)


def pck2d(
    pred: np.ndarray,
    gt: np.ndarray,
    valid: np.ndarray | None = None,
    thresh: float = RH_PCK_THRESH,
) -> np.ndarray:
    """PCK (N,) in [0, 1] of pred, gt (N, J, 2) px; valid (N, J) defaults to rh_valid_joints(gt).
    NaN for people with fewer than 2 valid joints; a zero-size box scores 0 (as officially)."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f"pred and gt must both be (N, J, 2), got {pred.shape} and {gt.shape}")
    valid = rh_valid_joints(gt) if valid is None else np.asarray(valid, dtype=bool)
    if valid.shape != gt.shape[:2]:
        raise ValueError(f"valid must be {gt.shape[:2]}, got {valid.shape}")
    n, num = valid.shape
    out = np.empty(n)
    chunk = max(1, CHUNK_POINTS // max(num, 1))
    for s in range(0, n, chunk):
        sl = slice(s, s + chunk)
        g, v = gt[sl], valid[sl]
        x, y = g[..., 0], g[..., 1]
        width = np.where(v, x, -np.inf).max(axis=1) - np.where(v, x, np.inf).min(axis=1)
        height = np.where(v, y, -np.inf).max(axis=1) - np.where(v, y, np.inf).min(axis=1)
        count = v.sum(axis=1)
        d = pred[sl] - g
        error = np.sqrt(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1])
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.sqrt(width * width + height * height)
            correct = (error < thresh * scale[:, None]) & v  # error / scale < thresh, scale > 0
            out[sl] = np.where(count >= MIN_VALID_JOINTS, correct.sum(axis=1) / count, np.nan)
    return out
