"""Quantities the protocols need, taken from the prediction file or derived from what it has.

- verts, joints24: the file's, or the neutral SMPL model posed with betas + pose + transl
  (11 betas: the neutral model with the kid template as the 11th shape direction);
- h36m17: the file's, or the H36M regressor applied to verts (paper mode: MA-HMR's
  R (v - t) + t with t the `transl` field, see BodyModels.h36m);
- kp2d (CrowdPose-14): the file's, or SMPL joints + the extra regressor's head top and neck
  projected with K (MA-HMR, DTO); hips from the LSP rows of the extra regressor for BEV;
- pelvis: the file's, or H36M row 0; T-pose heights from betas.
"""

from __future__ import annotations

import numpy as np

from dto_core.camera import project
from hmr_bench.body import Bodies, BodyModels, pose_bodies
from hmr_bench.joints import (
    CP14_FROM_SMPL24,
    CP14_HIPS,
    EXTRA_HEAD_TOP,
    EXTRA_LSP_HIPS,
    EXTRA_NECK,
)
from hmr_bench.predictions import PredictionError, Predictions

__all__ = ["PredictionGeometry"]

PARAMS = ("betas", "pose", "transl")
ROW_SUM_ATOL = 1e-9
"""Regressor rows whose sums are within this of 1 make R (v - t) + t equal R v to < 1e-5 mm at
10 m, so MA-HMR's form then needs no translation."""


class PredictionGeometry:
    """Per-row access to prediction geometry; `rows` are flat prediction row indices.
    about_transl: regress H36M-17 as MA-HMR does, R (v - t) + t with t the `transl` field."""

    def __init__(
        self, predictions: Predictions, models: BodyModels | None, about_transl: bool = False
    ) -> None:
        self.p = predictions
        self.models = models
        self.about_transl = about_transl

    def _need_models(self, what: str) -> BodyModels:
        if self.models is None:
            raise PredictionError(f"deriving {what} needs the SMPL model files (--model-dir)")
        return self.models

    def _posed(self, rows: np.ndarray) -> Bodies:
        missing = [name for name in PARAMS if not self.p.has(name)]
        if missing:
            have = sorted(self.p.fields)
            raise PredictionError(
                f"predictions need verts / joints24, or {'+'.join(PARAMS)} to pose the neutral "
                f"SMPL model; missing {missing} (have {have})"
            )
        models = self._need_models("meshes from SMPL parameters")
        betas = self.p.get("betas")[rows].astype(np.float64)
        model = models.model("neutral", betas.shape[1])
        return pose_bodies(model, betas, self.p.get("pose")[rows], self.p.get("transl")[rows])

    def bodies(self, rows: np.ndarray, need_joints: bool = True) -> Bodies:
        """verts (n, V, 3) (float32 ones stay float32: the metrics convert chunk by chunk) and
        joints24 (n, 24, 3) (joints24 only if need_joints)."""
        has_v, has_j = self.p.has("verts"), self.p.has("joints24")
        if has_v and (has_j or not need_joints):
            verts = self.p.get("verts")[rows]
            joints = (
                self.p.get("joints24")[rows].astype(np.float64)
                if has_j
                else np.zeros((len(rows), 24, 3))
            )
            return Bodies(verts, joints)
        posed = self._posed(rows)
        verts = self.p.get("verts")[rows] if has_v else posed.verts
        joints = self.p.get("joints24")[rows].astype(np.float64) if has_j else posed.joints24
        return Bodies(verts, joints)

    def h36m(self, rows: np.ndarray, verts: np.ndarray | None = None) -> np.ndarray:
        """H36M-17 (n, 17, 3) m."""
        if self.p.has("h36m17"):
            return self.p.get("h36m17")[rows].astype(np.float64)
        models = self._need_models("H36M joints from meshes")
        if verts is None:
            verts = self.bodies(rows, need_joints=False).verts
        about = None
        if self.about_transl and self.p.has("transl"):
            about = self.p.get("transl")[rows]
        elif self.about_transl:
            off = float(np.max(np.abs(1.0 - models.regressors.h36m.row_sums)))
            if off > ROW_SUM_ATOL:
                raise PredictionError(
                    "MA-HMR regresses H36M-17 as R (v - t) + t with t the SMPL translation, which "
                    f"differs from R v because the regressor's rows do not sum to 1 (by up to "
                    f"{off:.2e}): the predictions need 'transl' (or set h36m_about_transl=False)"
                )
        return models.h36m(verts, about)

    def kp2d(self, rows: np.ndarray, hip_source: str = "smpl") -> np.ndarray:
        """CrowdPose-14 (n, 14, 2) px, original image."""
        if self.p.has("kp2d"):
            return self.p.get("kp2d")[rows].astype(np.float64)
        if not self.p.has("K"):
            raise PredictionError("deriving kp2d (CrowdPose-14) needs K with the meshes")
        models = self._need_models("kp2d from meshes")
        if models.regressors.extra is None:
            raise PredictionError("deriving kp2d needs J_regressor_extra.npy in the model folder")
        bodies = self.bodies(rows)
        extra = models.regressors.extra(bodies.verts)
        joints = np.concatenate(
            [
                bodies.joints24[:, list(CP14_FROM_SMPL24)],
                extra[:, [EXTRA_HEAD_TOP]],
                extra[:, [EXTRA_NECK]],
            ],
            axis=1,
        )
        if hip_source == "lsp":
            joints[:, list(CP14_HIPS)] = extra[:, list(EXTRA_LSP_HIPS)]
        return project(joints, self.p.get("K")[rows].astype(np.float64))

    def depth(self, rows: np.ndarray, source: str) -> np.ndarray:
        """Depth (n,) m for PCDR: z of `transl` or of the pelvis."""
        if source == "transl":
            if not self.p.has("transl"):
                raise PredictionError(
                    "rh_depth_source='transl' needs the 'transl' field; pass "
                    "rh_depth_source='pelvis' (pelvis, h36m17 or verts) instead"
                )
            return self.p.get("transl")[rows, 2].astype(np.float64)
        if self.p.has("pelvis"):
            return self.p.get("pelvis")[rows, 2].astype(np.float64)
        if self.p.has("h36m17") or self.p.has("verts") or all(self.p.has(k) for k in PARAMS):
            return self.h36m(rows)[:, 0, 2]
        raise PredictionError(
            "rh_depth_source='pelvis' needs 'pelvis', 'h36m17', 'verts' or SMPL parameters; "
            "with only 'transl' pass rh_depth_source='transl'"
        )
