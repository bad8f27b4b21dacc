"""3DPW and Hi4D protocol (MA-HMR `evaluate_3dpw`, shared by both benchmarks).

Ground truth: gendered SMPL moved into the camera frame (hmr_bench.body). A person is evaluated
if at least 4 of its 45 smplx joints project inside the image (in MA-HMR's resized frame). An
image where nobody passes crashes MA-HMR: paper mode skips it (counted), clean mode filters its
people and counts its predictions as false positives. Predictions with conf > 0.3 are matched
to it by the greedy AGORA matcher on the 24 projected SMPL joints (IoU >= 0.1), in the frame whose
long side is 1288 px as MA-HMR does (the +1 pixel IoU makes the frame matter). For each match,
on the H36M-17 joints regressed from both meshes, each rooted at its own regressed pelvis:
MPJPE and PA-MPJPE on the 14 evaluation joints, PVE (MVE) and PA-PVE on all vertices; the T-pose
height error (ground truth: gendered model; prediction: neutral, with the kid direction when it
has 11 betas; paper mode reads the ground-truth heights with MA-HMR's unfiltered index). Misses
only lower recall; on Hi4D every person is annotated, so precision and F1 are meaningful too.
Focal error: |fx_pred - fx_gt| per evaluated image, the image's predicted intrinsics against its
first evaluated person's.
"""

from __future__ import annotations

import itertools
import os

import numpy as np

from dto_core.camera import project
from hmr_bench.body import BodyModels
from hmr_bench.datasets.smpl_gt import SMPLGroundTruth
from hmr_bench.joints import H36M_EVAL14
from hmr_bench.matching import DegenerateBoxError, match_keypoints_2d_images
from hmr_bench.matching.greedy_agora import IOU_THRESH_PW3D
from hmr_bench.metrics import detection_stats, height_error, mpjpe, pa_mpjpe, pa_pve, pve
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
from hmr_bench.protocols.posed_gt import PosedGroundTruth

__all__ = ["evaluate_hi4d", "evaluate_mesh", "evaluate_pw3d", "network_frame"]

CHUNK_PEOPLE = 256
"""Ground-truth people per chunk (bounds the meshes held in memory)."""
EVAL14 = list(H36M_EVAL14)
MATCHED, MISSED, FILTERED, SKIPPED = 1, 0, -1, -2
"""Person status: matched, missed, dropped by the visibility filter, in a skipped image."""


def network_frame(
    width: np.ndarray, height: np.ndarray, size: int, float32: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MA-HMR's resize of (width, height) px images (I,) -> (rate, resized width, resized height).

    The long side becomes `size`. float32 (MA-HMR): rate = float32(1 / long) * size and the short
    side int(rate * short), all in float32 (torch divides a Python int by an int64 tensor as
    reciprocal() * size); otherwise rate = size / long and the short side size * short // long.
    """
    width = np.asarray(width, dtype=np.int64)
    height = np.asarray(height, dtype=np.int64)
    long_side, short_side = np.maximum(width, height), np.minimum(width, height)
    if float32:
        rate32 = (np.float32(1.0) / long_side.astype(np.float32)) * np.float32(size)
        short = (rate32 * short_side.astype(np.float32)).astype(np.int64)  # int() truncates
        rate = rate32.astype(np.float64)
    else:
        rate = size / long_side
        short = size * short_side // long_side
    landscape = width >= height  # MA-HMR: `if img_size[1] >= img_size[0]`
    frame_w = np.where(landscape, size, short).astype(np.float64)
    frame_h = np.where(landscape, short, size).astype(np.float64)
    return rate, frame_w, frame_h


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


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _rank_in_image(passes: np.ndarray, first: np.ndarray) -> np.ndarray:
    """For people (n,) in image order, with `first` (n,) the position of their image's first
    person: how many people of the same image before each one pass (MA-HMR's filtered index)."""
    before = np.cumsum(passes) - passes
    return before - before[first]


def evaluate_mesh(
    benchmark: str,
    predictions: Predictions,
    ground_truth: SMPLGroundTruth,
    models: BodyModels,
    mode: str = "paper",
    *,
    config: ProtocolConfig | None = None,
    progress: Progress | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> EvalResult:
    """MPJPE, PA-MPJPE, PVE, PA-PVE, height error, recall (precision, F1), focal error.
    cache_dir: where the posed ground truth is cached (see protocols.posed_gt; None: no cache)."""
    cfg = resolve_config(mode, config)
    gt = ground_truth
    ranges = align_predictions(predictions, gt.image_keys, benchmark)
    geometry = PredictionGeometry(predictions, models, cfg.h36m_about_transl)
    if not predictions.has("K"):
        raise PredictionError(
            f"{benchmark} needs the predicted intrinsics 'K' (N, 3, 3) for matching"
        )
    keep = confident(predictions.get("conf"), cfg.conf_thresh, cfg.conf_float32)
    pred_K = predictions.get("K").astype(np.float64)
    has_betas = predictions.has("betas")

    if cfg.matching_frame == "network":
        rate, frame_w, frame_h = network_frame(
            gt.width, gt.height, cfg.network_size, cfg.network_frame_float32
        )
    else:
        rate, frame_w, frame_h = (
            np.ones(gt.num_images),
            gt.width.astype(float),
            gt.height.astype(float),
        )

    # the predicted focal length of each image: its own intrinsics (version-2 files), else
    # (version 1) the first prediction's, so only images with a prediction have one
    pred_focal = np.full(gt.num_images, np.nan)
    if predictions.has_image("K"):
        index = np.array([predictions.index_of(k) for k in gt.image_keys], dtype=float)
        present = np.flatnonzero(np.isfinite(index))  # index_of gives None (NaN) when absent
        pred_focal[present] = predictions.image_fields["K"][index[present].astype(int), 0, 0]
    else:
        with_pred = np.flatnonzero(ranges[:, 1] > ranges[:, 0])
        pred_focal[with_pred] = pred_K[ranges[with_pred, 0], 0, 0]
    focal_err = np.full(gt.num_images, np.nan)

    n = gt.num_people
    status = np.full(n, FILTERED, np.int64)
    pred_row = np.full(n, -1, np.int64)
    height_row = np.full(n, -1, np.int64)  # the person whose T-pose height was used
    names = ("mpjpe", "pa_mpjpe", "pve", "pa_pve", "gt_height_m", "pred_height_m")
    columns = {k: np.full(n, np.nan) for k in names}
    n_degenerate = fp = 0
    skipped = np.zeros(gt.num_images, bool)
    kept_before = np.concatenate([[0], np.cumsum(keep)])  # kept prediction rows before row r

    image_of = gt.image_index
    chunk_starts = [0]
    for i in range(gt.num_images):
        if gt.offsets[i + 1] - gt.offsets[chunk_starts[-1]] > CHUNK_PEOPLE and i > chunk_starts[-1]:
            chunk_starts.append(i)
    chunk_starts.append(gt.num_images)
    h36m_shift = 1.0 - models.regressors.h36m.row_sums  # R (v - t) + t = R v + (1 - R 1) t
    posed_gt = PosedGroundTruth(gt, models, cache_dir)
    with posed_gt:
        for c0, c1 in itertools.pairwise(chunk_starts):
            g0, g1 = int(gt.offsets[c0]), int(gt.offsets[c1])
            g_rows = np.arange(g0, g1)
            posed = posed_gt.chunk(g0, g1)
            gt_h36m = posed.h36m
            if cfg.h36m_about_transl:
                gt_h36m = gt_h36m + h36m_shift[:, None] * posed_gt.transl[g_rows, None, :]
            # visibility filter, all people of the chunk at once
            g_image = image_of[g_rows]
            uv = project(posed.joints45, gt.K[g_rows]) * rate[g_image][:, None, None]
            inside = (uv[..., 0] >= 0) & (uv[..., 0] < frame_w[g_image, None])
            inside &= (uv[..., 1] >= 0) & (uv[..., 1] < frame_h[g_image, None])
            passes = inside.sum(axis=1) >= cfg.min_visible_joints
            first = gt.offsets[g_image] - g0  # chunk position of the image's first person
            rank = _rank_in_image(passes, first)
            status[g_rows[passes]] = MISSED
            # the chunk's kept predictions, in image order, and their projected joints
            p_rows = np.concatenate([np.arange(*ranges[i]) for i in range(c0, c1)]).astype(int)
            p_rows = p_rows[keep[p_rows]]
            local_start = kept_before[ranges[c0:c1, 0]] - kept_before[ranges[c0, 0]]
            local_stop = kept_before[ranges[c0:c1, 1]] - kept_before[ranges[c0, 0]]
            if len(p_rows):
                pred_b = geometry.bodies(p_rows)
                pred_h36m = geometry.h36m(p_rows, pred_b.verts)
                p_image = np.repeat(np.arange(c0, c1), local_stop - local_start)
                pred_uv = project(pred_b.joints24, pred_K[p_rows]) * rate[p_image][:, None, None]
            # per image: nobody visible (skipped in paper mode), focal error
            n_pass = np.bincount(g_image[passes] - c0, minlength=c1 - c0)
            for i in np.flatnonzero(n_pass == 0) + c0 if cfg.skip_images_nobody_visible else ():
                skipped[i] = True  # MA-HMR crashes on such an image (an empty box list)
                status[gt.offsets[i] : gt.offsets[i + 1]] = SKIPPED
            # the chunk's images that are not skipped: focal error, then all matched at once
            images = np.flatnonzero(~skipped[c0:c1]) + c0
            lg_of = [np.arange(gt.offsets[i], gt.offsets[i + 1]) - g0 for i in images]
            lg_of = [people[passes[people]] for people in lg_of]
            lp_of = [np.arange(local_start[i - c0], local_stop[i - c0]) for i in images]
            for i, lg in zip(images, lg_of, strict=True):
                # the first evaluated person's focal length (the people share a camera)
                person = g0 + (lg[0] if len(lg) else gt.offsets[i] - g0)
                focal_err[i] = abs(pred_focal[i] - gt.K[person, 0, 0])
            lp_all, lg_all = _cat(lp_of), _cat(lg_of)
            try:
                matchings = match_keypoints_2d_images(
                    pred_uv[lp_all] if len(lp_all) else np.zeros((0, 24, 2)),
                    uv[lg_all, :24],
                    [len(lp) for lp in lp_of],
                    [len(lg) for lg in lg_of],
                    iou_thresh=IOU_THRESH_PW3D,
                    matcher=cfg.matcher,
                    fp_counter_quirk=cfg.greedy_fp_counter_quirk,
                    degenerate_boxes="raise" if cfg.degenerate_box_error else "zero_iou",
                    names=[gt.image_keys[i] for i in images],
                )
            except DegenerateBoxError as exc:
                raise DegenerateBoxError(f"{benchmark} {exc}") from exc
            m_gt, m_pred = [], []
            for lg, lp, m in zip(lg_of, lp_of, matchings, strict=True):
                fp += len(m.unmatched_pred)
                if len(m.pairs):
                    m_gt.append(lg[m.pairs[:, 1]])
                    m_pred.append(lp[m.pairs[:, 0]])
            if m_gt:
                lg, lp = np.concatenate(m_gt), np.concatenate(m_pred)
                order = np.argsort(lg, kind="stable")  # chunk order: everyone matched -> no copy
                lg, lp = lg[order], lp[order]
                rows = g_rows[lg]
                status[rows] = MATCHED
                pred_row[rows] = p_rows[lp]
                gh, ph = gt_h36m[lg], pred_h36m[lp]
                columns["mpjpe"][rows] = mpjpe(
                    ph[:, EVAL14], gh[:, EVAL14], pred_root=ph[:, 0], gt_root=gh[:, 0]
                )
                columns["pa_mpjpe"][rows] = pa = pa_mpjpe(ph[:, EVAL14], gh[:, EVAL14])
                n_degenerate += int(np.isnan(pa).sum())
                everyone = np.array_equal(lg, np.arange(len(g_rows)))
                gv = posed.verts if everyone else posed.verts[lg]
                pv = (
                    pred_b.verts if np.array_equal(lp, np.arange(len(p_rows))) else pred_b.verts[lp]
                )
                columns["pve"][rows] = pve(pv, gv, pred_root=ph[:, 0], gt_root=gh[:, 0])
                columns["pa_pve"][rows] = pa_pve(pv, gv)
                if has_betas:
                    pred_heights = _pred_heights(geometry, p_rows[lp], cfg, models)
                    columns["pred_height_m"][rows] = pred_heights
                    # MA-HMR keeps every height unfiltered and reads it at the filtered index
                    source = first[lg] + rank[lg] if cfg.height_gt_index_bug else lg
                    height_row[rows] = g_rows[source]
                    columns["gt_height_m"][rows] = posed.heights[source]
            if progress is not None:
                progress(c1 - c0)

    matched = status == MATCHED
    evaluated = status >= MISSED
    height_mm = np.full(n, np.nan)
    if has_betas:
        height_mm[matched] = height_error(
            columns["pred_height_m"][matched], columns["gt_height_m"][matched]
        )
    det = detection_stats(int(matched.sum()), fp, int((status == MISSED).sum()))

    def mean(values: np.ndarray) -> float:
        values = values[matched]
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

    def focal_mean(values: np.ndarray) -> float:
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

    metrics = {
        "mpjpe": mean(columns["mpjpe"]),
        "pa_mpjpe": mean(columns["pa_mpjpe"]),
        "pve": mean(columns["pve"]),
        "pa_pve": mean(columns["pa_pve"]),
        "recall": det.recall,
        "height_error_mm": mean(height_mm),
        "height_error_m": mean(height_mm) / 1000.0,
        "focal_mae_px": focal_mean(focal_err),
        "focal_mae_px_network": focal_mean(focal_err * rate),
        "n_focal_images": int(np.isfinite(focal_err).sum()),
        "n_gt": int(evaluated.sum()),
        "n_matched": int(matched.sum()),
        "n_filtered": int((status == FILTERED).sum()),
        "n_skipped_images": int(skipped.sum()),
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
        "height_row": height_row,
        "height_error_mm": height_mm,
        **columns,
    }
    notes = [] if has_betas else ["predictions have no betas: no height error"]
    if skipped.any():
        notes.append(
            f"{int(skipped.sum())} image(s) where nobody passes the visibility filter were skipped "
            "(the official evaluator crashes on them)"
        )
    shifted = int(np.sum(matched & (height_row != np.arange(n))))
    if has_betas and shifted:
        notes.append(
            f"{shifted} people were scored against another person's ground-truth height "
            "(MA-HMR's unfiltered height list, height_gt_index_bug)"
        )
    if posed_gt.status.startswith("failed"):
        notes.append(f"the posed ground truth could not be cached ({posed_gt.status})")
    if not predictions.has_image("K"):
        notes.append(
            f"focal error over the {metrics['n_focal_images']} image(s) with a prediction: the "
            "prediction file has no per-image intrinsics (format version 1)"
        )
    return EvalResult(benchmark, cfg, metrics, persons, gt.image_keys, tuple(notes))


def evaluate_pw3d(
    predictions: Predictions,
    ground_truth: SMPLGroundTruth,
    mode: str = "paper",
    *,
    models: BodyModels,
    config: ProtocolConfig | None = None,
    progress: Progress | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> EvalResult:
    """3DPW: see evaluate_mesh."""
    return evaluate_mesh(
        "3dpw", predictions, ground_truth, models, mode,
        config=config, progress=progress, cache_dir=cache_dir,
    )  # fmt: skip


def evaluate_hi4d(
    predictions: Predictions,
    ground_truth: SMPLGroundTruth,
    mode: str = "paper",
    *,
    models: BodyModels,
    config: ProtocolConfig | None = None,
    progress: Progress | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> EvalResult:
    """Hi4D: see evaluate_mesh (precision and F1 are reported too)."""
    return evaluate_mesh(
        "hi4d", predictions, ground_truth, models, mode,
        config=config, progress=progress, cache_dir=cache_dir,
    )  # fmt: skip
