"""Validation with hmr-bench: detection F1, MPJPE, PA-MPJPE, depth and FoV errors.

Every validation image goes through the evaluation pipeline (no augmentation) and the model in
eval mode; queries above the confidence threshold are matched to the ground truth with
hmr-bench's AGORA-style greedy 2D matcher on the 24 SMPL joints (network-frame px, IoU >= 0.1),
then scored with hmr-bench's metrics on the 24 SMPL joints (pelvis-aligned MPJPE and PA-MPJPE,
mm), the pelvis depth error (m), and the vertical FoV error (deg).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch

from hmr_bench.matching import match_keypoints_2d
from hmr_bench.metrics import detection_stats, mpjpe, pa_mpjpe
from mahmr_model import MAHMR
from mahmr_model.geometry import fov_from_focal

from .data.loader import Batch

__all__ = ["evaluate_batches"]

NUM_EVAL_JOINTS = 24
IOU_THRESH = 0.1


@torch.no_grad()
def evaluate_batches(
    model: MAHMR, batches: Iterable[Batch], device: torch.device, conf_thresh: float = 0.3
) -> dict[str, float]:
    """Metrics over all batches (means over matched people / images; NaN when undefined)."""
    was_training = model.training
    model.eval()
    tp = fp = fn = 0
    errors: dict[str, list[np.ndarray]] = {"mpjpe": [], "pa_mpjpe": [], "depth": []}
    fov_errors = []
    try:
        for batch in batches:
            batch = batch.to(device)
            out = model(batch.images, body_layers="last")
            final, targets = out.final, batch.targets
            height = targets.image_sizes[:, 0].float()
            gt_fov = fov_from_focal(targets.intrinsics[:, 1, 1].float(), height)
            keep_fov = targets.has_camera
            fov_errors += (out.fov - gt_fov)[keep_fov].abs().rad2deg().tolist()
            for b in range(len(batch.keys)):
                keep = final.conf_logits[b].sigmoid() > conf_thresh
                pred_j3d = final.joints[b][keep].double().cpu().numpy()
                pred_j2d = final.joints_2d[b][keep].double().cpu().numpy()
                n = int(targets.num_people[b])
                gt_j3d = targets.joints_3d[b, :n].double().cpu().numpy()
                gt_j2d = targets.joints_2d[b, :n].double().cpu().numpy()
                matching = match_keypoints_2d(
                    pred_j2d[:, :NUM_EVAL_JOINTS], gt_j2d[:, :NUM_EVAL_JOINTS],
                    iou_thresh=IOU_THRESH, matcher="hungarian", degenerate_boxes="zero_iou",
                )  # fmt: skip
                pairs = np.asarray(matching.pairs, dtype=np.int64).reshape(-1, 2)
                tp += len(pairs)
                fp += len(pred_j3d) - len(pairs)
                fn += n - len(pairs)
                if len(pairs) and bool(targets.has_3d[b]):
                    p, g = (
                        pred_j3d[pairs[:, 0], :NUM_EVAL_JOINTS],
                        gt_j3d[pairs[:, 1], :NUM_EVAL_JOINTS],
                    )
                    errors["mpjpe"].append(mpjpe(p, g, root=0))
                    errors["pa_mpjpe"].append(pa_mpjpe(p, g))
                    errors["depth"].append(np.abs(p[:, 0, 2] - g[:, 0, 2]))
    finally:
        model.train(was_training)
    det = detection_stats(tp, fp, fn)
    mean = lambda parts: float(np.nanmean(np.concatenate(parts))) if parts else math.nan  # noqa: E731
    return {
        "f1": det.f1,
        "precision": det.precision,
        "recall": det.recall,
        "mpjpe_mm": mean(errors["mpjpe"]),
        "pa_mpjpe_mm": mean(errors["pa_mpjpe"]),
        "depth_error_m": mean(errors["depth"]),
        "fov_error_deg": float(np.mean(fov_errors)) if fov_errors else math.nan,
        "matched": float(tp),
    }
