"""SMPL-family body model in NumPy: loading (.pkl / .npz), linear blend skinning, T-pose height.

The arithmetic follows smplx's ``lbs()`` (smplx/lbs.py) so that results match the reference
implementation to float64 round-off. Units: metres and radians; SMPL frame (y up).

Command line: ``python -m dto_core.body make-synthetic DIR [--seed S]`` writes a synthetic
SMPL-format model directory (see dto_core.synthetic_body).
"""

from __future__ import annotations

import argparse
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import scipy.sparse as sp

from dto_core.synthetic_body import write_synthetic_smpl_dir

__all__ = [
    "OPENPOSE_FROM_SMPLX",
    "SMPLX_VERTEX_JOINTS",
    "BodyModel",
    "BodyOutput",
    "load_model_arrays",
    "load_pickled_array",
    "openpose_joints",
    "rodrigues",
]

MODEL_DIR_ENV = "SMPL_MODEL_DIR"
GENDERS = ("neutral", "male", "female")
REQUIRED_KEYS = (
    "v_template",
    "shapedirs",
    "posedirs",
    "J_regressor",
    "weights",
    "kintree_table",
    "f",
)
SMPLX_VERTEX_JOINTS = (332, 6260, 2800, 4071, 583, 3216, 3226, 3387, 6617, 6624, 6787)
"""SMPL vertices that smplx's SMPL appends after the 24 skeleton joints as joints 24..34: nose,
right eye, left eye, right ear, left ear, left big toe, small toe, heel, right big toe, small toe,
heel (smplx/vertex_ids.py, 'smplh'); its hand tips (35..44) are not used here."""
OPENPOSE_FROM_SMPLX = (
    24, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
)  # fmt: skip
"""OpenPose BODY_25 joints as indices into smplx's joints (24 skeleton + SMPLX_VERTEX_JOINTS): the
map of 4D-Humans' SMPL wrapper, whose first 25 of 44 joints CameraHMR and the official DTO use."""
FORWARD_BLOCK = 32  # persons per block in forward(): ~5 MB per (block, 3, V) temporary
RODRIGUES_EPS = 1e-8  # smplx adds this to the rotation vector before taking its norm
CHUMPY_HINT = (
    "holds chumpy arrays (an original SMPL release file). Convert it once to plain numpy: either "
    "install chumpy in a separate (Python 2 / old NumPy) environment and run smplx's "
    "tools/clean_ch.py --input-models FILE --output-folder OUT, or load it there with chumpy and "
    "re-save every chumpy array with np.array(...) in a plain pickle or .npz."
)

_NUMPY_MODULES = {
    "numpy", "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
    "numpy._core.numeric",
}  # fmt: skip
_NUMPY_NAMES = {"ndarray", "dtype", "matrix", "_reconstruct", "scalar", "_frombuffer"}
_SPARSE_NAMES = {"csc_matrix", "csr_matrix", "coo_matrix"}
_BUILTINS = {
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"), ("__builtin__", "object"),
    ("builtins", "object"), ("_codecs", "encode"),
}  # fmt: skip


class _ModelUnpickler(pickle.Unpickler):
    """Unpickler for SMPL model files: numpy arrays, scipy.sparse matrices, a few builtins."""

    def __init__(self, file: BinaryIO, path: Path) -> None:
        super().__init__(file, encoding="latin1")  # SMPL files are Python 2 pickles
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] == "chumpy":
            raise ValueError(f"{self._path} {CHUMPY_HINT}")
        if module.startswith("scipy.sparse") and name in _SPARSE_NAMES:
            return getattr(sp, name)  # old files name since-removed modules (scipy.sparse.csc)
        if (module in _NUMPY_MODULES and name in _NUMPY_NAMES) or (module, name) in _BUILTINS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a body model file")


def _unpickle(path: Path) -> Any:
    with path.open("rb") as f:
        return _ModelUnpickler(f, path).load()


def load_model_arrays(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw key -> value mapping of a SMPL .pkl (Python 2 pickle, latin1) or .npz file."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    data = _unpickle(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of model arrays, got {type(data).__name__}")
    return data


def load_pickled_array(path: str | os.PathLike[str]) -> np.ndarray:
    """A dense float64 array from a pickle holding one numpy array or scipy sparse matrix (e.g.
    the extra-joint regressor `SMPL_to_J19.pkl`), read with the same restricted unpickler."""
    path = Path(path)
    data = _unpickle(path)
    if sp.issparse(data):
        data = data.toarray()
    if not isinstance(data, np.ndarray):
        raise ValueError(f"{path}: expected one array, got {type(data).__name__}")
    return data.astype(np.float64)


def rodrigues(rotvecs: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of axis-angle vectors (..., 3) rad, as smplx computes them."""
    rotvecs = np.asarray(rotvecs, dtype=np.float64)
    angle = np.linalg.norm(rotvecs + RODRIGUES_EPS, axis=-1, keepdims=True)
    rx, ry, rz = np.moveaxis(rotvecs / angle, -1, 0)
    zeros = np.zeros_like(rx)
    k = np.stack([zeros, -rz, ry, rz, zeros, -rx, -ry, rx, zeros], -1).reshape(*rx.shape, 3, 3)
    sin, cos = np.sin(angle)[..., None], np.cos(angle)[..., None]
    return np.eye(3) + sin * k + (1.0 - cos) * (k @ k)


@dataclass(frozen=True, eq=False)
class BodyOutput:
    """Posed body: vertices (N, V, 3) and joints (N, J, 3), metres."""

    vertices: np.ndarray
    joints: np.ndarray


@dataclass(frozen=True, eq=False)
class BodyModel:
    """SMPL-family model: V vertices, J joints (24 for SMPL), B shape directions, float64 metres.

    v_template (V, 3); shapedirs (V, 3, B); posedirs (V, 3, 9 (J - 1)) as in the SMPL .pkl;
    J_regressor (J, V) dense; weights (V, J); parents (J,) int64 with parents[0] == -1 and
    parents[j] < j; faces (F, 3) int64. Arrays are copied and made read-only.
    """

    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    faces: np.ndarray

    def __post_init__(self) -> None:
        for name in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
            self._store(name, np.array(getattr(self, name), dtype=np.float64))
        for name in ("parents", "faces"):
            self._store(name, np.array(getattr(self, name), dtype=np.int64))
        v, j, f = len(self.v_template), len(self.parents), self.faces
        expected = {
            "v_template": (v, 3), "shapedirs": (v, 3, self.shapedirs.shape[-1]),
            "posedirs": (v, 3, 9 * (j - 1)), "J_regressor": (j, v), "weights": (v, j),
            "parents": (j,), "faces": (len(f), 3),
        }  # fmt: skip
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected {shape}")
        if self.parents[0] != -1 or np.any(self.parents[1:] < 0):
            raise ValueError(f"parents[0] must be -1 and the others >= 0, got {self.parents}")
        if np.any(self.parents[1:] >= np.arange(1, j)):
            raise ValueError(f"parents must precede their children, got {self.parents}")
        if f.size and (f.min() < 0 or f.max() >= v):
            raise ValueError(f"faces index vertices outside [0, {v})")

    def _store(self, name: str, array: np.ndarray) -> None:
        array.flags.writeable = False
        object.__setattr__(self, name, array)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        kid_template: str | os.PathLike[str] | np.ndarray | None = None,
        num_betas: int = 10,
    ) -> BodyModel:
        """Load a SMPL .pkl or .npz; keep num_betas shape directions (+1 kid direction, as smplx).

        kid_template: path of a (V, 3) .npy, or the array itself; it is mean-centred and
        (kid - v_template) appended as shape direction num_betas, exactly as smplx's age="kid".
        """
        data = load_model_arrays(path)
        for key in REQUIRED_KEYS:
            if key not in data:
                raise ValueError(f"{path}: model file has no {key!r} entry")
        shapedirs = np.asarray(data["shapedirs"], dtype=np.float64)
        if not 0 < num_betas <= shapedirs.shape[-1]:
            raise ValueError(
                f"{path}: num_betas must be in 1..{shapedirs.shape[-1]}, got {num_betas}"
            )
        shapedirs = shapedirs[..., :num_betas]
        v_template = np.asarray(data["v_template"], dtype=np.float64)
        if kid_template is not None:
            if isinstance(kid_template, str | os.PathLike):
                kid_template = np.load(kid_template)
            kid = np.array(kid_template, dtype=np.float64)
            if kid.shape != v_template.shape:
                raise ValueError(f"kid template has shape {kid.shape}, expected {v_template.shape}")
            kid -= kid.mean(axis=0)
            shapedirs = np.concatenate([shapedirs, (kid - v_template)[..., None]], axis=-1)
        regressor = data["J_regressor"]
        parents = np.asarray(data["kintree_table"])[0].astype(np.int64)
        parents[0] = -1  # stored as uint32 4294967295 in SMPL files
        try:
            return cls(
                v_template=v_template,
                shapedirs=shapedirs,
                posedirs=data["posedirs"],
                J_regressor=regressor.toarray() if sp.issparse(regressor) else regressor,
                weights=data["weights"],
                parents=parents,
                faces=data["f"],
            )
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    @classmethod
    def from_dir(
        cls,
        model_dir: str | os.PathLike[str] | None = None,
        gender: str = "neutral",
        kid_template: str | os.PathLike[str] | np.ndarray | None = None,
        num_betas: int = 10,
    ) -> BodyModel:
        """Load DIR/SMPL_{GENDER}.pkl/.npz or DIR/smpl/...; DIR defaults to $SMPL_MODEL_DIR."""
        if gender not in GENDERS:
            raise ValueError(f"gender must be one of {GENDERS}, got {gender!r}")
        if model_dir is None:
            if MODEL_DIR_ENV not in os.environ:
                raise FileNotFoundError(f"no model_dir given and ${MODEL_DIR_ENV} is not set")
            model_dir = os.environ[MODEL_DIR_ENV]
        root = Path(model_dir)
        tried = [
            folder / f"SMPL_{gender.upper()}{ext}"
            for folder in (root, root / "smpl")
            for ext in (".pkl", ".npz")
        ]
        for path in tried:
            if path.is_file():
                return cls.from_file(path, kid_template=kid_template, num_betas=num_betas)
        raise FileNotFoundError(
            f"no {gender} SMPL model found; tried: {', '.join(str(p) for p in tried)}"
        )

    @property
    def num_betas(self) -> int:
        """Number B of shape coefficients (including the kid direction, if any)."""
        return self.shapedirs.shape[-1]

    @cached_property
    def _coordinate_major(self) -> tuple[np.ndarray, ...]:
        """Arrays laid out (3, V) by coordinate, and the regressor applied to the template and
        shape directions (joints are linear in betas), computed once."""
        v = len(self.v_template)
        template = np.ascontiguousarray(self.v_template.T)  # (3, V)
        shapedirs = np.ascontiguousarray(self.shapedirs.transpose(1, 0, 2)).reshape(3 * v, -1)
        posedirs = np.ascontiguousarray(self.posedirs.transpose(1, 0, 2)).reshape(3 * v, -1)
        joint_template = self.J_regressor @ self.v_template  # (J, 3)
        joint_shapedirs = np.einsum("jv,vkb->jkb", self.J_regressor, self.shapedirs)  # (J, 3, B)
        return template, shapedirs, posedirs, joint_template, joint_shapedirs

    def _betas(self, betas: np.ndarray) -> np.ndarray:
        betas = np.atleast_2d(np.asarray(betas, dtype=np.float64))
        if betas.shape[-1] != self.num_betas:
            raise ValueError(
                f"betas have {betas.shape[-1]} coefficients, expected {self.num_betas}"
            )
        return betas

    def _shaped_coordinate_major(self, betas: np.ndarray) -> np.ndarray:
        """Zero-pose vertices (N, 3, V) of validated betas (N, B)."""
        template, shapedirs, *_ = self._coordinate_major
        return template + (shapedirs @ betas.T).T.reshape(len(betas), 3, -1)

    def shaped_vertices(self, betas: np.ndarray) -> np.ndarray:
        """Zero-pose vertices (N, V, 3) m of betas (N, B) or (B,)."""
        return self._shaped_coordinate_major(self._betas(betas)).transpose(0, 2, 1)

    def forward(
        self,
        betas: np.ndarray,
        body_pose: np.ndarray,
        global_orient: np.ndarray,
        transl: np.ndarray | None = None,
    ) -> BodyOutput:
        """Posed vertices and joints (N, J, 3), metres.

        betas (N, B); body_pose (N, 3 (J - 1)) or (N, J - 1, 3) axis-angle rad, relative to the
        parent joint; global_orient (N, 3) axis-angle about the root joint; transl (N, 3) m.
        A leading size 1 (or a missing batch axis) broadcasts to N. Runs in blocks of
        FORWARD_BLOCK persons so that its temporaries stay in cache.
        """
        num_joints = len(self.parents)
        betas = self._betas(betas)
        body_pose = np.asarray(body_pose, dtype=np.float64).reshape(-1, num_joints - 1, 3)
        global_orient = np.asarray(global_orient, dtype=np.float64).reshape(-1, 1, 3)
        transl = np.zeros((1, 3)) if transl is None else np.asarray(transl, dtype=np.float64)
        transl = transl.reshape(-1, 3)
        n = max(len(betas), len(body_pose), len(global_orient), len(transl))
        betas, body_pose, global_orient, transl = (
            np.broadcast_to(a, (n, *a.shape[1:])) for a in (betas, body_pose, global_orient, transl)
        )
        vertices = np.empty((n, len(self.v_template), 3))
        joints = np.empty((n, num_joints, 3))
        for start in range(0, n, FORWARD_BLOCK):
            block = slice(start, start + FORWARD_BLOCK)
            vertices[block], joints[block] = self._forward_block(
                betas[block], body_pose[block], global_orient[block], transl[block]
            )
        return BodyOutput(vertices=vertices, joints=joints)

    def _forward_block(self, betas, body_pose, global_orient, transl):
        """forward() on a block of persons; returns vertices (n, V, 3) view and joints (n, J, 3)."""
        n, num_joints = len(betas), len(self.parents)
        _, _, posedirs, joint_template, joint_shapedirs = self._coordinate_major

        # Coordinate-major (n, 3, V) layout keeps every per-vertex step a contiguous row operation.
        v_shaped = self._shaped_coordinate_major(np.ascontiguousarray(betas))
        joints = joint_template + np.einsum("jkb,nb->njk", joint_shapedirs, betas)  # (n, J, 3)
        rot = rodrigues(np.concatenate([global_orient, body_pose], axis=1))  # (n, J, 3, 3)
        pose_feature = (rot[:, 1:] - np.eye(3)).reshape(n, -1)
        v_posed = v_shaped + (posedirs @ pose_feature.T).T.reshape(n, 3, -1)

        # World transforms G_j = G_parent @ [R_j | J_j - J_parent] along the kinematic tree.
        rel_joints = joints.copy()
        rel_joints[:, 1:] -= joints[:, self.parents[1:]]
        local = np.zeros((n, num_joints, 4, 4))
        local[..., :3, :3] = rot
        local[..., :3, 3] = rel_joints
        local[..., 3, 3] = 1.0
        chain = [local[:, 0]]
        for j in range(1, num_joints):
            chain.append(chain[self.parents[j]] @ local[:, j])
        world = np.stack(chain, axis=1)
        posed_joints = world[..., :3, 3] + transl[:, None, :]
        # Skinning transforms move rest-pose points: subtract the rotated rest joint.
        world[..., :3, 3] -= np.einsum("njab,njb->nja", world[..., :3, :3], joints)

        # Blend the 3x4 transforms per vertex: (n * 12, J) @ (J, V), row a * 4 + b.
        rows = np.ascontiguousarray(world[..., :3, :].reshape(n, num_joints, 12).transpose(0, 2, 1))
        blended = (rows.reshape(n * 12, num_joints) @ self.weights.T).reshape(n, 3, 4, -1)
        vertices = blended[:, :, 3] + transl[:, :, None]
        for b in range(3):
            vertices += blended[:, :, b] * v_posed[:, None, b]
        return vertices.transpose(0, 2, 1), posed_joints

    def tpose_height(self, betas: np.ndarray) -> np.ndarray:
        """T-pose (zero pose) height H(beta) (N,) m: max y minus min y of the shaped mesh."""
        template, shapedirs, *_ = self._coordinate_major
        v = len(self.v_template)
        y = template[1] + (shapedirs[v : 2 * v] @ self._betas(betas).T).T  # only y is needed
        return y.max(axis=1) - y.min(axis=1)


def openpose_joints(output: BodyOutput) -> np.ndarray:
    """OpenPose BODY_25 joints (N, 25, 3) m of posed SMPL bodies (6890 vertices), ordered as
    4D-Humans' SMPL wrapper orders them (`OPENPOSE_FROM_SMPLX`)."""
    if output.vertices.shape[1] <= max(SMPLX_VERTEX_JOINTS) or output.joints.shape[1] < 24:
        raise ValueError(
            f"need a SMPL body (6890 vertices, 24 joints), got {output.vertices.shape[1]} "
            f"vertices and {output.joints.shape[1]} joints"
        )
    smplx_joints = np.concatenate(
        [output.joints[:, :24], output.vertices[:, SMPLX_VERTEX_JOINTS]], axis=1
    )
    return smplx_joints[:, OPENPOSE_FROM_SMPLX]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m dto_core.body", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("make-synthetic", help="write a synthetic SMPL-format model dir")
    make.add_argument("directory", type=Path)
    make.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for path in write_synthetic_smpl_dir(args.directory, seed=args.seed):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
