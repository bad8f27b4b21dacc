"""The synthetic counterparts of SMPL_to_J19.pkl and smpl_mean_params.npz in a model directory."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from dto_core.body import BodyModel
from dto_core.synthetic_body import (
    make_synthetic_j19_regressor,
    make_synthetic_mean_params,
    make_synthetic_smpl,
    write_synthetic_smpl_dir,
)

NECK, HEAD_TOP, PELVIS = 12, 13, 14  # rows of SMPL_to_J19


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("smpl")
    written = write_synthetic_smpl_dir(folder, seed=2)
    assert {p.name for p in written} == {
        "SMPL_NEUTRAL.pkl", "SMPL_MALE.pkl", "SMPL_FEMALE.pkl", "SMPL_NEUTRAL.npz",
        "smpl_kid_template.npy", "SMPL_to_J19.pkl", "smpl_mean_params.npz",
    }  # fmt: skip
    assert all(p.is_file() for p in written)
    assert not list(folder.glob(".*.tmp"))
    return folder


def test_j19_file_reads_as_the_official_loaders_read_it(folder: Path) -> None:
    with open(folder / "SMPL_to_J19.pkl", "rb") as f:
        j19 = pickle.load(f, encoding="latin1")
    assert isinstance(j19, np.ndarray) and j19.shape == (19, 6890) and j19.dtype == np.float64
    np.testing.assert_allclose(j19.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(j19, make_synthetic_j19_regressor(make_synthetic_smpl(seed=2)))


def test_j19_rows_are_where_their_names_say(folder: Path) -> None:
    with open(folder / "SMPL_to_J19.pkl", "rb") as f:
        j19 = pickle.load(f, encoding="latin1")
    body = BodyModel.from_dir(folder)
    joints = body.J_regressor @ body.v_template
    points = j19 @ body.v_template
    np.testing.assert_allclose(points[NECK], joints[12], atol=1e-12)
    np.testing.assert_allclose(points[PELVIS], joints[0], atol=1e-12)
    np.testing.assert_allclose(points[0], joints[8], atol=1e-12)  # right ankle = SMPL joint 8
    np.testing.assert_allclose(points[11], joints[20], atol=1e-12)  # left wrist = SMPL joint 20
    assert points[HEAD_TOP, 1] == body.v_template[:, 1].max()


def test_mean_params_layout_and_determinism(folder: Path) -> None:
    with np.load(folder / "smpl_mean_params.npz") as data:
        params = {k: data[k] for k in data.files}
    assert {k: v.shape for k, v in params.items()} == {"pose": (144,), "shape": (10,), "cam": (3,)}
    for key, value in make_synthetic_mean_params(seed=2).items():
        np.testing.assert_array_equal(params[key], value)
    six_d = params["pose"].reshape(24, 2, 3)  # first column, then second column
    np.testing.assert_allclose(six_d[:, 0], np.tile([1.0, 0.0, 0.0], (24, 1)), atol=0.05)
    np.testing.assert_allclose(six_d[:, 1], np.tile([0.0, 1.0, 0.0], (24, 1)), atol=0.05)
    assert abs(params["cam"][0] - 0.9) < 0.05
    other = make_synthetic_mean_params(seed=3)
    assert not np.array_equal(other["shape"], params["shape"])
