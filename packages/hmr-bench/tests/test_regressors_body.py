"""Regressor orientation and loading, the camera-frame ground truth, T-pose heights."""

import numpy as np
import pytest

from dto_core.body import BodyModel
from hmr_bench.body import camera_frame_params, pose_bodies
from hmr_bench.datasets import pw3d
from hmr_bench.fixtures.smpl_scenes import make_pw3d_fixture
from hmr_bench.regressors import (
    JointRegressor,
    RegressorOrientationError,
    check_h36m_orientation,
    load_regressors,
    synthetic_regressor_arrays,
)


def test_synthetic_regressor_orientation(model_dir, models):
    neutral = models.model()
    h36m, extra = synthetic_regressor_arrays(neutral)
    np.testing.assert_allclose(h36m.sum(1), 1.0)
    np.testing.assert_allclose(extra.sum(1), 1.0)
    joints = h36m @ neutral.v_template
    assert joints[1, 0] < 0 < joints[4, 0]  # SMPL's +x is the body's left: row 1 = right hip
    assert check_h36m_orientation(h36m, neutral) == "correct"
    assert check_h36m_orientation(h36m[[0, 4, 5, 6, 1, 2, 3, *range(7, 17)]], neutral) == "spin"


def test_spin_file_is_reordered_and_mislabelled_file_fails(tmp_path, models):
    neutral = models.model()
    h36m, _ = synthetic_regressor_arrays(neutral)
    swapped = h36m[[0, 4, 5, 6, 1, 2, 3, *range(7, 17)]]
    np.save(tmp_path / "J_regressor_h36m.npy", swapped)  # SPIN's name and row order
    loaded = load_regressors(tmp_path, neutral)
    np.testing.assert_array_equal(loaded.h36m.weights, h36m)
    assert loaded.extra is None
    np.save(tmp_path / "J_regressor_h36m_correct.npy", swapped)  # wrong rows, "correct" name
    with pytest.raises(RegressorOrientationError, match="rows 1-3 are the left leg"):
        load_regressors(tmp_path, neutral)
    with pytest.raises(FileNotFoundError, match=r"J_regressor_h36m_correct\.npy"):
        load_regressors(tmp_path / "empty", neutral)
    np.save(tmp_path / "J_regressor_h36m_correct.npy", h36m[:, :100])
    with pytest.raises(ValueError, match="100 vertices"):
        load_regressors(tmp_path, neutral)


def test_joint_regressor_equals_dense_product(models):
    rng = np.random.default_rng(0)
    weights = np.zeros((5, 6890))
    weights[:, rng.choice(6890, 40, replace=False)] = rng.random((5, 40))
    verts = rng.normal(size=(3, 6890, 3))
    dense = rng.random((17, 6890))
    for w in (weights, dense):  # the sparse (gather) and the dense product paths
        np.testing.assert_allclose(
            JointRegressor(w)(verts), np.einsum("kv,nvc->nkc", w, verts), atol=1e-9
        )
    with pytest.raises(ValueError, match=r"\(N, 6890, 3\)"):
        JointRegressor(weights)(verts[:, :10])


def test_tpose_height_is_vertex_extent_and_gendered(models):
    betas = np.random.default_rng(1).normal(size=(4, 10))
    for gender, zero_height in (("male", 1.76), ("female", 1.64), ("neutral", 1.70)):
        model = models.model(gender)
        body = pose_bodies(model, betas, np.zeros((4, 72)), np.zeros((4, 3)))
        extent = body.verts[..., 1].max(1) - body.verts[..., 1].min(1)
        np.testing.assert_allclose(model.tpose_height(betas), extent, atol=1e-12)
        assert model.tpose_height(np.zeros(10))[0] == pytest.approx(zero_height, abs=2e-3)


def test_pw3d_camera_frame_matches_direct_mesh_transform(tmp_path, models):
    make_pw3d_fixture(tmp_path)
    gt = pw3d.load_processed(tmp_path)
    for gender in ("male", "female"):
        rows = np.flatnonzero(gt.gender == gender)
        model: BodyModel = models.model(gender)
        world = pose_bodies(
            model, gt.betas[rows], np.concatenate([gt.global_orient[rows], gt.body_pose[rows]], 1),
            gt.transl[rows],
        )  # fmt: skip
        direct = np.einsum("nab,nvb->nva", gt.cam_rot[rows], world.verts) + gt.cam_trans[rows, None]
        orient, transl = camera_frame_params(
            gt.global_orient[rows], gt.transl[rows], gt.betas[rows], gt.cam_rot[rows],
            gt.cam_trans[rows], model,
        )  # fmt: skip
        cam = pose_bodies(
            model, gt.betas[rows], np.concatenate([orient, gt.body_pose[rows]], 1), transl
        )
        assert np.abs(cam.verts - direct).max() < 1e-6
