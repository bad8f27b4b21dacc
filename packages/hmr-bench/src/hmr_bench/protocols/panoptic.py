"""CMU Panoptic protocol (CRMH's, as MA-HMR, ROMP and BEV run it).

Per image: predictions with conf > 0.3; if none passes, the threshold is halved until one does,
and in MA-HMR the lowered threshold stays lowered for every later image (quirk B9; clean mode
starts every image at 0.3). Each ground-truth skeleton takes the prediction with the nearest
root-relative pose (duplicates allowed, no misses; clean: one-to-one), and its error is
hmr_bench.metrics.panoptic_mpjpe (divided by 17 in paper mode). Results per activity (mean over
its people) and over all people pooled (`mean_pooled`, MA-HMR's "mean") and as the mean of the
four activity means (`mean_of_sequences`, CRMH-style tables).
"""

from __future__ import annotations

import numpy as np

from hmr_bench.body import BodyModels
from hmr_bench.datasets.panoptic import ACTIVITIES, PanopticGroundTruth
from hmr_bench.joints import J24_TO_H36M_CORRECT
from hmr_bench.matching import match_nearest_pose
from hmr_bench.metrics import panoptic_gt_h36m, panoptic_mpjpe
from hmr_bench.metrics.panoptic import PANOPTIC_DIVISOR
from hmr_bench.predictions import Predictions
from hmr_bench.protocols.common import (
    EvalResult,
    Progress,
    align_predictions,
    confident,
    resolve_config,
)
from hmr_bench.protocols.config import ProtocolConfig
from hmr_bench.protocols.derive import PredictionGeometry

__all__ = ["evaluate_panoptic"]

PROGRESS_EVERY = 256


def evaluate_panoptic(
    predictions: Predictions,
    ground_truth: PanopticGroundTruth,
    mode: str = "paper",
    *,
    config: ProtocolConfig | None = None,
    models: BodyModels | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    """MPJPE per activity and mean on CMU Panoptic."""
    cfg = resolve_config(mode, config)
    gt = ground_truth
    ranges = align_predictions(predictions, gt.image_keys, "panoptic")
    conf = predictions.get("conf")
    geometry = PredictionGeometry(predictions, models, cfg.h36m_about_transl)
    all_rows = np.arange(predictions.num_people)
    h36m = geometry.h36m(all_rows) if predictions.num_people else np.zeros((0, 17, 3))
    pred_rel = h36m - h36m[:, :1]
    gt_rel, weight = panoptic_gt_h36m(
        gt.kpts3d, cfg.panoptic_root_y_shift, J24_TO_H36M_CORRECT, weights=True
    )
    visible = weight > 0
    if not cfg.panoptic_visibility_weights:
        weight = visible
    divisor = PANOPTIC_DIVISOR if cfg.panoptic_divide_by_17 else None

    n = int(gt.offsets[-1])
    error = np.full(n, np.nan)
    error_visible = np.full(n, np.nan)
    pred_row = np.full(n, -1, np.int64)
    mismatch_images = halved_images = 0
    thresh = cfg.conf_thresh

    def above(rows: np.ndarray, thresh: float) -> np.ndarray:
        return confident(conf[rows], thresh, cfg.conf_float32)

    for i in range(gt.num_images):
        if not cfg.panoptic_sticky_thresh_halving:
            thresh = cfg.conf_thresh
        rows = np.arange(*ranges[i])
        if len(rows) and conf[rows].max() > 0 and not np.any(above(rows, thresh)):
            halved_images += 1
            while not np.any(above(rows, thresh)):
                thresh /= 2
        rows = rows[above(rows, thresh)]
        g = np.arange(gt.offsets[i], gt.offsets[i + 1])
        if len(rows) and len(g):
            idx = match_nearest_pose(
                gt_rel[g],
                pred_rel[rows],
                weight[g],
                cfg.panoptic_one_to_one,
                cfg.panoptic_distance_float32,
            )
            ok = idx >= 0
            mismatch_images += int(len(set(idx[ok].tolist())) < ok.sum())
            chosen = rows[idx[ok]]
            pred_row[g[ok]] = chosen
            error[g[ok]] = panoptic_mpjpe(pred_rel[chosen], gt_rel[g[ok]], weight[g[ok]], divisor)
            error_visible[g[ok]] = panoptic_mpjpe(
                pred_rel[chosen], gt_rel[g[ok]], visible[g[ok]], None
            )
        if progress is not None and (i + 1) % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)
    if progress is not None and gt.num_images % PROGRESS_EVERY:
        progress(gt.num_images % PROGRESS_EVERY)

    image_of = np.repeat(np.arange(gt.num_images), np.diff(gt.offsets))
    activity = np.array(gt.activity)[image_of] if n else np.zeros(0, str)
    matched = pred_row >= 0
    per_activity = {}
    for name in ACTIVITIES:
        sel = matched & (activity == name)
        per_activity[name] = float(error[sel].mean()) if sel.any() else float("nan")
    present = [v for v in per_activity.values() if np.isfinite(v)]
    metrics = {
        **{f"mpjpe/{name}": value for name, value in per_activity.items()},
        "mean_pooled": float(error[matched].mean()) if matched.any() else float("nan"),
        "mean_of_sequences": float(np.mean(present))
        if len(present) == len(ACTIVITIES)
        else float("nan"),
        "mpjpe_visible_mean": float(error_visible[matched].mean())
        if matched.any()
        else float("nan"),
        "mismatch_images": mismatch_images,
        "n_gt": n,
        "n_matched": int(matched.sum()),
        "n_missed": int((~matched).sum()),
        "thresh_halved_images": halved_images,
        "final_conf_thresh": thresh,
    }
    persons = {
        "image": image_of,
        "person": np.arange(n) - gt.offsets[image_of],
        "pred_row": pred_row,
        "mpjpe": error,
        "mpjpe_visible_mean": error_visible,
    }
    notes = []
    if len(present) < len(ACTIVITIES):
        notes.append("mean_of_sequences needs all four activities")
    return EvalResult("panoptic", cfg, metrics, persons, gt.image_keys, tuple(notes))
