"""The SMPL body layer against smplx, loading rules and errors."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import smplx
import torch

from mahmr_model import SMPLBody
from mahmr_model.geometry import axis_angle_to_matrix

VERTEX_JOINTS = (332, 6260, 2800, 4071, 583, 3216, 3226, 3387, 6617, 6624, 6787)  # smplx face/feet


@pytest.mark.parametrize("kid", [False, True])
def test_matches_smplx(smpl_dir: Path, kid: bool) -> None:
    kwargs = (
        {"age": "kid", "kid_template_path": str(smpl_dir / "smpl_kid_template.npy")} if kid else {}
    )
    reference = smplx.SMPL(str(smpl_dir), **kwargs)  # reads SMPL_NEUTRAL.pkl with pickle
    body = SMPLBody.from_dir(smpl_dir, kid=kid)
    assert body.num_betas == reference.num_betas == (11 if kid else 10)
    generator = torch.Generator().manual_seed(0)
    pose = 0.5 * torch.randn(5, 24, 3, generator=generator)
    betas = torch.randn(5, body.num_betas, generator=generator)
    with torch.no_grad():
        expected = reference(
            betas=betas, global_orient=pose[:, 0], body_pose=pose[:, 1:].flatten(1)
        )
    out = body(axis_angle_to_matrix(pose), betas)
    assert out.joints.shape == (5, 45, 3)
    assert torch.allclose(out.vertices, expected.vertices, atol=1e-5)
    assert torch.allclose(out.joints, expected.joints, atol=1e-5)
    assert torch.equal(out.joints[:, 24:35], out.vertices[:, list(VERTEX_JOINTS)])


def test_kid_coefficient_shrinks_the_body(kid_body: SMPLBody) -> None:
    rest = torch.eye(3).expand(2, 24, 3, 3)
    betas = torch.zeros(2, 11)
    betas[1, 10] = 1.0  # the full kid template offset
    height = lambda v: float(v[:, 1].max() - v[:, 1].min())  # noqa: E731
    out = kid_body(rest, betas)
    assert height(out.vertices[0]) == pytest.approx(1.70, abs=0.02)  # synthetic adult
    assert height(out.vertices[1]) < 0.6 * height(out.vertices[0])


def test_float32_under_autocast_and_empty_batches(kid_body: SMPLBody) -> None:
    rest = torch.eye(3, dtype=torch.bfloat16).expand(3, 24, 3, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = kid_body(rest, torch.zeros(3, 11, dtype=torch.bfloat16))
    assert out.vertices.dtype == torch.float32
    empty = kid_body(torch.zeros(0, 24, 3, 3), torch.zeros(0, 11))
    assert empty.vertices.shape == (0, 6890, 3) and empty.joints.shape == (0, 45, 3)
    with pytest.raises(ValueError, match="betas have 10 coefficients, the body model 11"):
        kid_body(rest.float(), torch.zeros(3, 10))


def test_no_persistent_state(kid_body: SMPLBody) -> None:
    assert kid_body.state_dict() == {}  # licensed data never enters checkpoints
    assert not list(kid_body.parameters())


def test_h36m_regressor(smpl_dir: Path, tmp_path: Path, kid_body: SMPLBody) -> None:
    with pytest.raises(RuntimeError, match="no H36M regressor"):
        kid_body.h36m_joints(torch.zeros(1, 6890, 3))
    regressor = np.zeros((17, 6890), dtype=np.float32)
    regressor[np.arange(17), np.arange(17) * 100] = 1.0
    np.save(tmp_path / "J_regressor_h36m_correct.npy", regressor)
    body = SMPLBody.from_dir(
        smpl_dir, kid=False, h36m_regressor=tmp_path / "J_regressor_h36m_correct.npy"
    )
    vertices = torch.randn(2, 6890, 3)
    assert torch.equal(body.h36m_joints(vertices), vertices[:, ::100][:, :17])


def test_loading_errors(smpl_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMPL_MODEL_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="SMPL_MODEL_DIR"):
        SMPLBody.from_dir()
    with pytest.raises(FileNotFoundError, match=r"SMPL_NEUTRAL\.pkl / \.npz not found"):
        SMPLBody.from_dir(tmp_path)
    (tmp_path / "smpl").mkdir()
    (tmp_path / "smpl" / "SMPL_NEUTRAL.pkl").write_bytes(
        (smpl_dir / "SMPL_NEUTRAL.pkl").read_bytes()
    )
    with pytest.raises(FileNotFoundError, match="kid template"):
        SMPLBody.from_dir(tmp_path, kid=True)
    monkeypatch.setenv("SMPL_MODEL_DIR", os.fspath(tmp_path))  # found in $SMPL_MODEL_DIR/smpl
    assert SMPLBody.from_dir(kid=False).num_betas == 10


class _Exploit:
    def __reduce__(self) -> tuple:
        return (os.system, ("echo pwned",))


def test_pickles_are_restricted(tmp_path: Path) -> None:
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps({"v_template": _Exploit()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        SMPLBody.from_dir(tmp_path, kid=False)
