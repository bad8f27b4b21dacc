"""Oracle test: dto_core.body.BodyModel against smplx (the reference SMPL implementation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dto_core.body import OPENPOSE_FROM_SMPLX, BodyModel, openpose_joints
from dto_core.synthetic_body import write_synthetic_smpl_dir

smplx = pytest.importorskip("smplx")
torch = pytest.importorskip("torch")

NUM_PERSONS = 6
TOLERANCE = 1e-6  # m; smplx stores the model arrays through float32, hence not 1e-12
POSE_STD = 0.6  # rad


@pytest.fixture(scope="module")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    write_synthetic_smpl_dir(root / "smpl", seed=3)
    return root


def _random_inputs(num_betas: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "betas": rng.normal(0.0, 1.5, (NUM_PERSONS, num_betas)),
        "body_pose": rng.normal(0.0, POSE_STD, (NUM_PERSONS, 69)),
        "global_orient": rng.normal(0.0, 1.5, (NUM_PERSONS, 3)),
        "transl": rng.normal(0.0, 2.0, (NUM_PERSONS, 3)),
    }


def _compare(reference: object, ours: BodyModel, inputs: dict[str, np.ndarray]) -> None:
    with torch.no_grad():
        out = reference(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    mine = ours.forward(**inputs)
    np.testing.assert_allclose(mine.vertices, out.vertices.numpy(), rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(mine.joints, out.joints.numpy()[:, :24], rtol=0, atol=TOLERANCE)
    # the comparison is meaningful: poses move vertices far from the rest shape
    assert np.abs(mine.vertices - ours.shaped_vertices(inputs["betas"])).max() > 0.5


@pytest.mark.parametrize("gender", ["neutral", "male", "female"])
def test_adult_matches_smplx(model_root: Path, gender: str) -> None:
    reference = smplx.create(
        str(model_root), model_type="smpl", gender=gender, ext="pkl", dtype=torch.float64
    )
    ours = BodyModel.from_dir(model_root, gender=gender)
    _compare(reference, ours, _random_inputs(10, seed=len(gender)))


def test_kid_matches_smplx(model_root: Path) -> None:
    kid_path = model_root / "smpl" / "smpl_kid_template.npy"
    reference = smplx.create(
        str(model_root), model_type="smpl", gender="neutral", ext="pkl", dtype=torch.float64,
        age="kid", kid_template_path=str(kid_path),
    )  # fmt: skip
    ours = BodyModel.from_dir(model_root, kid_template=kid_path)
    assert reference.num_betas == ours.num_betas == 11
    inputs = _random_inputs(11, seed=7)
    inputs["betas"][:, 10] = np.linspace(0.0, 1.0, NUM_PERSONS)  # adult .. kid
    _compare(reference, ours, inputs)


def test_zero_pose_matches_smplx_shape(model_root: Path) -> None:
    reference = smplx.create(str(model_root), model_type="smpl", dtype=torch.float64)
    ours = BodyModel.from_dir(model_root)
    betas = _random_inputs(10, seed=11)["betas"]
    with torch.no_grad():
        out = reference.forward_shape(betas=torch.from_numpy(betas))
    np.testing.assert_allclose(ours.shaped_vertices(betas), out.v_shaped.numpy(), atol=TOLERANCE)


def test_openpose_joints_match_smplx_joint_map(model_root: Path) -> None:
    """smplx's SMPL appends vertex joints; 4D-Humans' map to OpenPose picks 25 of them."""
    reference = smplx.create(str(model_root), model_type="smpl", dtype=torch.float64)
    ours = BodyModel.from_dir(model_root)
    inputs = _random_inputs(10, seed=13)
    with torch.no_grad():
        out = reference(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    expected = out.joints.numpy()[:, list(OPENPOSE_FROM_SMPLX)]
    np.testing.assert_allclose(openpose_joints(ours.forward(**inputs)), expected, atol=TOLERANCE)
