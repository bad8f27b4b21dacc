"""DTO overrides from --set, and the output folder's refusal to mix runs."""

from __future__ import annotations

import json

import pytest

from dto_pipeline.errors import OutputMismatchError, UsageError
from dto_pipeline.settings import claim_output, parse_overrides
from dto_pipeline.solve import SolveSettings


def test_parse_overrides_types_fields_and_errors():
    parsed = parse_overrides(
        ["intra_scale=false", "max_height=none", "filter_threshold=2", "cues.refit_on_inliers=on"]
    )
    assert parsed == {
        "cues.refit_on_inliers": True,
        "filter_threshold": 2.0,
        "intra_scale": False,
        "max_height": None,
    }
    settings = SolveSettings.from_variant("official", parsed)
    config = settings.config
    assert config.intra_scale is False and config.max_height is None
    assert config.filter_threshold == 2.0 and config.cues.refit_on_inliers is True
    assert config.near_far_split  # the rest of the official preset is kept
    assert (settings.update_method, settings.recenter) == ("finite_difference", "kid")
    with pytest.raises(UsageError, match=r"no_such_field.*fields: .*intra_scale"):
        parse_overrides(["no_such_field=1"])
    with pytest.raises(UsageError, match="intra_scale=maybe: expected true or false"):
        parse_overrides(["intra_scale=maybe"])
    with pytest.raises(UsageError, match="filter_threshold=high"):
        parse_overrides(["filter_threshold=high"])
    with pytest.raises(UsageError, match="variant"):
        parse_overrides(["variant=paper"])  # --variant, not --set


def test_claim_output_records_then_checks(tmp_path):
    out = tmp_path / "run"
    settings = {"dto": {"variant": "official", "overrides": {}}, "keep": "kept", "images": "/a"}
    listing = [{"path": "a.jpg"}, {"path": "b.jpg"}]
    claim_output(out, settings, listing)
    recorded = json.loads((out / "run.json").read_text())
    assert recorded["keep"] == "kept" and len(recorded["input_digest"]) == 64
    assert json.loads((out / "images.json").read_text()) == listing
    claim_output(out, settings, listing)  # same run: resumes
    claim_output(out, {**settings, "images": "/moved"}, listing)  # a moved folder is the same run

    other = {**settings, "dto": {"variant": "paper", "overrides": {"intra_scale": False}}}
    with pytest.raises(OutputMismatchError) as exc:
        claim_output(out, other, listing)
    message = str(exc.value)
    assert "dto.variant: folder 'official', this run 'paper'" in message
    assert "dto.overrides.intra_scale: not in the folder's run, False in this one" in message
    with pytest.raises(OutputMismatchError, match="input_digest"):
        claim_output(out, settings, listing[:1])  # another input listing


def test_claim_output_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "holiday.jpg").write_bytes(b"")
    with pytest.raises(OutputMismatchError, match=r"holiday\.jpg.*not a DTO run folder"):
        claim_output(tmp_path, {"keep": "kept"}, [])


def test_the_cli_reports_dataset_folder_problems_in_one_line(tmp_path, capsys):
    """e.g. a run folder of an older version, whose share dataset is a plain folder."""
    from dto_humans_hub.swap import DatasetFolderError
    from dto_pipeline.cli import _guard

    def job() -> int:
        raise DatasetFolderError(f"{tmp_path}/dataset exists and is not a dataset folder")

    import datasets

    try:
        assert _guard(job) == 2
    finally:
        datasets.enable_progress_bars()  # _guard turns them off for the app
    err = capsys.readouterr().err
    assert err == f"apps/dto: error: {tmp_path}/dataset exists and is not a dataset folder\n"
