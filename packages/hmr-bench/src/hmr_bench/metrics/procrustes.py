"""Similarity Procrustes (Umeyama with scale, no reflections), batched over people.

For one person with points P (prediction) and G (ground truth), n x 3, metres:
mu_P, mu_G means; P0 = P - mu_P, G0 = G - mu_G; H = P0^T G0 / n = U S V^T;
D = diag(1, 1, sign det(V U^T)); R = V D U^T; s = tr(S D) / var_P with
var_P = sum_i |P0_i|^2 / n; t = mu_G - s R mu_P. The aligned prediction s R P_i + t minimises
sum_i |s R P_i + t - G_i|^2 over rotations (det R = +1), scales and translations.
This is the arithmetic of MA-HMR's `rigid_transform_3D` (utils/transforms.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RANK_RTOL", "SimilarityTransform", "similarity_procrustes"]

RANK_RTOL = 1e-12
"""P is rank-deficient (collinear or a single point) when the second eigenvalue of its
covariance is below RANK_RTOL times the first; its rotation is then undetermined."""


@dataclass(frozen=True, eq=False)
class SimilarityTransform:
    """Per-person x -> scale R x + translation: scale (N,), rotation (N, 3, 3), translation
    (N, 3) m; degenerate (N,) marks people with < 3 points or rank-deficient P (all NaN)."""

    scale: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    degenerate: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform points (N, K, 3) m -> (N, K, 3) m."""
        rotated = np.asarray(points, dtype=np.float64) @ self.rotation.transpose(0, 2, 1)
        return self.scale[:, None, None] * rotated + self.translation[:, None, :]


def similarity_procrustes(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None
) -> SimilarityTransform:
    """Best similarity transform of pred onto gt, both (N, K, 3) m; mask (N, K) bool selects
    the points of each person that enter the fit (default all)."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"pred and gt must both be (N, K, 3), got {pred.shape} and {gt.shape}")
    n_people = len(pred)
    w = np.ones(pred.shape[:2]) if mask is None else np.asarray(mask, dtype=np.float64)
    if w.shape != pred.shape[:2]:
        raise ValueError(f"mask must be {pred.shape[:2]}, got {w.shape}")
    if mask is not None:  # masked-out points must not leak NaN into the sums
        pred = np.where(w[..., None] > 0, pred, 0.0)
        gt = np.where(w[..., None] > 0, gt, 0.0)
    count = w.sum(axis=1)
    safe = np.maximum(count, 1.0)[:, None]
    mu_p = np.einsum("nk,nkc->nc", w, pred) / safe
    mu_g = np.einsum("nk,nkc->nc", w, gt) / safe
    p0 = (pred - mu_p[:, None]) * w[..., None]
    g0 = (gt - mu_g[:, None]) * w[..., None]
    cov_p = p0.transpose(0, 2, 1) @ p0 / safe[..., None]
    h = p0.transpose(0, 2, 1) @ g0 / safe[..., None]
    finite = np.isfinite(cov_p).all(axis=(1, 2)) & np.isfinite(h).all(axis=(1, 2))
    eig = np.linalg.eigvalsh(np.where(finite[:, None, None], cov_p, np.eye(3)))  # ascending
    var_p = eig.sum(axis=1)
    degenerate = (count < 3) | ~finite | ~(eig[:, 1] > RANK_RTOL * eig[:, 2])

    u, s, vt = np.linalg.svd(np.where(degenerate[:, None, None], np.eye(3), h))
    v = vt.transpose(0, 2, 1)
    sign = np.sign(np.linalg.det(v @ u.transpose(0, 2, 1)))
    sign[sign == 0] = 1.0
    d = np.ones((n_people, 3))
    d[:, 2] = sign
    rotation = (v * d[:, None, :]) @ u.transpose(0, 2, 1)
    scale = (s * d).sum(axis=1) / np.where(degenerate, 1.0, var_p)
    translation = mu_g - scale[:, None] * np.einsum("nab,nb->na", rotation, mu_p)
    nan = np.where(degenerate, np.nan, 1.0)
    return SimilarityTransform(
        scale=scale * nan,
        rotation=rotation * nan[:, None, None],
        translation=translation * nan[:, None],
        degenerate=degenerate,
    )
