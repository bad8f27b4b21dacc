"""Re-placing and re-shaping: translations keep projections, heights reach their targets,
the official coefficient rule and finite-difference step, and the posterior filter."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dto_core import DTOConfig
from dto_core.body import BodyModel, openpose_joints
from dto_core.priors import PriorClass
from dto_core.synthetic_body import write_synthetic_smpl_dir
from dto_core.update import (
    UpdateConfig,
    height_coefficient,
    posterior_filter,
    refit_betas,
    scale_translation,
    update_bodies,
)

FOCAL = 1000.0


@pytest.fixture(scope="module")
def body(tmp_path_factory) -> BodyModel:
    folder = tmp_path_factory.mktemp("smpl")
    write_synthetic_smpl_dir(folder)
    return BodyModel.from_dir(folder, kid_template=folder / "smpl_kid_template.npy")


def people(n, seed):
    rng = np.random.default_rng(seed)
    betas = np.concatenate([rng.normal(0, 1, (n, 10)), rng.uniform(0, 0.3, (n, 1))], axis=1)
    pose = rng.normal(0, 0.2, (n, 69))
    orient = np.c_[np.pi + rng.normal(0, 0.1, n), rng.normal(0, 0.3, n), rng.normal(0, 0.1, n)]
    transl = np.c_[rng.uniform(-1, 1, n), rng.uniform(-0.5, 0.5, n), rng.uniform(3, 10, n)]
    return betas, pose, orient, transl


def project(points):
    return FOCAL * points[..., :2] / points[..., 2:]


@settings(max_examples=100, deadline=None)
@given(
    transl=st.tuples(st.floats(-5, 5), st.floats(-5, 5), st.floats(0.5, 50)),
    scale=st.floats(0.2, 5.0),
    offset=st.tuples(st.floats(-1, 1), st.floats(-1, 1), st.floats(-0.3, 0.3)),
)
def test_scaling_about_the_camera_keeps_every_projection(transl, scale, offset):
    """DTO's re-placement scales the whole person about the camera centre: P' = s (V + T)."""
    t = np.array([transl])
    moved = scale_translation(t, np.array([scale]))
    np.testing.assert_allclose(project(moved), project(t), rtol=1e-12, atol=1e-9)
    # a body point at offset from T, with the body scaled by s, projects where it did
    vertex_before = t + np.array(offset)
    vertex_after = moved + scale * np.array(offset)
    np.testing.assert_allclose(project(vertex_after), project(vertex_before), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("coefficient", [0, 10])
@pytest.mark.parametrize("scale", [0.6, 0.85, 1.0, 1.15, 1.3])
def test_newton_reaches_the_target_height(body, coefficient, scale):
    betas, *_ = people(30, seed=1)
    target = body.tpose_height(betas) * scale
    new = refit_betas(body, betas, target, np.full(30, coefficient))
    np.testing.assert_allclose(body.tpose_height(new), target, atol=1e-5)
    others = np.delete(np.arange(11), coefficient)
    np.testing.assert_array_equal(new[:, others], betas[:, others])


def test_finite_difference_is_the_official_one_step_formula(body):
    betas, *_ = people(5, seed=2)
    h = body.tpose_height(betas)
    scale = np.array([0.9, 1.1, 1.2, 0.7, 1.0])
    coefficient = np.array([0, 0, 10, 10, 0])
    lowered = betas.copy()
    lowered[np.arange(5), coefficient] -= 1
    h_minus = body.tpose_height(lowered)
    expected = betas.copy()
    expected[np.arange(5), coefficient] += h * (scale - 1) / (h - h_minus)
    got = refit_betas(body, betas, h * scale, coefficient, method="finite_difference")
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_newton_refuses_a_coefficient_without_effect_on_height(body):
    betas, *_ = people(1, seed=3)
    effect = [np.ptp(body.shapedirs[:, 1, k]) for k in range(11)]
    flat = int(np.argmin(effect))
    assert effect[flat] == 0.0, "the synthetic model has height-neutral shape directions"
    with pytest.raises(ValueError, match="does not change the height"):
        refit_betas(body, betas, body.tpose_height(betas) * 1.1, [flat])


def test_coefficient_rule_of_the_official_code():
    cls = [
        PriorClass.KID,
        PriorClass.KID,
        PriorClass.TEEN,
        PriorClass.ADULT_MALE,
        PriorClass.ADULT_MALE,
    ]
    scale = [0.9, 1.1, 0.95, 0.8, 1.1]
    target = [1.0, 1.5, 1.5, 1.4, 1.9]
    assert list(height_coefficient(cls, scale, target, 11)) == [10, 0, 10, 10, 0]
    assert list(height_coefficient(cls, scale, target, 10)) == [0] * 5


@pytest.mark.parametrize("scale", [0.8, 0.95, 1.1, 1.25])
def test_full_update_keeps_the_picture(body, scale):
    """Betas refit + re-centred translation: the projected body stays where it was. A shape
    refit is not a uniform scaling, so vertices move in proportion to the height change
    (measured on the synthetic model: centroid within 0.2 % of the 2D height, every vertex
    within 11 % of |1 - s| times the 2D height)."""
    betas, pose, orient, transl = people(20, seed=4)
    cls = np.where(np.arange(20) % 4 == 0, PriorClass.KID, PriorClass.ADULT_FEMALE)
    s = np.full(20, scale)
    new_betas, new_transl = update_bodies(body, betas, pose, orient, transl, s, cls)
    np.testing.assert_allclose(
        body.tpose_height(new_betas), body.tpose_height(betas) * s, atol=1e-5
    )
    old = project(body.forward(betas, pose, orient, transl).vertices)
    new = project(body.forward(new_betas, pose, orient, new_transl).vertices)
    height_2d = np.ptp(old[..., 1], axis=1)
    centroid_shift = np.linalg.norm(new.mean(1) - old.mean(1), axis=-1) / height_2d
    vertex_shift = np.linalg.norm(new - old, axis=-1).max(1) / height_2d
    assert centroid_shift.max() < 0.002
    assert vertex_shift.max() < 0.12 * abs(1 - scale)
    # without re-centring a first-beta update visibly moves the person
    _, plain = update_bodies(body, betas, pose, orient, transl, s, cls, recenter="none")
    np.testing.assert_allclose(plain, transl * scale)
    moved = project(body.forward(new_betas, pose, orient, plain).vertices)
    assert (np.linalg.norm(moved.mean(1) - old.mean(1), axis=-1) / height_2d).max() > 0.02


def test_kid_recentring_only_touches_kid_updates(body):
    betas, pose, orient, transl = people(4, seed=6)
    cls = [PriorClass.KID, PriorClass.ADULT_MALE, PriorClass.BABY, PriorClass.ADULT_FEMALE]
    s = np.array([0.8, 1.1, 0.9, 1.05])
    _, kid_only = update_bodies(body, betas, pose, orient, transl, s, cls, recenter="kid")
    _, everyone = update_bodies(body, betas, pose, orient, transl, s, cls)
    np.testing.assert_allclose(kid_only[[1, 3]], transl[[1, 3]] * s[[1, 3], None])
    np.testing.assert_allclose(kid_only[[0, 2]], everyone[[0, 2]])


@pytest.mark.parametrize("joints", ["smpl", "openpose"])
def test_kid_recentring_keeps_the_mean_of_its_joint_set(body, joints):
    """The re-centring zeroes mean_j (s J_old - J_new)_xy over its own joint set: the 24 SMPL
    joints, or the official code's first 24 OpenPose joints (which include face and foot
    vertices, so the two translations differ)."""
    betas, pose, orient, transl = people(3, seed=8)
    cls = [PriorClass.KID] * 3
    s = np.array([0.7, 0.85, 0.9])
    opts = dict(method="finite_difference", recenter="kid")
    new_betas, new_transl = update_bodies(
        body, betas, pose, orient, transl, s, cls, recenter_joints=joints, **opts
    )
    old = body.forward(betas, pose, orient, transl)
    new = body.forward(new_betas, pose, orient, new_transl)
    pick = (lambda o: o.joints) if joints == "smpl" else (lambda o: openpose_joints(o)[:, :24])
    offset = (s[:, None, None] * pick(old) - pick(new)).mean(axis=1)[:, :2]
    np.testing.assert_allclose(offset, 0.0, atol=1e-12)
    other = "openpose" if joints == "smpl" else "smpl"
    _, other_transl = update_bodies(
        body, betas, pose, orient, transl, s, cls, recenter_joints=other, **opts
    )
    assert np.abs(other_transl - new_transl)[:, :2].max() > 1e-4
    np.testing.assert_allclose(other_transl[:, 2], new_transl[:, 2])


def test_official_update_options():
    assert dataclasses.asdict(DTOConfig.official(compat=True).update) == {
        "method": "finite_difference", "recenter": "kid", "recenter_joints": "openpose"
    }  # fmt: skip
    assert DTOConfig.official().update == UpdateConfig() == DTOConfig.paper().update


def test_posterior_filter():
    kept = posterior_filter([0.5, 1.5, 1.5000001, 0.2], [True, True, True, False])
    assert list(kept) == [True, True, False, False]
    # the official code tests score < 1.5
    strict = posterior_filter([0.5, 1.5, 1.5000001, 0.2], [True, True, True, False], strict=True)
    assert list(strict) == [True, False, False, False]


def test_bad_input(body):
    betas, *_ = people(2, seed=7)
    with pytest.raises(ValueError, match="target_height"):
        refit_betas(body, betas, [1.7, -1.0], [0, 0])
    with pytest.raises(ValueError, match="coefficient must index"):
        refit_betas(body, betas, [1.7, 1.7], [0, 11])
    with pytest.raises(ValueError, match=r"need betas \(N, 11\)"):
        refit_betas(body, betas[:, :10], [1.7, 1.7], [0, 0])
    with pytest.raises(ValueError, match="transl"):
        scale_translation(np.zeros((2, 2)), np.ones(2))
    with pytest.raises(ValueError, match="recenter"):
        update_bodies(
            body,
            betas,
            np.zeros((2, 69)),
            np.zeros((2, 3)),
            np.zeros((2, 3)),
            np.ones(2),
            [5, 5],
            recenter="sometimes",
        )
