"""PCDR, RH 2D PCK, detection statistics: the spec's worked examples and loop oracles."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hmr_bench.metrics import detection_stats, pcdr, pck2d, rh_legacy_prf1


def pcdr_naive(z, layer, age, image, missed_age, thresh=0.2, w=0.3):
    """O(n^2) pair loop written from the definition."""
    correct = total = 0
    age_correct = dict.fromkeys(range(4), 0)
    age_total = dict.fromkeys(range(4), 0)
    n = len(z)
    for a in range(n):
        for b in range(a + 1, n):
            if image[a] != image[b] or layer[a] == -1 or layer[b] == -1:
                continue
            dd, dz = layer[b] - layer[a], z[b] - z[a]
            ok = abs(dz) < thresh if dd == 0 else (dz < -thresh if dd < 0 else dz > thresh)
            correct += ok
            total += 1
            for g in {age[a], age[b]} - {-1}:
                age_correct[g] += ok
                age_total[g] += 1
    den = total + w * len(missed_age)
    out = {"all": correct / den if den else float("nan")}
    for g, name in enumerate(("adult", "teen", "kid", "baby")):
        if age_total[g]:
            out[name] = age_correct[g] / (age_total[g] + w * list(missed_age).count(g))
    return out


def test_pcdr_worked_example_one_image():
    r = pcdr([5.0, 5.1, 6.0], [0, 0, 1], [0, 2, 0], missed_age=[0])
    assert r.all == pytest.approx(3 / 3.3)
    assert r.by_age == pytest.approx({"adult": 3 / 3.3, "kid": 1.0})
    assert "teen" not in r.by_age and "baby" not in r.by_age
    assert r.class_pairs == {"eq": 1, "cd": 0, "fd": 2}


def test_pcdr_worked_example_two_images():
    r = pcdr(
        [3.0, 3.1, 2.0, 4.0, 2.0, 2.5],
        [0, 1, -1, 2, 0, 0],
        [3, 0, 0, 1, 0, 0],
        image_index=[0, 0, 0, 0, 1, 1],
        missed_age=[1, 3],
    )
    assert r.all == pytest.approx(2 / 4.6)
    assert r.by_age == pytest.approx({"adult": 1 / 3, "teen": 2 / 2.3, "baby": 1 / 2.3})
    assert "kid" not in r.by_age  # absent, not 0
    assert r.pairs == 4 and r.correct == 2 and r.missed == 2


def test_pcdr_unknown_layer_and_miss_weight():
    # the person with layer -1 forms no pair even though it is far off
    r = pcdr([1.0, 1.05, 9.0], [0, 0, -1], [0, 0, 0])
    assert (r.pairs, r.correct, r.all) == (1, 1, 1.0)
    # misses only enter the denominator, weighted 0.3 (or as configured)
    assert pcdr([1.0, 1.05], [0, 0], [0, 0], missed_age=[-1, 2]).all == pytest.approx(1 / 1.6)
    assert pcdr([1.0, 1.05], [0, 0], [0, 0], missed_age=[2], miss_weight=1.0).all == 0.5
    # a missed kid alone does not create a kid entry
    assert "kid" not in pcdr([1.0, 1.05], [0, 0], [0, 0], missed_age=[2]).by_age
    # no pairs and no misses: undefined
    assert np.isnan(pcdr([1.0], [0], [0]).all)


def test_pcdr_strict_thresholds():
    # |dz| = 0.2 exactly is not "equal", and not "farther" either
    assert pcdr([0.0, 0.2], [0, 0], [0, 0]).all == 0.0
    assert pcdr([0.0, 0.2], [0, 1], [0, 0]).all == 0.0
    assert pcdr([0.0, 0.2000001], [0, 1], [0, 0]).all == 1.0
    with pytest.raises(ValueError, match="pred_depth"):
        pcdr([0.0, np.nan], [0, 1], [0, 0])


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(-50, 50))
def test_pcdr_matches_naive_loop_and_is_shift_invariant(seed, shift):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 25))
    z = rng.uniform(1, 8, n).round(2)
    layer = rng.integers(-1, 4, n)
    age = rng.integers(-1, 4, n)
    image = np.sort(rng.integers(0, 4, n))
    missed = rng.integers(-1, 4, int(rng.integers(0, 4)))
    naive = pcdr_naive(z, layer, age, image, missed)
    r = pcdr(z, layer, age, image_index=image, missed_age=missed)
    assert r.all == pytest.approx(naive["all"], nan_ok=True)
    assert r.by_age == pytest.approx({k: v for k, v in naive.items() if k != "all"})
    # order and a common shift do not matter (continuous depths: no ties at the threshold)
    z = rng.uniform(1, 8, n)
    r = pcdr(z, layer, age, image_index=image, missed_age=missed)
    perm = rng.permutation(n)
    moved = pcdr(
        z[perm] + shift, layer[perm], age[perm], image_index=image[perm], missed_age=missed
    )
    assert (moved.correct, moved.pairs, moved.by_age) == (r.correct, r.pairs, r.by_age)


def test_pck2d_worked_example():
    gt = np.array([[[0.0, 0.0], [300.0, 400.0], [100.0, 100.0]]])  # box 300 x 400 -> s = 500
    for err, expected in ((70.0, 1.0), (72.0, 2 / 3)):
        pred = gt.copy()
        pred[0, 2, 0] += err  # threshold 0.143 * 500 = 71.5 px
        assert pck2d(pred, gt)[0] == pytest.approx(expected)


def test_pck2d_invalid_joints_and_too_few():
    gt = np.array([
        [[10.0, 10.0], [-2.0, -2.0], [110.0, 10.0]],
        [[10.0, 10.0], [-2.0, -2.0], [-2.0, -2.0]],
    ])  # fmt: skip
    pred = gt + np.array([[[0, 0], [500, 500], [0, 0]], [[0, 0], [0, 0], [0, 0]]])
    out = pck2d(pred, gt)
    assert out[0] == 1.0  # the invalid joint's huge error does not count
    assert np.isnan(out[1])  # fewer than two valid joints


def test_detection_stats_and_legacy():
    d = detection_stats(tp=8, fp=2, fn=4)
    assert (d.precision, d.recall, d.f1) == pytest.approx((0.8, 8 / 12, 8 / 11))
    assert np.isnan(detection_stats(0, 0, 0).precision)
    # the official RH printout uses #predictions (10) in place of #ground truth (12)
    legacy = rh_legacy_prf1(num_predictions=10, num_missed=4, num_fp=2)
    assert legacy.tp == 6 and legacy.recall == pytest.approx(0.6)


def test_pcdr_pairs_cover_all_combinations():
    image = np.array([0, 0, 0, 1, 1, 2])
    r = pcdr(np.arange(6.0), np.zeros(6, int), np.zeros(6, int), image_index=image)
    assert r.pairs == len(list(itertools.combinations(range(3), 2))) + 1


def test_pcdr_float32_like_the_official_evaluator():
    """Equal layers, depths 2.0 and 2.19999999 m: |dz| < 0.2 in float64, but float32 rounds the
    second depth to 2.2000000477 and float32(0.2) = 0.2000000030 is not above |dz|."""
    z, layer, age = [2.0, 2.19999999], [0, 0], [0, 0]
    assert pcdr(z, layer, age).correct == 1
    assert pcdr(z, layer, age, float32=True).correct == 0
    assert pcdr([2.0, 2.1], layer, age, float32=True).correct == 1
