"""Detection statistics from matched (TP), unmatched-prediction (FP) and missed (FN) counts.

precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = TP / (TP + (FP + FN) / 2); NaN when a
denominator is zero. 3DPW annotates only some people, so only its recall is meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DetectionStats", "detection_stats", "rh_legacy_prf1"]


@dataclass(frozen=True)
class DetectionStats:
    """Counts and rates (fractions in [0, 1], NaN when undefined)."""

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else float("nan")


def detection_stats(tp: int, fp: int, fn: int) -> DetectionStats:
    """Precision, recall and F1 of tp matched, fp unmatched predictions and fn misses."""
    if min(tp, fp, fn) < 0:
        raise ValueError(f"counts must be >= 0, got tp={tp} fp={fp} fn={fn}")
    return DetectionStats(
        tp, fp, fn, _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(tp, tp + 0.5 * (fp + fn))
    )


def rh_legacy_prf1(num_predictions: int, num_missed: int, num_fp: int) -> DetectionStats:
    """The official Relative Human printout (quirk B1): it passes the number of PREDICTIONS
    where the number of ground-truth people belongs, so TP' = #predictions - #missed."""
    tp = num_predictions - num_missed
    return DetectionStats(
        tp, num_fp, num_missed, _ratio(tp, tp + num_fp), _ratio(tp, tp + num_missed),
        _ratio(tp, tp + 0.5 * (num_fp + num_missed)),
    )  # fmt: skip
