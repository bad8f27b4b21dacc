"""Vertex-to-joint regressors: H36M-17 (3DPW, Hi4D, Panoptic, MuPoTS) and SPIN's extra-9 (RH).

Files (licensed, from SPIN; looked up in the SMPL model folder or a folder given explicitly):
`J_regressor_h36m_correct.npy` (17 x 6890, rows 1-3 the RIGHT leg, as MA-HMR uses) or SPIN's older
`J_regressor_h36m.npy` (rows 1-3 the LEFT leg), and `J_regressor_extra.npy` (9 x 6890). The row
order is checked on a T-pose of the body model (SMPL's +x is the body's left) and normalised to
the "correct" order, so every evaluator uses one convention (spec pitfall P2).

`write_synthetic_regressors(model_dir)` derives both files from a synthetic SMPL-format model
(dto_core.synthetic_body) for tests and demos; numbers computed with them are synthetic.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from dto_core.atomic import write_atomic
from dto_core.body import BodyModel
from hmr_bench.joints import H36M17_NAMES

__all__ = [
    "EXTRA_FILE",
    "H36M_FILES",
    "JointRegressor",
    "RegressorOrientationError",
    "Regressors",
    "check_h36m_orientation",
    "load_regressors",
    "synthetic_regressor_arrays",
    "write_synthetic_regressors",
]

Convention = Literal["correct", "spin"]
H36M_FILES: dict[str, str] = {
    "correct": "J_regressor_h36m_correct.npy",
    "spin": "J_regressor_h36m.npy",
}
EXTRA_FILE = "J_regressor_extra.npy"
DENSE_FRACTION = 0.5
"""Above this share of vertices with a nonzero weight, regress with one dense product instead
of gathering the used vertices first (measured faster for a dense 17 x 6890 regressor)."""
_LEG_SWAP = (0, 4, 5, 6, 1, 2, 3, *range(7, 17))  # spin row order <-> correct row order


class RegressorOrientationError(ValueError):
    """The H36M regressor's leg rows do not have the declared left/right orientation."""


@dataclass(frozen=True, eq=False)
class JointRegressor:
    """Linear map from mesh vertices to K joints: joints = weights @ verts.

    weights (K, V) float64. For a sparse regressor only the vertices with a nonzero weight are
    read (`columns`), which makes regressing a batch a small dense product. float32 vertices
    (MA-HMR's predictions) are regressed in float32 (a float32 GEMM, joints within ~1 um of the
    float64 product at 10 m) and returned as float64.
    """

    weights: np.ndarray
    name: str = ""
    columns: np.ndarray = field(init=False, repr=False)
    block: np.ndarray = field(init=False, repr=False)
    row_sums: np.ndarray = field(init=False, repr=False)
    """(K,) sum of each row's weights (1 for a regressor that moves with the mesh)."""
    _float32: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        w = np.array(self.weights, dtype=np.float64)
        if w.ndim != 2 or not np.all(np.isfinite(w)):
            raise ValueError(f"regressor {self.name!r}: expected a finite (K, V) array")
        cols = np.flatnonzero(np.any(w != 0, axis=0))
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "columns", cols)
        object.__setattr__(self, "block", np.ascontiguousarray(w[:, cols]))
        object.__setattr__(self, "row_sums", w.sum(axis=1))
        float32 = (w.astype(np.float32), np.ascontiguousarray(w[:, cols], dtype=np.float32))
        object.__setattr__(self, "_float32", float32)

    @property
    def num_joints(self) -> int:
        return self.weights.shape[0]

    @property
    def num_vertices(self) -> int:
        return self.weights.shape[1]

    def __call__(self, verts: np.ndarray) -> np.ndarray:
        """Joints (N, K, 3) m of vertices (N, V, 3) m."""
        verts = np.asarray(verts)
        if verts.ndim != 3 or verts.shape[1:] != (self.num_vertices, 3):
            raise ValueError(
                f"regressor {self.name!r}: vertices must be (N, {self.num_vertices}, 3), "
                f"got {verts.shape}"
            )
        weights, block = self.weights, self.block
        if verts.dtype == np.float32:
            weights, block = self._float32
        else:
            verts = verts.astype(np.float64, copy=False)
        if len(self.columns) > DENSE_FRACTION * self.num_vertices:
            joints = np.tensordot(verts, weights, axes=([1], [1])).transpose(0, 2, 1)
        else:
            joints = block @ verts[:, self.columns]
        return joints.astype(np.float64, copy=False)


@dataclass(frozen=True, eq=False)
class Regressors:
    """The H36M-17 regressor in the 'correct' row order and, if available, SPIN's extra-9."""

    h36m: JointRegressor
    extra: JointRegressor | None = None


def check_h36m_orientation(h36m: np.ndarray, body: BodyModel) -> Convention:
    """Which row order an H36M-17 regressor has, from the zero-shape T-pose of `body`.

    SMPL's +x is the body's left: the 'correct' file has its hip row 1 at x < 0 (right) and row 4
    at x > 0; SPIN's file the opposite. Raises RegressorOrientationError if neither holds.
    """
    joints = h36m @ body.v_template
    right, left = joints[1, 0], joints[4, 0]
    if right < 0 < left:
        return "correct"
    if left < 0 < right:
        return "spin"
    raise RegressorOrientationError(
        f"H36M regressor hips (rows 1 and 4) at x = {right:.4f}, {left:.4f} m in the T-pose: "
        "expected one on each side of the body (wrong file or wrong body model)"
    )


def _find(directories: list[Path], name: str) -> Path | None:
    for d in directories:
        for candidate in (d / name, d / "smpl" / name):
            if candidate.is_file():
                return candidate
    return None


def load_regressors(
    directory: str | os.PathLike[str],
    body: BodyModel | None = None,
    convention: Convention | None = None,
    require_extra: bool = False,
) -> Regressors:
    """Load the H36M-17 (+ extra-9) regressors from `directory` (or its `smpl/` subfolder).

    Prefers J_regressor_h36m_correct.npy, else SPIN's J_regressor_h36m.npy. With `body`, the row
    order is measured on its T-pose and must equal `convention` when one is given (default: the
    file name's convention); SPIN-ordered rows are reordered to the 'correct' order.
    """
    root = Path(directory)
    found = [(c, _find([root], f)) for c, f in H36M_FILES.items()]
    found = [(c, p) for c, p in found if p is not None]
    if not found:
        raise FileNotFoundError(
            f"no H36M regressor in {root} or {root / 'smpl'}: expected "
            f"{H36M_FILES['correct']} (MA-HMR) or {H36M_FILES['spin']} (SPIN)"
        )
    file_convention, path = found[0]
    weights = np.load(path)
    if weights.ndim != 2 or weights.shape[0] != len(H36M17_NAMES):
        raise ValueError(f"{path}: expected a (17, V) array, got {weights.shape}")
    expected = convention or file_convention
    if body is not None:
        if weights.shape[1] != len(body.v_template):
            raise ValueError(
                f"{path}: {weights.shape[1]} vertices, the body model has {len(body.v_template)}"
            )
        measured = check_h36m_orientation(weights, body)
        if measured != expected:
            raise RegressorOrientationError(
                f"{path}: rows 1-3 are the {'right' if measured == 'correct' else 'left'} leg "
                f"('{measured}' order) but '{expected}' was expected"
            )
    if expected == "spin":
        weights = weights[list(_LEG_SWAP)]
    extra = None
    extra_path = _find([root], EXTRA_FILE)
    if extra_path is not None:
        extra_w = np.load(extra_path)
        if extra_w.shape != (9, weights.shape[1]):
            raise ValueError(f"{extra_path}: expected (9, {weights.shape[1]}), got {extra_w.shape}")
        extra = JointRegressor(extra_w, name=EXTRA_FILE)
    elif require_extra:
        raise FileNotFoundError(f"{EXTRA_FILE} not found in {root} or {root / 'smpl'}")
    return Regressors(JointRegressor(weights, name=path.name), extra)


def synthetic_regressor_arrays(body: BodyModel) -> tuple[np.ndarray, np.ndarray]:
    """(h36m (17, V), extra (9, V)) built from a synthetic model's SMPL joint regressor rows.

    Each row averages SMPL joint-regressor rows (hips, knees, ...) or picks one vertex (head top:
    the highest T-pose vertex; nose/jaw: the most forward vertex above the neck), so every row
    sums to 1 and the 'correct' leg order holds (SMPL joint 2 is the right hip).
    """
    jr = body.J_regressor
    v = body.v_template
    nv = len(v)
    top = np.zeros(nv)
    top[np.argmax(v[:, 1])] = 1.0
    above_neck = np.flatnonzero(v[:, 1] > (jr[12] @ v)[1])
    nose = np.zeros(nv)
    nose[above_neck[np.argmax(v[above_neck, 2])]] = 1.0

    def mean(*rows: int) -> np.ndarray:
        return jr[list(rows)].mean(axis=0)

    h36m = np.stack([
        mean(1, 2), jr[2], jr[5], jr[8], jr[1], jr[4], jr[7], mean(3, 6), jr[12], nose, top,
        jr[16], jr[18], jr[20], jr[17], jr[19], jr[21],
    ])  # fmt: skip
    extra = np.stack([jr[2], jr[1], jr[12], top, jr[0], mean(9, 12), jr[6], nose, jr[15]])
    return h36m, extra


def write_synthetic_regressors(model_dir: str | os.PathLike[str]) -> list[Path]:
    """Write J_regressor_h36m_correct.npy and J_regressor_extra.npy next to a synthetic
    SMPL_NEUTRAL model in `model_dir` (see dto_core.synthetic_body); returns the paths."""
    model_dir = Path(model_dir)
    h36m, extra = synthetic_regressor_arrays(BodyModel.from_dir(model_dir, "neutral"))
    paths = [model_dir / H36M_FILES["correct"], model_dir / EXTRA_FILE]
    for path, array in zip(paths, (h36m, extra), strict=True):
        write_atomic(path, lambda f, a=array: np.save(f, a))
    return paths
