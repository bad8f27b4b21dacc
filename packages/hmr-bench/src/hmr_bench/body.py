"""The body-model side of the evaluators, through `dto_core.body` (NumPy SMPL).

Ground truth of 3DPW and Hi4D is gendered SMPL in a world frame: `camera_frame_params` turns it
into camera-frame parameters exactly as MA-HMR does (global orientation R_cam R(go); translation
R_cam (J0 + t_w) + t_cam - J0 with J0 the root joint of the shaped body), `bodies` poses it.
Predictions given only as parameters are posed with the neutral model (with the kid template when
they have 11 betas). Model files: `SMPL_{NEUTRAL,MALE,FEMALE}.{pkl,npz}`, `smpl_kid_template.npy`,
`J_regressor_h36m_correct.npy`, `J_regressor_extra.npy` in `model_dir` (or its `smpl/`), default
$SMPL_MODEL_DIR.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from dto_core.body import MODEL_DIR_ENV, BodyModel, rodrigues
from hmr_bench.joints import SMPLX_VERTEX_JOINT_IDS
from hmr_bench.regressors import Regressors, load_regressors

__all__ = ["KID_TEMPLATE", "Bodies", "BodyModels", "camera_frame_params", "pose_bodies"]

KID_TEMPLATE = "smpl_kid_template.npy"
FORWARD_CHUNK = 128
"""People per body-model forward pass (bounds the (n, 6890, 12) skinning temporaries)."""


@dataclass(frozen=True, eq=False)
class Bodies:
    """Posed people: verts (n, V, 3) and joints24 (n, 24, 3) m, camera frame."""

    verts: np.ndarray
    joints24: np.ndarray

    @property
    def joints45(self) -> np.ndarray:
        """smplx's 45 SMPL joints: the 24 skeleton joints and 21 vertices (n, 45, 3)."""
        return np.concatenate([self.joints24, self.verts[:, list(SMPLX_VERTEX_JOINT_IDS)]], axis=1)


def _fingerprint(folder: Path) -> tuple:
    """A folder's identity for the cache: its path and the size / mtime of its .pkl, .npz and
    .npy files (and those of its smpl/ subfolder)."""
    files = sorted(
        p
        for d in (folder, folder / "smpl")
        if d.is_dir()
        for p in d.iterdir()
        if p.suffix in (".pkl", ".npz", ".npy")
    )
    return (
        str(folder.resolve()),
        tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files),
    )


_LOADED: dict[tuple, BodyModels] = {}
"""Loaded model sets by folder fingerprint: the models are read-only, so sharing them is safe
and repeated evaluations in one process skip re-reading ~100 MB of model files."""


@dataclass(eq=False)
class BodyModels:
    """Lazily loaded neutral / male / female (+ kid) models and the joint regressors."""

    model_dir: Path
    regressors: Regressors
    _cache: dict[tuple[str, int], BodyModel] = field(default_factory=dict, repr=False)

    @classmethod
    def load(
        cls,
        model_dir: str | os.PathLike[str] | None = None,
        regressor_dir: str | os.PathLike[str] | None = None,
        convention: str | None = None,
    ) -> BodyModels:
        """Models from model_dir (default $SMPL_MODEL_DIR), regressors from regressor_dir
        (default model_dir), their row order checked on the neutral T-pose."""
        if model_dir is None:
            if MODEL_DIR_ENV not in os.environ:
                raise FileNotFoundError(
                    f"no SMPL model folder: pass model_dir (--model-dir) or set ${MODEL_DIR_ENV}"
                )
            model_dir = os.environ[MODEL_DIR_ENV]
        model_dir = Path(model_dir)
        key = (_fingerprint(model_dir), _fingerprint(Path(regressor_dir or model_dir)), convention)
        if key not in _LOADED:
            neutral = BodyModel.from_dir(model_dir, "neutral")
            regressors = load_regressors(regressor_dir or model_dir, neutral, convention)  # type: ignore[arg-type]
            models = cls(model_dir, regressors)
            models._cache[("neutral", 10)] = neutral
            _LOADED[key] = models
        return _LOADED[key]

    def model(self, gender: str = "neutral", num_betas: int = 10) -> BodyModel:
        """The SMPL model of a gender with 10 betas, or 11 (neutral + kid template)."""
        key = (gender, num_betas)
        if key not in self._cache:
            if num_betas == 11:
                if gender != "neutral":
                    raise ValueError("the 11-beta (kid) model exists for the neutral gender only")
                candidates = [self.model_dir / KID_TEMPLATE, self.model_dir / "smpl" / KID_TEMPLATE]
                kid = next((p for p in candidates if p.is_file()), None)
                if kid is None:
                    raise FileNotFoundError(
                        f"11 betas need the kid template {KID_TEMPLATE} in {self.model_dir}"
                    )
                self._cache[key] = BodyModel.from_dir(self.model_dir, "neutral", kid_template=kid)
            elif num_betas == 10:
                self._cache[key] = BodyModel.from_dir(self.model_dir, gender)
            else:
                raise ValueError(f"betas must have 10 or 11 coefficients, got {num_betas}")
        return self._cache[key]

    def h36m(self, verts: np.ndarray, about: np.ndarray | None = None) -> np.ndarray:
        """H36M-17 joints (n, 17, 3) of vertices (n, V, 3): R v, or with `about` (n, 3) MA-HMR's
        R (v - t) + t = R v + (1 - R 1) t (t the SMPL translation; equal where rows sum to 1)."""
        joints = self.regressors.h36m(verts)
        if about is not None:
            shift = 1.0 - self.regressors.h36m.row_sums
            joints += shift[None, :, None] * np.asarray(about, dtype=np.float64)[:, None, :]
        return joints


def pose_bodies(
    model: BodyModel,
    betas: np.ndarray,
    pose: np.ndarray,
    transl: np.ndarray,
    out: Bodies | None = None,
    rows: np.ndarray | None = None,
) -> Bodies:
    """Posed meshes of betas (n, B), pose (n, 72) rad, transl (n, 3) m, in chunks; written
    into `out` at `rows` (n,) when given (saves a copy of the meshes), else into new arrays."""
    n = len(betas)
    if out is None:
        out = Bodies(np.empty((n, len(model.v_template), 3)), np.empty((n, len(model.parents), 3)))
        rows = np.arange(n)
    for start in range(0, n, FORWARD_CHUNK):
        sl = slice(start, start + FORWARD_CHUNK)
        posed = model.forward(betas[sl], pose[sl, 3:], pose[sl, :3], transl[sl])
        out.verts[rows[sl]], out.joints24[rows[sl]] = posed.vertices, posed.joints
    return out


def root_joint(model: BodyModel, betas: np.ndarray) -> np.ndarray:
    """J0 (n, 3) m: the root joint of the shaped (zero-pose) body, linear in betas."""
    row = model.J_regressor[0]
    base = row @ model.v_template
    dirs = np.einsum("v,vcb->cb", row, model.shapedirs)
    return base + np.asarray(betas, dtype=np.float64) @ dirs.T


def camera_frame_params(
    global_orient: np.ndarray,
    transl: np.ndarray,
    betas: np.ndarray,
    cam_rot: np.ndarray,
    cam_trans: np.ndarray,
    model: BodyModel,
) -> tuple[np.ndarray, np.ndarray]:
    """World-frame SMPL (global_orient (n, 3), transl (n, 3)) -> camera frame, given X_c =
    cam_rot X_w + cam_trans: returns (global_orient_cam (n, 3), transl_cam (n, 3)). The posed
    camera-frame mesh equals the world mesh moved by the camera transform."""
    rot = cam_rot @ rodrigues(global_orient)
    orient = Rotation.from_matrix(rot).as_rotvec()
    j0 = root_joint(model, betas)
    transl_cam = np.einsum("nab,nb->na", cam_rot, j0 + transl) + cam_trans - j0
    return orient, transl_cam
