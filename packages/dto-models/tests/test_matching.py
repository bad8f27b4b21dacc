"""Two-stage ViTPose -> 44-joint matching (spec B.8, A.13 item 5 and 8)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dto_models.matching import (
    COCO17_FROM_44,
    TwoStageMatch,
    coco17_from_44,
    head_size_44,
    match_keypoints,
    match_two_stage,
)

R = [0, 16, 15, 18, 17, 34, 33, 35, 32, 36, 31, 28, 27, 29, 26, 30, 25]  # spec B.8


# ---------------------------------------------------------------------------- literal oracle


def _official_stage(vit_kp, vit_scores, cands, v_order, excluded, compat=True):
    """The official loop of dto_framework.py, one stage; `excluded` = candidates never allowed;
    `compat=False` also excludes candidates with a zero head size (the documented fix)."""
    if not compat:
        zero_head = [c for c, k in enumerate(cands) if not (k[38] - k[37]) @ (k[38] - k[37]) > 0]
        excluded = [*excluded, *zero_head]
    used = []
    pairs = []
    for v in v_order:
        vis_idx = np.where(vit_scores[v] >= 0.5)[0]
        if len(vis_idx) == 0:
            continue
        best, best_score = -1, -1
        for c, kpts in enumerate(cands):
            if c in used or c in excluded:
                continue
            ref = kpts[R]
            dists = np.linalg.norm(vit_kp[v][:, :2] - ref[:, :2], axis=1)[vis_idx]
            cnt = (dists <= 0.6 * np.linalg.norm(kpts[38] - kpts[37])).sum()
            if cnt / len(vis_idx) > 0.5 and cnt > best_score:
                best_score, best = cnt, c
        if best >= 0:
            used.append(best)
            pairs.append((v, best))
    return pairs


def _official_two_stage(vit_kp, vit_scores, pgt, pred, compat):
    stage_a = _official_stage(vit_kp, vit_scores, pgt, range(len(vit_kp)), (), compat)
    matched = [v for v, _ in stage_a]
    unmatched = [v for v in range(len(vit_kp)) if v not in matched]
    stage_b = _official_stage(
        vit_kp, vit_scores, pred, unmatched, () if compat else matched, compat
    )
    return stage_a, stage_b


# ---------------------------------------------------------------------------- helpers


def person_44(origin=(0.0, 0.0), head=10.0, spread=20.0):
    """44 joints: the 17 COCO-mapped joints on a grid from `origin`, neck/head-top `head` apart."""
    k = np.zeros((44, 2))
    k[R] = np.asarray(origin) + spread * np.stack([np.arange(17) % 4, np.arange(17) // 4], 1)
    k[37] = (origin[0] - 50.0, origin[1])
    k[38] = (origin[0] - 50.0, origin[1] - head)
    return k


def vitpose_of(k44, offsets=None, scores=None):
    kp = k44[R].copy()
    if offsets is not None:
        kp += offsets
    return kp, np.full(17, 0.9) if scores is None else np.asarray(scores, float)


# ---------------------------------------------------------------------------- R and head size


def test_reference_map_and_head_size():
    assert COCO17_FROM_44.tolist() == R
    k = np.arange(88, dtype=float).reshape(44, 2)
    out = coco17_from_44(k)
    assert out.shape == (17, 2)
    # COCO 5 = left shoulder <- 44-index 34 (LSP left shoulder); COCO 16 = right ankle <- 25
    np.testing.assert_array_equal(out[5], k[34])
    np.testing.assert_array_equal(out[16], k[25])
    k[37] = (1.0, 2.0)
    k[38] = (4.0, 6.0)
    assert head_size_44(k) == pytest.approx(5.0)
    assert head_size_44(np.stack([k, k])).shape == (2,)
    with pytest.raises(ValueError, match="44-joint"):
        head_size_44(np.zeros((17, 2)))


# ---------------------------------------------------------------------------- hand-made cases


def test_ratio_exactly_half_is_rejected_and_above_half_accepted():
    g = person_44(head=10.0)  # threshold 6 px
    scores = np.zeros(17)
    scores[:4] = 0.9  # 4 visible joints
    off = np.zeros((17, 2))
    off[:4, 0] = [0.0, 0.0, 50.0, 50.0]  # 2 of 4 within -> ratio 0.5
    off[4:, 0] = 1000.0  # invisible joints far away: must not count
    kp, _ = vitpose_of(g, off)
    assert match_keypoints(kp[None], scores[None], g[None]) == []
    off[2, 0] = 5.9  # 3 of 4 -> 0.75
    kp, _ = vitpose_of(g, off)
    assert match_keypoints(kp[None], scores[None], g[None]) == [(0, 0)]


def test_distance_threshold_is_inclusive_and_uses_candidate_head_size():
    g = person_44(head=10.0)  # 0.6 x 10 = 6 px
    kp, scores = vitpose_of(g, np.tile([6.0, 0.0], (17, 1)))
    assert match_keypoints(kp[None], scores[None], g[None]) == [(0, 0)]
    kp, scores = vitpose_of(g, np.tile([6.01, 0.0], (17, 1)))
    assert match_keypoints(kp[None], scores[None], g[None]) == []
    big = person_44(head=20.0)  # same joints, larger head: 12 px threshold
    assert match_keypoints(kp[None], scores[None], big[None]) == [(0, 0)]


def test_ties_go_to_first_candidate_and_used_candidates_are_not_reused():
    g = person_44()
    kp, scores = vitpose_of(g)
    cands = np.stack([g, g, g])
    two = np.stack([kp, kp])
    assert match_keypoints(two, np.stack([scores, scores]), cands) == [(0, 0), (1, 1)]
    assert match_keypoints(kp[None], scores[None], cands, used=[0]) == [(0, 1)]
    assert match_keypoints(kp[None], scores[None], cands, used=[0, 1, 2]) == []


def test_most_matches_wins_over_earlier_candidate():
    g = person_44()
    kp, scores = vitpose_of(g)
    worse = g.copy()
    worse[R[:5]] += 100.0  # 12 of 17 joints still match (> half)
    cands = np.stack([worse, g])
    assert match_keypoints(kp[None], scores[None], cands) == [(0, 1)]


def test_empty_visibility_is_skipped_and_score_half_is_visible():
    g = person_44()
    kp, _ = vitpose_of(g)
    assert match_keypoints(kp[None], np.full((1, 17), 0.49), g[None]) == []
    assert match_keypoints(kp[None], np.full((1, 17), 0.5), g[None]) == [(0, 0)]
    # a skipped person does not consume a candidate
    two = np.stack([kp, kp])
    scores = np.stack([np.zeros(17), np.ones(17)])
    assert match_keypoints(two, scores, g[None]) == [(1, 0)]


def test_empty_inputs_and_bad_shapes():
    g = person_44()
    kp, scores = vitpose_of(g)
    assert match_keypoints(np.zeros((0, 17, 2)), np.zeros((0, 17)), g[None]) == []
    assert match_keypoints(kp[None], scores[None], np.zeros((0, 44, 2))) == []
    result = match_two_stage(np.zeros((0, 17, 2)), np.zeros((0, 17)), g[None], g[None])
    assert result == TwoStageMatch((), ()) and len(result) == 0
    with pytest.raises(ValueError, match="scores"):
        match_keypoints(kp[None], scores, g[None])
    with pytest.raises(ValueError, match="17,2"):
        match_keypoints(kp, scores[None], g[None])


def test_stage_b_only_for_people_unmatched_in_stage_a():
    a, b = person_44((0, 0)), person_44((500, 0))
    kp_a, s = vitpose_of(a)
    kp_b, _ = vitpose_of(b)
    vit = np.stack([kp_a, kp_b])
    scores = np.stack([s, s])
    # pGT knows person a only; predictions (per detection) are exact for both.
    result = match_two_stage(vit, scores, a[None], np.stack([a, b]))
    assert result.stage_a == ((0, 0),)
    assert result.stage_b == ((1, 1),)
    assert len(result) == 2
    # everybody in the pGT: stage B has nothing to do
    result = match_two_stage(vit, scores, np.stack([b, a]), np.stack([a, b]))
    assert result.stage_a == ((0, 1), (1, 0)) and result.stage_b == ()


def test_stage_b_duplicate_detection_fixed_by_default_reproduced_in_compat():
    a, b = person_44((0, 0)), person_44((500, 0))
    kp_a, s = vitpose_of(a)
    kp_b, _ = vitpose_of(b)
    vit = np.stack([kp_a, kp_b])
    scores = np.stack([s, s])
    # Detection 0's CameraHMR estimate landed on person b (exact); detection 1's is a bit off
    # (12 of 17 joints): the official code picks prediction 0 -> detection 0 appears twice.
    b_off = b.copy()
    b_off[R[:5]] += 100.0
    pred = np.stack([b, b_off])
    compat = match_two_stage(vit, scores, a[None], pred, compat=True)
    fixed = match_two_stage(vit, scores, a[None], pred)
    assert compat.stage_a == fixed.stage_a == ((0, 0),)
    assert compat.stage_b == ((1, 0),)
    assert fixed.stage_b == ((1, 1),)


def test_degenerate_head_size_never_matches_by_default(caplog):
    g = person_44()
    g[38] = g[37]  # missing head-top: head size 0 -> threshold 0
    kp, scores = vitpose_of(g)  # every joint coincides exactly
    assert match_keypoints(kp[None], scores[None], g[None], compat=True) == [(0, 0)]
    with caplog.at_level(logging.WARNING, logger="dto_models.matching"):
        assert match_keypoints(kp[None], scores[None], g[None]) == []
    assert "head size" in caplog.text
    g[38] = np.nan
    assert match_keypoints(kp[None], scores[None], g[None], compat=True) == []


# ---------------------------------------------------------------------------- oracle property


@st.composite
def scenes(draw):
    """Integer pixel grids (exact squared distances, so boundary ties are common) with ViTPose
    people built from randomly chosen pGT / prediction people plus small integer offsets."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    nv, ng, np_ = draw(st.integers(0, 6)), draw(st.integers(0, 5)), draw(st.integers(0, 6))
    pool = rng.integers(0, 12, size=(6, 44, 2)).astype(float) * 4
    pool[:, 38] = pool[:, 37] + rng.integers(-12, 13, size=(6, 2))
    pgt = pool[rng.integers(0, 6, size=ng)] + rng.integers(-2, 3, size=(ng, 44, 2))
    pred = pool[rng.integers(0, 6, size=np_)] + rng.integers(-2, 3, size=(np_, 44, 2))
    vit = pool[rng.integers(0, 6, size=nv)][:, R] + rng.integers(-6, 7, size=(nv, 17, 2))
    scores = rng.choice([0.0, 0.3, 0.5, 0.9], size=(nv, 17), p=[0.2, 0.1, 0.2, 0.5])
    return vit.astype(float), scores, pgt.astype(float), pred.astype(float)


@settings(max_examples=300, deadline=None)
@given(scenes(), st.booleans())
def test_two_stage_equals_official_loop(scene, compat):
    vit, scores, pgt, pred = scene
    expect_a, expect_b = _official_two_stage(vit, scores, pgt, pred, compat)
    got = match_two_stage(vit, scores, pgt, pred, compat=compat)
    assert list(got.stage_a) == expect_a
    assert list(got.stage_b) == expect_b


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_one_stage_equals_official_loop_on_continuous_coordinates(seed):
    rng = np.random.default_rng(seed)
    nv, nc = rng.integers(0, 8), rng.integers(0, 8)
    cands = rng.uniform(0, 200, size=(nc, 44, 2))
    vit = rng.uniform(0, 200, size=(nv, 17, 2))
    if nc:
        vit = cands[rng.integers(0, nc, size=nv)][:, R] + rng.normal(0, 15, size=(nv, 17, 2))
    scores = rng.uniform(0, 1, size=(nv, 17))
    used = list(rng.choice(max(nc, 1), size=rng.integers(0, 3)))
    expected = _official_stage(vit, scores, cands, range(nv), excluded=used)
    assert match_keypoints(vit, scores, cands, used=used, compat=True) == expected
