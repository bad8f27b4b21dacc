"""The synthetic SMPL-format body model, written once per session."""

import pytest

from dto_core.body import BodyModel
from dto_core.synthetic_body import write_synthetic_smpl_dir


@pytest.fixture(scope="session")
def body_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("smpl")
    write_synthetic_smpl_dir(path)
    return BodyModel.from_dir(path)
