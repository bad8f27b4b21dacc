"""Joint and vertex position errors, per person, in millimetres.

All inputs are metres, (N, K, 3) for N people and K joints or vertices. A NaN coordinate makes
that person's error NaN (nothing is dropped); mismatched shapes raise ValueError.

- MPJPE = 1000 mean_k |(P_k - r_P) - (G_k - r_G)| with roots r_P, r_G (none by default).
- PA-MPJPE = 1000 mean_k |s R P_k + t - G_k| after the similarity Procrustes fit
  (metrics.procrustes); NaN for people with < 3 points or rank-deficient P.
- PVE (MVE in the paper) and PA-PVE: the same on mesh vertices.
"""

from __future__ import annotations

import numpy as np

from hmr_bench.metrics.procrustes import CHUNK_POINTS, MANY_POINTS, aligned_errors

__all__ = ["M_TO_MM", "mpjpe", "pa_mpjpe", "pa_pve", "pve", "root_relative"]

M_TO_MM = 1000.0


def _pair(pred: np.ndarray, gt: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Checked (N, K, 3) arrays; float32 stays float32 (converted to float64 chunk by chunk
    by the computations), anything else becomes float64."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    pred = pred if pred.dtype == np.float32 else pred.astype(np.float64, copy=False)
    gt = gt if gt.dtype == np.float32 else gt.astype(np.float64, copy=False)
    if pred.ndim != 3 or pred.shape[-1] != 3 or gt.ndim != 3 or gt.shape[-1] != 3:
        raise ValueError(f"{what}: pred and gt must be (N, K, 3), got {pred.shape}, {gt.shape}")
    if pred.shape != gt.shape:
        raise ValueError(
            f"{what}: pred has {pred.shape[1]} points for {pred.shape[0]} people, gt has "
            f"{gt.shape[1]} for {gt.shape[0]}: they must match"
        )
    return pred, gt


def _root(root: np.ndarray | None, n: int, what: str) -> np.ndarray:
    if root is None:
        return np.zeros((n, 1, 3))
    root = np.asarray(root, dtype=np.float64)
    if root.shape != (n, 3):
        raise ValueError(f"{what} must be ({n}, 3), got {root.shape}")
    return root[:, None, :]


def root_relative(points: np.ndarray, root: int) -> np.ndarray:
    """points (N, K, 3) minus their joint `root`."""
    points = np.asarray(points, dtype=np.float64)
    return points - points[:, root : root + 1]


def mpjpe(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    root: int | None = None,
    pred_root: np.ndarray | None = None,
    gt_root: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Mean per-joint position error (N,) mm of pred, gt (N, J, 3) m.

    root: joint index subtracted on both sides; or pred_root / gt_root (N, 3) m given
    explicitly. mask (N, J) bool: joints averaged per person (a person with none is NaN).
    """
    pred, gt = _pair(pred, gt, "mpjpe")
    n, num = pred.shape[:2]
    if root is not None:
        if pred_root is not None or gt_root is not None:
            raise ValueError("give either root or pred_root/gt_root, not both")
        pred_root, gt_root = pred[:, root], gt[:, root]
    offset = None  # per person: pred_root - gt_root, subtracted from pred - gt
    if pred_root is not None or gt_root is not None:
        offset = _root(pred_root, n, "pred_root") - _root(gt_root, n, "gt_root")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (n, num):
            raise ValueError(f"mask must be {(n, num)}, got {mask.shape}")
    out = np.empty(n)
    chunk = max(1, CHUNK_POINTS // max(num, 1))
    many = num >= MANY_POINTS and n > 0
    # float32 meshes on both sides: float32 differences (exact to ~0.5 um at 10 m), float64 sums
    dtype = np.float32 if pred.dtype == gt.dtype == np.float32 else np.float64
    if many:  # meshes: coordinate-major buffers, reused across chunks
        d_buf = np.empty((min(chunk, n), 3, num), dtype)
        dist_buf = np.empty((min(chunk, n), num), dtype)
    for s in range(0, n, chunk):
        sl = slice(s, s + chunk)
        if many:
            d, dist = d_buf[: len(pred[sl])], dist_buf[: len(pred[sl])]
            np.copyto(d, pred[sl].transpose(0, 2, 1))  # (casts float32 predictions)
            d -= gt[sl].transpose(0, 2, 1)
            if offset is not None:
                d -= offset[sl].transpose(0, 2, 1)
            np.multiply(d[:, 0], d[:, 0], out=dist)
            dist += d[:, 1] * d[:, 1]
            dist += d[:, 2] * d[:, 2]
        else:
            d = pred[sl].astype(np.float64) - gt[sl]
            if offset is not None:
                d -= offset[sl]
            dist = np.einsum("nkc,nkc->nk", d, d)
        np.sqrt(dist, out=dist)
        if mask is None:
            if dtype == np.float32:
                out[sl] = dist.sum(axis=1, dtype=np.float64) / num
            else:
                out[sl] = np.einsum("nk->n", dist) / num
        else:
            m = mask[sl]
            with np.errstate(invalid="ignore", divide="ignore"):
                out[sl] = np.where(m, dist, 0.0).sum(axis=1) / m.sum(axis=1)
    return M_TO_MM * out


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Procrustes-aligned MPJPE (N,) mm of pred, gt (N, J, 3) m (translation is fitted, so
    root alignment is irrelevant); mask (N, J) selects the joints fitted and averaged; NaN
    where the fit is degenerate."""
    pred, gt = _pair(pred, gt, "pa_mpjpe")
    return M_TO_MM * aligned_errors(pred, gt, mask)


def pve(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    pred_root: np.ndarray | None = None,
    gt_root: np.ndarray | None = None,
) -> np.ndarray:
    """Per-vertex error (N,) mm of meshes pred, gt (N, V, 3) m, each shifted by its root (N, 3)
    (3DPW / Hi4D: the H36M pelvis regressed from that mesh)."""
    pred, gt = _pair(pred, gt, "pve")
    return mpjpe(pred, gt, pred_root=pred_root, gt_root=gt_root)


def pa_pve(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Procrustes-aligned per-vertex error (N,) mm; the fit uses all vertices."""
    pred, gt = _pair(pred, gt, "pa_pve")
    return pa_mpjpe(pred, gt)
