"""Shared fixtures: SYNTHETIC release files in the exact formats, a synthetic SMPL-A body model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dto_core.body import BodyModel
from dto_core.synthetic_body import write_synthetic_smpl_dir
from dto_humans_hub.fixtures import synthetic_opt_annots, write_released_opt


@pytest.fixture(scope="session")
def body_model(tmp_path_factory) -> BodyModel:
    """The synthetic SMPL model with its kid template: 11 shape directions (SMPL-A layout)."""
    folder = tmp_path_factory.mktemp("smpl")
    write_synthetic_smpl_dir(folder)
    return BodyModel.from_dir(folder, kid_template=folder / "smpl_kid_template.npy")


@pytest.fixture(scope="session")
def opt_annots() -> dict:
    """60 COCO images in the released OPT layout, 10 % of them empty."""
    return synthetic_opt_annots(60, source="coco", seed=3, empty_fraction=0.1)


@pytest.fixture
def opt_file(tmp_path, opt_annots) -> Path:
    return write_released_opt(tmp_path / "COCO_CHMR_SMPL_OPT.npz", opt_annots)


@pytest.fixture(scope="session")
def expected_image():
    """Oracle: the arrays one image of the OPT layout should give, from the raw dict."""
    return _expected_image


def _expected_image(people: list[dict]) -> dict[str, np.ndarray]:
    """The arrays one image of the OPT layout should give, computed from the raw dict."""
    n = len(people)
    if n == 0:
        return {
            "smpl_pose": np.zeros((0, 24, 3), np.float32),
            "smpl_betas": np.zeros((0, 11), np.float32),
            "transl_cam": np.zeros((0, 3), np.float32),
        }
    betas = np.stack([p["smpl_param"]["shape"] for p in people]).astype(np.float32)
    if betas.shape[1] == 10:
        betas = np.concatenate([betas, np.zeros((n, 1), np.float32)], axis=1)
    fx, fy = people[0]["cam_param"]["focal"]
    cx, cy = people[0]["cam_param"]["princpt"]
    return {
        "smpl_pose": np.stack([p["smpl_param"]["pose"] for p in people]).reshape(n, 24, 3),
        "smpl_betas": betas,
        "transl_cam": np.stack([p["smpl_param"]["trans"] for p in people]),
        "intrinsics": np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float32),
        "width": round(2 * float(cx)),
        "height": round(2 * float(cy)),
    }
