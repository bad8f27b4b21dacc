"""Input checks: output names never collide, key collisions and bad paths are named."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mahmr_infer.inputs import (
    InputError,
    check_model_source,
    check_smpl_dir,
    find_images,
    image_keys,
    output_names,
)


def test_output_names_by_shortest_distinguishing_tail(tmp_path: Path) -> None:
    paths = [tmp_path / "x" / "day1" / "same.jpg", tmp_path / "y" / "day2" / "same.jpg"]
    assert output_names(paths) == ["day1/same", "day2/same"]
    assert output_names([tmp_path / "a.jpg", tmp_path / "b.png"]) == ["a", "b"]
    assert output_names([tmp_path / "a.jpg", tmp_path / "a.png"]) == ["a_jpg", "a_png"]
    nested = [tmp_path / "d" / "same.jpg", tmp_path / "d" / "sub" / "same.jpg"]
    assert output_names(nested) == ["d/same", "sub/same"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(["a", "b", "c"]), min_size=0, max_size=3),
            st.sampled_from(["p", "q"]),
            st.sampled_from([".jpg", ".png", ".JPG"]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_output_names_are_unique_path_tails(entries: list) -> None:
    paths = list({Path("/r", *folders, stem + suffix) for folders, stem, suffix in entries})
    names = output_names(paths)
    assert len(set(names)) == len(names)
    for path, name in zip(paths, names, strict=True):
        *folders, last = name.split("/")
        assert last in (path.stem, path.name.replace(".", "_"))
        assert list(path.parent.parts[len(path.parent.parts) - len(folders) :]) == folders


def test_image_keys_collide_up_front(tmp_path: Path) -> None:
    paths = [tmp_path / "s1" / "image_00000.jpg", tmp_path / "s2" / "image_00000.jpg"]
    with pytest.raises(InputError, match=r"--key-depth 1: .* both give the image key"):
        image_keys(paths, 1)
    assert image_keys(paths, 2) == ["s1/image_00000.jpg", "s2/image_00000.jpg"]


def test_find_images(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    for name in ("b.JPG", "a.png", "notes.txt"):
        (tmp_path / "d" / name).write_bytes(b"")
    assert [p.name for p in find_images([tmp_path / "d"])] == ["a.png", "b.JPG"]
    with pytest.raises(InputError, match="given twice"):
        find_images([tmp_path / "d", tmp_path / "d" / "a.png"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: no images in this folder"):
        find_images([tmp_path / "empty"])


def test_model_source(tmp_path: Path) -> None:
    assert check_model_source("tiny").kind == "tiny"
    assert check_model_source("someone/mahmr").kind == "hub"
    with pytest.raises(InputError, match="no such folder, and not a Hub repo id"):
        check_model_source(str(tmp_path / "missing"))
    with pytest.raises(InputError, match=r"--official .*: no such file"):
        check_model_source(None, str(tmp_path / "x.bin"))
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "config.json").write_text('{"config": {"num_betas": 11}}')
    assert check_model_source(str(folder)).num_betas == 11
    (folder / "config.json").write_text("[]")
    with pytest.raises(InputError, match="is not an MA-HMR config"):
        check_model_source(str(folder))


def test_smpl_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "smpl").mkdir()
    (tmp_path / "smpl" / "SMPL_NEUTRAL.npz").write_bytes(b"")
    assert check_smpl_dir(tmp_path, num_betas=10) == tmp_path  # found in its smpl/ subfolder
    with pytest.raises(InputError, match=r"no smpl_kid_template\.npy"):
        check_smpl_dir(tmp_path, num_betas=11)
    monkeypatch.setenv("SMPL_MODEL_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(InputError, match=r"\$SMPL_MODEL_DIR .*nowhere: no such folder"):
        check_smpl_dir(None, num_betas=10)
