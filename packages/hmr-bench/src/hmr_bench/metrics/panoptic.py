"""CMU Panoptic MPJPE as CRMH defined it and MA-HMR, ROMP and BEV use it.

Ground truth: the J24 skeleton (metres, camera frame, 4th channel visibility). The body centre
(J24 slot 14) is moved 0.06 m up (y -= 0.06, "following BMP"); the skeleton is mapped
J24 -> H36M-17 (slot 14 becomes the H36M root) and made relative to that moved centre.
Prediction: H36M-17 regressed from the mesh, relative to its row 0. Per person error =
1000 sum_j v_j |p_j - g_j| / 17: it divides by 17 although only 13 non-root joints carry ground
truth (quirk B9), so it is 13/17 of the mean over visible joints; `divisor=None` gives that mean
(over visible non-root joints) instead. MA-HMR multiplies by the visibility value v_j itself, a
weight where a file holds values other than 0 / 1.
"""

from __future__ import annotations

import numpy as np

from hmr_bench.joints import J24_TO_H36M_CORRECT, PANOPTIC_ROOT_J24

__all__ = ["PANOPTIC_DIVISOR", "PANOPTIC_ROOT_Y_SHIFT", "panoptic_gt_h36m", "panoptic_mpjpe"]

PANOPTIC_ROOT_Y_SHIFT = -0.06
"""m added to the y of the ground-truth body centre (MA-HMR / BMP evaluate_panoptic)."""
PANOPTIC_DIVISOR = 17
"""The per-person error is divided by all 17 H36M slots (CRMH)."""


def panoptic_gt_h36m(
    kpts3d: np.ndarray,
    root_y_shift: float = PANOPTIC_ROOT_Y_SHIFT,
    j24_to_h36m: tuple[int, ...] = J24_TO_H36M_CORRECT,
    weights: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Root-relative H36M-17 ground truth (P, 17, 3) m and visibility (P, 17) from kpts3d
    (P, 24, 4) (x, y, z m, visibility): bool (value > 0), or with `weights` the values
    themselves (float), which MA-HMR multiplies the joint errors with."""
    kpts3d = np.asarray(kpts3d, dtype=np.float64)
    if kpts3d.ndim != 3 or kpts3d.shape[1:] != (24, 4):
        raise ValueError(f"kpts3d must be (P, 24, 4), got {kpts3d.shape}")
    shifted = kpts3d.copy()
    shifted[:, PANOPTIC_ROOT_J24, 1] += root_y_shift  # the joint itself moves, as in MA-HMR
    mapped = shifted[:, list(j24_to_h36m)]
    root = shifted[:, PANOPTIC_ROOT_J24, :3]
    visibility = mapped[..., 3] if weights else mapped[..., 3] > 0
    return mapped[..., :3] - root[:, None, :], visibility


def panoptic_mpjpe(
    pred_rel: np.ndarray,
    gt_rel: np.ndarray,
    visible: np.ndarray,
    divisor: int | None = PANOPTIC_DIVISOR,
) -> np.ndarray:
    """Per-person error (P,) mm of root-relative H36M-17 pred_rel, gt_rel (P, 17, 3) m with
    visibility (P, 17), bool or float weights: sum_j w_j |p_j - g_j| / divisor, or the mean over
    the visible (w > 0) non-root joints."""
    pred_rel = np.asarray(pred_rel, dtype=np.float64)
    gt_rel = np.asarray(gt_rel, dtype=np.float64)
    if pred_rel.shape != gt_rel.shape or pred_rel.shape[1:] != (17, 3):
        raise ValueError(f"pred and gt must be (P, 17, 3), got {pred_rel.shape}, {gt_rel.shape}")
    weight = np.asarray(visible, dtype=np.float64)
    dist = np.where(weight != 0, weight * np.linalg.norm(pred_rel - gt_rel, axis=-1), 0.0)
    if divisor is not None:
        return 1000.0 * dist.sum(axis=1) / divisor
    count = (weight[:, 1:] > 0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, 1000.0 * dist[:, 1:].sum(axis=1) / count, np.nan)
