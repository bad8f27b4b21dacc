"""Per-person depth cues from a relative depth map, a person id map and a per-pixel mesh-depth map.

Implements DTO's inter-human depth relation (representative relative depth d_i) and intra-human
depth scale (slope X_i and correlation w_i of mesh depth against relative depth), as the official
DTO-Humans code computes them (see the package README, "Depth cues").
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

__all__ = ["CueConfig", "CueStatus", "DepthCues", "depth_from_disparity", "extract_cues"]


class CueStatus(IntEnum):
    """Why a person's cues were (not) extracted. Anything but OK means the person is removed."""

    OK = 0
    TOO_SMALL = 1  # fewer mask pixels than min_area_fraction of the image
    TOO_FEW_VISIBLE_VERTICES = 2  # fewer than min_visible_vertices visible mesh vertices
    TOO_FEW_AFTER_IQR = 3  # fewer pixels than the area threshold after the IQR filter
    DEGENERATE_FIT = 4  # no horizontal variation inside rows, or no inlier left after the fit


@dataclass(frozen=True)
class CueConfig:
    """Thresholds of the cue extraction; defaults are the official DTO-Humans values."""

    min_area_fraction: float = 1.0 / 400.0  # (H/20)(W/20) pixels
    min_visible_vertices: int = 500
    iqr_factor: float = 1.5
    inlier_threshold: float = 0.1  # metres of mesh depth
    # official: False (slope/corr of the first fit are kept); True re-fits on the inliers, rows
    # re-demeaned over them, and a refit without horizontal variation is DEGENERATE_FIT
    refit_on_inliers: bool = True
    down_percentile: float = 90.0  # rows at or below this percentile of the person's rows = "down"


@dataclass(frozen=True)
class DepthCues:
    """Per-person cues of one image, arrays of length K (persons in record order).

    rel_depth:        d_i, mean relative depth over the person's filtered pixels (arbitrary units).
    mesh_depth:       t_i (z_hat_i), mean teacher mesh depth over the same pixels (metres).
    rel_depth_std:    population std of relative depth over those pixels (quasi-planar test).
    slope:            X_i, intra-human depth scale, metres of mesh depth per unit of relative depth.
    corr:             w_i, Pearson correlation of the row-demeaned fit (0 where undefined).
    rel_depth_down:   d_i over the person's lowest rows (feet region), for the "down" variant.
    mesh_depth_down:  t_i over the same lowest rows (metres).
    num_pixels:       pixels kept after all filters.
    status:           CueStatus per person; rows with status != OK hold NaN cues.
    """

    rel_depth: np.ndarray
    mesh_depth: np.ndarray
    rel_depth_std: np.ndarray
    slope: np.ndarray
    corr: np.ndarray
    rel_depth_down: np.ndarray
    mesh_depth_down: np.ndarray
    num_pixels: np.ndarray
    status: np.ndarray

    def __len__(self) -> int:
        return len(self.rel_depth)

    @property
    def ok(self) -> np.ndarray:
        """(K,) bool, persons whose cues were extracted."""
        return self.status == CueStatus.OK

    def select(self, index: np.ndarray) -> DepthCues:
        """Cues of a subset of persons (bool mask or integer index)."""
        return DepthCues(**{k: np.asarray(v)[index] for k, v in self.__dict__.items()})


# --------------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------------

_PERCENT = 100.0
_Q1_PERCENTILE = 25.0
_Q3_PERCENTILE = 75.0
_HALF = 0.5  # numpy's 'linear' interpolation switches to the upper end from gamma >= 0.5


def depth_from_disparity(disparity: np.ndarray) -> np.ndarray:
    """Official relative depth of a disparity-like map (spec A.4), float64 (H, W), arbitrary units.

    Pixels <= 0 take the smallest positive value of the map, then depth = 1 / disparity.
    Raises ValueError if the map has a non-finite value or no positive pixel.
    """
    disp = np.asarray(disparity, dtype=np.float64)
    _require_finite("disparity", disp.reshape(-1), np.arange(disp.size), disp.shape)
    positive = disp > 0
    if not positive.any():
        raise ValueError("disparity has no positive pixel")
    return 1.0 / np.where(positive, disp, disp[positive].min())


def extract_cues(
    rel_depth: np.ndarray,
    person_ids: np.ndarray,
    mesh_depth: np.ndarray,
    num_persons: int,
    visible_vertices: np.ndarray | None = None,
    config: CueConfig = CueConfig(),
) -> tuple[DepthCues, np.ndarray]:
    """Per-person depth cues of one image (spec A.7), vectorised over pixels and persons.

    rel_depth:        (H, W) relative depth, e.g. depth_from_disparity's output (arbitrary units).
    person_ids:       (H, W) integer composite id map, 0 = background, i + 1 = person i.
    mesh_depth:       (H, W) teacher mesh depth at each pixel (metres); read on person pixels only.
    num_persons:      K, number of persons of the image.
    visible_vertices: (K,) visible mesh vertices per person, or None to skip that rule.

    Returns the (K,) cues, rejected persons with NaN cues and their CueStatus, and the final
    (H, W) id map (same dtype as person_ids) where removed and filtered pixels are 0.
    Raises ValueError on inconsistent shapes, ids outside [0, K] or non-finite depths on person
    pixels, naming the argument and the first offending pixel.
    """
    rel, ids, mesh, k, visible = _validate(
        rel_depth, person_ids, mesh_depth, num_persons, visible_vertices
    )
    height, width = ids.shape
    min_area = _min_area(height, width, config.min_area_fraction)
    status = np.full(k, CueStatus.OK, dtype=np.int64)

    # Person pixels, sorted by person; the sort is stable, so rows ascend inside each person.
    # Every pixel array below keeps that order, so per-person sums are segment sums.
    pix = np.flatnonzero(ids)
    pid = ids.reshape(-1)[pix]
    d = rel.reshape(-1)[pix]
    t = mesh.reshape(-1)[pix]
    _require_finite("rel_depth", d, pix, ids.shape)  # on person pixels only
    _require_finite("mesh_depth", t, pix, ids.shape)
    order = np.argsort(pid.astype(np.min_scalar_type(k)), kind="stable")  # radix sort
    pix, pid, d, t = pix[order], pid[order].astype(np.intp) - 1, d[order], t[order]

    # 1. Size and visibility.
    counts = _segment_counts(pid, k)
    status[(counts < min_area) | (counts == 0)] = CueStatus.TOO_SMALL
    if visible is not None:
        few_visible = (status == CueStatus.OK) & (visible < config.min_visible_vertices)
        status[few_visible] = CueStatus.TOO_FEW_VISIBLE_VERTICES
    pix, pid, d, t = _compress(status[pid] == CueStatus.OK, pix, pid, d, t)

    # 2. IQR filter on relative depth.
    lower, upper = _iqr_bounds(d, pid, k, config.iqr_factor)
    pix, pid, d, t = _compress((d > lower[pid]) & (d < upper[pid]), pix, pid, d, t)
    counts = _segment_counts(pid, k)
    too_few = (status == CueStatus.OK) & ((counts < min_area) | (counts == 0))
    status[too_few] = CueStatus.TOO_FEW_AFTER_IQR
    pix, pid, d, t = _compress(~too_few[pid], pix, pid, d, t)

    # 3. Row-demeaned regression and inliers.
    fit = _row_demeaned_fit(pid, pix // width, d, t, k, height)
    residual = fit.slope[pid] * fit.x + fit.intercept[pid] - fit.y
    inlier = np.abs(residual) <= config.inlier_threshold  # False for degenerate persons (NaN)
    pix, pid, d, t = _compress(inlier, pix, pid, d, t)
    status[(status == CueStatus.OK) & (_segment_counts(pid, k) == 0)] = CueStatus.DEGENERATE_FIT
    if config.refit_on_inliers:
        fit = _row_demeaned_fit(pid, pix // width, d, t, k, height)
        degenerate = (status == CueStatus.OK) & np.isnan(fit.slope)
        status[degenerate] = CueStatus.DEGENERATE_FIT
        pix, pid, d, t = _compress(~degenerate[pid], pix, pid, d, t)

    # 4. Statistics over the final pixels; "down" = rows at or below the percentile row.
    ok = status == CueStatus.OK
    counts = _segment_counts(pid, k)
    mean_d = _segment_means(d, counts)
    std_d = np.sqrt(_segment_means((d - mean_d[pid]) ** 2, counts))
    rows = pix // width
    y_down = np.full(k, np.nan)
    y_down[ok] = _sorted_segment_percentile(
        rows, counts[ok], _starts(counts)[ok], config.down_percentile
    )
    down = rows >= y_down[pid]
    counts_down = _segment_counts(pid[down], k)

    cues = DepthCues(
        rel_depth=mean_d,
        mesh_depth=_segment_means(t, counts),
        rel_depth_std=std_d,
        slope=np.where(ok, fit.slope, np.nan),
        corr=np.where(ok, fit.corr, np.nan),
        rel_depth_down=_segment_means(d[down], counts_down),
        mesh_depth_down=_segment_means(t[down], counts_down),
        num_pixels=counts,
        status=status,
    )
    final_ids = np.zeros(ids.shape, dtype=ids.dtype)
    final_ids.reshape(-1)[pix] = pid + 1
    return cues, final_ids


# --------------------------------------------------------------------------------------------------
# Helpers. Pixel arrays (N,) are sorted by person id pid (N,), rows ascending inside a person, so
# each person's pixels form one contiguous segment; counts (K,) are the segment lengths.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RowFit:
    """Row-demeaned OLS fit y = slope * x + intercept, per person (K,) and per pixel (N,)."""

    slope: np.ndarray  # (K,), NaN where degenerate (no horizontal variation) or absent
    intercept: np.ndarray  # (K,)
    corr: np.ndarray  # (K,), 0 where mesh depth has no horizontal variation
    x: np.ndarray  # (N,) relative depth minus its row mean
    y: np.ndarray  # (N,) mesh depth minus its row mean (metres)


def _row_demeaned_fit(
    pid: np.ndarray, rows: np.ndarray, d: np.ndarray, t: np.ndarray, k: int, height: int
) -> _RowFit:
    """Fit mesh_dev = slope * da_dev + intercept per person, deviations from (person, row) means."""
    key = pid * height + rows  # non-decreasing, so each (person, row) is a contiguous segment
    new_row = np.empty(key.size, dtype=bool)
    new_row[:1] = True
    np.not_equal(key[1:], key[:-1], out=new_row[1:])
    row_starts = np.flatnonzero(new_row)
    row_of_pixel = np.cumsum(new_row) - 1
    row_counts = np.diff(np.append(row_starts, key.size))

    def deviation(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values minus their row mean, and (K,) whether some row of the person is not constant."""
        if values.size == 0:
            return values, np.zeros(k, dtype=bool)
        dev = values - (np.add.reduceat(values, row_starts) / row_counts)[row_of_pixel]
        varies = np.zeros(k, dtype=bool)
        varies[pid[values != values[row_starts][row_of_pixel]]] = True
        return dev, varies

    x, x_varies = deviation(d)
    y, y_varies = deviation(t)
    counts = _segment_counts(pid, k)
    mean_x = _segment_means(x, counts)
    mean_y = _segment_means(y, counts)
    xc = x - mean_x[pid]
    yc = y - mean_y[pid]
    sxx = _segment_sums(xc * xc, counts)
    sxy = _segment_sums(xc * yc, counts)
    syy = _segment_sums(yc * yc, counts)
    fitted = x_varies & (sxx > 0)
    slope = np.divide(sxy, sxx, out=np.full(k, np.nan), where=fitted)
    has_corr = fitted & y_varies & (syy > 0)
    corr = np.divide(sxy, np.sqrt(sxx * syy), out=np.zeros(k), where=has_corr)
    return _RowFit(slope=slope, intercept=mean_y - slope * mean_x, corr=corr, x=x, y=y)


def _iqr_bounds(
    d: np.ndarray, pid: np.ndarray, k: int, factor: float
) -> tuple[np.ndarray, np.ndarray]:
    """(K,) open bounds (max(Q1 - f IQR, 0), Q3 + f IQR) of each person's values; NaN if absent."""
    # Lexicographic sort by (person, value): any value order, then a stable (radix) regroup.
    by_value = np.argsort(d)
    by_person = np.argsort(pid[by_value].astype(np.min_scalar_type(k)), kind="stable")
    sorted_d = d[by_value[by_person]]
    counts = _segment_counts(pid, k)
    present = counts > 0
    starts = _starts(counts)[present]
    q1 = _sorted_segment_percentile(sorted_d, counts[present], starts, _Q1_PERCENTILE)
    q3 = _sorted_segment_percentile(sorted_d, counts[present], starts, _Q3_PERCENTILE)
    iqr = q3 - q1
    lower = np.full(k, np.nan)
    upper = np.full(k, np.nan)
    lower[present] = np.maximum(q1 - factor * iqr, 0.0)
    upper[present] = q3 + factor * iqr
    return lower, upper


def _sorted_segment_percentile(
    values: np.ndarray, counts: np.ndarray, starts: np.ndarray, percentile: float
) -> np.ndarray:
    """Percentile of each non-empty segment values[start:start + count], sorted inside.

    Same arithmetic as np.percentile's default 'linear' method, so results are bit-identical.
    """
    virtual = (counts - 1) * (percentile / _PERCENT)
    below = np.floor(virtual)
    gamma = virtual - below
    first = starts + below.astype(np.intp)
    a = values[first].astype(np.float64)
    b = values[np.minimum(first + 1, starts + counts - 1)].astype(np.float64)
    diff = b - a
    return np.where(gamma >= _HALF, b - diff * (1 - gamma), a + diff * gamma)


def _segment_counts(pid: np.ndarray, k: int) -> np.ndarray:
    """(K,) pixels of each person in a sorted pid array."""
    return np.diff(np.searchsorted(pid, np.arange(k + 1)))


def _starts(counts: np.ndarray) -> np.ndarray:
    """(K,) first index of each person's segment."""
    return np.cumsum(counts) - counts


def _segment_sums(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(K,) sum of values over each person's segment (0 for persons without pixels)."""
    sums = np.zeros(counts.size)
    present = counts > 0
    if present.any():
        sums[present] = np.add.reduceat(values, _starts(counts)[present])
    return sums


def _segment_means(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(K,) mean of values over each person's segment; NaN for persons without pixels."""
    sums = _segment_sums(values, counts)
    return np.divide(sums, counts, out=np.full(counts.size, np.nan), where=counts > 0)


def _min_area(height: int, width: int, fraction: float) -> float:
    """Area threshold (H / s)(W / s) pixels with s = sqrt(1 / fraction), s = 20 by default.

    Same floating-point value as the official (H/20)(W/20); fraction * H * W can differ by one ulp
    (e.g. 7.000000000000001 for 28 x 100), which rejects a person of exactly 7 pixels.
    """
    if fraction <= 0:
        return 0.0
    side = math.sqrt(1.0 / fraction)
    return (height / side) * (width / side)


def _compress(keep: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """The pixel arrays restricted to the kept pixels (no copy when all are kept)."""
    if keep.all():
        return arrays
    return tuple(a[keep] for a in arrays)


def _require_finite(name: str, values: np.ndarray, flat_index: np.ndarray, shape: tuple) -> None:
    """ValueError naming the first non-finite value; values (N,) at ascending flat indices (N,)."""
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        where = tuple(int(c) for c in np.unravel_index(flat_index[bad[0]], shape))
        raise ValueError(f"{name} must be finite, got {values[bad[0]]} at {where}")


def _validate(
    rel_depth: np.ndarray,
    person_ids: np.ndarray,
    mesh_depth: np.ndarray,
    num_persons: int,
    visible_vertices: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, np.ndarray | None]:
    """Arrays as float64 / integer, checked for shapes and the id range."""
    ids = np.asarray(person_ids)
    if ids.ndim != 2:
        raise ValueError(f"person_ids must be 2-D (H, W), got shape {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"person_ids must have an integer dtype, got {ids.dtype}")
    rel = np.asarray(rel_depth, dtype=np.float64)
    mesh = np.asarray(mesh_depth, dtype=np.float64)
    for name, array in (("rel_depth", rel), ("mesh_depth", mesh)):
        if array.shape != ids.shape:
            raise ValueError(f"{name} has shape {array.shape}, person_ids has {ids.shape}")
    k = operator.index(num_persons)
    if k < 0:
        raise ValueError(f"num_persons must be >= 0, got {k}")
    if ids.size and (ids.min() < 0 or ids.max() > k):
        i = int(np.flatnonzero((ids < 0) | (ids > k))[0])
        where = tuple(int(c) for c in np.unravel_index(i, ids.shape))
        raise ValueError(f"person_ids must lie in [0, {k}], got {ids[where]} at {where}")
    visible = None
    if visible_vertices is not None:
        visible = np.asarray(visible_vertices)
        if visible.shape != (k,):
            raise ValueError(f"visible_vertices must have shape ({k},), got {visible.shape}")
    return rel, ids, mesh, k, visible
