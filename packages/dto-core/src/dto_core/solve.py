"""The exact minimiser of DTO's Eq. 3, for one scene or batched over many scenes.

    min_{s, t}  sum_i ( h_i (s d_i + t) / z_i - mu_i )^2 / sigma_i^2    s.t.  s_min <= s <= s_max

h_i teacher T-pose height, z_i teacher depth, d_i representative relative depth, N(mu_i, sigma_i^2)
the height prior; the corrected depth of person i is z_i* = s d_i + t.

Writing g_i = h_i / z_i, the objective is sum_i w_i (s d_i + t - y_i)^2 with weights
w_i = (g_i / sigma_i)^2 and y_i = mu_i / g_i, the depth at which person i would have the prior
mean height. So (s, t) is a weighted linear regression of y on d. Its unconstrained solution is
s = S_dy / S_dd, t = y_bar - s d_bar (weighted means and centred sums). Eliminating t leaves a
convex 1-D quadratic in s, so clamping s to [s_min, s_max] and re-solving t = y_bar - s d_bar is
the exact KKT solution (paper supp. Eqs. 14-19). Sums are taken on d and y shifted by each
scene's first values, which keeps full precision when the d_i are large and close together.

If all d_i of a scene are equal (always so for one person), or numerically so (their weighted
standard deviation is below IDENTIFIABLE_SPREAD = 1e-10 times the magnitude of their weighted
mean, where s would grow as 1 / spread), s is not identifiable: it is fixed at s_min if finite,
else s_max if finite (t then follows exactly); with no finite bound s and t are NaN and the status
says UNDETERMINED. Scenes whose sums overflow or underflow (|d| near 1e300 or 1e-300) are
solved again on d / max|d|, which leaves s d, t and the status unchanged.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from scipy import sparse

__all__ = [
    "IDENTIFIABLE_SPREAD",
    "AffineDepthFit",
    "SolveStatus",
    "corrected_heights",
    "fit_affine_depth",
    "fit_affine_depth_batch",
    "solve_affine_depth",
    "solve_affine_depth_batch",
    "solve_affine_depth_padded",
    "standardized_residuals",
]


class SolveStatus(IntEnum):
    """How the solution of a scene was obtained."""

    INTERIOR = 0  # the unconstrained minimiser satisfies the bounds
    AT_LOWER = 1  # s = s_min (lower bound active)
    AT_UPPER = 2  # s = s_max (upper bound active)
    SCALE_AT_BOUND = 3  # all d_i equal: s unidentifiable, fixed at the finite bound, t exact
    UNDETERMINED = 4  # all d_i equal and no finite bound: s, t are NaN
    EMPTY = 5  # the scene has no person: s, t are NaN


@dataclass(frozen=True)
class AffineDepthFit:
    """Solutions of S scenes: arrays of length S (scalars as 0-d arrays for one scene)."""

    scale: np.ndarray  # s_d, metres per unit of relative depth
    shift: np.ndarray  # t_d, metres
    status: np.ndarray  # SolveStatus values
    scale_unconstrained: np.ndarray  # minimiser without bounds (NaN where unidentifiable)


_FIELDS = tuple(AffineDepthFit.__dataclass_fields__)
CHUNK_PERSONS = 1 << 14  # persons per kernel call: its ~10 float64 temporaries fit in L2
TINY_DEPTH = 1e-100  # |mean d| below which the sums are taken on d / max|d|
EMPTY_SCENE = "the scene has no person (the batch functions accept empty scenes)"
IDENTIFIABLE_SPREAD = 1e-10
"""Relative spread of d (weighted std / |weighted mean|) below which a scene's scale counts as
unidentifiable, as if all d were equal: far below what a depth map resolves (float32 maps: 6e-8),
and where the exact scale would be ~1e10 times a typical one."""


def _check_positive(name: str, x: np.ndarray) -> None:
    # min/max propagate NaN, so one reduction each catches NaN, inf and non-positive values
    if x.size == 0 or (x.min() > 0 and x.max() < np.inf):
        return
    bad = np.flatnonzero(~(np.isfinite(x) & (x > 0)))[0]
    raise ValueError(f"{name}[{bad}] = {float(x[bad])}: must be finite and > 0")


def _check_finite(name: str, x: np.ndarray) -> None:
    if x.size == 0 or (x.min() > -np.inf and x.max() < np.inf):
        return
    bad = np.flatnonzero(~np.isfinite(x))[0]
    raise ValueError(f"{name}[{bad}] = {float(x[bad])}: must be finite")


def _person_arrays(
    h_hat: np.ndarray, z_hat: np.ndarray, d: np.ndarray, mu: np.ndarray, sigma: np.ndarray
) -> tuple[np.ndarray, ...]:
    arrays = [np.asarray(x, dtype=np.float64) for x in (h_hat, z_hat, d, mu, sigma)]
    names = ("h_hat", "z_hat", "d", "mu", "sigma")
    n = arrays[0].shape
    for name, x in zip(names, arrays, strict=True):
        if x.ndim != 1 or x.shape != n:
            raise ValueError(f"{name} must be 1-D of the same length as h_hat {n}, got {x.shape}")
    for name, x in zip(names, arrays, strict=True):
        if name == "d":
            _check_finite(name, x)
        else:
            _check_positive(name, x)
    return tuple(arrays)


def _bounds(s_min, s_max, num_scenes: int) -> tuple[np.ndarray, np.ndarray]:
    lo = np.broadcast_to(np.asarray(s_min, dtype=np.float64), (num_scenes,))
    hi = np.broadcast_to(np.asarray(s_max, dtype=np.float64), (num_scenes,))
    bad = np.flatnonzero(np.isnan(lo) | np.isnan(hi) | (lo > hi) | (lo == np.inf) | (hi == -np.inf))
    if bad.size:
        i = bad[0]
        raise ValueError(
            f"scene {i}: bounds s_min={float(lo[i])}, s_max={float(hi[i])} are not an interval"
        )
    return lo, hi


def _check_offsets(offsets, num_persons: int) -> np.ndarray:
    offsets = np.asarray(offsets)
    if offsets.ndim != 1 or offsets.size < 1 or not np.issubdtype(offsets.dtype, np.integer):
        raise ValueError(f"offsets must be a 1-D integer array of S+1 entries, got {offsets!r}")
    if offsets[0] != 0 or offsets[-1] != num_persons:
        raise ValueError(
            f"offsets must start at 0 and end at the number of persons {num_persons}, "
            f"got {offsets[0]}..{offsets[-1]}"
        )
    bad = np.flatnonzero(np.diff(offsets) < 0)
    if bad.size:
        raise ValueError(
            f"offsets must be non-decreasing: offsets[{bad[0] + 1}] < offsets[{bad[0]}]"
        )
    return offsets.astype(np.intp, copy=False)


def _empty_fit(num_scenes: int) -> AffineDepthFit:
    nan = np.full(num_scenes, np.nan)
    return AffineDepthFit(
        nan, nan.copy(), np.full(num_scenes, SolveStatus.EMPTY, np.int8), nan.copy()
    )


def _fit_kernel(h, z, d, mu, sigma, offsets, lo, hi, rescaled=False) -> AffineDepthFit:
    """Batched closed form on validated flat arrays; see the module docstring.

    One pass of shifted sums: each scene's d and y are shifted by its first person's values
    (exact zeros when all d are equal), and the five weighted sums of all scenes come from one
    sparse (S, N) @ (N, 5) product. The centred sums S_dd, S_dy then lose about K ulps at most.
    Scenes whose sums overflow are solved once more on d / max|d| (`rescaled`).
    """
    n = h.size
    counts = np.diff(offsets)
    num_scenes = counts.size
    nonempty = counts > 0
    first = np.minimum(offsets[:-1], max(n - 1, 0))
    if n == 0:
        return _empty_fit(num_scenes)

    g = h / z
    y = mu / g
    terms = np.empty((5, n))  # rows: w, w dc, w yc, w dc^2, w dc yc
    w = np.divide(g, sigma, out=terms[0])
    w *= w
    # overflowing scenes are solved again, rescaled; empty and singular ones divide by zero
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        dc = d - np.repeat(d[first], counts)
        yc = y - np.repeat(y[first], counts)
        np.multiply(w, dc, out=terms[1])
        np.multiply(w, yc, out=terms[2])
        np.multiply(terms[1], dc, out=terms[3])
        np.multiply(terms[1], yc, out=terms[4])
        index = np.int32 if n < 2**31 else np.int64
        scene_sum = sparse.csr_matrix(
            (np.ones(n), np.arange(n, dtype=index), offsets.astype(index)), shape=(num_scenes, n)
        )
        w_sum, wd_sum, wy_sum, wdd_sum, wdy_sum = (scene_sum @ row for row in terms)

        dc_mean = wd_sum / w_sum
        y_mean = wy_sum / w_sum + np.where(nonempty, y[first], np.nan)
        d_mean = dc_mean + np.where(nonempty, d[first], np.nan)
        s_dd = wdd_sum - wd_sum * dc_mean
        s_dy = wdy_sum - wd_sum * (wy_sum / w_sum)
        identifiable = s_dd > (IDENTIFIABLE_SPREAD * d_mean) ** 2 * w_sum
        s_unc = np.where(identifiable, s_dy / s_dd, np.nan)

    scale = np.clip(s_unc, lo, hi)
    status = np.where(
        scale > s_unc, SolveStatus.AT_LOWER, np.where(scale < s_unc, SolveStatus.AT_UPPER, 0)
    )
    fixed = np.where(np.isfinite(lo), lo, hi)
    singular = ~identifiable & nonempty
    scale = np.where(singular, np.where(np.isfinite(fixed), fixed, np.nan), scale)
    status = np.where(
        singular,
        np.where(np.isfinite(fixed), SolveStatus.SCALE_AT_BOUND, SolveStatus.UNDETERMINED),
        status,
    )
    status = np.where(nonempty, status, SolveStatus.EMPTY).astype(np.int8)
    scale = np.where(nonempty, scale, np.nan)
    shift = y_mean - scale * d_mean
    fit = AffineDepthFit(scale=scale, shift=shift, status=status, scale_unconstrained=s_unc)
    if rescaled:
        return fit
    # sums that overflow (|d| > 1e154) or lose digits to underflow (|d| < 1e-100); the
    # per-scene test runs only if a global one fails (as it does with empty scenes: NaN)
    d_size = np.abs(d_mean)
    if not (d_size.min() >= TINY_DEPTH and np.isfinite(s_dd.sum() + s_dy.sum())):
        extreme = ~np.isfinite(s_dd + s_dy) | (d_size < TINY_DEPTH)
        extreme = np.flatnonzero(nonempty & extreme)
        if extreme.size:
            _solve_rescaled(fit, h, z, d, mu, sigma, offsets, lo, hi, extreme)
    return fit


def _solve_rescaled(fit, h, z, d, mu, sigma, offsets, lo, hi, scenes) -> None:
    """Solve `scenes` again on d / c, c = max |d| of each (s d and t unchanged, s = s' / c, the
    bounds c times larger), writing into `fit`."""
    counts = offsets[scenes + 1] - offsets[scenes]
    idx = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in scenes])
    sub = np.concatenate(([0], np.cumsum(counts)))
    c = np.maximum.reduceat(np.abs(d[idx]), sub[:-1])
    c[c == 0] = 1.0
    with np.errstate(over="ignore"):
        part = _fit_kernel(
            h[idx], z[idx], d[idx] / np.repeat(c, counts), mu[idx], sigma[idx], sub,
            lo[scenes] * c, hi[scenes] * c, rescaled=True,
        )  # fmt: skip
    fit.scale[scenes] = part.scale / c
    fit.scale_unconstrained[scenes] = part.scale_unconstrained / c
    fit.shift[scenes] = part.shift
    fit.status[scenes] = part.status


def fit_affine_depth_batch(
    h_hat: np.ndarray,
    z_hat: np.ndarray,
    d: np.ndarray,
    mu: np.ndarray,
    sigma: np.ndarray,
    offsets: np.ndarray,
    s_min: float | np.ndarray = -np.inf,
    s_max: float | np.ndarray = np.inf,
) -> AffineDepthFit:
    """Solve Eq. 3 for S scenes at once.

    Person arrays (N,) float are concatenated over scenes; scene i holds persons
    `offsets[i]:offsets[i+1]` (offsets (S+1,) int). h_hat, z_hat, mu, sigma must be finite and
    > 0, d finite. s_min, s_max: scalars or (S,), -inf/inf for no bound. Returns scale, shift,
    status and the unconstrained scale, each (S,).
    """
    h, z, dd, m, sg = _person_arrays(h_hat, z_hat, d, mu, sigma)
    offsets = _check_offsets(offsets, h.size)
    lo, hi = _bounds(s_min, s_max, offsets.size - 1)
    if h.size <= CHUNK_PERSONS:
        return _fit_kernel(h, z, dd, m, sg, offsets, lo, hi)
    # cache-sized chunks of whole scenes: temporaries stay in cache and are not re-faulted
    bounds = np.unique(np.searchsorted(offsets, np.arange(0, h.size, CHUNK_PERSONS), "right") - 1)
    bounds = np.append(bounds, offsets.size - 1)
    parts = []
    for a, b in itertools.pairwise(bounds):
        p, q = offsets[a], offsets[b]
        o = offsets[a : b + 1] - p
        parts.append(_fit_kernel(h[p:q], z[p:q], dd[p:q], m[p:q], sg[p:q], o, lo[a:b], hi[a:b]))
    return AffineDepthFit(*(np.concatenate([getattr(f, k) for f in parts]) for k in _FIELDS))


def solve_affine_depth_batch(
    h_hat: np.ndarray,
    z_hat: np.ndarray,
    d: np.ndarray,
    mu: np.ndarray,
    sigma: np.ndarray,
    offsets: np.ndarray,
    s_min: float | np.ndarray = -np.inf,
    s_max: float | np.ndarray = np.inf,
) -> tuple[np.ndarray, np.ndarray]:
    """(s, t), each (S,), of `fit_affine_depth_batch`; NaN for EMPTY/UNDETERMINED scenes."""
    fit = fit_affine_depth_batch(h_hat, z_hat, d, mu, sigma, offsets, s_min, s_max)
    return fit.scale, fit.shift


def solve_affine_depth_padded(
    h_hat: np.ndarray,
    z_hat: np.ndarray,
    d: np.ndarray,
    mu: np.ndarray,
    sigma: np.ndarray,
    mask: np.ndarray,
    s_min: float | np.ndarray = -np.inf,
    s_max: float | np.ndarray = np.inf,
) -> AffineDepthFit:
    """Solve Eq. 3 for S scenes given padded (S, K_max) arrays and a bool mask of real persons.

    Padding entries are ignored (they may hold anything). Returns the fit of each scene, (S,).
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (S, K_max), got shape {mask.shape}")
    arrays = []
    for name, x in zip(
        ("h_hat", "z_hat", "d", "mu", "sigma"), (h_hat, z_hat, d, mu, sigma), strict=True
    ):
        x = np.asarray(x, dtype=np.float64)
        if x.shape != mask.shape:
            raise ValueError(f"{name} must have the mask's shape {mask.shape}, got {x.shape}")
        arrays.append(x[mask])
    offsets = np.concatenate(([0], np.cumsum(mask.sum(axis=1))))
    return fit_affine_depth_batch(*arrays, offsets, s_min, s_max)


def fit_affine_depth(
    h_hat: np.ndarray,
    z_hat: np.ndarray,
    d: np.ndarray,
    mu: np.ndarray,
    sigma: np.ndarray,
    s_min: float = -np.inf,
    s_max: float = np.inf,
) -> AffineDepthFit:
    """Solve Eq. 3 for one scene of K persons (1-D arrays (K,)); fields are 0-d arrays."""
    h = np.asarray(h_hat, dtype=np.float64)
    fit = fit_affine_depth_batch(h_hat, z_hat, d, mu, sigma, np.array([0, h.size]), s_min, s_max)
    return AffineDepthFit(*(np.asarray(getattr(fit, f)[0]) for f in _FIELDS))


def solve_affine_depth(
    h_hat: np.ndarray,
    z_hat: np.ndarray,
    d: np.ndarray,
    mu: np.ndarray,
    sigma: np.ndarray,
    s_min: float = -np.inf,
    s_max: float = np.inf,
) -> tuple[float, float]:
    """Exact minimiser (s, t) of Eq. 3 for one scene with s_min <= s <= s_max.

    h_hat: (K,) teacher T-pose heights (m); z_hat: (K,) teacher depths (m); d: (K,) relative
    depths; mu, sigma: (K,) height prior (m). Raises ValueError for bad input, an empty scene (as
    `optimize_scene` does), or a scene whose scale is unidentifiable (all d equal, or numerically
    so, see the module docstring) without a finite bound.
    """
    fit = fit_affine_depth(h_hat, z_hat, d, mu, sigma, s_min, s_max)
    if fit.status == SolveStatus.EMPTY:
        raise ValueError(EMPTY_SCENE)
    if fit.status == SolveStatus.UNDETERMINED:
        raise ValueError(
            "all relative depths d are equal (or their spread is below IDENTIFIABLE_SPREAD = "
            f"{IDENTIFIABLE_SPREAD:g} of their mean), so the scale is unidentifiable; give a "
            "finite bound (s_min or s_max) to fix it"
        )
    return float(fit.scale), float(fit.shift)


def corrected_heights(h_hat, z_hat, d, scale, shift) -> np.ndarray:
    """Heights h_i (s d_i + t) / z_i (m) implied by an affine map; scale/shift broadcast."""
    return h_hat * (scale * d + shift) / z_hat


def standardized_residuals(h_hat, z_hat, d, mu, sigma, scale, shift) -> np.ndarray:
    """Signed (h_i' - mu_i) / sigma_i of the corrected heights under the prior."""
    return (corrected_heights(h_hat, z_hat, d, scale, shift) - mu) / sigma
