"""MuPoTS-3D 3D PCK@150 mm (mpii_mupots_multiperson_eval.m and MA-HMR's Python port).

Per ground-truth person, in the MPI-17 joint order, millimetres, both skeletons root-relative
(pelvis, joint 14): the prediction is rescaled bone by bone to the ground-truth bone lengths,
root outwards (child = parent + unit(pred bone) |gt bone|, the predicted bone norm + 1e-8, the
root untouched), then e_j = |p_j - g_j|. An unmatched person gets e_j = 1e5 mm on every joint.

Two aggregations:
- per person (MA-HMR): PCK = 1 - #{counted joints with e > 150} / (#counted joints + 1e-8), where
  the counted joints are the scored joints that are not occluded (or all scored joints); a person
  whose scored joints are all occluded scores 1 even when unmatched (0 / 1e-8); the final number
  is the mean over people pooled across sequences;
- per sequence (official MATLAB): PCK = fraction of (person, scored joint) entries with e < 150,
  no occlusion mask, and the final number is the mean over sequences.
The two tie rules differ only at e = 150 exactly. AUC: the mean PCK over thresholds 0:5:150.
"""

from __future__ import annotations

import numpy as np

from hmr_bench.joints import MUPOTS_PARENTS, MUPOTS_ROOT
from hmr_bench.metrics.procrustes import CHUNK_POINTS

__all__ = [
    "AUC_THRESHOLDS",
    "BONE_EPS",
    "MUPOTS_PCK_THRESH",
    "PERSON_PCK_EPS",
    "UNMATCHED_ERROR",
    "joint_errors",
    "pck_fraction",
    "pck_per_person",
    "scale_to_gt_bones",
    "tree_levels",
]

MUPOTS_PCK_THRESH = 150.0
"""mm."""
UNMATCHED_ERROR = 1e5
"""mm, the error of every joint of an unmatched person (MA-HMR sets its prediction to 1e5)."""
BONE_EPS = 1e-8
"""Added to the predicted bone norm (mpii_map_to_gt_bone_lengths)."""
PERSON_PCK_EPS = 1e-8
"""Added to the counted-joint number in MA-HMR's per-person PCK."""
AUC_THRESHOLDS = np.arange(0.0, 151.0, 5.0)
"""mm, the official AUC thresholds 0:5:150."""


def tree_levels(
    parents: tuple[int, ...] = MUPOTS_PARENTS, root: int = MUPOTS_ROOT
) -> tuple[np.ndarray, ...]:
    """Joints grouped by their depth below the root (level 1 first), each an index array."""
    depth = {root: 0}
    while len(depth) < len(parents):
        grew = False
        for j, p in enumerate(parents):
            if j not in depth and p in depth:
                depth[j] = depth[p] + 1
                grew = True
        if not grew:
            raise ValueError(f"parents {parents} do not all lead to the root {root}")
    top = max(depth.values())
    return tuple(np.array([j for j in depth if depth[j] == d]) for d in range(1, top + 1))


_LEVELS = tree_levels()


def _rescaled_joint_major(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """scale_to_gt_bones in the joint-major layout (17, n, 3): child = rescaled parent +
    unit(pred bone) |gt bone|, one tree level at a time (5 levels), all people at once."""
    parents = list(MUPOTS_PARENTS)
    bone = pred - pred[parents]
    gt_bone = gt - gt[parents]
    gt_len = np.sqrt(np.einsum("jnc,jnc->jn", gt_bone, gt_bone))
    pred_len = np.sqrt(np.einsum("jnc,jnc->jn", bone, bone))
    bone *= (gt_len / (pred_len + BONE_EPS))[..., None]
    out = np.empty_like(pred)
    out[MUPOTS_ROOT] = pred[MUPOTS_ROOT]
    for level in _LEVELS:
        out[level] = out[np.asarray(parents)[level]] + bone[level]
    return out


def scale_to_gt_bones(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Prediction (N, 17, 3) with every MPI-17 bone rescaled to the ground-truth length
    (gt (N, 17, 3)), root outwards; the root joint is kept. Any units, as long as both agree."""
    pred = np.asarray(pred, dtype=np.float64).transpose(1, 0, 2)
    gt = np.asarray(gt, dtype=np.float64).transpose(1, 0, 2)
    return _rescaled_joint_major(pred, gt).transpose(1, 0, 2)


def joint_errors(pred: np.ndarray, gt: np.ndarray, matched: np.ndarray) -> np.ndarray:
    """Per-joint errors (N, 17) mm of root-relative MPI-17 skeletons pred, gt (N, 17, 3) mm after
    bone rescaling; rows with matched == False get UNMATCHED_ERROR."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    matched = np.asarray(matched, dtype=bool)
    out = np.empty(pred.shape[:2])
    chunk = max(1, CHUNK_POINTS // max(pred.shape[1], 1))
    for s in range(0, len(pred), chunk):
        sl = slice(s, s + chunk)
        p = np.ascontiguousarray(pred[sl].transpose(1, 0, 2))  # (17, n, 3)
        g = np.ascontiguousarray(gt[sl].transpose(1, 0, 2))
        p -= p[MUPOTS_ROOT]
        g -= g[MUPOTS_ROOT]
        d = _rescaled_joint_major(p, g)
        d -= g
        errors = np.sqrt(np.einsum("jnc,jnc->nj", d, d))
        out[sl] = np.where(matched[sl, None], errors, UNMATCHED_ERROR)
    return out


def pck_per_person(
    errors: np.ndarray, counted: np.ndarray | None = None, thresh: float = MUPOTS_PCK_THRESH
) -> np.ndarray:
    """MA-HMR's per-person PCK (N,): 1 - #(counted & e > thresh) / (#counted + 1e-8).
    errors (N, J) mm; counted (N, J) bool, default all."""
    errors = np.asarray(errors, dtype=np.float64)
    counted = np.ones(errors.shape, bool) if counted is None else np.asarray(counted, dtype=bool)
    wrong = np.count_nonzero(counted & (errors > thresh), axis=1)
    return 1.0 - wrong / (counted.sum(axis=1) + PERSON_PCK_EPS)


def pck_fraction(errors: np.ndarray, thresh: float = MUPOTS_PCK_THRESH) -> float:
    """The official per-sequence PCK: the fraction of all entries of errors (N, J) below thresh."""
    errors = np.asarray(errors, dtype=np.float64)
    return float(np.mean(errors < thresh)) if errors.size else float("nan")
