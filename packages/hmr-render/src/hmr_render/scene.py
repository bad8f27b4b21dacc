"""People standing on a flat ground in front of a level camera: scenes with known geometry."""

from __future__ import annotations

import numpy as np

from dto_core.body import BodyModel

__all__ = ["standing_people"]

UPRIGHT = np.array([np.pi, 0.0, 0.0])  # body frame (y up, facing +z) -> camera frame, facing it


def standing_people(
    model: BodyModel,
    positions: np.ndarray,
    camera_height: float = 1.6,
    betas: np.ndarray | None = None,
    body_pose: np.ndarray | None = None,
) -> np.ndarray:
    """Vertices (N, V, 3) m, camera frame, of N people facing a level camera.

    positions (N, 2) m: each person's root joint at camera-frame (x, z); the lowest vertex (the
    soles) touches the ground plane y = camera_height. betas (N, B) and body_pose (N, 69) default
    to zeros (T-pose of the mean shape).
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    n = len(positions)
    betas = np.zeros((n, model.num_betas)) if betas is None else betas
    body_pose = np.zeros((n, 3 * (len(model.parents) - 1))) if body_pose is None else body_pose
    out = model.forward(betas, body_pose, np.broadcast_to(UPRIGHT, (n, 3)))
    offset = np.stack(
        [
            positions[:, 0] - out.joints[:, 0, 0],
            camera_height - out.vertices[..., 1].max(axis=1),
            positions[:, 1] - out.joints[:, 0, 2],
        ],
        axis=-1,
    )
    return out.vertices + offset[:, None, :]
