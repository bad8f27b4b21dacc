"""Height error: |H(beta_pred) - H(beta_gt)| per matched person, millimetres.

H(beta) is the T-pose height: max y - min y of the mesh at zero pose (all 72 pose parameters,
global orientation included, no translation), SMPL's y axis being vertical
(`dto_core.body.BodyModel.tpose_height`). Ground truth uses the gendered SMPL model, the
prediction the model's own (MA-HMR: neutral with the 11th "kid" shape coefficient).
"""

from __future__ import annotations

import numpy as np

from dto_core.body import BodyModel

__all__ = ["height_error", "tpose_heights"]


def tpose_heights(model: BodyModel, betas: np.ndarray) -> np.ndarray:
    """T-pose heights (N,) m of betas (N, B) under `model`."""
    return model.tpose_height(np.asarray(betas, dtype=np.float64))


def height_error(pred_height: np.ndarray, gt_height: np.ndarray) -> np.ndarray:
    """|pred - gt| (N,) mm of heights (N,) m."""
    pred_height = np.asarray(pred_height, dtype=np.float64)
    gt_height = np.asarray(gt_height, dtype=np.float64)
    if pred_height.shape != gt_height.shape or pred_height.ndim != 1:
        raise ValueError(f"heights must be (N,) each, got {pred_height.shape}, {gt_height.shape}")
    return 1000.0 * np.abs(pred_height - gt_height)
