"""Similarity Procrustes (Umeyama with scale, no reflections), batched over people.

For one person with points P (prediction) and G (ground truth), n x 3, metres:
mu_P, mu_G means; P0 = P - mu_P, G0 = G - mu_G; M = P0^T G0 = U S V^T;
D = diag(1, 1, sign det(V U^T)); R = V D U^T; s = tr(S D) / sum_i |P0_i|^2; t = mu_G - s R mu_P.
The aligned prediction s R P_i + t minimises sum_i |s R P_i + t - G_i|^2 over rotations
(det R = +1), scales and translations. This is the arithmetic of MA-HMR's `rigid_transform_3D`
(utils/transforms.py).

Computation: the best proper rotation is also the unit quaternion of the largest eigenvalue
lambda of Horn's 4 x 4 matrix K(M), and tr(S D) = lambda (Horn 1987). lambda is the largest
root of K's characteristic quartic, found by Newton's method from an upper bound (Theobald's QCP,
2005), and the quaternion is a column of adj(K - lambda I): element-wise operations on all people
at once instead of one LAPACK SVD call per person. Where that column is ill-determined (lambda
nearly repeated, e.g. a point set symmetric under a half turn) the person falls back to the SVD
formula above. People are processed in cache-sized chunks. Meshes given as float32 on both
sides (MA-HMR's predictions, the cached ground truth) are aligned in float32 arithmetic: means
accumulated in float64, each cloud centred before its moments are taken (no cancellation), the
3 x 3 fit in float64, errors summed in float64; PA-PVE moves by < 1e-5 mm (tested, and measured
on the 3DPW-sized benchmark) for half the memory traffic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RANK_RTOL", "SimilarityTransform", "aligned_errors", "similarity_procrustes"]

RANK_RTOL = 1e-12
"""P counts as rank-deficient (collinear or one point; its rotation is undetermined) when the
sum of the 2 x 2 principal minors of its covariance is below RANK_RTOL times the squared trace,
i.e. its second largest variance is below ~1e-12 of the largest."""
NEWTON_MAX_STEPS = 60
"""Newton on the quartic converges from above in < 10 steps for simple roots; a (nearly)
repeated root converges slowly and then takes the SVD fallback."""
NEWTON_RTOL = 1e-15
ADJUGATE_RTOL = 1e-9
"""The quaternion column of adj(K - lambda I) is trusted when its norm exceeds this times
lambda^3 (adj is cubic in K); otherwise the SVD formula is used."""
CHUNK_POINTS = 65536
"""Points (people x joints or vertices) per chunk: keeps the temporaries near cache size."""
MANY_POINTS = 256
"""From this many points per person (meshes) the chunks are transposed to (n, 3, K), whose
contiguous coordinate rows make the O(K) sums and norms several times faster."""
CHUNK_PEOPLE_FLOAT32 = 32
"""People per chunk of float32 meshes (~2.6 MB per buffer): enough that the per-chunk 3 x 3 fits
stop dominating, few enough to stay in cache (measured: 9 people per chunk is 15 % slower)."""


@dataclass(frozen=True, eq=False)
class SimilarityTransform:
    """Per-person x -> scale R x + translation: scale (N,), rotation (N, 3, 3), translation
    (N, 3) m; degenerate (N,) marks people with < 3 points, rank-deficient or non-finite P
    (all NaN)."""

    scale: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    degenerate: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform points (N, K, 3) m -> (N, K, 3) m."""
        rotated = np.asarray(points, dtype=np.float64) @ self.rotation.transpose(0, 2, 1)
        return self.scale[:, None, None] * rotated + self.translation[:, None, :]


def _svd_rotation(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R (N, 3, 3), tr(S D) (N,)) of M = P0^T G0 (N, 3, 3) by the SVD formula."""
    u, s, vt = np.linalg.svd(m)
    v = vt.transpose(0, 2, 1)
    sign = np.sign(np.linalg.det(v @ u.transpose(0, 2, 1)))
    sign[sign == 0] = 1.0
    d = np.ones((len(m), 3))
    d[:, 2] = sign
    return (v * d[:, None, :]) @ u.transpose(0, 2, 1), (s * d).sum(axis=1)


def _det3(a, b, c, d, e, f, g, h, i):
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


def _minors(k: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The 2 x 2 minors of the first two rows (s) and of the last two rows (c) of (4, 4, N)."""
    s = [
        k[0, 0] * k[1, 1] - k[1, 0] * k[0, 1],
        k[0, 0] * k[1, 2] - k[1, 0] * k[0, 2],
        k[0, 0] * k[1, 3] - k[1, 0] * k[0, 3],
        k[0, 1] * k[1, 2] - k[1, 1] * k[0, 2],
        k[0, 1] * k[1, 3] - k[1, 1] * k[0, 3],
        k[0, 2] * k[1, 3] - k[1, 2] * k[0, 3],
    ]
    c = [
        k[2, 0] * k[3, 1] - k[3, 0] * k[2, 1],
        k[2, 0] * k[3, 2] - k[3, 0] * k[2, 2],
        k[2, 0] * k[3, 3] - k[3, 0] * k[2, 3],
        k[2, 1] * k[3, 2] - k[3, 1] * k[2, 2],
        k[2, 1] * k[3, 3] - k[3, 1] * k[2, 3],
        k[2, 2] * k[3, 3] - k[3, 2] * k[2, 3],
    ]
    return s, c


def _det4(k: np.ndarray) -> np.ndarray:
    """det of (4, 4, N) by the Laplace expansion along the first two rows."""
    s, c = _minors(k)
    return s[0] * c[5] - s[1] * c[4] + s[2] * c[3] + s[3] * c[2] - s[4] * c[1] + s[5] * c[0]


def _adjugate4(a: np.ndarray) -> np.ndarray:
    """adj(a) (4, 4, N) of (4, 4, N) from the same 2 x 2 minors (a @ adj(a) = det(a) I)."""
    s, c = _minors(a)
    return np.array([
        [a[1, 1] * c[5] - a[1, 2] * c[4] + a[1, 3] * c[3],
         -a[0, 1] * c[5] + a[0, 2] * c[4] - a[0, 3] * c[3],
         a[3, 1] * s[5] - a[3, 2] * s[4] + a[3, 3] * s[3],
         -a[2, 1] * s[5] + a[2, 2] * s[4] - a[2, 3] * s[3]],
        [-a[1, 0] * c[5] + a[1, 2] * c[2] - a[1, 3] * c[1],
         a[0, 0] * c[5] - a[0, 2] * c[2] + a[0, 3] * c[1],
         -a[3, 0] * s[5] + a[3, 2] * s[2] - a[3, 3] * s[1],
         a[2, 0] * s[5] - a[2, 2] * s[2] + a[2, 3] * s[1]],
        [a[1, 0] * c[4] - a[1, 1] * c[2] + a[1, 3] * c[0],
         -a[0, 0] * c[4] + a[0, 1] * c[2] - a[0, 3] * c[0],
         a[3, 0] * s[4] - a[3, 1] * s[2] + a[3, 3] * s[0],
         -a[2, 0] * s[4] + a[2, 1] * s[2] - a[2, 3] * s[0]],
        [-a[1, 0] * c[3] + a[1, 1] * c[1] - a[1, 2] * c[0],
         a[0, 0] * c[3] - a[0, 1] * c[1] + a[0, 2] * c[0],
         -a[3, 0] * s[3] + a[3, 1] * s[1] - a[3, 2] * s[0],
         a[2, 0] * s[3] - a[2, 1] * s[1] + a[2, 2] * s[0]],
    ])  # fmt: skip


def _horn_rotation(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R (N, 3, 3), lambda (N,), ok (N,)) of M = P0^T G0 (N, 3, 3) by Horn's quaternion, lambda
    by Newton on the characteristic quartic; ok is False where the SVD formula must be used."""
    sxx, sxy, sxz, syx, syy, syz, szx, szy, szz = m.reshape(-1, 9).T
    k = np.array([
        [sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
        [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
        [szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy],
        [sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz],
    ])  # fmt: skip  # (4, 4, N)
    # K is traceless: det(K - x I) = x^4 + c2 x^2 + c1 x + c0
    c2 = -2.0 * np.einsum("nij,nij->n", m, m)
    c1 = -8.0 * _det3(sxx, sxy, sxz, syx, syy, syz, szx, szy, szz)
    c0 = _det4(k)
    # sqrt(3) |M|_F >= sum of singular values >= lambda, and the quartic is convex above it
    lam = np.sqrt(-1.5 * c2)
    for _ in range(NEWTON_MAX_STEPS):
        f = ((lam * lam + c2) * lam + c1) * lam + c0
        df = (4.0 * lam * lam + 2.0 * c2) * lam + c1
        step = np.divide(f, df, out=np.zeros_like(f), where=df > 0)
        lam -= step
        if not np.any(np.abs(step) > NEWTON_RTOL * lam):
            break
    for i in range(4):
        k[i, i] -= lam
    adj = _adjugate4(k)
    # every nonzero column of adj(K - lambda I) is a multiple of the eigenvector: take the one
    # with the largest diagonal entry (adj = c v v^T for a simple eigenvalue)
    best = np.argmax(np.abs(adj[[0, 1, 2, 3], [0, 1, 2, 3]]), axis=0)
    q = adj[:, best, np.arange(m.shape[0])]  # (4, N)
    norm = np.sqrt((q * q).sum(axis=0))
    ok = norm > ADJUGATE_RTOL * np.maximum(np.abs(lam), 1e-300) ** 3
    w, x, y, z = q / np.where(ok, norm, 1.0)
    rot = np.empty((m.shape[0], 3, 3))
    rot[:, 0, 0] = w * w + x * x - y * y - z * z
    rot[:, 0, 1] = 2 * (x * y - w * z)
    rot[:, 0, 2] = 2 * (x * z + w * y)
    rot[:, 1, 0] = 2 * (y * x + w * z)
    rot[:, 1, 1] = w * w - x * x + y * y - z * z
    rot[:, 1, 2] = 2 * (y * z - w * x)
    rot[:, 2, 0] = 2 * (z * x - w * y)
    rot[:, 2, 1] = 2 * (z * y + w * x)
    rot[:, 2, 2] = w * w - x * x - y * y + z * z
    return rot, lam, ok


def _moments(p: np.ndarray, g: np.ndarray, w: np.ndarray | None):
    """(mu_p, mu_g (n, 3), M = P0^T G0, C = P0^T P0 (n, 3, 3), count (n,)) of one chunk.

    Unmasked: from the raw moments (M = P^T G - k mu_P mu_G^T), which reads each point cloud
    twice and never forms P0, G0; the cancellation costs (|mu| / spread)^2 ulps, ~1e-13 for a
    body 20 m from the origin."""
    if w is None:
        k = p.shape[1]
        count = np.full(len(p), float(k))
        mu_p = np.einsum("nkc->nc", p) / k
        mu_g = np.einsum("nkc->nc", g) / k
        pt = p.transpose(0, 2, 1)
        m = pt @ g - k * mu_p[:, :, None] * mu_g[:, None, :]
        cov = pt @ p - k * mu_p[:, :, None] * mu_p[:, None, :]
        return mu_p, mu_g, m, cov, count
    p = np.where(w[..., None] > 0, p, 0.0)  # masked points must not leak NaN
    g = np.where(w[..., None] > 0, g, 0.0)
    count = w.sum(axis=1)
    safe = np.maximum(count, 1.0)[:, None]
    mu_p = np.einsum("nk,nkc->nc", w, p) / safe
    mu_g = np.einsum("nk,nkc->nc", w, g) / safe
    p0 = (p - mu_p[:, None]) * w[..., None]
    g0 = (g - mu_g[:, None]) * w[..., None]
    pt = p0.transpose(0, 2, 1)
    return mu_p, mu_g, pt @ g0, pt @ p0, count


def _fit(m: np.ndarray, cov: np.ndarray, count: np.ndarray):
    """(rotation (n, 3, 3), scale (n,), degenerate (n,)) from the centred moments."""
    finite = np.isfinite(m).all(axis=(1, 2)) & np.isfinite(cov).all(axis=(1, 2))
    m[~finite] = np.eye(3)
    cov[~finite] = np.eye(3)
    var = cov[:, 0, 0] + cov[:, 1, 1] + cov[:, 2, 2]
    minors = (
        cov[:, 0, 0] * cov[:, 1, 1] - cov[:, 0, 1] ** 2
        + cov[:, 0, 0] * cov[:, 2, 2] - cov[:, 0, 2] ** 2
        + cov[:, 1, 1] * cov[:, 2, 2] - cov[:, 1, 2] ** 2
    )  # fmt: skip
    degenerate = (count < 3) | ~finite | ~(minors > RANK_RTOL * var * var)
    rotation, lam, ok = _horn_rotation(m)
    redo = np.flatnonzero(~ok & ~degenerate)
    if redo.size:
        rotation[redo], lam[redo] = _svd_rotation(m[redo])
    return rotation, lam / np.where(degenerate, 1.0, var), degenerate


def _inputs(pred, gt, mask):
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.dtype != np.float32:  # float32 meshes are converted chunk by chunk
        pred = pred.astype(np.float64, copy=False)
    if gt.dtype != np.float32:
        gt = gt.astype(np.float64, copy=False)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"pred and gt must both be (N, K, 3), got {pred.shape} and {gt.shape}")
    if mask is not None:
        mask = np.asarray(mask, dtype=np.float64)
        if mask.shape != pred.shape[:2]:
            raise ValueError(f"mask must be {pred.shape[:2]}, got {mask.shape}")
    return pred, gt, mask


def similarity_procrustes(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None
) -> SimilarityTransform:
    """Best similarity transform of pred onto gt, both (N, K, 3) m; mask (N, K) bool selects
    the points of each person that enter the fit (default all)."""
    pred, gt, mask = _inputs(pred, gt, mask)
    n = len(pred)
    chunk = max(1, CHUNK_POINTS // max(pred.shape[1], 1))
    scale, translation = np.empty(n), np.empty((n, 3))
    rotation, degenerate = np.empty((n, 3, 3)), np.empty(n, bool)
    for s in range(0, n, chunk):
        sl = slice(s, s + chunk)
        p = pred[sl].astype(np.float64, copy=False)
        g = gt[sl].astype(np.float64, copy=False)
        mu_p, mu_g, m, cov, count = _moments(p, g, None if mask is None else mask[sl])
        rot, sc, deg = _fit(m, cov, count)
        nan = np.where(deg, np.nan, 1.0)
        rotation[sl], scale[sl], degenerate[sl] = rot * nan[:, None, None], sc * nan, deg
        translation[sl] = mu_g - scale[sl, None] * np.einsum("nab,nb->na", rot, mu_p)
    return SimilarityTransform(scale, rotation, translation, degenerate)


class _Workspace:
    """Reusable (chunk, 3, K) buffers: fresh large arrays per chunk cost page faults that
    dominate these memory-bound loops."""

    def __init__(self, chunk: int, k: int, dtype: type = np.float64) -> None:
        self.p = np.empty((chunk, 3, k), dtype)
        self.g = np.empty((chunk, 3, k), dtype)
        self.d = np.empty((chunk, 3, k), dtype)
        self.dist = np.empty((chunk, k), dtype)


def _aligned_errors_transposed(p: np.ndarray, g: np.ndarray, ws: _Workspace):
    """aligned_errors of one unmasked chunk of many points, in the (n, 3, K) layout."""
    n, k = p.shape[:2]
    pt, gt, d, dist = ws.p[:n], ws.g[:n], ws.d[:n], ws.dist[:n]
    np.copyto(pt, p.transpose(0, 2, 1))
    np.copyto(gt, g.transpose(0, 2, 1))
    mu_p, mu_g = pt.sum(axis=2) / k, gt.sum(axis=2) / k
    m = np.einsum("niv,njv->nij", pt, gt) - k * mu_p[:, :, None] * mu_g[:, None, :]
    cov = np.einsum("niv,njv->nij", pt, pt) - k * mu_p[:, :, None] * mu_p[:, None, :]
    rot, scale, deg = _fit(m, cov, np.full(n, float(k)))
    rot *= scale[:, None, None]
    shift = mu_g - np.einsum("nab,nb->na", rot, mu_p)
    np.matmul(rot, pt, out=d)  # s R P + t - G
    d -= gt
    d += shift[:, :, None]
    np.multiply(d[:, 0], d[:, 0], out=dist)
    dist += d[:, 1] * d[:, 1]
    dist += d[:, 2] * d[:, 2]
    np.sqrt(dist, out=dist)
    return dist.sum(axis=1) / k, deg


def _moments_by_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 3, 3) float64 sums over K of a_i b_j for (n, 3, K) arrays, as 9 row dot products per
    person (measured 4x faster in float32 than a stacked (3, K) @ (K, 3) matmul)."""
    return np.matmul(a[:, :, None, None, :], b[:, None, :, :, None])[..., 0, 0].astype(np.float64)


def _aligned_errors_float32(p: np.ndarray, g: np.ndarray, ws: _Workspace):
    """aligned_errors of one chunk of float32 meshes in float32 arithmetic, (n, 3, K) layout:
    float64 means, centred moments, the fit in float64, errors summed in float64."""
    n, k = p.shape[:2]
    pt, gt, d, dist = ws.p[:n], ws.g[:n], ws.d[:n], ws.dist[:n]
    np.copyto(pt, p.transpose(0, 2, 1))
    np.copyto(gt, g.transpose(0, 2, 1))
    mu_p = pt.sum(axis=2, dtype=np.float64) / k
    mu_g = gt.sum(axis=2, dtype=np.float64) / k
    pt -= mu_p[:, :, None].astype(np.float32)
    gt -= mu_g[:, :, None].astype(np.float32)
    m, cov = _moments_by_dots(pt, gt), _moments_by_dots(pt, pt)
    rot, scale, deg = _fit(m, cov, np.full(n, float(k)))
    np.matmul((rot * scale[:, None, None]).astype(np.float32), pt, out=d)  # s R P0 - G0
    d -= gt
    np.multiply(d[:, 0], d[:, 0], out=dist)
    dist += d[:, 1] * d[:, 1]
    dist += d[:, 2] * d[:, 2]
    np.sqrt(dist, out=dist)
    return dist.sum(axis=1, dtype=np.float64) / k, deg


def aligned_errors(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Mean distance (N,) m between the Procrustes-aligned prediction and the ground truth over
    each person's (masked) points; NaN where the fit is degenerate."""
    pred, gt, mask = _inputs(pred, gt, mask)
    n = len(pred)
    chunk = max(1, CHUNK_POINTS // max(pred.shape[1], 1))
    out = np.empty(n)
    many = mask is None and pred.shape[1] >= MANY_POINTS
    single = many and pred.dtype == np.float32 and gt.dtype == np.float32
    if single:
        chunk = CHUNK_PEOPLE_FLOAT32
    dtype = np.float32 if single else np.float64
    workspace = _Workspace(min(chunk, n), pred.shape[1], dtype) if many and n else None
    kernel = _aligned_errors_float32 if single else _aligned_errors_transposed
    for s in range(0, n, chunk):
        sl = slice(s, s + chunk)
        w = None if mask is None else mask[sl]
        p, g = pred[sl], gt[sl]
        if workspace is not None:
            err, deg = kernel(p, g, workspace)
            out[sl] = np.where(deg, np.nan, err)
            continue
        p, g = p.astype(np.float64, copy=False), g.astype(np.float64, copy=False)
        mu_p, mu_g, m, cov, count = _moments(p, g, w)
        rot, scale, deg = _fit(m, cov, count)
        rot *= scale[:, None, None]  # s R
        shift = mu_g - np.einsum("nab,nb->na", rot, mu_p)  # t
        d = p @ rot.transpose(0, 2, 1)  # s R P + t - G, in place: fewer fresh allocations
        d -= g
        d += shift[:, None, :]
        dist = np.einsum("nkc,nkc->nk", d, d)
        np.sqrt(dist, out=dist)
        if w is None:
            err = np.einsum("nk->n", dist) / dist.shape[1]
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                err = np.where(w > 0, dist, 0.0).sum(axis=1) / w.sum(axis=1)
        out[sl] = np.where(deg, np.nan, err)
    return out
