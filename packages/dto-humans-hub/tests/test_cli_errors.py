"""Every bad input to the `dto-humans-hub` command line ends in one line on stderr naming the file
or argument and what to do, with exit status 1 and no traceback."""

from __future__ import annotations

import pytest

from dto_humans_hub.cli import main
from dto_humans_hub.fixtures import synthetic_opt_annots, write_released_opt


def _error(capsys, argv: list[str]) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.fixture(scope="module")
def opt(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    return write_released_opt(folder / "COCO_CHMR_SMPL_OPT.npz", synthetic_opt_annots(12, seed=9))


def test_verify_of_a_folder_that_is_no_dataset(tmp_path, capsys):
    err = _error(capsys, ["verify", str(tmp_path)])
    assert err.startswith("dto-humans-hub verify: error:")
    assert f"{tmp_path}: no manifest.json" in err and "dto-humans-hub build" in err
    assert "no such folder" in _error(capsys, ["verify", str(tmp_path / "nowhere")])


def test_build_on_a_truncated_or_missing_file(tmp_path, capsys, opt):
    truncated = tmp_path / "COCO_CHMR_SMPL_OPT.npz"
    truncated.write_bytes(opt.read_bytes()[:1000])
    err = _error(capsys, ["build", str(tmp_path / "ds"), "--opt", str(truncated)])
    assert f"{truncated}: truncated or corrupt npz" in err
    missing = tmp_path / "MPII_CHMR_SMPL_OPT.npz"
    assert f"{missing}: no such file" in _error(
        capsys, ["build", str(tmp_path / "ds"), "--opt", str(missing)]
    )
    assert "give --opt and/or --release" in _error(capsys, ["build", str(tmp_path / "ds")])


def test_a_renamed_file_needs_source_which_the_cli_takes(tmp_path, capsys, opt):
    renamed = tmp_path / "annotations.npz"
    renamed.write_bytes(opt.read_bytes())
    err = _error(capsys, ["build", str(tmp_path / "ds"), "--opt", str(renamed)])
    assert f"{renamed}: cannot tell the source" in err and "(--source)" in err
    assert main(["build", str(tmp_path / "ds"), "--opt", str(renamed), "--source", "coco"]) == 0
    assert "annotations: 12 images" in capsys.readouterr().out


def test_bad_body_model_and_output_folders(tmp_path, capsys, opt):
    err = _error(
        capsys,
        ["build", str(tmp_path / "ds"), "--opt", str(opt), "--smpl-model-dir", str(tmp_path)],
    )
    assert f"--smpl-model-dir {tmp_path}" in err and "SMPL_NEUTRAL.pkl" in err
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("x")
    err = _error(capsys, ["build", str(taken), "--opt", str(opt)])
    assert f"{taken} exists and is not a dataset folder" in err and "choose another" in err
    err = _error(capsys, ["stats", str(tmp_path / "none")])
    assert "dto-humans-hub stats: error:" in err and "none" in err
