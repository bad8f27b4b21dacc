"""Session fixtures: a synthetic SMPL-format model folder and the benchmark fixtures on disk."""

import pytest

from dto_core.synthetic_body import write_synthetic_smpl_dir
from hmr_bench.body import BodyModels
from hmr_bench.fixtures import FIXTURE_WRITERS
from hmr_bench.regressors import write_synthetic_regressors


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("smpl")
    write_synthetic_smpl_dir(path)
    write_synthetic_regressors(path)
    return path


@pytest.fixture(scope="session")
def models(model_dir):
    return BodyModels.load(model_dir)


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """data(benchmark, layout) -> folder with that fixture (written once per session)."""
    cache = {}

    def get(benchmark, layout="processed"):
        if (benchmark, layout) not in cache:
            path = tmp_path_factory.mktemp(f"{benchmark}_{layout}")
            if benchmark == "rh":
                FIXTURE_WRITERS["rh"](path)
            else:
                FIXTURE_WRITERS[benchmark](path, variant=layout)
            cache[benchmark, layout] = path
        return cache[benchmark, layout]

    return get
