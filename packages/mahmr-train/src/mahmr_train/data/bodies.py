"""Ground-truth bodies: gendered SMPL layers (loaded once per process), posing people, and the
mesh points that paint the scale map."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mahmr_model import SMPLBody
from mahmr_model.geometry import axis_angle_to_matrix

__all__ = ["SMPL_FLIP", "BodyModels", "PosedPeople", "edge_midpoint_pairs"]

SMPL_FLIP = (0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22)
"""Left / right permutation of the 24 SMPL joints (horizontal flip of the pose)."""


@dataclass(frozen=True)
class PosedPeople:
    """Bodies in their own frame (no translation): joints (N, 45, 3), vertices (N, V, 3) m."""

    joints: np.ndarray
    vertices: np.ndarray


def edge_midpoint_pairs(faces: np.ndarray) -> np.ndarray:
    """(E, 2) vertex pairs of the unique mesh edges: their midpoints and the vertices are the
    points of one midpoint subdivision (about 27.5k for SMPL), used to paint the scale map."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return np.unique(np.sort(edges, axis=1), axis=0)


class BodyModels:
    """Neutral / male / female SMPL layers with `num_betas` betas (11: the kid template), loaded on
    first use from `model_dir` (default `$SMPL_MODEL_DIR`); float32 on the CPU."""

    def __init__(self, model_dir: str | os.PathLike[str] | None, num_betas: int) -> None:
        self.model_dir = None if model_dir is None else Path(model_dir)
        self.num_betas = num_betas
        self._layers: dict[str, SMPLBody] = {}
        self._pairs: np.ndarray | None = None

    def layer(self, gender: str) -> SMPLBody:
        if gender not in self._layers:
            self._layers[gender] = SMPLBody.from_dir(
                self.model_dir, kid=self.num_betas == 11, gender=gender
            )
        return self._layers[gender]

    @property
    def faces(self) -> np.ndarray:
        return self.layer("neutral").faces.numpy()

    @property
    def edge_pairs(self) -> np.ndarray:
        if self._pairs is None:
            self._pairs = edge_midpoint_pairs(self.faces)
        return self._pairs

    def fit_betas(self, betas: np.ndarray) -> np.ndarray:
        """(N, K) -> (N, num_betas): a missing kid coefficient is 0 (adult), an extra is dropped."""
        betas = np.asarray(betas, np.float64)
        if betas.shape[1] >= self.num_betas:
            return betas[:, : self.num_betas]
        return np.pad(betas, ((0, 0), (0, self.num_betas - betas.shape[1])))

    @torch.no_grad()
    def pose(self, pose: np.ndarray, betas: np.ndarray, gender: np.ndarray) -> PosedPeople:
        """(N, 72) axis-angle, (N, num_betas), (N,) genders -> joints and vertices, body frame."""
        n = len(pose)
        rotmats = axis_angle_to_matrix(torch.from_numpy(pose.reshape(n, 24, 3)).float())
        betas_t = torch.from_numpy(betas).float()
        joints = np.zeros((n, 45, 3))
        vertices: np.ndarray | None = None
        for g in np.unique(gender):
            sel = np.flatnonzero(gender == g)
            out = self.layer(str(g))(rotmats[sel], betas_t[sel])
            if vertices is None:
                vertices = np.zeros((n, out.vertices.shape[1], 3))
            joints[sel] = out.joints.double().numpy()
            vertices[sel] = out.vertices.double().numpy()
        if vertices is None:
            vertices = np.zeros((0, 6890, 3))
        return PosedPeople(joints, vertices)
