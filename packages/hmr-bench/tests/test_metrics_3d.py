"""MPJPE, PA-MPJPE, PVE, PA-PVE and the Procrustes fit against independent oracles."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.transform import Rotation

from hmr_bench.joints import H36M_EVAL14
from hmr_bench.metrics import mpjpe, pa_mpjpe, pa_pve, pve, similarity_procrustes


def umeyama_loop(p, g):
    """Independent oracle: Umeyama (1991) per person, with explicit loops and a sign matrix."""
    out = []
    for pi, gi in zip(p, g, strict=True):
        mp, mg = pi.mean(0), gi.mean(0)
        cov = (gi - mg).T @ (pi - mp) / len(pi)
        u, d, vt = np.linalg.svd(cov)
        s_mat = np.eye(3)
        if np.linalg.det(u) * np.linalg.det(vt) < 0:
            s_mat[2, 2] = -1
        r = u @ s_mat @ vt
        var = ((pi - mp) ** 2).sum() / len(pi)
        c = np.trace(np.diag(d) @ s_mat) / var
        aligned = c * pi @ r.T + (mg - c * r @ mp)
        out.append(1000 * np.linalg.norm(aligned - gi, axis=1).mean())
    return np.array(out)


def test_mpjpe_hand_computed():
    gt = np.zeros((1, 2, 3))
    pred = np.array([[[0.003, 0.004, 0.0], [0.0, 0.0, 0.012]]])  # 5 mm and 12 mm
    assert mpjpe(pred, gt)[0] == pytest.approx(8.5)
    assert mpjpe(pred, gt, mask=np.array([[True, False]]))[0] == pytest.approx(5.0)
    assert np.isnan(mpjpe(pred, gt, mask=np.array([[False, False]]))[0])


def test_mpjpe_root_alignment_and_eval14_selection():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(4, 17, 3))
    pred = gt + 0.01 * rng.normal(size=gt.shape)
    moved = pred + rng.normal(size=(4, 1, 3))  # each prediction translated independently
    sel = list(H36M_EVAL14)
    np.testing.assert_allclose(
        mpjpe(moved[:, sel], gt[:, sel], pred_root=moved[:, 0], gt_root=gt[:, 0]),
        mpjpe(pred[:, sel], gt[:, sel], pred_root=pred[:, 0], gt_root=gt[:, 0]),
        atol=1e-9,
    )
    np.testing.assert_allclose(mpjpe(moved, gt, root=0), mpjpe(pred, gt, root=0), atol=1e-9)
    # the 14 evaluated joints exclude pelvis (0), spine (7) and nose (9)
    broken = pred.copy()
    broken[:, [0, 7, 9]] += 1.0
    np.testing.assert_allclose(
        mpjpe(broken[:, sel], gt[:, sel]), mpjpe(pred[:, sel], gt[:, sel]), atol=1e-12
    )


def test_shape_mismatch_and_nan():
    with pytest.raises(ValueError, match="pred has 24 points"):
        mpjpe(np.zeros((2, 24, 3)), np.zeros((2, 17, 3)))
    with pytest.raises(ValueError, match=r"\(N, K, 3\)"):
        pa_mpjpe(np.zeros((2, 17, 2)), np.zeros((2, 17, 2)))
    pred = np.random.default_rng(1).normal(size=(3, 14, 3))
    pred[1, 4, 0] = np.nan
    gt = np.zeros_like(pred) + np.arange(14)[None, :, None] * [1, 0.5, 0.2]
    err, pa = mpjpe(pred, gt), pa_mpjpe(pred, gt)
    assert np.isnan(err[1]) and np.isnan(pa[1])
    assert np.isfinite(err[[0, 2]]).all() and np.isfinite(pa[[0, 2]]).all()
    assert mpjpe(np.zeros((0, 14, 3)), np.zeros((0, 14, 3))).shape == (0,)


def test_procrustes_recovers_exact_similarity():
    g = np.random.default_rng(2).normal(size=(1, 14, 3))
    rot = Rotation.from_rotvec([0, 0, 0.7]).as_matrix()
    p = 1.3 * g @ rot.T + np.array([0.1, 2.0, 3.0])
    assert pa_mpjpe(p, g)[0] < 1e-9
    t = similarity_procrustes(p, g)
    assert t.scale[0] == pytest.approx(1 / 1.3, rel=1e-12)
    np.testing.assert_allclose(t.rotation[0], rot.T, atol=1e-12)


def test_procrustes_refuses_reflection():
    g = np.random.default_rng(3).normal(size=(1, 14, 3))
    mirrored = g * np.array([-1.0, 1.0, 1.0])
    err = pa_mpjpe(mirrored, g)[0]
    assert err > 10.0  # a reflection would align it exactly
    assert err == pytest.approx(umeyama_loop(mirrored, g)[0], rel=1e-9)
    assert np.linalg.det(similarity_procrustes(mirrored, g).rotation[0]) == pytest.approx(1.0)


def test_procrustes_scale_formula():
    """s = (sum of singular values of H, the last one signed by det(V U^T)) / var_P."""
    rng = np.random.default_rng(4)
    p, g = rng.normal(size=(5, 10, 3)), rng.normal(size=(5, 10, 3))
    t = similarity_procrustes(p, g)
    for i in range(5):
        p0, g0 = p[i] - p[i].mean(0), g[i] - g[i].mean(0)
        u, sv, vt = np.linalg.svd(p0.T @ g0 / 10)
        d = np.sign(np.linalg.det(vt.T @ u.T))
        assert t.scale[i] == pytest.approx((sv[0] + sv[1] + d * sv[2]) / ((p0**2).sum() / 10))


def test_pa_mpjpe_matches_independent_svd_and_scipy():
    rng = np.random.default_rng(5)
    g = rng.normal(size=(50, 14, 3))
    rots = Rotation.random(50, random_state=6).as_matrix()
    p = np.einsum("nab,nkb->nka", rots, g) * rng.uniform(0.5, 2, (50, 1, 1))
    p += rng.normal(size=(50, 1, 3)) + 0.05 * rng.normal(size=g.shape)
    ours = pa_mpjpe(p, g)
    np.testing.assert_allclose(ours, umeyama_loop(p, g), rtol=1e-9)
    # scipy's orthogonal_procrustes (reflections allowed; none is optimal at this noise level)
    for i in range(5):
        p0, g0 = p[i] - p[i].mean(0), g[i] - g[i].mean(0)
        r, sv_sum = orthogonal_procrustes(p0, g0)
        aligned = sv_sum / (p0**2).sum() * p0 @ r + g[i].mean(0)
        assert ours[i] == pytest.approx(1000 * np.linalg.norm(aligned - g[i], axis=1).mean())


def test_procrustes_degenerate_cases():
    g = np.random.default_rng(7).normal(size=(4, 5, 3))
    p = g.copy()
    p[0] = 0.0  # all-zero prediction
    p[1] = np.outer(np.arange(5), [1.0, 2.0, 3.0])  # collinear
    mask = np.ones((4, 5), bool)
    mask[2, 2:] = False  # only 2 points
    t = similarity_procrustes(p, g, mask)
    assert t.degenerate.tolist() == [True, True, True, False]
    err = pa_mpjpe(p, g, mask)
    assert np.isnan(err[:3]).all() and err[3] < 1e-9


def test_pve_and_pa_pve():
    rng = np.random.default_rng(8)
    gt = rng.normal(size=(3, 200, 3))
    pred = gt + rng.normal(size=(3, 1, 3)) + 0.01 * rng.normal(size=gt.shape)
    expected = 1000 * np.linalg.norm(
        (pred - pred.mean(1, keepdims=True)) - (gt - gt.mean(1, keepdims=True)), axis=2
    ).mean(1)
    np.testing.assert_allclose(
        pve(pred, gt, pred_root=pred.mean(1), gt_root=gt.mean(1)), expected, rtol=1e-12
    )
    np.testing.assert_allclose(pa_pve(pred, gt), umeyama_loop(pred, gt), rtol=1e-9)


finite = st.floats(-5, 5, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.tuples(finite, finite, finite))
def test_mpjpe_translation_invariance(seed, shift):
    rng = np.random.default_rng(seed)
    gt = rng.normal(size=(3, 14, 3))
    pred = gt + 0.1 * rng.normal(size=gt.shape)
    t = np.array(shift)
    np.testing.assert_allclose(mpjpe(pred + t, gt + t), mpjpe(pred, gt), rtol=1e-9, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.floats(0.2, 5.0),
    st.tuples(finite, finite, finite),
)
def test_pa_mpjpe_similarity_invariance(seed, scale, shift):
    rng = np.random.default_rng(seed)
    gt = rng.normal(size=(2, 14, 3))
    pred = gt + 0.1 * rng.normal(size=gt.shape)
    rot = Rotation.random(random_state=seed % 1000).as_matrix()
    moved = scale * pred @ rot.T + np.array(shift)
    np.testing.assert_allclose(pa_mpjpe(moved, gt), pa_mpjpe(pred, gt), rtol=1e-7, atol=1e-7)


def test_horn_quaternion_path_matches_svd_formula():
    from hmr_bench.metrics.procrustes import _horn_rotation, _svd_rotation

    rng = np.random.default_rng(9)
    m = rng.normal(size=(500, 3, 3))
    m[:250] *= np.array([1.0, 1.0, -1.0])  # many need the reflection fix (det M < 0)
    r_svd, lam_svd = _svd_rotation(m)
    r_horn, lam_horn, ok = _horn_rotation(m.copy())
    assert ok.all()
    np.testing.assert_allclose(r_horn, r_svd, atol=1e-10)
    np.testing.assert_allclose(lam_horn, lam_svd, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r_horn), 1.0, atol=1e-12)


def test_repeated_eigenvalue_falls_back_to_svd():
    from hmr_bench.metrics.procrustes import _horn_rotation, _svd_rotation

    g = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float)  # cov = I
    p = g * [1.0, 1.0, -1.0]  # mirrored: M = diag(1, 1, -1) up to scale, lambda triple
    m = (p - p.mean(0)).T @ (g - g.mean(0))
    assert not _horn_rotation(m[None].copy())[2][0]
    t = similarity_procrustes(p[None], g[None])
    np.testing.assert_allclose(t.rotation[0], _svd_rotation(m[None])[0][0], atol=1e-12)
    assert np.isfinite(pa_mpjpe(p[None], g[None])[0])


def test_adjugate_and_determinant_formulas():
    from hmr_bench.metrics.procrustes import _adjugate4, _det4

    a = np.random.default_rng(10).normal(size=(4, 4, 20))
    dets = np.linalg.det(a.transpose(2, 0, 1))
    np.testing.assert_allclose(_det4(a), dets, rtol=1e-10)
    adj = _adjugate4(a)
    for i in range(20):
        np.testing.assert_allclose(a[:, :, i] @ adj[:, :, i], dets[i] * np.eye(4), atol=1e-10)


def test_chunking_float32_and_far_from_origin():
    from hmr_bench.metrics.procrustes import CHUNK_POINTS

    rng = np.random.default_rng(11)
    n = CHUNK_POINTS // 14 + 7  # spans two chunks
    g = rng.normal(size=(n, 14, 3)) * 0.3
    p = g + 0.02 * rng.normal(size=g.shape)
    far = np.array([3.0, -1.0, 20.0])  # a person 20 m away: raw-moment cancellation
    np.testing.assert_allclose(pa_mpjpe(p + far, g + far), pa_mpjpe(p, g), atol=1e-9)
    np.testing.assert_allclose(pa_mpjpe(p[-5:], g[-5:]), umeyama_loop(p[-5:], g[-5:]), rtol=1e-9)
    p32 = p.astype(np.float32)
    np.testing.assert_allclose(pa_mpjpe(p32, g), pa_mpjpe(p32.astype(float), g), rtol=1e-12)
    np.testing.assert_allclose(mpjpe(p32, g), mpjpe(p32.astype(float), g), rtol=1e-12)
    verts_g = rng.normal(size=(3, 700, 3))
    verts_p = (verts_g + 0.01 * rng.normal(size=verts_g.shape)).astype(np.float32)
    np.testing.assert_allclose(
        pa_pve(verts_p, verts_g), umeyama_loop(verts_p.astype(float), verts_g), rtol=1e-9
    )
    np.testing.assert_allclose(
        pve(verts_p, verts_g), 1000 * np.linalg.norm(verts_p - verts_g, axis=2).mean(1), rtol=1e-9
    )
