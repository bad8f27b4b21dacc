"""Synthetic crowds: the simulated teacher keeps 2D projections, scenes are seeded, and the
pixel-level rendering yields, through extract_cues, the cues the cue-level model states."""

import numpy as np
import pytest

from dto_core.cues import CueStatus, depth_from_disparity, extract_cues
from dto_core.priors import PriorClass
from dto_core.synthetic import render_scene, sample_crowds


def test_seeded_and_shaped():
    a, b = sample_crowds(50, seed=3), sample_crowds(50, seed=3)
    np.testing.assert_array_equal(a.teacher_depth, b.teacher_depth)
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
    c = sample_crowds(2000, seed=1, teacher_height_noise=0.0)
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


def test_pixel_scene_cues_match_the_cue_model():
    """Render a noise-free scene and extract cues: slope = teacher scale k over d(rel depth)/dz,
    d_i near the cue model's relative depth, everything on the right pixels."""
    c = sample_crowds(
        20,
        seed=7,
        persons=(3, 4),
        disparity_noise=0.0,
        slope_noise=0.0,
        vertical_bias=0.0,
        disparity_shift=(0.0, 0.0),
        depth_range=(3.0, 9.0),
        group_photo_fraction=0.0,
    )
    checked = 0
    for i in range(c.num_scenes):
        scene = render_scene(c, i, noise=0.0)
        sl = c.scene(i)
        assert scene.person_ids.max() <= sl.stop - sl.start
        np.testing.assert_allclose(scene.mesh_depth[scene.person_ids == 0], 0.0)
        cues, _ = extract_cues(
            depth_from_disparity(scene.disparity),
            scene.person_ids,
            scene.mesh_depth,
            sl.stop - sl.start,
        )
        ok = cues.status == CueStatus.OK
        # with b = 0 and no noise, rel depth = z / a exactly, so mesh depth = k a rel depth
        k = c.teacher_depth[sl] / c.depth[sl]
        a = c.disparity_scale[i]
        np.testing.assert_allclose(cues.slope[ok], (k * a)[ok], rtol=1e-9)
        np.testing.assert_allclose(cues.corr[ok], 1.0, atol=1e-9)
        np.testing.assert_allclose(cues.mesh_depth[ok], (k * a * cues.rel_depth)[ok], rtol=1e-9)
        np.testing.assert_allclose(cues.rel_depth[ok], (c.depth[sl] / a)[ok], rtol=0.05)
        checked += ok.sum()
    assert checked >= 30


def test_pixel_pipeline_end_to_end_improves_on_the_teacher():
    """Render -> inverse disparity -> cue extraction -> DTO: the corrected depths of the kept
    persons are closer to the truth than the teacher's (noise-free, affine relative depth)."""
    from dto_core import DTOConfig, optimize_scene

    c = sample_crowds(
        8,
        seed=11,
        persons=(4, 6),
        disparity_noise=0.0,
        vertical_bias=0.0,
        disparity_shift=(0.0, 0.0),
        depth_range=(3.0, 10.0),
        minor_fraction=0.3,
        group_photo_fraction=0.0,
    )
    teacher_err, dto_err = [], []
    for i in range(c.num_scenes):
        sl = c.scene(i)
        scene = render_scene(c, i, noise=0.0)
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
