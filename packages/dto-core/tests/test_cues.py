"""Tests of dto_core.cues: per-person depth cues (spec A.7) against a brute-force oracle."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dto_core.cues import CueConfig, CueStatus, DepthCues, depth_from_disparity, extract_cues

ATOL = 1e-10
FLOAT_FIELDS = (
    "rel_depth",
    "mesh_depth",
    "rel_depth_std",
    "slope",
    "corr",
    "rel_depth_down",
    "mesh_depth_down",
)
# 30 x 50 image: area threshold (30/20)(50/20) = 3.75 pixels, so 3 pixels are too few and 4 enough.
SMALL_SHAPE = (30, 50)


# --------------------------------------------------------------------------------------------------
# Brute-force oracle: one person at a time, one row at a time, as in the official loop.
# --------------------------------------------------------------------------------------------------


def _oracle_fit(
    rows: np.ndarray, d: np.ndarray, t: np.ndarray
) -> tuple[float, float, float, np.ndarray, np.ndarray] | None:
    """Row-demeaned polyfit; None when no row has horizontal variation of d."""
    x = np.empty_like(d)
    y = np.empty_like(t)
    x_varies = y_varies = False
    for row in np.unique(rows):
        in_row = rows == row
        x[in_row] = d[in_row] - d[in_row].mean()
        y[in_row] = t[in_row] - t[in_row].mean()
        x_varies |= bool(np.ptp(d[in_row]) > 0)
        y_varies |= bool(np.ptp(t[in_row]) > 0)
    if not x_varies:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    corr = np.corrcoef(x, y)[0, 1] if y_varies else np.nan
    return slope, intercept, 0.0 if np.isnan(corr) else corr, x, y


def oracle(
    rel: np.ndarray,
    ids: np.ndarray,
    mesh: np.ndarray,
    k: int,
    visible: np.ndarray | None,
    config: CueConfig,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    h, w = ids.shape
    side = 20 if config.min_area_fraction == 1 / 400 else np.sqrt(1 / config.min_area_fraction)
    area = (h / side) * (w / side)
    out = ids.copy()
    res = {name: np.full(k, np.nan) for name in FLOAT_FIELDS}
    res["num_pixels"] = np.zeros(k, dtype=int)
    res["status"] = np.zeros(k, dtype=int)

    for i in range(k):

        def reject(status: CueStatus, person: int = i) -> None:
            res["status"][person] = status
            out[out == person + 1] = 0

        rows, cols = np.nonzero(ids == i + 1)
        if len(rows) == 0 or len(rows) < area:
            reject(CueStatus.TOO_SMALL)
            continue
        if visible is not None and visible[i] < config.min_visible_vertices:
            reject(CueStatus.TOO_FEW_VISIBLE_VERTICES)
            continue
        d = rel[rows, cols]
        q1 = np.percentile(d, 25)
        q3 = np.percentile(d, 75)
        iqr = q3 - q1
        lower = max(q1 - config.iqr_factor * iqr, 0.0)
        upper = q3 + config.iqr_factor * iqr
        keep = (d > lower) & (d < upper)
        out[rows[~keep], cols[~keep]] = 0
        rows, cols = rows[keep], cols[keep]
        if len(rows) == 0 or len(rows) < area:
            reject(CueStatus.TOO_FEW_AFTER_IQR)
            continue
        d, t = rel[rows, cols], mesh[rows, cols]
        fit = _oracle_fit(rows, d, t)
        if fit is None:
            reject(CueStatus.DEGENERATE_FIT)
            continue
        slope, intercept, corr, x, y = fit
        inlier = np.abs(slope * x + intercept - y) <= config.inlier_threshold
        out[rows[~inlier], cols[~inlier]] = 0
        rows, cols, d, t = rows[inlier], cols[inlier], d[inlier], t[inlier]
        if len(rows) == 0:
            reject(CueStatus.DEGENERATE_FIT)
            continue
        if config.refit_on_inliers:
            fit = _oracle_fit(rows, d, t)
            if fit is None:
                reject(CueStatus.DEGENERATE_FIT)
                continue
            slope, _, corr, _, _ = fit
        y90 = np.percentile(rows, config.down_percentile)
        down = rows >= y90
        res["rel_depth"][i] = d.mean()
        res["mesh_depth"][i] = t.mean()
        res["rel_depth_std"][i] = d.std()
        res["slope"][i] = slope
        res["corr"][i] = corr
        res["rel_depth_down"][i] = d[down].mean()
        res["mesh_depth_down"][i] = t[down].mean()
        res["num_pixels"][i] = len(rows)
    return res, out


def random_scene(
    rng: np.random.Generator, h: int = 48, w: int = 64, k: int = 7
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Overlapping elliptic persons, z-buffer composite; rel depth with vertical bias, outliers."""
    yy, xx = np.mgrid[0:h, 0:w]
    zbuf = np.full((k, h, w), np.inf)
    for i in range(k):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(1.0, h / 2.5), rng.uniform(0.6, w / 4)
        mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        mask &= rng.random((h, w)) > 0.1
        z = rng.uniform(2.0, 8.0) + rng.normal(0, 0.1) * (xx - cx) / rx
        z = z + rng.normal(0, 0.03, (h, w)) + (rng.random((h, w)) < 0.08) * rng.uniform(0.2, 1.0)
        zbuf[i][mask] = z[mask]
    zmin = zbuf.min(axis=0)
    ids = np.where(np.isfinite(zmin), zbuf.argmin(axis=0) + 1, 0).astype(np.int32)
    mesh = np.where(ids > 0, zmin, rng.uniform(-5, 5, (h, w)))
    scale = rng.uniform(0.5, 2.0, k + 1)
    rel = scale[ids] * mesh / 10 + 0.01 * yy + rng.normal(0, 0.01, (h, w))
    rel = rel + (rng.random((h, w)) < 0.04) * rng.uniform(1.0, 5.0, (h, w))
    rel = np.where(rng.random((h, w)) < 0.02, -rel, rel)
    visible = rng.integers(300, 3000, k)
    return rel, ids, mesh, visible


def assert_cues_match(cues: DepthCues, expected: dict[str, np.ndarray]) -> None:
    np.testing.assert_array_equal(cues.status, expected["status"])
    np.testing.assert_array_equal(cues.num_pixels, expected["num_pixels"])
    for name in FLOAT_FIELDS:
        np.testing.assert_allclose(
            getattr(cues, name), expected[name], rtol=0, atol=ATOL, equal_nan=True, err_msg=name
        )


@pytest.mark.parametrize("refit", [False, True])
@pytest.mark.parametrize("seed", range(25))
def test_matches_bruteforce_oracle(seed: int, refit: bool) -> None:
    rng = np.random.default_rng(seed)
    rel, ids, mesh, visible = random_scene(rng)
    config = CueConfig(refit_on_inliers=refit)
    k = len(visible)
    cues, final_ids = extract_cues(rel, ids, mesh, k, visible, config)
    expected, expected_ids = oracle(rel, ids, mesh, k, visible, config)
    assert_cues_match(cues, expected)
    np.testing.assert_array_equal(final_ids, expected_ids)
    assert len(cues) == k
    assert cues.status.shape == (k,)


def test_random_scenes_exercise_every_rule() -> None:
    """The oracle comparison is only meaningful if the scenes hit each rule and filter."""
    seen: set[int] = set()
    filtered = 0
    for seed in range(25):
        rel, ids, mesh, visible = random_scene(np.random.default_rng(seed))
        cues, final_ids = extract_cues(rel, ids, mesh, len(visible), visible)
        seen.update(int(s) for s in cues.status)
        ok_ids = np.flatnonzero(cues.ok) + 1
        filtered += int(np.sum(np.isin(ids, ok_ids) & (final_ids == 0)))
    assert seen == set(CueStatus)
    assert filtered > 0  # IQR / inlier filters removed pixels of kept persons


@pytest.mark.parametrize("refit", [False, True])
def test_matches_oracle_without_visibility_and_other_thresholds(refit: bool) -> None:
    rng = np.random.default_rng(123)
    rel, ids, mesh, _ = random_scene(rng, h=40, w=90, k=5)
    config = CueConfig(
        min_area_fraction=1 / 1000,
        iqr_factor=1.0,
        inlier_threshold=0.05,
        refit_on_inliers=refit,
        down_percentile=75.0,
    )
    cues, final_ids = extract_cues(rel, ids, mesh, 5, None, config)
    expected, expected_ids = oracle(rel, ids, mesh, 5, None, config)
    assert_cues_match(cues, expected)
    np.testing.assert_array_equal(final_ids, expected_ids)


# --------------------------------------------------------------------------------------------------
# Hand-made cases
# --------------------------------------------------------------------------------------------------


def _block(ids: np.ndarray, person: int, rows: slice, cols: slice) -> None:
    ids[rows, cols] = person + 1


def _plane_scene(shape: tuple[int, int] = SMALL_SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """rel depth varying in x and y (never constant in a row), and mesh = 2 rel + 1 (exact fit)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    rel = 1.0 + 0.01 * xx + 0.003 * yy
    return rel, 2.0 * rel + 1.0


def test_area_threshold_is_a_float_product() -> None:
    rel, mesh = _plane_scene()
    ids = np.zeros(SMALL_SHAPE, dtype=np.int32)
    _block(ids, 0, slice(2, 3), slice(0, 3))  # 3 pixels < 3.75
    _block(ids, 1, slice(5, 7), slice(0, 2))  # 4 pixels >= 3.75
    # person 2 has no pixel at all
    cues, final_ids = extract_cues(rel, ids, mesh, 3)
    assert cues.status.tolist() == [CueStatus.TOO_SMALL, CueStatus.OK, CueStatus.TOO_SMALL]
    assert cues.num_pixels.tolist() == [0, 4, 0]
    assert np.all(np.isnan([cues.rel_depth[0], cues.slope[0], cues.corr[2]]))
    assert not np.any(final_ids == 1)
    np.testing.assert_array_equal(final_ids == 2, ids == 2)


def test_area_threshold_matches_official_rounding() -> None:
    # (28/20)(100/20) = 7.0 exactly, whereas 0.0025 * 28 * 100 = 7.000000000000001
    shape = (28, 100)
    rel, mesh = _plane_scene(shape)
    ids = np.zeros(shape, dtype=np.int32)
    _block(ids, 0, slice(0, 1), slice(0, 7))
    _block(ids, 1, slice(5, 6), slice(0, 6))
    cues, _ = extract_cues(rel, ids, mesh, 2)
    assert cues.status.tolist() == [CueStatus.OK, CueStatus.TOO_SMALL]


def test_single_pixel_persons_without_area_rule() -> None:
    rel, mesh = _plane_scene()
    ids = np.zeros(SMALL_SHAPE, dtype=np.int32)
    ids[4, 4] = 1
    ids[29, 49] = 2  # last pixel of the image, last person
    cues, final_ids = extract_cues(rel, ids, mesh, 3, config=CueConfig(min_area_fraction=0.0))
    # one value: Q1 = Q3 = value, and the strict IQR bounds remove it; person 2 has no pixel
    assert cues.status.tolist() == [CueStatus.TOO_FEW_AFTER_IQR] * 2 + [CueStatus.TOO_SMALL]
    assert not final_ids.any()


def test_visible_vertex_rule_and_precedence() -> None:
    rel, mesh = _plane_scene()
    ids = np.zeros(SMALL_SHAPE, dtype=np.int32)
    _block(ids, 0, slice(0, 4), slice(0, 4))
    _block(ids, 1, slice(10, 14), slice(0, 4))
    _block(ids, 2, slice(20, 21), slice(0, 2))  # too small and too few vertices
    cues, final_ids = extract_cues(rel, ids, mesh, 3, np.array([499, 500, 0]))
    assert cues.status.tolist() == [
        CueStatus.TOO_FEW_VISIBLE_VERTICES,
        CueStatus.OK,
        CueStatus.TOO_SMALL,
    ]
    np.testing.assert_array_equal(final_ids, np.where(ids == 2, 2, 0))
    cues, _ = extract_cues(rel, ids, mesh, 3, None)  # rule skipped
    assert cues.status[0] == CueStatus.OK


def test_too_few_after_iqr() -> None:
    rel, mesh = _plane_scene()
    ids = np.zeros(SMALL_SHAPE, dtype=np.int32)
    # person 0: values (-1, -1, 1, 1.1, 1.2): lower = max(-4.15, 0) = 0 removes both -1: 3 < 3.75
    _block(ids, 0, slice(0, 1), slice(0, 5))
    rel[0, :5] = [-1.0, 1.0, -1.0, 1.1, 1.2]
    # person 1: constant rel depth -> IQR = 0 and the strict bounds remove every pixel
    _block(ids, 1, slice(10, 14), slice(0, 4))
    rel[10:14, 0:4] = 0.7
    cues, final_ids = extract_cues(rel, ids, mesh, 2)
    assert cues.status.tolist() == [CueStatus.TOO_FEW_AFTER_IQR] * 2
    assert not final_ids.any()


def test_iqr_bounds_are_strict() -> None:
    rel, mesh = _plane_scene()
    ids = np.zeros(SMALL_SHAPE, dtype=np.int32)
    _block(ids, 0, slice(3, 5), slice(0, 4))
    # sorted (1..7, X): Q1 = 2.75, Q3 = 6.25, IQR = 3.5 -> keep 0 < d < 11.5
    values = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 11.5]])
    rel[3:5, 0:4] = values
    mesh = 0.1 * rel + 3.0
    cues, final_ids = extract_cues(rel, ids, mesh, 1)
    assert cues.num_pixels[0] == 7
    assert final_ids[4, 3] == 0
    assert np.count_nonzero(final_ids) == 7
    rel[4, 3] = 11.4
    cues, final_ids = extract_cues(rel, ids, 0.1 * rel + 3.0, 1)
    assert cues.num_pixels[0] == 8
    assert final_ids[4, 3] == 1


def test_iqr_lower_bound_is_strict() -> None:
    rel, _ = _plane_scene()
    ids = np.zeros(SMALL_SHAPE, dtype=np.int32)
    # person 0: sorted (6, 9, 9, 10, 10, 11, 11, 30): Q1 = 9, Q3 = 11 -> keep 6 < d < 14
    _block(ids, 0, slice(3, 5), slice(0, 4))
    rel[3:5, 0:4] = [[6.0, 9.0, 9.0, 10.0], [10.0, 11.0, 11.0, 30.0]]
    # person 1: sorted (0, 1, ..., 7): lower bound max(1.75 - 5.25, 0) = 0 removes the 0
    _block(ids, 1, slice(10, 12), slice(0, 4))
    rel[10:12, 0:4] = np.arange(8.0).reshape(2, 4)
    cues, final_ids = extract_cues(rel, ids, 0.1 * rel + 3.0, 2)
    assert cues.num_pixels.tolist() == [6, 7]
    assert final_ids[3, 0] == final_ids[4, 3] == final_ids[10, 0] == 0
    assert np.count_nonzero(final_ids) == 13


@pytest.mark.parametrize("refit", [False, True])
def test_inlier_threshold_is_inclusive(refit: bool) -> None:
    rel, mesh = _plane_scene()
    ids = np.zeros(SMALL_SHAPE, dtype=np.int32)
    # rows of two pixels, x = (-1, 1) in every row, y = x, x, x/2, 3x/2: slope 1, intercept 0,
    # residuals 0, 0, 0.5, 0.5 exactly
    _block(ids, 0, slice(0, 4), slice(0, 2))
    rel[0:4, 0:2] = [1.0, 3.0]
    mesh[0:4, 0:2] = [[0.0, 2.0], [0.0, 2.0], [1.5, 2.5], [0.5, 3.5]]
    config = CueConfig(inlier_threshold=0.5, refit_on_inliers=refit)
    cues, _ = extract_cues(rel, ids, mesh, 1, config=config)
    assert cues.num_pixels[0] == 8
    assert cues.slope[0] == 1.0
    config = CueConfig(inlier_threshold=0.49, refit_on_inliers=refit)
    cues, final_ids = extract_cues(rel, ids, mesh, 1, config=config)
    assert cues.num_pixels[0] == 4
    assert cues.slope[0] == 1.0
    assert cues.mesh_depth[0] == 1.0
    np.testing.assert_array_equal(final_ids[0:4, 0:2], [[1, 1], [1, 1], [0, 0], [0, 0]])


@pytest.mark.parametrize("refit", [False, True])
def test_degenerate_fits(refit: bool) -> None:
    rel, mesh = _plane_scene()
    ids = np.zeros(SMALL_SHAPE, dtype=np.int32)
    config = CueConfig(refit_on_inliers=refit)
    _block(ids, 0, slice(0, 12), slice(5, 6))  # one pixel wide
    # person 1: three pixels per row, rel constant in each row (0.1 * 3 is not exact in floats)
    _block(ids, 1, slice(0, 10), slice(20, 23))
    rel[0:10, 20:23] = 0.1 * (np.arange(10)[:, None] + 3)
    # person 2: row-demeaned (x, y) = (-1, -1), (1, 1), (-1, 1), (1, -1): slope 0, all |res| = 1
    _block(ids, 2, slice(20, 22), slice(30, 32))
    rel[20:22, 30:32] = [[2.0, 4.0], [2.0, 4.0]]
    mesh[20:22, 30:32] = [[3.0, 5.0], [5.0, 3.0]]
    _block(ids, 3, slice(25, 28), slice(0, 4))  # a healthy person
    cues, final_ids = extract_cues(rel, ids, mesh, 4, config=config)
    assert cues.status.tolist() == [CueStatus.DEGENERATE_FIT] * 3 + [CueStatus.OK]
    assert np.all(np.isnan(cues.slope[:3]))
    assert cues.num_pixels.tolist() == [0, 0, 0, 12]
    np.testing.assert_array_equal(final_ids, np.where(ids == 4, 4, 0))


def test_refit_on_single_pixel_rows_is_degenerate() -> None:
    rel, mesh = _plane_scene()
    ids = np.zeros(SMALL_SHAPE, dtype=np.int32)
    # x = (-1, 0, 1) in four rows, y = 0 in two of them and y = x in the other two: slope 0.5, and
    # only the middle pixel of each row has a residual <= 0.1, so the inliers have single-pixel rows
    _block(ids, 0, slice(0, 4), slice(0, 3))
    rel[0:4, 0:3] = [1.0, 2.0, 3.0]
    mesh[0:4, 0:3] = [[5.0, 5.0, 5.0], [5.0, 5.0, 5.0], [4.0, 5.0, 6.0], [4.0, 5.0, 6.0]]
    cues, final_ids = extract_cues(rel, ids, mesh, 1, config=CueConfig(refit_on_inliers=False))
    assert cues.status[0] == CueStatus.OK
    assert cues.slope[0] == 0.5
    assert cues.corr[0] == pytest.approx(np.sqrt(0.5), abs=1e-15)
    assert cues.num_pixels[0] == 4
    np.testing.assert_array_equal(np.flatnonzero(final_ids[0:4, 0:3] == 1), [1, 4, 7, 10])
    cues, final_ids = extract_cues(rel, ids, mesh, 1, config=CueConfig(refit_on_inliers=True))
    assert cues.status[0] == CueStatus.DEGENERATE_FIT
    assert not final_ids.any()


def test_non_contiguous_inputs() -> None:
    rel, ids, mesh, visible = random_scene(np.random.default_rng(99))
    config = CueConfig()
    cues, final_ids = extract_cues(rel.T, ids.T, mesh.T, len(visible), visible, config)
    expected, expected_ids = oracle(
        rel.T.copy(), ids.T.copy(), mesh.T.copy(), len(visible), visible, config
    )
    assert_cues_match(cues, expected)
    np.testing.assert_array_equal(final_ids, expected_ids)


@pytest.mark.parametrize("refit", [False, True])
def test_exact_linear_relation_with_row_offsets(refit: bool) -> None:
    rng = np.random.default_rng(7)
    h, w, a = 60, 40, 2.5
    yy = np.mgrid[0:h, 0:w][0]
    rel = rng.uniform(1.0, 1.5, (h, w)) + 0.05 * yy  # vertical bias
    row_offset = rng.uniform(-3.0, 3.0, h)[:, None]
    mesh = a * rel + row_offset
    ids = np.zeros((h, w), dtype=np.uint8)
    _block(ids, 0, slice(10, 20), slice(5, 10))
    person = ids == 1
    assert np.corrcoef(rel[person], mesh[person])[0, 1] < 0.9  # a plain fit would fail
    cues, final_ids = extract_cues(rel, ids, mesh, 1, config=CueConfig(refit_on_inliers=refit))
    assert cues.status[0] == CueStatus.OK
    assert cues.slope[0] == pytest.approx(a, abs=1e-12)
    assert cues.corr[0] == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_array_equal(final_ids, ids)
    assert final_ids.dtype == np.uint8
    assert cues.num_pixels[0] == 50
    assert cues.rel_depth[0] == pytest.approx(rel[person].mean(), abs=1e-12)
    assert cues.mesh_depth[0] == pytest.approx(mesh[person].mean(), abs=1e-12)
    assert cues.rel_depth_std[0] == pytest.approx(rel[person].std(), abs=1e-12)
    # rows 10..19, 5 pixels each: y90 = 18 + 0.1 (index 44.1 of 50) -> only row 19 is "down"
    assert cues.rel_depth_down[0] == pytest.approx(rel[19, 5:10].mean(), abs=1e-12)
    assert cues.mesh_depth_down[0] == pytest.approx(mesh[19, 5:10].mean(), abs=1e-12)


def test_corr_is_zero_when_mesh_depth_is_constant_in_rows() -> None:
    rel, _ = _plane_scene()
    ids = np.zeros(SMALL_SHAPE, dtype=np.int32)
    _block(ids, 0, slice(0, 6), slice(0, 6))
    mesh = 0.1 * np.mgrid[0 : SMALL_SHAPE[0], 0 : SMALL_SHAPE[1]][0] + 0.3
    cues, _ = extract_cues(rel, ids, mesh, 1)
    assert cues.status[0] == CueStatus.OK
    assert cues.corr[0] == 0.0
    assert cues.slope[0] == pytest.approx(0.0, abs=1e-12)


def test_no_person_and_select() -> None:
    rel, mesh = _plane_scene()
    cues, final_ids = extract_cues(rel, np.zeros(SMALL_SHAPE, dtype=np.int64), mesh, 0)
    assert len(cues) == 0
    assert not final_ids.any()
    ids = np.zeros(SMALL_SHAPE, dtype=np.int64)
    _block(ids, 1, slice(0, 4), slice(0, 4))
    cues, _ = extract_cues(rel, ids, mesh, 2)
    sub = cues.select(cues.ok)
    assert len(sub) == 1
    assert sub.slope[0] == pytest.approx(2.0, abs=1e-12)
    assert all(len(v) == 2 for v in dataclasses.asdict(cues).values())


def test_depth_from_disparity() -> None:
    disp = np.array([[0.0, 2.0], [4.0, -1.0]], dtype=np.float32)
    depth = depth_from_disparity(disp)
    assert depth.dtype == np.float64
    np.testing.assert_array_equal(depth, [[0.5, 0.5], [0.25, 0.5]])
    with pytest.raises(ValueError, match="no positive"):
        depth_from_disparity(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"disparity.*\(1, 0\)"):
        depth_from_disparity(np.array([[1.0, 2.0], [np.nan, 3.0]]))
    with pytest.raises(ValueError, match="disparity"):
        depth_from_disparity(np.array([1.0, np.inf]))


# --------------------------------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------------------------------


def test_bad_inputs() -> None:
    rel, mesh = _plane_scene()
    ids = np.zeros(SMALL_SHAPE, dtype=np.int32)
    _block(ids, 0, slice(0, 4), slice(0, 4))
    with pytest.raises(ValueError, match="rel_depth"):
        extract_cues(rel[:, :-1], ids, mesh, 1)
    with pytest.raises(ValueError, match="mesh_depth"):
        extract_cues(rel, ids, mesh[:-1], 1)
    with pytest.raises(ValueError, match=r"person_ids.*2-D"):
        extract_cues(rel, ids.ravel(), mesh, 1)
    with pytest.raises(ValueError, match=r"person_ids.*integer"):
        extract_cues(rel, ids.astype(float), mesh, 1)
    bad = ids.copy()
    bad[2, 7] = 2
    with pytest.raises(ValueError, match=r"person_ids.*\[0, 1\].*2 at \(2, 7\)"):
        extract_cues(rel, bad, mesh, 1)
    bad[2, 7] = -1
    with pytest.raises(ValueError, match=r"person_ids.*-1 at \(2, 7\)"):
        extract_cues(rel, bad, mesh, 1)
    with pytest.raises(ValueError, match="num_persons"):
        extract_cues(rel, ids, mesh, -1)
    with pytest.raises(ValueError, match="visible_vertices"):
        extract_cues(rel, ids, mesh, 1, np.array([600, 600]))
    nan_rel = rel.copy()
    nan_rel[3, 2] = np.nan
    nan_rel[3, 1] = np.inf
    with pytest.raises(ValueError, match=r"rel_depth.*inf at \(3, 1\)"):
        extract_cues(nan_rel, ids, mesh, 1)
    nan_mesh = mesh.copy()
    nan_mesh[1, 1] = np.nan
    with pytest.raises(ValueError, match=r"mesh_depth.*\(1, 1\)"):
        extract_cues(rel, ids, nan_mesh, 1)
    nan_mesh[1, 1] = mesh[1, 1]
    nan_mesh[20, 20] = np.nan  # background: never read
    cues, _ = extract_cues(rel, ids, nan_mesh, 1)
    assert cues.status[0] == CueStatus.OK
