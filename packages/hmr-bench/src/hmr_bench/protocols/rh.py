"""Relative Human protocol (the official RH evaluator as MA-HMR and DTO-Humans ship it).

Per image: the people with a kp2d annotation are the ground truth (people without one never
count); those with at least one valid joint are matched to the kept predictions (conf > 0.3) by
the greedy AGORA matcher on CrowdPose-14 (IoU >= 0.05, original pixels, cost on the valid joints,
ground-truth boxes from all 14 joints including the invalid ones at (-2, -2): quirk B5). Matched
people give PCDR pairs (depth from the prediction, layer and age from the annotation) and a 2D
PCK; every unmatched annotated person is a miss (0.3 in the PCDR denominator). Quirks reproduced
in paper mode: B1 legacy P/R/F1, B2 PCK -1 averaging, B4 label index shift, B5, B7, B16, and the
misses of all-invalid people in images without predictions (see ProtocolConfig).
"""

from __future__ import annotations

import numpy as np

from hmr_bench.body import BodyModels
from hmr_bench.datasets.rh import RHGroundTruth
from hmr_bench.matching import DegenerateBoxError, match_keypoints_2d
from hmr_bench.matching.greedy_agora import IOU_THRESH_RH
from hmr_bench.metrics import detection_stats, pcdr, pck2d, rh_legacy_prf1
from hmr_bench.predictions import Predictions
from hmr_bench.protocols.common import (
    EvalResult,
    Progress,
    ProtocolError,
    align_predictions,
    confident,
    resolve_config,
)
from hmr_bench.protocols.config import ProtocolConfig
from hmr_bench.protocols.derive import PredictionGeometry

__all__ = ["evaluate_rh"]

MATCHED, MISSED, NOT_COUNTED = 1, 0, -1
PROGRESS_EVERY = 256


def _box_points(kps: np.ndarray, valid: np.ndarray, include_invalid: bool) -> np.ndarray:
    """Points of the ground-truth IoU boxes: all 14 joints (official), or the valid ones (an
    invalid joint is replaced by the person's first valid joint, which leaves min / max as the
    valid joints' ones)."""
    if include_invalid:
        return kps
    first = kps[np.arange(len(kps)), np.argmax(valid, axis=1)]
    return np.where(valid[..., None], kps, first[:, None, :])


def evaluate_rh(
    predictions: Predictions,
    ground_truth: RHGroundTruth,
    mode: str = "paper",
    *,
    config: ProtocolConfig | None = None,
    models: BodyModels | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    """PCDR_0.2 (all and per age), 2D PCK, P/R/F1 of predictions on Relative Human."""
    cfg = resolve_config(mode, config)
    gt = ground_truth
    ranges = align_predictions(predictions, gt.image_keys, "rh")
    keep = confident(predictions.get("conf"), cfg.conf_thresh, cfg.conf_float32)
    kept = np.flatnonzero(keep)
    geometry = PredictionGeometry(predictions, models, cfg.h36m_about_transl)
    kp_pred = np.zeros((predictions.num_people, 14, 2))
    depth = np.full(predictions.num_people, np.nan)
    kp_pred[kept] = geometry.kp2d(kept, cfg.rh_hip_source)
    depth[kept] = geometry.depth(kept, cfg.rh_depth_source)

    n = int(gt.offsets[-1])
    status = np.full(n, NOT_COUNTED, np.int64)
    label_row = np.full(n, -1, np.int64)  # annotation whose depth_id / age the evaluator used
    pred_row = np.full(n, -1, np.int64)
    pck = np.full(n, np.nan)
    pairs_gt, pairs_label, pairs_pred, missed_label = [], [], [], []
    fp = legacy_predictions = legacy_missed = 0

    for i, key in enumerate(gt.image_keys):
        start = int(gt.offsets[i])
        annotated = np.flatnonzero(gt.has_kp2d[start : gt.offsets[i + 1]]) + start
        rows = np.arange(*ranges[i])
        rows = rows[keep[rows]]
        kps = gt.kp2d[annotated]
        valid = kps[:, :, 2] > 0
        matchable = valid.any(axis=1)
        if len(rows) == 0:
            missed = annotated if cfg.rh_unmatchable_missed_without_preds else annotated[matchable]
            status[missed] = MISSED
            label_row[missed] = missed
            missed_label.append(missed)
            legacy_missed += len(missed)
        elif not matchable.any():
            if cfg.rh_unannotated_image_error:
                raise ProtocolError(
                    f"image {key!r} has {len(rows)} prediction(s) but no annotated person with a "
                    "valid joint: the official RH evaluator crashes here (quirk B16); "
                    "evaluate with mode='clean' or rh_unannotated_image_error=False"
                )
            fp += len(rows)
            legacy_predictions += len(rows)
        else:
            g_rows = annotated[matchable]
            try:
                m = match_keypoints_2d(
                    kp_pred[rows],
                    kps[matchable, :, :2],
                    iou_thresh=IOU_THRESH_RH,
                    gt_valid=valid[matchable],
                    gt_box_kps=_box_points(
                        kps[matchable, :, :2], valid[matchable], cfg.rh_iou_include_invalid
                    ),
                    matcher=cfg.matcher,
                    fp_counter_quirk=cfg.greedy_fp_counter_quirk,
                    degenerate_boxes="raise" if cfg.degenerate_box_error else "zero_iou",
                )
            except DegenerateBoxError as exc:
                raise DegenerateBoxError(f"image {key!r}: {exc}") from exc
            true_gt = g_rows[m.pairs[:, 1]]
            true_missed = g_rows[m.unmatched_gt]
            # B4: the official code maps indices of the reduced list through the unreduced one
            lookup = annotated if cfg.rh_gt_index_bug else g_rows
            status[true_gt], status[true_missed] = MATCHED, MISSED
            label_row[true_gt] = lookup[m.pairs[:, 1]]
            label_row[true_missed] = lookup[m.unmatched_gt]
            pred_row[true_gt] = rows[m.pairs[:, 0]]
            pairs_gt.append(true_gt)
            pairs_label.append(lookup[m.pairs[:, 1]])
            pairs_pred.append(rows[m.pairs[:, 0]])
            missed_label.append(lookup[m.unmatched_gt])
            fp += len(m.unmatched_pred)
            legacy_predictions += len(rows)
            legacy_missed += len(m.unmatched_gt)
        if progress is not None and (i + 1) % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)
    if progress is not None and gt.num_images % PROGRESS_EVERY:
        progress(gt.num_images % PROGRESS_EVERY)

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    m_gt, m_label, m_pred, missed = (
        cat(pairs_gt),
        cat(pairs_label),
        cat(pairs_pred),
        cat(missed_label),
    )
    image_of = np.repeat(np.arange(gt.num_images), np.diff(gt.offsets))
    pck[m_gt] = pck2d(kp_pred[m_pred], gt.kp2d[m_gt, :, :2], thresh=cfg.pck2d_thresh)
    result = pcdr(
        depth[m_pred],
        gt.depth_id[m_label],
        gt.age[m_label],
        cfg.pcdr_thresh,
        image_index=image_of[m_gt],
        missed_age=gt.age[missed],
        miss_weight=cfg.rh_miss_weight,
        float32=cfg.rh_depth_float32,
    )
    pck_values = pck[m_gt]
    pck_values = (
        np.where(np.isnan(pck_values), -1.0, pck_values)
        if cfg.rh_pck_include_minus1
        else pck_values[~np.isnan(pck_values)]
    )
    det = detection_stats(len(m_gt), fp, len(missed))
    legacy = rh_legacy_prf1(legacy_predictions, legacy_missed, fp)
    metrics = {
        "pcdr@0.2/all": result.all,
        **{f"pcdr@0.2/{age}": value for age, value in result.by_age.items()},
        "pcdr_eq": result.class_accuracy["eq"],
        "pcdr_cd": result.class_accuracy["cd"],
        "pcdr_fd": result.class_accuracy["fd"],
        "n_pairs": result.pairs,
        "n_correct_pairs": result.correct,
        "n_missed": len(missed),
        "pck2d@1/7": float(np.mean(pck_values)) if len(pck_values) else float("nan"),
        "n_pck_undefined": int(np.isnan(pck[m_gt]).sum()),
        "precision": det.precision,
        "recall": det.recall,
        "f1": det.f1,
        "n_matched": len(m_gt),
        "n_false_positives": fp,
        "rh_legacy_prf1": {"precision": legacy.precision, "recall": legacy.recall, "f1": legacy.f1},
    }
    persons = {
        "image": image_of,
        "person": gt.annotation_index,
        "status": status,
        "pred_row": pred_row,
        "label_row": label_row,
        "depth_id": gt.depth_id,
        "age": gt.age,
        "pred_depth_m": np.where(pred_row >= 0, np.append(depth, np.nan)[pred_row], np.nan),
        "pck2d": pck,
    }
    notes = []
    if cfg.rh_gt_index_bug and np.any((label_row >= 0) & (label_row != np.arange(n))):
        shifted = int(np.sum((label_row >= 0) & (label_row != np.arange(n))))
        notes.append(
            f"quirk B4: {shifted} people were scored with another person's depth layer / age"
        )
    return EvalResult("rh", cfg, metrics, persons, gt.image_keys, tuple(notes))
