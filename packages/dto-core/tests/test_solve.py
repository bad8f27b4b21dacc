"""The Eq. 3 solver against independent oracles: scipy's bounded least squares, numpy's lstsq,
exact rational arithmetic, the spec's hand-checked vectors, and per-scene loops."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import lsq_linear

from dto_core.solve import (
    SolveStatus,
    corrected_heights,
    fit_affine_depth,
    fit_affine_depth_batch,
    solve_affine_depth,
    solve_affine_depth_batch,
    solve_affine_depth_padded,
    standardized_residuals,
)


def random_scene(rng, k, d_offset=0.0):
    h = rng.uniform(0.7, 2.0, k)
    z = rng.uniform(1.0, 25.0, k)
    d = d_offset + rng.uniform(0.05, 1.0, k)
    mu = rng.uniform(0.8, 1.9, k)
    sigma = rng.uniform(0.05, 0.2, k)
    return h, z, d, mu, sigma


def objective(h, z, d, mu, sigma, s, t):
    return np.sum(((h * (s * d + t) / z - mu) / sigma) ** 2)


def design(h, z, d, mu, sigma):
    """Eq. 8 of the supplementary: rows (a_i, b_i) and targets c_i."""
    return np.stack([h * d / (z * sigma), h / (z * sigma)], axis=1), mu / sigma


def test_unconstrained_equals_lstsq():
    rng = np.random.default_rng(0)
    for _ in range(1000):
        scene = random_scene(rng, rng.integers(2, 30))
        a, c = design(*scene)
        ref = np.linalg.lstsq(a, c, rcond=None)[0]
        s, t = solve_affine_depth(*scene)
        np.testing.assert_allclose([s, t], ref, rtol=1e-9, atol=1e-12)


def test_bounded_equals_scipy_lsq_linear():
    rng = np.random.default_rng(1)
    statuses = set()
    for _ in range(2000):
        scene = random_scene(rng, rng.integers(2, 30))
        a, c = design(*scene)
        s_free = np.linalg.lstsq(a, c, rcond=None)[0][0]
        kind = rng.integers(4)
        lo = s_free * rng.uniform(0.5, 1.5) if kind in (1, 3) else -np.inf
        # scipy needs lo < hi strictly; equal bounds are covered by the other tests
        hi = (
            lo + abs(s_free) * rng.uniform(0.01, 0.6)
            if kind == 3
            else s_free * rng.uniform(0.5, 1.5)
            if kind == 2
            else np.inf
        )
        ref = lsq_linear(a, c, bounds=([lo, -np.inf], [hi, np.inf]), method="bvls", tol=1e-14).x
        fit = fit_affine_depth(*scene, s_min=lo, s_max=hi)
        statuses.add(int(fit.status))
        np.testing.assert_allclose([fit.scale, fit.shift], ref, rtol=1e-9, atol=1e-9)
    assert statuses == {SolveStatus.INTERIOR, SolveStatus.AT_LOWER, SolveStatus.AT_UPPER}


def exact_solution(h, z, d, mu, sigma, lo=None):
    """Eq. 13 (and Eq. 17 with a lower bound) in rational arithmetic."""
    sums = dict.fromkeys(("aa", "ab", "bb", "ac", "bc"), Fraction(0))
    for hi, zi, di, mi, si in zip(h, z, d, mu, sigma, strict=True):
        a = Fraction(hi) * Fraction(di) / (Fraction(zi) * Fraction(si))
        b = Fraction(hi) / (Fraction(zi) * Fraction(si))
        c = Fraction(mi) / Fraction(si)
        sums["aa"] += a * a
        sums["ab"] += a * b
        sums["bb"] += b * b
        sums["ac"] += a * c
        sums["bc"] += b * c
    det = sums["aa"] * sums["bb"] - sums["ab"] ** 2
    s = (sums["bb"] * sums["ac"] - sums["ab"] * sums["bc"]) / det
    if lo is not None and s < Fraction(lo):
        s = Fraction(lo)
    t = (sums["bc"] - s * sums["ab"]) / sums["bb"]
    return float(s), float(t)


@pytest.mark.parametrize("d_offset", [0.0, 1e3, 1e5])
def test_ill_conditioned_relative_depths_match_exact_arithmetic(d_offset):
    """Large, nearly equal d (e.g. raw inverse disparity far away) keep full precision."""
    rng = np.random.default_rng(2)
    for _ in range(20):
        scene = random_scene(rng, rng.integers(2, 12), d_offset)
        s_ref, t_ref = exact_solution(*scene)
        s, t = solve_affine_depth(*scene)
        assert s == pytest.approx(s_ref, rel=1e-9)
        # t = y_bar - s d_bar loses the digits that cancel between its two terms
        assert t == pytest.approx(t_ref, rel=1e-9, abs=1e-12 * abs(s_ref) * (d_offset + 1))


def test_spec_hand_checked_vector():
    h = np.array([1.70, 1.60, 1.30])
    z = np.array([3.0, 5.0, 4.0])
    d = np.array([0.10, 0.20, 0.15])
    mu = np.array([1.742, 1.6235, 1.122])  # hybrid adult priors, kid from the table
    sigma = np.array([0.0759, 0.0707, 0.120])
    s, t = solve_affine_depth(h, z, d, mu, sigma)
    assert (s, t) == pytest.approx((19.3663, 1.10106), abs=5e-5)
    np.testing.assert_allclose(
        corrected_heights(h, z, d, s, t), [1.7214, 1.5918, 1.3019], atol=5e-5
    )
    fit = fit_affine_depth(h, z, d, mu, sigma, s_min=20.0)
    assert fit.status == SolveStatus.AT_LOWER
    assert (float(fit.scale), float(fit.shift)) == pytest.approx((20.0, 1.019368), abs=5e-7)
    new_h = corrected_heights(h, z, d, fit.scale, fit.shift)
    np.testing.assert_allclose(new_h, [1.71098, 1.60620, 1.30629], atol=5e-6)
    score = np.abs(standardized_residuals(h, z, d, mu, sigma, fit.scale, fit.shift)).mean()
    assert score == pytest.approx(0.72976, abs=5e-6)


def ragged_batch(rng, sizes):
    scenes = [random_scene(rng, k) for k in sizes]
    flat = [np.concatenate([sc[i] for sc in scenes]) if scenes else np.zeros(0) for i in range(5)]
    offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    return scenes, flat, offsets


def test_batch_equals_per_scene_loop_ragged():
    rng = np.random.default_rng(3)
    sizes = [1, 2, 50, 0, 3, 7, 1, 0, 12]
    scenes, flat, offsets = ragged_batch(rng, sizes)
    lo = rng.uniform(1, 15, len(sizes))
    hi = lo * rng.uniform(1, 3, len(sizes))
    fit = fit_affine_depth_batch(*flat, offsets, lo, hi)
    for i, (scene, k) in enumerate(zip(scenes, sizes, strict=True)):
        one = fit_affine_depth(*scene, s_min=lo[i], s_max=hi[i])
        if k == 0:
            assert fit.status[i] == SolveStatus.EMPTY and np.isnan(fit.scale[i])
            continue
        assert fit.status[i] == one.status
        assert fit.scale[i] == pytest.approx(float(one.scale), rel=1e-12)
        assert fit.shift[i] == pytest.approx(float(one.shift), rel=1e-12, abs=1e-12)
    assert set(fit.status[np.array(sizes) == 1]) == {SolveStatus.SCALE_AT_BOUND}


def test_padded_equals_flat():
    rng = np.random.default_rng(4)
    sizes = [3, 1, 6, 0, 4]
    _, flat, offsets = ragged_batch(rng, sizes)
    mask = np.arange(6)[None, :] < np.array(sizes)[:, None]
    padded = []
    for x in flat:
        p = np.full(mask.shape, -7.0)  # garbage in the padding must be ignored
        p[mask] = x
        padded.append(p)
    got = solve_affine_depth_padded(*padded, mask, s_min=5.0)
    ref = fit_affine_depth_batch(*flat, offsets, s_min=5.0)
    np.testing.assert_array_equal(got.status, ref.status)
    np.testing.assert_allclose(got.scale, ref.scale, rtol=1e-14)
    np.testing.assert_allclose(got.shift, ref.shift, rtol=1e-14)


def test_equal_depths_are_singular():
    h, z, mu, sigma = [1.7, 1.6, 1.5], [3.0, 4.0, 5.0], [1.7, 1.6, 1.5], [0.07, 0.07, 0.1]
    d = [0.3, 0.3, 0.3]
    fit = fit_affine_depth(h, z, d, mu, sigma, s_min=10.0, s_max=20.0)
    assert fit.status == SolveStatus.SCALE_AT_BOUND and fit.scale == 10.0
    # t is the exact minimiser for s fixed at the bound: d(objective)/dt = 0
    grad_t = np.sum(
        2 * (np.array(h) / z / sigma) * ((np.array(h) * (10.0 * 0.3 + fit.shift) / z - mu) / sigma)
    )
    assert abs(grad_t) < 1e-9
    fit_hi = fit_affine_depth(h, z, d, mu, sigma, s_max=20.0)
    assert fit_hi.status == SolveStatus.SCALE_AT_BOUND and fit_hi.scale == 20.0
    undetermined = fit_affine_depth(h, z, d, mu, sigma)
    assert undetermined.status == SolveStatus.UNDETERMINED and np.isnan(undetermined.scale)
    with pytest.raises(ValueError, match="unidentifiable"):
        solve_affine_depth(h, z, d, mu, sigma)


def test_one_person_reaches_its_prior_at_the_bound():
    s, t = solve_affine_depth([1.5], [4.0], [0.2], [1.7], [0.07], s_min=8.0)
    assert s == 8.0
    assert corrected_heights(1.5, 4.0, 0.2, s, t) == pytest.approx(1.7, rel=1e-14)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"z_hat": [3.0, np.nan, 4.0]}, r"z_hat\[1\] = nan"),
        ({"h_hat": [1.7, 1.6, -1.0]}, r"h_hat\[2\] = -1.0"),
        ({"sigma": [0.0, 0.1, 0.1]}, r"sigma\[0\] = 0.0"),
        ({"mu": [1.7, np.inf, 1.6]}, r"mu\[1\] = inf"),
        ({"d": [0.1, 0.2, np.inf]}, r"d\[2\] = inf"),
        ({"d": [0.1, 0.2]}, "same length"),
        ({"s_min": 5.0, "s_max": 4.0}, "not an interval"),
        ({"s_min": np.nan}, "not an interval"),
    ],
)
def test_bad_input_names_the_field(kwargs, message):
    args = {
        "h_hat": [1.7, 1.6, 1.5],
        "z_hat": [3.0, 4.0, 5.0],
        "d": [0.1, 0.2, 0.3],
        "mu": [1.7, 1.6, 1.5],
        "sigma": [0.07, 0.07, 0.1],
    } | kwargs
    with pytest.raises(ValueError, match=message):
        solve_affine_depth(**args)


def test_bad_offsets():
    x = np.ones(3)
    with pytest.raises(ValueError, match="start at 0 and end"):
        solve_affine_depth_batch(x, x, x, x, x, np.array([0, 2]))
    with pytest.raises(ValueError, match="non-decreasing"):
        solve_affine_depth_batch(x, x, x, x, x, np.array([0, 2, 1, 3]))
    with pytest.raises(ValueError, match="integer"):
        solve_affine_depth_batch(x, x, x, x, x, np.array([0.0, 3.0]))


scene_strategy = st.integers(2, 12).flatmap(
    lambda k: st.tuples(
        *(
            st.lists(st.floats(lo, hi), min_size=k, max_size=k)
            for lo, hi in ((0.5, 2.1), (0.5, 30.0), (0.01, 2.0), (0.6, 2.0), (0.03, 0.3))
        )
    )
)


@settings(max_examples=200, deadline=None)
@given(
    scene=scene_strategy,
    lo=st.floats(0.1, 30.0),
    width=st.floats(0.0, 30.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_returned_point_is_the_feasible_minimum(scene, lo, width, seed):
    h, z, d, mu, sigma = map(np.array, scene)
    hi = lo + width
    fit = fit_affine_depth(h, z, d, mu, sigma, s_min=lo, s_max=hi)
    assert lo <= fit.scale <= hi
    best = objective(h, z, d, mu, sigma, fit.scale, fit.shift)
    rng = np.random.default_rng(seed)
    s = rng.uniform(lo, hi, 64)
    t = fit.shift + rng.normal(0, 1.0, 64)
    others = [objective(h, z, d, mu, sigma, si, ti) for si, ti in zip(s, t, strict=True)]
    assert best <= min(others) * (1 + 1e-12) + 1e-12


@settings(max_examples=200, deadline=None)
@given(
    scene=scene_strategy,
    c=st.one_of(st.floats(1e-3, 1e3), st.floats(1e-300, 1e-290), st.floats(1e290, 1e300)),
    lo=st.floats(0.1, 30.0),
)
def test_scaling_relative_depth_by_c_scales_s_by_one_over_c(scene, c, lo):
    h, z, d, mu, sigma = map(np.array, scene)
    base = fit_affine_depth(h, z, d, mu, sigma, s_min=lo, s_max=3 * lo)
    scaled = fit_affine_depth(h, z, c * d, mu, sigma, s_min=lo / c, s_max=3 * lo / c)
    assert scaled.status == base.status or base.status == SolveStatus.SCALE_AT_BOUND
    assert float(scaled.scale) == pytest.approx(float(base.scale) / c, rel=1e-9)
    assert float(scaled.shift) == pytest.approx(float(base.shift), rel=1e-8, abs=1e-9)


def test_chunked_batches_equal_one_kernel_call(monkeypatch):
    import dto_core.solve as solve_module

    rng = np.random.default_rng(5)
    sizes = rng.integers(0, 9, 400)
    _, flat, offsets = ragged_batch(rng, sizes)
    lo = rng.uniform(0.5, 5.0, sizes.size)
    whole = fit_affine_depth_batch(*flat, offsets, lo)
    monkeypatch.setattr(solve_module, "CHUNK_PERSONS", 7)
    chunked = fit_affine_depth_batch(*flat, offsets, lo)
    for field in ("scale", "shift", "status", "scale_unconstrained"):
        np.testing.assert_array_equal(getattr(chunked, field), getattr(whole, field))


def test_numerically_equal_depths_are_unidentifiable():
    """A spread of d below IDENTIFIABLE_SPREAD of its mean counts as equal depths: no 1e15 scale
    from d = [0.1, 0.1 + 1e-15, 0.1], the same verdict at any magnitude of d, and just above the
    tolerance the exact solution."""
    from dto_core.solve import IDENTIFIABLE_SPREAD

    h, z, mu, sigma = [1.7, 1.6, 1.5], [3.0, 4.0, 5.0], [1.7, 1.6, 1.5], [0.07, 0.07, 0.1]
    for magnitude in (0.1, 1e-300, 1e300):
        d = np.array([1.0, 1.0 + 1e-14, 1.0]) * magnitude
        fit = fit_affine_depth(h, z, d, mu, sigma, s_min=20.0 / magnitude)
        assert fit.status == SolveStatus.SCALE_AT_BOUND and np.isnan(fit.scale_unconstrained)
        equal = fit_affine_depth(h, z, np.full(3, magnitude), mu, sigma, s_min=20.0 / magnitude)
        assert float(fit.scale) == float(equal.scale)
        assert float(fit.shift) == pytest.approx(float(equal.shift), rel=1e-12)
        with pytest.raises(ValueError, match="spread is below IDENTIFIABLE_SPREAD = 1e-10"):
            solve_affine_depth(h, z, d, mu, sigma)
    d = [0.1, 0.1 * (1 + 100 * IDENTIFIABLE_SPREAD), 0.1]
    s, _ = solve_affine_depth(h, z, d, mu, sigma)
    s_ref, _ = exact_solution(*map(np.array, (h, z, d, mu, sigma)))
    assert s == pytest.approx(s_ref, rel=1e-9) and abs(s) > 1e8


@pytest.mark.parametrize("magnitude", [1e-300, 1e-200, 1e200, 1e300])
def test_extreme_magnitudes_of_d_are_solved_exactly(magnitude):
    """Sums that would overflow or underflow are taken on d / max|d|: s d and t do not change."""
    rng = np.random.default_rng(4)
    h, z, d, mu, sigma = random_scene(rng, 6)
    for s_min in (-np.inf, 0.5):
        ref = fit_affine_depth(h, z, d, mu, sigma, s_min=s_min)
        fit = fit_affine_depth(h, z, d * magnitude, mu, sigma, s_min=s_min / magnitude)
        assert fit.status == ref.status
        assert float(fit.scale) * magnitude == pytest.approx(float(ref.scale), rel=1e-12)
        assert float(fit.shift) == pytest.approx(float(ref.shift), rel=1e-12)


def test_empty_scene_raises_alike_and_is_accepted_in_batches():
    from dto_core import DepthCues, optimize_scene, optimize_scenes

    with pytest.raises(ValueError, match="the scene has no person") as solve_error:
        solve_affine_depth([], [], [], [], [])
    nothing = DepthCues(*(np.zeros(0),) * 8, np.zeros(0, int))
    with pytest.raises(ValueError, match="the scene has no person") as optimize_error:
        optimize_scene(np.zeros(0), np.zeros(0, int), nothing)
    assert str(solve_error.value) == str(optimize_error.value)
    fit = fit_affine_depth_batch([1.7], [3.0], [0.1], [1.7], [0.1], np.array([0, 0, 1]), 5.0)
    assert list(fit.status) == [SolveStatus.EMPTY, SolveStatus.SCALE_AT_BOUND]
    r = optimize_scenes(np.zeros(0), np.zeros(0, int), nothing, np.array([0, 0]))
    assert r.score.tolist() == [0.0] and r.kept.tolist() == [False]
