"""Two-stage matching of ViTPose people to 44-joint people (DTO-Humans `dto_framework.py`).

Stage A assigns each ViTPose person (COCO-17 keypoints) to an existing pseudo-ground-truth (pGT)
person, stage B assigns the ViTPose people left over to new CameraHMR predictions (indexed like
the detections). The test is a PCKh@0.6: a candidate's 44 joints are mapped to COCO-17 order, and
a visible ViTPose joint (score >= 0.5) matches when it lies within 0.6 x the CANDIDATE's head size
(|head-top - neck|, LSP joints 38 and 37). A candidate is eligible when strictly more than half of
the visible joints match; the eligible candidate with the most matches wins (first on ties), and
each candidate is used once. ViTPose people are processed greedily in order.

Fixes of the official behaviour (A.13), on by default; `compat=True` reproduces the official code:
- Stage B never picks the prediction of a detection already matched in stage A (the official
  code can, adding the same person twice: once with the pGT, once with CameraHMR's estimate).
- A candidate whose head size is zero or not finite (e.g. missing neck / head-top entries) is
  never eligible, with a logged warning. Officially its threshold is 0, so it matches only
  ViTPose joints that coincide with it exactly (NaN never matches in either mode).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "COCO17_FROM_44",
    "TwoStageMatch",
    "coco17_from_44",
    "head_size_44",
    "match_keypoints",
    "match_two_stage",
]

logger = logging.getLogger(__name__)

# 44-joint index of each COCO-17 joint (nose, l/r eye, l/r ear, l/r shoulder, ..., l/r ankle).
COCO17_FROM_44 = np.array([0, 16, 15, 18, 17, 34, 33, 35, 32, 36, 31, 28, 27, 29, 26, 30, 25])
NECK_44, HEAD_TOP_44 = 37, 38  # LSP neck and head-top


@dataclass(frozen=True)
class TwoStageMatch:
    """`stage_a`: (v, g) pairs, ViTPose person v -> existing pGT person g; `stage_b`: (v, p)
    pairs, ViTPose person v unmatched in A -> new prediction p (the row then uses detection p's
    box, mask and score). Both in the order they were made (increasing v)."""

    stage_a: tuple[tuple[int, int], ...]
    stage_b: tuple[tuple[int, int], ...]

    def __len__(self) -> int:
        return len(self.stage_a) + len(self.stage_b)


def _check_44(keypoints_44: np.ndarray) -> np.ndarray:
    keypoints_44 = np.asarray(keypoints_44, dtype=np.float64)
    if keypoints_44.ndim < 2 or keypoints_44.shape[-2] != 44 or keypoints_44.shape[-1] < 2:
        raise ValueError(f"expected 44-joint keypoints (...,44,2), got {keypoints_44.shape}")
    return keypoints_44[..., :2]


def coco17_from_44(keypoints_44: np.ndarray) -> np.ndarray:
    """The reference map R: (...,44,2) pixels -> (...,17,2) in COCO-17 order."""
    return _check_44(keypoints_44)[..., COCO17_FROM_44, :]


def head_size_44(keypoints_44: np.ndarray) -> np.ndarray:
    """|k[38] - k[37]| (head-top minus neck) in pixels: (...,44,2) -> (...)."""
    keypoints_44 = _check_44(keypoints_44)
    return np.linalg.norm(
        keypoints_44[..., HEAD_TOP_44, :] - keypoints_44[..., NECK_44, :], axis=-1
    )


def _match_counts(
    vitpose_kp: np.ndarray,
    visible: np.ndarray,
    candidates_44: np.ndarray,
    pck_ratio: float,
) -> np.ndarray:
    """(Nv,Nc) number of visible ViTPose joints within pck_ratio x head size of each candidate."""
    reference = coco17_from_44(candidates_44)  # (Nc,17,2)
    threshold = pck_ratio * head_size_44(candidates_44)  # (Nc,)
    dist = np.linalg.norm(vitpose_kp[:, None] - reference[None], axis=-1)  # (Nv,Nc,17)
    within = (dist <= threshold[None, :, None]) & visible[:, None, :]
    return within.sum(axis=-1)


def match_keypoints(
    vitpose_kp: np.ndarray,
    vitpose_scores: np.ndarray,
    candidates_44: np.ndarray,
    used: Iterable[int] | None = None,
    vis_thresh: float = 0.5,
    pck_ratio: float = 0.6,
    min_fraction: float = 0.5,
    *,
    compat: bool = False,
) -> list[tuple[int, int]]:
    """One greedy matching stage: ViTPose people (in order) -> candidates.

    Args:
        vitpose_kp: (Nv,17,2) COCO-17 keypoints, pixels.
        vitpose_scores: (Nv,17); a joint is visible when its score >= `vis_thresh`. People with no
            visible joint are skipped.
        candidates_44: (Nc,44,2) 44-joint keypoints, pixels.
        used: candidate indices that may not be chosen (a chosen candidate is never reused).
        pck_ratio: distance threshold as a fraction of the candidate's head size.
        min_fraction: a candidate is eligible when matches / visible > `min_fraction` (strict).
        compat: keep candidates with a zero or non-finite head size (official behaviour).

    Returns:
        (v, c) pairs in increasing v; c is the eligible unused candidate with the most matching
        joints, the lowest index on ties.
    """
    vitpose_kp = np.asarray(vitpose_kp, dtype=np.float64)
    vitpose_scores = np.asarray(vitpose_scores, dtype=np.float64)
    candidates_44 = _check_44(candidates_44).reshape(-1, 44, 2)
    if vitpose_kp.ndim != 3 or vitpose_kp.shape[1:] != (17, 2):
        raise ValueError(f"expected ViTPose keypoints (N,17,2), got {vitpose_kp.shape}")
    if vitpose_scores.shape != vitpose_kp.shape[:2]:
        raise ValueError(
            f"expected ViTPose scores {vitpose_kp.shape[:2]}, got {vitpose_scores.shape}"
        )
    available = np.ones(len(candidates_44), dtype=bool)
    for c in used or ():
        if 0 <= c < len(candidates_44):
            available[c] = False
    if not compat:
        head = head_size_44(candidates_44)
        degenerate = ~(np.isfinite(head) & (head > 0))
        if degenerate.any():
            logger.warning(
                "candidates %s have a zero or non-finite head size and cannot match",
                np.flatnonzero(degenerate).tolist(),
            )
            available &= ~degenerate
    if len(vitpose_kp) == 0 or not available.any():
        return []
    visible = vitpose_scores >= vis_thresh
    num_visible = visible.sum(axis=1)
    counts = _match_counts(vitpose_kp, visible, candidates_44, pck_ratio)
    pairs: list[tuple[int, int]] = []
    for v in np.flatnonzero(num_visible):
        eligible = available & (counts[v] / num_visible[v] > min_fraction)
        if eligible.any():
            c = int(np.argmax(np.where(eligible, counts[v], -1)))  # first maximum
            available[c] = False
            pairs.append((int(v), c))
    return pairs


def match_two_stage(
    vitpose_kp: np.ndarray,
    vitpose_scores: np.ndarray,
    pgt_44: np.ndarray,
    pred_44: np.ndarray,
    *,
    compat: bool = False,
) -> TwoStageMatch:
    """Stage A: ViTPose (Nv,17,2)/(Nv,17) -> pGT (Ng,44,2); stage B: the ViTPose people not
    matched in A -> predictions (Np,44,2), indexed like the detections (= ViTPose people).

    By default stage B excludes the predictions of the detections matched in A (one row per
    detection); `compat=True` reproduces the official code (see the module docstring).
    """
    vitpose_kp = np.asarray(vitpose_kp, dtype=np.float64)
    vitpose_scores = np.asarray(vitpose_scores, dtype=np.float64)
    stage_a = match_keypoints(vitpose_kp, vitpose_scores, pgt_44, compat=compat)
    matched = {v for v, _ in stage_a}
    unmatched = np.array([v for v in range(len(vitpose_kp)) if v not in matched], dtype=int)
    local = match_keypoints(
        vitpose_kp[unmatched],
        vitpose_scores[unmatched],
        pred_44,
        used=None if compat else matched,
        compat=compat,
    )
    stage_b = tuple((int(unmatched[i]), p) for i, p in local)
    return TwoStageMatch(stage_a=tuple(stage_a), stage_b=stage_b)
