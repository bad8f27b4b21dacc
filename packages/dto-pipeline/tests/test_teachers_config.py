"""teachers.toml: parsing, defaults, strictness, and the missing-weights errors."""

from __future__ import annotations

import pytest

from dto_pipeline.errors import MissingWeightsError, TeachersFileError
from dto_pipeline.teachers import (
    DEFAULT_WEIGHTS,
    TeacherSpec,
    files_digest,
    load_teachers_config,
    resolve,
)


def test_defaults_without_a_file():
    config = load_teachers_config(None)
    assert config.teachers["detector"].weights == "COCO_V1"
    assert config.teachers["depth.L"].weights == "depth-anything/Depth-Anything-V2-Large-hf"
    assert config.teachers["hmr"].weights is None and config.teachers["fov"].weights is None
    assert config.stage == {} and config.smpl_dir is None
    assert set(config.teachers) == set(DEFAULT_WEIGHTS)


def test_a_full_file(tmp_path):
    path = tmp_path / "teachers.toml"
    path.write_text(
        """
[detector]
weights = "tiny"
seed = 3
detections_per_img = 8
score_thresh = 0
[hmr]
weights = "ckpt/camerahmr_checkpoint_cleaned.ckpt"
smpl_dir = "data/smpl"
[depth]
L = "ckpt/depth_anything_v2_vitl.pth"
[stage]
min_visible = 0
visible_thresh = 0
"""
    )
    config = load_teachers_config(path)
    detector = config.teachers["detector"]
    assert detector == TeacherSpec("tiny", 3, {"detections_per_img": 8, "score_thresh": 0.0})
    assert config.teachers["hmr"].weights == "ckpt/camerahmr_checkpoint_cleaned.ckpt"
    assert config.smpl_dir == "data/smpl"
    assert config.teachers["depth.L"].weights == "ckpt/depth_anything_v2_vitl.pth"
    assert config.teachers["depth.S"].weights == DEFAULT_WEIGHTS["depth.S"]
    assert config.stage == {"min_visible": 0, "visible_thresh": 0.0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[detectr]\nweights = 'x'", r"unknown table\(s\) \['detectr'\]"),
        ("[detector]\nthreshold = 0.5", r"\[detector\] threshold: unknown; keys: \['weights'"),
        ("[stage]\nmin_visible = 'five'", r"\[stage\]: min_visible must be int"),
        ("[depth]\nXL = 'x'", r"\[depth\] \['XL'\]: unknown; keys: S, B, L"),
        ("[hmr]\nweights = 3", r"\[hmr\]: weights must be str"),
        ("[hmr\nweights", "teachers.toml"),
    ],
)
def test_malformed_files_are_refused_with_the_key_named(tmp_path, text, message):
    path = tmp_path / "teachers.toml"
    path.write_text(text)
    with pytest.raises(TeachersFileError, match=message):
        load_teachers_config(path)


def test_missing_weights_name_the_file_and_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_teachers_config(tmp_path / "absent.toml")
    with pytest.raises(MissingWeightsError, match=r"hmr: no weights given.*camerahmr_checkpoint"):
        resolve("hmr", TeacherSpec(None))
    missing = tmp_path / "ckpt" / "cam_model_cleaned.ckpt"
    with pytest.raises(MissingWeightsError) as exc:
        resolve("fov", TeacherSpec(str(missing)))
    message = str(exc.value)
    assert str(missing) in message and "CameraHMR site" in message and "[fov] weights" in message
    assert resolve("depth.S", TeacherSpec("tiny", 4)) == ("tiny", {"tiny_seed": 4})


def test_local_weights_are_identified_by_content(tmp_path):
    a, b = tmp_path / "a.ckpt", tmp_path / "b.ckpt"
    a.write_bytes(b"weights")
    b.write_bytes(b"weights!")
    assert resolve("hmr", TeacherSpec(str(a)))[1]["sha256"] == files_digest(a)
    assert files_digest(a) != files_digest(b)
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"x")
    before = files_digest(folder)
    (folder / "model.safetensors").write_bytes(b"y")
    assert files_digest(folder) != before
