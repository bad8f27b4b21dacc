"""The workspace's camera convention in NumPy: OpenCV frame (x right, y down, z forward),
fx = fy = f from the vertical field of view, principal point at the image centre unless given."""

from __future__ import annotations

import numpy as np

__all__ = ["focal_from_fov", "fov_from_focal", "intrinsics_from_fov", "project"]


def focal_from_fov(fov_y: np.ndarray | float, height: np.ndarray | float) -> np.ndarray:
    """Focal length f = H / (2 tan(v/2)) px of images `height` px tall with vertical FoV v rad."""
    return np.asarray(height, np.float64) / (2.0 * np.tan(np.asarray(fov_y, np.float64) / 2.0))


def fov_from_focal(focal: np.ndarray | float, height: np.ndarray | float) -> np.ndarray:
    """Vertical FoV v = 2 atan(H / (2 f)) rad: the inverse of `focal_from_fov`."""
    return 2.0 * np.arctan(np.asarray(height, np.float64) / (2.0 * np.asarray(focal, np.float64)))


def intrinsics_from_fov(
    fov_y: np.ndarray | float, height: np.ndarray | float, width: np.ndarray | float
) -> np.ndarray:
    """K (...,3,3) float64: f from `focal_from_fov`, principal point (W/2, H/2)."""
    f, height, width = np.broadcast_arrays(
        focal_from_fov(fov_y, height), np.asarray(height, np.float64), np.asarray(width, np.float64)
    )
    K = np.zeros((*f.shape, 3, 3))
    K[..., 0, 0] = K[..., 1, 1] = f
    K[..., 0, 2], K[..., 1, 2], K[..., 2, 2] = width / 2.0, height / 2.0, 1.0
    return K


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole pixels (...,2) of camera-frame points (...,3) m.

    K is (3,3) for all points, or (n,3,3) for points (n,J,3) (one camera per leading row).
    """
    K = np.asarray(K, np.float64)
    uvw = np.asarray(points, np.float64) @ np.swapaxes(K, -1, -2)
    return uvw[..., :2] / uvw[..., 2:]
