"""Camera convention: hand-computed focal lengths and projections, and loop oracles."""

from __future__ import annotations

import numpy as np

from dto_core.camera import focal_from_fov, fov_from_focal, intrinsics_from_fov, project


def test_focal_and_fov_hand_computed() -> None:
    # 60 deg, H = 480: f = 240 / tan(30 deg) = 240 sqrt(3)
    assert np.isclose(focal_from_fov(np.pi / 3, 480), 240 * np.sqrt(3))
    assert np.isclose(fov_from_focal(240 * np.sqrt(3), 480), np.pi / 3)
    fov = np.array([0.3, 1.0, 2.5])
    np.testing.assert_allclose(fov_from_focal(focal_from_fov(fov, 720), 720), fov, rtol=1e-14)


def test_intrinsics_from_fov() -> None:
    K = intrinsics_from_fov(np.pi / 2, 480, 640)  # f = 240
    np.testing.assert_allclose(K, [[240, 0, 320], [0, 240, 240], [0, 0, 1]], atol=1e-12)
    batch = intrinsics_from_fov(np.array([np.pi / 2, np.pi / 3]), np.array([480, 100]), 640)
    assert batch.shape == (2, 3, 3)
    np.testing.assert_allclose(batch[0], K)
    np.testing.assert_allclose(batch[1, 0, 0], 50 * np.sqrt(3))
    np.testing.assert_allclose(batch[1, :2, 2], [320, 50])


def test_project_hand_computed_and_per_row_cameras() -> None:
    K = np.array([[500.0, 0, 320], [0, 400, 240], [0, 0, 1]])
    np.testing.assert_allclose(project(np.array([1.0, -0.5, 2.0]), K), [570.0, 140.0])
    rng = np.random.default_rng(0)
    points = rng.normal(size=(4, 5, 3)) + [0, 0, 6]
    Ks = np.stack([K * [[s], [s], [1]] for s in (0.5, 1, 2, 3)])
    got = project(points, Ks)
    for n in range(4):
        for j in range(5):
            x, y, z = points[n, j]
            expected = [Ks[n, 0, 0] * x / z + Ks[n, 0, 2], Ks[n, 1, 1] * y / z + Ks[n, 1, 2]]
            np.testing.assert_allclose(got[n, j], expected, rtol=1e-12)
    np.testing.assert_allclose(project(points, K), project(points, np.stack([K] * 4)))
