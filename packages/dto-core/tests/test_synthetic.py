"""Synthetic crowds: the simulated teacher keeps 2D projections, scenes are seeded, the error
factors are unbiased, and the pixel level (ray-cast bodies + `RelativeDepthModel.disparity` +
extract_cues) yields, person by person, the cues the cue level computes in closed form."""

import dataclasses

import numpy as np
import pytest

from dto_core.cues import CueConfig, CueStatus, depth_from_disparity, extract_cues
from dto_core.priors import PriorClass
from dto_core.synthetic import (
    DA_V2_ABS_REL,
    RelativeDepthModel,
    TeacherModel,
    render_scene,
    sample_crowds,
)

NOISE_FREE = RelativeDepthModel(person_noise=0.0, slope_noise=0.0, vertical_bias=0.0, shift=(0, 0))


def test_seeded_and_shaped():
    a, b = sample_crowds(50, seed=3), sample_crowds(50, seed=3)
    np.testing.assert_array_equal(a.teacher_depth, b.teacher_depth)
    np.testing.assert_array_equal(a.cues.slope, b.cues.slope)
    assert not np.array_equal(a.teacher_depth, sample_crowds(50, seed=4).teacher_depth)
    counts = np.diff(a.offsets)
    assert counts.min() >= 2 and counts.max() <= 12 and a.offsets[-1] == a.height.size


def test_teacher_keeps_the_projected_size():
    """The teacher sees the person as tall in pixels as it is: f h / z == f_hat h_hat / z_hat."""
    c = sample_crowds(200, seed=0)
    f = c.focal[c.scene_index]
    true_px = f * c.height / c.depth
    teacher_px = f * c.focal_ratio[c.scene_index] * c.teacher_height / c.teacher_depth
    np.testing.assert_allclose(teacher_px, true_px, rtol=1e-12)
    np.testing.assert_allclose(
        c.target_depth * c.teacher_height / c.height, c.teacher_depth, rtol=1e-12
    )


def test_teacher_pulls_minors_towards_adult_height():
    c = sample_crowds(2000, seed=1, teacher=TeacherModel(height_noise=0.0))
    kids = c.age < 8
    assert np.all(c.teacher_height[kids] > c.height[kids])
    np.testing.assert_allclose(c.teacher_height - c.height, 0.7 * (1.715 - c.height), atol=1e-12)


def test_population_follows_the_priors():
    c = sample_crowds(4000, seed=2, minor_fraction=0.0)
    male = c.is_male
    assert c.height[male].mean() == pytest.approx(1.784, abs=0.01)
    assert c.height[~male].mean() == pytest.approx(1.647, abs=0.01)
    assert c.height[male].std() == pytest.approx(0.076, abs=0.01)
    # adults of 15-17 may be estimated as teens (2-year age noise), hardly ever as younger
    assert np.mean(c.prior_cls < PriorClass.TEEN) < 1e-3
    assert np.mean(c.prior_cls == PriorClass.ADULT_NEUTRAL) == pytest.approx(0.15 * 0.6, abs=0.03)


def test_group_photos_stand_at_one_depth():
    c = sample_crowds(300, seed=5, group_photo_fraction=1.0, group_photo_spread=0.3)
    for i in range(c.num_scenes):
        z = c.depth[c.scene(i)]
        assert z.max() - z.min() <= 0.6


def test_error_factors_are_unbiased_and_documented():
    model = RelativeDepthModel(person_noise=0.1, slope_noise=0.3)
    errors = model.sample(1, 400_000, np.random.default_rng(0))
    # log-normal with mean 1: a mean of exp(sigma N) would be exp(sigma^2 / 2) = 1.046 here
    for factor, sigma in ((errors.person_error, 0.1), (errors.slope_gain, 0.3)):
        assert factor.mean() == pytest.approx(1.0, abs=4 * sigma / np.sqrt(factor.size))
        assert np.log(factor).std() == pytest.approx(sigma, rel=0.01)
    assert RelativeDepthModel().person_noise == pytest.approx(0.0564, abs=1e-4)
    assert DA_V2_ABS_REL == 0.045
    # the sampled AbsRel of the default per-person error is DA-V2's
    m = RelativeDepthModel().sample(1, 400_000, np.random.default_rng(1)).person_error
    assert np.mean(np.abs(m - 1)) == pytest.approx(DA_V2_ABS_REL, rel=0.02)


def test_cue_slope_is_teacher_scale_times_the_exact_slope():
    """Without pixel noise X_i = k_i m_i nu_i / (dd/dz)_i: the exact slope times the teacher's
    height ratio (children's X is too high) and the unbiased error factors."""
    c = sample_crowds(300, seed=6)
    e = c.depth_errors
    ratio = c.teacher_height / c.height
    np.testing.assert_allclose(
        c.cues.slope, c.exact_slope * ratio * e.person_error * e.slope_gain, rtol=1e-12
    )
    np.testing.assert_allclose(c.cues.corr, 1.0)
    kids = c.age < 8
    assert np.median(ratio[kids]) > 1.3
    assert np.median(ratio[c.age > 20]) == pytest.approx(1, abs=0.03)


def pixel_cues(crowds, index, model=None, seed=0):
    """Render scene `index`, optionally re-draw its disparity under another model (same draws),
    and extract the official cues (slope and correlation of the first fit)."""
    sl = crowds.scene(index)
    scene = render_scene(crowds, index)
    disparity = scene.disparity
    if model is not None:
        errors = crowds.depth_errors.scene(index, crowds.offsets)
        disparity = model.disparity(
            scene.true_depth, scene.person_ids, errors, np.random.default_rng(seed)
        )
    cues, _ = extract_cues(
        depth_from_disparity(disparity),
        scene.person_ids,
        scene.mesh_depth,
        sl.stop - sl.start,
        config=CueConfig(refit_on_inliers=False),
    )
    return cues


CROWD = dict(
    persons=(3, 4), depth_range=(3.0, 10.0), group_photo_fraction=0.0, image_size=(240, 320)
)


def test_pixel_level_reproduces_the_cue_level_person_by_person():
    """Same crowd, same error draws: rendered pixels -> extract_cues give the cue level's
    relative depth, slope (person error and slope gain included), correlation and spread."""
    c = sample_crowds(8, seed=7, **CROWD)
    got = []
    for i in range(c.num_scenes):
        cues = pixel_cues(c, i)
        ok = np.flatnonzero(cues.status == CueStatus.OK)
        ref = c.cues.select(c.scene(i)).select(ok)
        got.append(
            np.stack(
                [
                    cues.slope[ok] / ref.slope,
                    cues.corr[ok],
                    cues.rel_depth[ok] / ref.rel_depth,
                    cues.mesh_depth[ok] / ref.mesh_depth,
                    cues.rel_depth_std[ok] / ref.rel_depth_std,
                ],
                axis=1,
            )
        )
    slope, corr, rel, mesh, spread = np.concatenate(got).T
    assert slope.size >= 20
    # the slope is exact up to the depth change across a body (perspective)
    np.testing.assert_allclose(slope, 1.0, rtol=0.01)
    np.testing.assert_allclose(corr, 1.0, atol=1e-3)
    # d_i, t_i: the cue level uses the body axis, the pixels the nearer front surface
    np.testing.assert_allclose(rel, np.median(rel), rtol=0.02)
    np.testing.assert_allclose(mesh, rel, rtol=0.01)
    assert 0.95 < np.median(rel) < 1.0
    assert 0.85 < np.median(spread) < 1.05 and spread.min() > 0.75


@pytest.mark.parametrize("pixel_noise", [0.003, 0.01])
def test_pixel_noise_dilutes_the_slope_as_the_closed_form_says(pixel_noise):
    model = RelativeDepthModel(pixel_noise=pixel_noise)
    c = sample_crowds(6, seed=8, depth_model=model, **CROWD)
    slope, corr, corr_ref = [], [], []
    for i in range(c.num_scenes):
        cues = pixel_cues(c, i, model=model, seed=i)
        ok = np.flatnonzero(cues.status == CueStatus.OK)
        ref = c.cues.select(c.scene(i)).select(ok)
        slope.append(cues.slope[ok] / ref.slope)
        corr.append(cues.corr[ok])
        corr_ref.append(ref.corr)
    slope, corr, corr_ref = map(np.concatenate, (slope, corr, corr_ref))
    assert slope.size >= 15
    assert np.median(corr_ref) < 0.9  # the dilution is substantial, so the check means something
    assert np.median(slope) == pytest.approx(1.0, abs=0.06)
    assert np.median(np.abs(corr - corr_ref)) < 0.05


def test_disparity_model_on_a_depth_map():
    """Background pixels follow a (1/z + b + c v); a person's relief is scaled by 1/nu around its
    mean inverse depth and its disparity by m; bad input is refused."""
    model = RelativeDepthModel(pixel_noise=0.0)
    errors = model.sample(1, 2, np.random.default_rng(0))
    errors = dataclasses.replace(
        errors, person_error=np.array([1.1, 0.9]), slope_gain=np.array([2.0, 1.0])
    )
    depth = np.full((4, 6), 10.0)
    depth[1:3, 1:3] = [[4.0, 5.0], [4.0, 5.0]]
    depth[1:3, 4] = 8.0
    ids = np.zeros((4, 6), int)
    ids[1:3, 1:3], ids[1:3, 4] = 1, 2
    disp = model.disparity(depth, ids, errors, np.random.default_rng(1))
    a, b, c = errors.scale[0], errors.shift[0], errors.vertical_bias[0]
    v = ((np.arange(4) + 0.5) / 4 - 0.5)[:, None] * np.ones((1, 6))
    expected = a * (1 / depth + b + c * v)
    q = np.mean([1 / 4, 1 / 5])
    inv1 = q + (1 / depth[1:3, 1:3] - q) / 2.0
    expected[1:3, 1:3] = 1.1 * a * (inv1 + b + c * v[1:3, 1:3])
    expected[1:3, 4] *= 0.9
    np.testing.assert_allclose(disp, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="true_depth must be finite and > 0"):
        model.disparity(np.zeros((4, 6)), ids, errors, np.random.default_rng(1))
    with pytest.raises(ValueError, match=r"person_ids must lie in \[0, 2\]"):
        model.disparity(depth, ids * 2, errors, np.random.default_rng(1))


def test_pixel_pipeline_end_to_end_improves_on_the_teacher():
    """Render -> inverse disparity -> cue extraction -> DTO: the corrected depths of the kept
    persons are closer to the truth than the teacher's (no per-person or pixel error)."""
    from dto_core import DTOConfig, optimize_scene

    c = sample_crowds(
        8,
        seed=11,
        persons=(4, 6),
        depth_range=(3.0, 10.0),
        minor_fraction=0.3,
        group_photo_fraction=0.0,
        image_size=(240, 320),
        depth_model=NOISE_FREE,
    )
    teacher_err, dto_err = [], []
    for i in range(c.num_scenes):
        sl = c.scene(i)
        scene = render_scene(c, i)
        cues, _ = extract_cues(
            depth_from_disparity(scene.disparity),
            scene.person_ids,
            scene.mesh_depth,
            sl.stop - sl.start,
        )
        result = optimize_scene(
            c.teacher_height[sl], c.prior_cls[sl], cues, config=DTOConfig.paper()
        )
        ok = result.updated
        # mesh_depth here is the mean rendered depth, so compare relative depth changes
        dto_err.append(
            np.abs(result.scale_factor[ok] * c.teacher_depth[sl][ok] - c.target_depth[sl][ok])
        )
        teacher_err.append(np.abs(c.teacher_depth[sl][ok] - c.target_depth[sl][ok]))
    dto_err, teacher_err = np.concatenate(dto_err), np.concatenate(teacher_err)
    assert dto_err.size >= 20
    assert dto_err.mean() < 0.6 * teacher_err.mean()
