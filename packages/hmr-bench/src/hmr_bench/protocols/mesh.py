"""3DPW and Hi4D protocol (MA-HMR `evaluate_3dpw`, shared by both benchmarks).

Ground truth: gendered SMPL moved into the camera frame (hmr_bench.body). A person is evaluated
if at least 4 of its 45 smplx joints project inside the image (in MA-HMR's resized frame; when no
person of an image passes, MA-HMR keeps them all). Predictions with conf > 0.3 are matched to
it by the greedy AGORA matcher on the 24 projected SMPL joints (IoU >= 0.1), in the frame whose
long side is 1288 px as MA-HMR does (the +1 pixel IoU makes the frame matter). For each match,
on the H36M-17 joints regressed from both meshes, each rooted at its own regressed pelvis:
MPJPE and PA-MPJPE on the 14 evaluation joints, PVE (MVE) and PA-PVE on all vertices; the T-pose
height error (ground truth: gendered model; prediction: neutral, with the kid direction when it
has 11 betas). Misses only lower recall; on Hi4D every person is annotated, so precision and F1
are meaningful too. Focal error: |fx_pred - fx_gt| per image, first person of each.
"""

from __future__ import annotations

import itertools

import numpy as np

from dto_core.camera import project
from hmr_bench.body import Bodies, BodyModels, camera_frame_params, pose_bodies
from hmr_bench.datasets.smpl_gt import GENDERS, SMPLGroundTruth
from hmr_bench.joints import H36M_EVAL14
from hmr_bench.matching import DegenerateBoxError, match_keypoints_2d
from hmr_bench.matching.greedy_agora import IOU_THRESH_PW3D
from hmr_bench.metrics import detection_stats, height_error, mpjpe, pa_mpjpe, pa_pve, pve
from hmr_bench.predictions import PredictionError, Predictions
from hmr_bench.protocols.common import EvalResult, Progress, align_predictions, resolve_config
from hmr_bench.protocols.config import ProtocolConfig
from hmr_bench.protocols.derive import PredictionGeometry

__all__ = ["evaluate_hi4d", "evaluate_mesh", "evaluate_pw3d", "network_frame"]

CHUNK_PEOPLE = 256
"""Ground-truth people per chunk (bounds the meshes held in memory)."""
EVAL14 = list(H36M_EVAL14)


def network_frame(width: np.ndarray, height: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
    """MA-HMR's resize: rate r = size / long side; resized (width, height) = int(r * side)."""
    width = np.asarray(width, dtype=np.float64)
    height = np.asarray(height, dtype=np.float64)
    rate = size / np.maximum(width, height)
    return rate, np.floor(rate * width), np.floor(rate * height)


def _gt_bodies(
    gt: SMPLGroundTruth, rows: np.ndarray, pose: np.ndarray, transl: np.ndarray, models: BodyModels
) -> Bodies:
    bodies = Bodies(np.empty((len(rows), 6890, 3)), np.empty((len(rows), 24, 3)))
    for gender in GENDERS:
        sel = np.flatnonzero(gt.gender[rows] == gender)
        if sel.size:
            r = rows[sel]
            pose_bodies(models.model(gender), gt.betas[r], pose[r], transl[r], bodies, sel)
    return bodies


def _pred_heights(
    geometry: PredictionGeometry, rows: np.ndarray, cfg: ProtocolConfig, models: BodyModels
) -> np.ndarray:
    betas = geometry.p.get("betas")[rows].astype(np.float64)
    try:
        return models.model("neutral", betas.shape[1]).tpose_height(betas)
    except (FileNotFoundError, ValueError):
        if not cfg.height_failure_as_zero:
            raise
        return np.zeros(len(rows))  # MA-HMR's silent fallback (quirk B12)


def evaluate_mesh(
    benchmark: str,
    predictions: Predictions,
    ground_truth: SMPLGroundTruth,
    models: BodyModels,
    mode: str = "paper",
    *,
    config: ProtocolConfig | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    """MPJPE, PA-MPJPE, PVE, PA-PVE, height error, recall (precision, F1), focal error."""
    cfg = resolve_config(mode, config)
    gt = ground_truth
    ranges = align_predictions(predictions, gt.image_keys, benchmark)
    geometry = PredictionGeometry(predictions, models)
    if not predictions.has("K"):
        raise PredictionError(
            f"{benchmark} needs the predicted intrinsics 'K' (N, 3, 3) for matching"
        )
    keep = predictions.get("conf") > cfg.conf_thresh
    pred_K = predictions.get("K").astype(np.float64)
    has_betas = predictions.has("betas")

    # ground truth in the camera frame, all people at once (cheap)
    pose = np.zeros((gt.num_people, 72))
    transl = np.zeros((gt.num_people, 3))
    for gender in GENDERS:
        sel = np.flatnonzero(gt.gender == gender)
        if sel.size:
            model = models.model(gender)
            orient, transl[sel] = camera_frame_params(
                gt.global_orient[sel],
                gt.transl[sel],
                gt.betas[sel],
                gt.cam_rot[sel],
                gt.cam_trans[sel],
                model,
            )
            pose[sel] = np.concatenate([orient, gt.body_pose[sel]], axis=1)

    if cfg.matching_frame == "network":
        rate, frame_w, frame_h = network_frame(gt.width, gt.height, cfg.network_size)
    else:
        rate, frame_w, frame_h = (
            np.ones(gt.num_images),
            gt.width.astype(float),
            gt.height.astype(float),
        )

    n = gt.num_people
    status = np.full(n, -1, np.int64)  # 1 matched, 0 missed, -1 filtered out
    pred_row = np.full(n, -1, np.int64)
    names = ("mpjpe", "pa_mpjpe", "pve", "pa_pve", "gt_height_m", "pred_height_m")
    columns = {k: np.full(n, np.nan) for k in names}
    n_degenerate = 0
    fp = 0
    # focal error per image with ground truth and predictions: first predicted vs first GT person
    has_both = (ranges[:, 1] > ranges[:, 0]) & (np.diff(gt.offsets) > 0)
    focal_err = np.abs(pred_K[ranges[has_both, 0], 0, 0] - gt.K[gt.offsets[:-1][has_both], 0, 0])
    focal_rate = rate[has_both]
    kept_before = np.concatenate([[0], np.cumsum(keep)])  # kept prediction rows before row r

    image_of = gt.image_index
    chunk_starts = [0]
    for i in range(gt.num_images):
        if gt.offsets[i + 1] - gt.offsets[chunk_starts[-1]] > CHUNK_PEOPLE and i > chunk_starts[-1]:
            chunk_starts.append(i)
    chunk_starts.append(gt.num_images)
    for c0, c1 in itertools.pairwise(chunk_starts):
        g_rows = np.arange(gt.offsets[c0], gt.offsets[c1])
        gt_b = _gt_bodies(gt, g_rows, pose, transl, models)
        gt_h36m = models.h36m(gt_b.verts)
        # visibility filter, all people of the chunk at once
        g_image = image_of[g_rows]
        uv = project(gt_b.joints45, gt.K[g_rows]) * rate[g_image][:, None, None]
        inside = (uv[..., 0] >= 0) & (uv[..., 0] < frame_w[g_image, None])
        inside &= (uv[..., 1] >= 0) & (uv[..., 1] < frame_h[g_image, None])
        passes = inside.sum(axis=1) >= cfg.min_visible_joints
        if cfg.filter_keeps_all_if_none_pass:
            image_passes = np.zeros(gt.num_images, bool)
            np.logical_or.at(image_passes, g_image, passes)
            passes |= ~image_passes[g_image]
        status[g_rows[passes]] = 0
        # the chunk's kept predictions, in image order, and their projected joints
        p_rows = np.concatenate([np.arange(*ranges[i]) for i in range(c0, c1)]).astype(np.int64)
        p_rows = p_rows[keep[p_rows]]
        local_start = kept_before[ranges[c0:c1, 0]] - kept_before[ranges[c0, 0]]
        local_stop = kept_before[ranges[c0:c1, 1]] - kept_before[ranges[c0, 0]]
        if len(p_rows):
            pred_b = geometry.bodies(p_rows)
            pred_h36m = geometry.h36m(p_rows, pred_b.verts)
            p_image = np.repeat(np.arange(c0, c1), local_stop - local_start)
            pred_uv = project(pred_b.joints24, pred_K[p_rows]) * rate[p_image][:, None, None]
        m_gt, m_pred = [], []
        for i in range(c0, c1):
            lp = np.arange(local_start[i - c0], local_stop[i - c0])
            lg = np.arange(gt.offsets[i], gt.offsets[i + 1]) - gt.offsets[c0]
            lg = lg[passes[lg]]
            if len(lp) == 0 or len(lg) == 0:
                fp += len(lp)
                continue
            try:
                m = match_keypoints_2d(
                    pred_uv[lp],
                    uv[lg, :24],
                    iou_thresh=IOU_THRESH_PW3D,
                    matcher=cfg.matcher,
                    fp_counter_quirk=cfg.greedy_fp_counter_quirk,
                    degenerate_boxes="raise" if cfg.degenerate_box_error else "zero_iou",
                )
            except DegenerateBoxError as exc:
                raise DegenerateBoxError(f"{benchmark} image {gt.image_keys[i]!r}: {exc}") from exc
            fp += len(m.unmatched_pred)
            m_gt.append(lg[m.pairs[:, 1]])
            m_pred.append(lp[m.pairs[:, 0]])
        if m_gt:
            lg, lp = np.concatenate(m_gt), np.concatenate(m_pred)
            order = np.argsort(lg, kind="stable")  # chunk order: everyone matched -> no copy
            lg, lp = lg[order], lp[order]
            rows = g_rows[lg]
            status[rows] = 1
            pred_row[rows] = p_rows[lp]
            gh, ph = gt_h36m[lg], pred_h36m[lp]
            columns["mpjpe"][rows] = mpjpe(
                ph[:, EVAL14], gh[:, EVAL14], pred_root=ph[:, 0], gt_root=gh[:, 0]
            )
            columns["pa_mpjpe"][rows] = pa = pa_mpjpe(ph[:, EVAL14], gh[:, EVAL14])
            n_degenerate += int(np.isnan(pa).sum())
            gv = gt_b.verts if np.array_equal(lg, np.arange(len(g_rows))) else gt_b.verts[lg]
            pv = pred_b.verts if np.array_equal(lp, np.arange(len(p_rows))) else pred_b.verts[lp]
            columns["pve"][rows] = pve(pv, gv, pred_root=ph[:, 0], gt_root=gh[:, 0])
            columns["pa_pve"][rows] = pa_pve(pv, gv)
            if has_betas:
                columns["pred_height_m"][rows] = _pred_heights(geometry, p_rows[lp], cfg, models)
                for gender in GENDERS:  # only matched people need their T-pose height
                    sel = rows[gt.gender[rows] == gender]
                    columns["gt_height_m"][sel] = models.model(gender).tpose_height(gt.betas[sel])
        if progress is not None:
            progress(c1 - c0)

    matched = status == 1
    evaluated = status >= 0
    height_mm = np.full(n, np.nan)
    if has_betas:
        height_mm[matched] = height_error(
            columns["pred_height_m"][matched], columns["gt_height_m"][matched]
        )
    det = detection_stats(int(matched.sum()), fp, int((status == 0).sum()))

    def mean(values: np.ndarray) -> float:
        values = values[matched]
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

    metrics = {
        "mpjpe": mean(columns["mpjpe"]),
        "pa_mpjpe": mean(columns["pa_mpjpe"]),
        "pve": mean(columns["pve"]),
        "pa_pve": mean(columns["pa_pve"]),
        "recall": det.recall,
        "height_error_mm": mean(height_mm),
        "height_error_m": mean(height_mm) / 1000.0,
        "focal_mae_px": float(np.mean(focal_err)) if focal_err.size else float("nan"),
        "focal_mae_px_network": float(np.mean(focal_err * focal_rate))
        if focal_err.size
        else float("nan"),
        "n_gt": int(evaluated.sum()),
        "n_matched": int(matched.sum()),
        "n_filtered": int((~evaluated).sum()),
        "n_false_positives": fp,
        "n_pa_degenerate": n_degenerate,
    }
    if benchmark == "hi4d":
        metrics["precision"], metrics["f1"] = det.precision, det.f1
    persons = {
        "image": image_of,
        "person": np.arange(n) - gt.offsets[image_of],
        "status": status,
        "pred_row": pred_row,
        "height_error_mm": height_mm,
        **columns,
    }
    notes = [] if has_betas else ["predictions have no betas: no height error"]
    return EvalResult(benchmark, cfg, metrics, persons, gt.image_keys, tuple(notes))


def evaluate_pw3d(
    predictions: Predictions,
    ground_truth: SMPLGroundTruth,
    mode: str = "paper",
    *,
    models: BodyModels,
    config: ProtocolConfig | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    """3DPW: see evaluate_mesh."""
    return evaluate_mesh(
        "3dpw", predictions, ground_truth, models, mode, config=config, progress=progress
    )


def evaluate_hi4d(
    predictions: Predictions,
    ground_truth: SMPLGroundTruth,
    mode: str = "paper",
    *,
    models: BodyModels,
    config: ProtocolConfig | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    """Hi4D: see evaluate_mesh (precision and F1 are reported too)."""
    return evaluate_mesh(
        "hi4d", predictions, ground_truth, models, mode, config=config, progress=progress
    )
