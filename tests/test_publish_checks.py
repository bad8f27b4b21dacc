"""`apps/publish` checks that need no server: the default repo id, and the refusals (placeholders,
a synthetic build under the real dataset's repo id, a checkpoint without --repo), dry run included.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from dto_humans_hub import REPO_ID, build_dataset, convert_released_opt
from dto_humans_hub.checkpoint import save_checkpoint
from dto_humans_hub.fixtures import synthetic_opt_annots, write_released_opt

_spec = importlib.util.spec_from_file_location(
    "publish_app", Path(__file__).parents[1] / "apps" / "publish" / "__main__.py"
)
publish_app = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(publish_app)


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """A build of a synthetic fixture file and one of the same arrays without the marker."""
    tmp = tmp_path_factory.mktemp("publish")
    annots = synthetic_opt_annots(20, seed=1)
    out = {}
    for name, synthetic in (("synthetic", True), ("real", False)):
        npz = write_released_opt(tmp / name / "COCO_CHMR_SMPL_OPT.npz", annots, synthetic=synthetic)
        build_dataset(tmp / f"{name}-ds", convert_released_opt(npz), figures=False)
        out[name] = tmp / f"{name}-ds"
    return out


def test_dataset_defaults_to_the_real_home_and_refuses_synthetic_data_there(builds, capsys):
    assert publish_app.main(["dataset", str(builds["real"]), "--dry-run"]) == 0
    assert f"dataset repo {REPO_ID} <-" in capsys.readouterr().out
    assert publish_app.main(["dataset", str(builds["synthetic"]), "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "synthetic inputs (fixture files" in err and f"must not be published as {REPO_ID}" in err
    repo = ["--repo", "me/dto-humans-synthetic", "--dry-run"]
    assert publish_app.main(["dataset", str(builds["synthetic"]), *repo]) == 0


def test_placeholders_are_refused_in_a_dry_run(builds, tmp_path, capsys):
    card = builds["real"] / "README.md"
    text = card.read_text()
    card.write_text(text.replace("Pin a release with", "Pin <tag> with"))
    try:
        assert publish_app.main(["dataset", str(builds["real"]), "--dry-run"]) == 1
    finally:
        card.write_text(text)
    err = capsys.readouterr().err
    assert "placeholders <tag>" in err and "dto-humans-hub stats" in err
    folder = tmp_path / "ck"
    save_checkpoint(folder, {}, {"architecture": "x"}, repo_id="<org>/model")
    assert publish_app.main(["checkpoint", str(folder), "--repo", "me/m", "--dry-run"]) == 1
    assert "delete README.md and publish generates a card for me/m" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a checkpoint has no default repo
        publish_app.main(["checkpoint", str(folder), "--dry-run"])


def test_a_saved_mahmr_model_passes_the_card_check(tmp_path, capsys):
    """save_pretrained writes its own card (no mixin placeholders), so a trained model folder
    publishes as it is."""
    from dto_humans_hub.hub import find_placeholders
    from mahmr_model import MAHMR
    from mahmr_model.config import get_config

    MAHMR(get_config("tiny")).save_pretrained(tmp_path / "model")
    card = (tmp_path / "model" / "README.md").read_text()
    assert "# MA-HMR" in card and find_placeholders(card) == []
    argv = ["checkpoint", str(tmp_path / "model"), "--repo", "someone/mahmr", "--dry-run"]
    assert publish_app.main(argv) == 0, capsys.readouterr().err
