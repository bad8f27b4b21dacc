"""PCDR_0.2: Percentage of Correct Depth Relations (Relative Human; BEV, CVPR 2022).

Relative Human has no metric depth: annotators put every person into an ordinal depth layer
(`depth_id`, 0 = front-most, -1 = unknown). For every unordered pair (a, b) of matched people of
one image, both with a known layer (a before b in input order), with layer difference
dd = d_b - d_a and predicted depth difference dz = z_b - z_a (m):

- dd = 0 ("eq"): correct iff |dz| < thresh;
- dd < 0 ("cd", b is closer): correct iff dz < -thresh;
- dd > 0 ("fd", b is farther): correct iff dz > thresh.

Only the sign of dd matters. PCDR_all = #correct / (#pairs + miss_weight #missed people), pooled
over images; every ground-truth person that was not matched adds miss_weight = 0.3 to the
denominator (the official "miss_fine"). Per age group A (RH labels 0 adult, 1 teen, 2 kid,
3 baby): the pairs with at least one member of age A, and the missed people of age A; a group
without any such pair is absent from the result (not 0). People of unknown age (-1) count only
in "all". The result is invariant to the order of the people and to a common depth shift.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "AGE_GROUPS",
    "PCDR_MISS_WEIGHT",
    "PCDR_THRESH",
    "DepthPairs",
    "PCDRResult",
    "depth_pairs",
    "pcdr",
]

PCDR_THRESH = 0.2
"""Depth-difference threshold (m) of PCDR_0.2 (official RH evaluator, `dr_thresh`)."""
PCDR_MISS_WEIGHT = 0.3
"""Denominator weight of each missed person (official RH evaluator, `miss_fine`)."""
AGE_GROUPS = ("adult", "teen", "kid", "baby")
"""RH age labels 0..3, in the official evaluator's order."""
RELATIONS = ("eq", "cd", "fd")


@dataclass(frozen=True, eq=False)
class DepthPairs:
    """All same-image pairs of people with a known layer: indices a < b (M,) into the inputs,
    image (M,), relation (M,) -1 closer / 0 equal / +1 farther, dz (M,) m, correct (M,)."""

    a: np.ndarray
    b: np.ndarray
    image: np.ndarray
    relation: np.ndarray
    dz: np.ndarray
    correct: np.ndarray


@dataclass(frozen=True)
class PCDRResult:
    """PCDR as fractions in [0, 1] (NaN if the denominator is 0); by_age holds only the groups
    that occur in some pair. class_accuracy: eq / cd / fd accuracy without miss penalty."""

    all: float
    by_age: dict[str, float] = field(default_factory=dict)
    correct: int = 0
    pairs: int = 0
    missed: int = 0
    class_accuracy: dict[str, float] = field(default_factory=dict)
    class_pairs: dict[str, int] = field(default_factory=dict)
    age_pairs: dict[str, int] = field(default_factory=dict)


def _as_1d(x: np.ndarray, name: str, n: int | None, dtype: type) -> np.ndarray:
    x = np.asarray(x, dtype=dtype)
    if x.ndim != 1 or (n is not None and len(x) != n):
        raise ValueError(
            f"{name} must be 1-D{'' if n is None else f' of length {n}'}, got {x.shape}"
        )
    return x


def depth_pairs(
    pred_depth: np.ndarray,
    gt_layer: np.ndarray,
    image_index: np.ndarray | None = None,
    thresh: float = PCDR_THRESH,
    float32: bool = False,
) -> DepthPairs:
    """Every same-image pair of people whose layer is known, classified and scored.

    pred_depth (M,) m, gt_layer (M,) int (-1 unknown), image_index (M,) int (default: one image).
    float32: depths, their differences and the threshold in float32, as the official evaluator
    computes them on MA-HMR's float32 results (else float64).
    """
    z = _as_1d(pred_depth, "pred_depth", None, np.float32 if float32 else np.float64)
    n = len(z)
    layer = _as_1d(gt_layer, "gt_layer", n, np.int64)
    image = (
        np.zeros(n, np.int64)
        if image_index is None
        else _as_1d(image_index, "image_index", n, np.int64)
    )
    if not np.all(np.isfinite(z)):
        bad = int(np.flatnonzero(~np.isfinite(z))[0])
        raise ValueError(f"pred_depth[{bad}] = {z[bad]}: depths must be finite")
    keep = np.flatnonzero(layer != -1)
    keep = keep[np.argsort(image[keep], kind="stable")]  # group by image, input order within
    _, starts, counts = np.unique(image[keep], return_index=True, return_counts=True)
    a_parts, b_parts = [], []
    for k in np.unique(counts[counts >= 2]):
        first = starts[counts == k]
        i, j = np.triu_indices(k, 1)
        a_parts.append(keep[(first[:, None] + i).ravel()])
        b_parts.append(keep[(first[:, None] + j).ravel()])
    a = np.concatenate(a_parts) if a_parts else np.zeros(0, np.int64)
    b = np.concatenate(b_parts) if b_parts else np.zeros(0, np.int64)
    relation = np.sign(layer[b] - layer[a])
    dz = z[b] - z[a]
    t = z.dtype.type(thresh)
    correct = np.where(relation == 0, np.abs(dz) < t, np.where(relation < 0, dz < -t, dz > t))
    return DepthPairs(
        a=a, b=b, image=image[a], relation=relation, dz=dz.astype(np.float64), correct=correct
    )


def pcdr(
    pred_depth: np.ndarray,
    gt_layer: np.ndarray,
    age_group: np.ndarray,
    thresh: float = PCDR_THRESH,
    *,
    image_index: np.ndarray | None = None,
    missed_age: np.ndarray | None = None,
    miss_weight: float = PCDR_MISS_WEIGHT,
    float32: bool = False,
) -> PCDRResult:
    """PCDR of matched people: predicted depths (M,) m, their ground-truth layers (M,) and RH
    age labels (M,), grouped by image_index (M,); missed_age (K,) lists the age label of every
    missed ground-truth person (-1 unknown); float32: see depth_pairs. See the module docstring
    for the definition."""
    pairs = depth_pairs(pred_depth, gt_layer, image_index, thresh, float32)
    age = _as_1d(age_group, "age_group", len(np.atleast_1d(pred_depth)), np.int64)
    missed = (
        np.zeros(0, np.int64)
        if missed_age is None
        else _as_1d(missed_age, "missed_age", None, np.int64)
    )
    n_pairs, n_correct = len(pairs.correct), int(pairs.correct.sum())
    denominator = n_pairs + miss_weight * len(missed)
    by_age, age_pairs = {}, {}
    for label, name in enumerate(AGE_GROUPS):
        involved = (age[pairs.a] == label) | (age[pairs.b] == label)
        if involved.any():
            age_pairs[name] = int(involved.sum())
            den = involved.sum() + miss_weight * np.count_nonzero(missed == label)
            by_age[name] = float(pairs.correct[involved].sum() / den)
    class_accuracy, class_pairs = {}, {}
    for rel, name in zip((0, -1, 1), RELATIONS, strict=True):
        sel = pairs.relation == rel
        class_pairs[name] = int(sel.sum())
        class_accuracy[name] = float(pairs.correct[sel].mean()) if sel.any() else float("nan")
    return PCDRResult(
        all=n_correct / denominator if denominator > 0 else float("nan"),
        by_age=by_age,
        correct=n_correct,
        pairs=n_pairs,
        missed=len(missed),
        class_accuracy=class_accuracy,
        class_pairs=class_pairs,
        age_pairs=age_pairs,
    )
