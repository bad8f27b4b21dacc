"""MuPoTS-3D protocol: 3D PCK@150 mm, All and Matched.

Predictions with conf > 0.3 give H36M-17 joints (m, camera frame) and, projected with their K,
2D joints in original pixels. Ground truth and predictions are brought from H36M to MPI-17 order
with the map MA-HMR uses (legs swapped: harmless for the scores, but the per-joint occlusion flags,
kept in MPI order by the processed file, then sit on the wrong leg: quirk B13; clean mode uses the
exact inverse map). Identity matching (hmr_bench.matching.match_mupots, 40 px per axis), bone
rescaling and per-joint errors (hmr_bench.metrics.pck3d_mupots), then the aggregation: paper mode
per person, occluded joints not counted, pooled over all sequences (MA-HMR); clean mode the
official MATLAB script: no occlusion mask, `univ_annot3` ground truth, per sequence, mean of the
sequences. "All" counts every valid ground-truth person (misses score 0), "Matched" only the
matched ones.
"""

from __future__ import annotations

import numpy as np

from dto_core.camera import project
from hmr_bench.body import BodyModels
from hmr_bench.datasets.mupots import MuPoTSGroundTruth
from hmr_bench.joints import (
    H36M_TO_MPI,
    H36M_TO_MPI_MAHMR,
    MUPOTS_MATCH_JOINTS,
    MUPOTS_SCORED_JOINTS,
)
from hmr_bench.matching import match_mupots
from hmr_bench.metrics.pck3d_mupots import (
    AUC_THRESHOLDS,
    joint_errors,
    pck_fraction,
    pck_per_person,
)
from hmr_bench.predictions import PredictionError, Predictions
from hmr_bench.protocols.common import (
    EvalResult,
    Progress,
    align_predictions,
    confident,
    resolve_config,
)
from hmr_bench.protocols.config import ProtocolConfig
from hmr_bench.protocols.derive import PredictionGeometry

__all__ = ["evaluate_mupots"]

M_TO_MM = 1000.0
PROGRESS_EVERY = 256
SCORED = list(MUPOTS_SCORED_JOINTS)
MATCHING = list(MUPOTS_MATCH_JOINTS)


def _aggregate(
    errors: np.ndarray,
    counted: np.ndarray,
    sequence: np.ndarray,
    cfg: ProtocolConfig,
    thresh: float,
) -> tuple[float, dict[int, float]]:
    """(overall, per-sequence) PCK of people with errors (n, 14) and counted joints (n, 14)."""
    per_seq = {}
    if cfg.mupots_aggregate == "person_pooled":
        person = pck_per_person(errors, counted, thresh)
        for s in np.unique(sequence):
            per_seq[int(s)] = float(person[sequence == s].mean())
        return (float(person.mean()) if len(person) else float("nan")), per_seq
    for s in np.unique(sequence):
        sel = sequence == s
        per_seq[int(s)] = pck_fraction(errors[sel][counted[sel]], thresh)
    return (float(np.mean(list(per_seq.values()))) if per_seq else float("nan")), per_seq


def evaluate_mupots(
    predictions: Predictions,
    ground_truth: MuPoTSGroundTruth,
    mode: str = "paper",
    *,
    config: ProtocolConfig | None = None,
    models: BodyModels | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    """3D PCK All / Matched (and AUC) on MuPoTS-3D."""
    cfg = resolve_config(mode, config)
    gt = ground_truth
    ranges = align_predictions(predictions, gt.image_keys, "mupots")
    if not predictions.has("K"):
        raise PredictionError("mupots needs the predicted intrinsics 'K' to project for matching")
    keep = confident(predictions.get("conf"), cfg.conf_thresh, cfg.conf_float32)
    kept = np.flatnonzero(keep)
    geometry = PredictionGeometry(predictions, models, cfg.h36m_about_transl)
    h36m = np.zeros((predictions.num_people, 17, 3))
    if len(kept):
        h36m[kept] = geometry.h36m(kept)
    uv = np.zeros((predictions.num_people, 17, 2))
    uv[kept] = project(h36m[kept], predictions.get("K")[kept].astype(np.float64))

    to_mpi = list(H36M_TO_MPI_MAHMR if cfg.mupots_leg_swap_vis else H36M_TO_MPI)
    gt3d = (gt.annot_3d if cfg.mupots_gt == "annot3" else gt.annot_3d_univ)[:, to_mpi]
    gt2d = gt.annot_2d[:, to_mpi]
    pred3d = h36m[:, to_mpi] * M_TO_MM
    pred2d = uv[:, to_mpi]

    n = int(gt.offsets[-1])
    pred_row = np.full(n, -1, np.int64)
    for i in range(gt.num_images):
        g = np.arange(gt.offsets[i], gt.offsets[i + 1])
        rows = np.arange(*ranges[i])
        rows = rows[keep[rows]]
        idx = match_mupots(gt2d[g][:, MATCHING], pred2d[rows][:, MATCHING], cfg.mupots_match_px)
        pred_row[g[idx >= 0]] = rows[idx[idx >= 0]]
        if progress is not None and (i + 1) % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)
    if progress is not None and gt.num_images % PROGRESS_EVERY:
        progress(gt.num_images % PROGRESS_EVERY)

    matched = pred_row >= 0
    errors = joint_errors(pred3d[np.maximum(pred_row, 0)], gt3d, matched)[:, SCORED]
    if cfg.mupots_error_float32:  # MA-HMR: err.astype(np.float32) before `err > 150`
        errors = errors.astype(np.float32).astype(np.float64)
    counted = gt.vis[:, SCORED] if cfg.mupots_mask_occluded else np.ones((n, len(SCORED)), bool)
    image_of = np.repeat(np.arange(gt.num_images), np.diff(gt.offsets))
    sequence = gt.sequence[image_of]
    pck_all, seq_all = _aggregate(errors, counted, sequence, cfg, cfg.mupots_thresh)
    pck_matched, seq_matched = _aggregate(
        errors[matched], counted[matched], sequence[matched], cfg, cfg.mupots_thresh
    )
    auc_all = np.mean([_aggregate(errors, counted, sequence, cfg, t)[0] for t in AUC_THRESHOLDS])
    auc_matched = np.mean(
        [
            _aggregate(errors[matched], counted[matched], sequence[matched], cfg, t)[0]
            for t in AUC_THRESHOLDS
        ]
    )
    metrics = {
        "pck_all": pck_all,
        "pck_matched": pck_matched,
        "auc_all": float(auc_all),
        "auc_matched": float(auc_matched),
        "n_gt": n,
        "n_matched": int(matched.sum()),
        "n_unmatched": int((~matched).sum()),
        "pck_all_per_sequence": {f"TS{k}": v for k, v in seq_all.items()},
        "pck_matched_per_sequence": {f"TS{k}": v for k, v in seq_matched.items()},
    }
    person_pck = pck_per_person(errors, counted, cfg.mupots_thresh)
    persons = {
        "image": image_of,
        "person": np.arange(n) - gt.offsets[image_of],
        "sequence": sequence,
        "pred_row": pred_row,
        "pck": person_pck,
        "mean_joint_error_mm": np.where(matched, errors.mean(axis=1), np.nan),
    }
    return EvalResult("mupots", cfg, metrics, persons, gt.image_keys)
