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

__all__ = [
    "AUC_THRESHOLDS",
    "BONE_EPS",
    "MUPOTS_PCK_THRESH",
    "PERSON_PCK_EPS",
    "UNMATCHED_ERROR",
    "ancestor_matrix",
    "joint_errors",
    "pck_fraction",
    "pck_per_person",
    "scale_to_gt_bones",
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


def ancestor_matrix(
    parents: tuple[int, ...] = MUPOTS_PARENTS, root: int = MUPOTS_ROOT
) -> np.ndarray:
    """(J, J) with A[j, k] = 1 iff bone k (joint k and its parent) lies on the path root -> j."""
    num = len(parents)
    a = np.zeros((num, num))
    for j in range(num):
        k, steps = j, 0
        while k != root:
            a[j, k] = 1.0
            k = parents[k]
            steps += 1
            if steps > num:
                raise ValueError(f"parents {parents} do not lead joint {j} to the root {root}")
    return a


_ANCESTORS = ancestor_matrix()


def scale_to_gt_bones(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Prediction (N, 17, 3) with every MPI-17 bone rescaled to the ground-truth length
    (gt (N, 17, 3)); the root joint is kept. Any units, as long as both agree."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    parents = np.asarray(MUPOTS_PARENTS)
    pred_bone = pred - pred[:, parents]
    gt_length = np.linalg.norm(gt - gt[:, parents], axis=-1, keepdims=True)
    scaled = pred_bone * gt_length / (np.linalg.norm(pred_bone, axis=-1, keepdims=True) + BONE_EPS)
    return pred[:, MUPOTS_ROOT : MUPOTS_ROOT + 1] + _ANCESTORS @ scaled


def joint_errors(pred: np.ndarray, gt: np.ndarray, matched: np.ndarray) -> np.ndarray:
    """Per-joint errors (N, 17) mm of root-relative MPI-17 skeletons pred, gt (N, 17, 3) mm after
    bone rescaling; rows with matched == False get UNMATCHED_ERROR."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    root = slice(MUPOTS_ROOT, MUPOTS_ROOT + 1)
    gt_rel = gt - gt[:, root]
    rescaled = scale_to_gt_bones(pred - pred[:, root], gt_rel)
    errors = np.linalg.norm(rescaled - gt_rel, axis=-1)
    return np.where(np.asarray(matched, dtype=bool)[:, None], errors, UNMATCHED_ERROR)


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
