"""Checkpoint folders (safetensors + config + card, no torch), the CLI, the torch-free import."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import numpy as np
import pytest
from huggingface_hub import ModelCard
from safetensors.numpy import save_file

from dto_humans_hub import verify_dataset
from dto_humans_hub.checkpoint import (
    CheckpointError,
    checkpoint_files,
    load_checkpoint,
    save_checkpoint,
)
from dto_humans_hub.cli import main
from dto_humans_hub.hub import (
    PublishError,
    find_placeholders,
    plan_checkpoint_upload,
    plan_dataset_upload,
)


def _tensors():
    rng = np.random.default_rng(0)
    return {
        "head.weight": rng.normal(size=(8, 4)).astype(np.float32),
        "head.bias": np.zeros(8, np.float32),
        "pos": rng.normal(size=(1, 3, 5)).astype(np.float16),
    }


def test_checkpoint_round_trip(tmp_path):
    tensors = _tensors()
    config = {"architecture": "mahmr_vitb14", "num_queries": 4}
    save_checkpoint(tmp_path / "ck", tensors, config, metadata={"git_sha": "abc"}, repo_id="acme/m")
    ckpt = load_checkpoint(tmp_path / "ck")
    assert ckpt.config == config
    assert ckpt.metadata == {"format": "np", "git_sha": "abc"}
    assert set(ckpt.tensors) == set(tensors)
    for name, value in tensors.items():
        assert ckpt.tensors[name].dtype == value.dtype
        np.testing.assert_array_equal(ckpt.tensors[name], value)
    card = ModelCard.load(tmp_path / "ck" / "README.md")
    assert card.data.pipeline_tag == "image-to-3d" and card.data.license == "cc-by-nc-4.0"
    assert "hf download acme/m" in card.text
    with pytest.raises(CheckpointError, match="str -> str"):
        save_checkpoint(tmp_path / "bad", tensors, config, metadata={"epoch": 3})


def test_sharded_checkpoints_load_through_the_index(tmp_path):
    tensors = _tensors()
    folder = tmp_path / "ck"
    folder.mkdir()
    save_file({"head.weight": tensors["head.weight"]}, folder / "model-00001-of-00002.safetensors")
    save_file({k: v for k, v in tensors.items() if k != "head.weight"},
              folder / "model-00002-of-00002.safetensors")  # fmt: skip
    weight_map = {
        k: f"model-0000{1 if k == 'head.weight' else 2}-of-00002.safetensors" for k in tensors
    }
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (folder / "config.json").write_text("{}")
    ckpt = load_checkpoint(folder)
    for name, value in tensors.items():
        np.testing.assert_array_equal(ckpt.tensors[name], value)


def test_unpublishable_checkpoint_folders_are_refused(tmp_path):
    folder = tmp_path / "ck"
    save_checkpoint(folder, _tensors(), {"architecture": "x"})  # no repo id: no card yet
    assert {p.name for p in checkpoint_files(folder)} == {"model.safetensors", "config.json"}
    (folder / "last.ckpt").write_bytes(b"pickle")
    with pytest.raises(CheckpointError, match=r"pickle-based weights .*last.ckpt"):
        plan_checkpoint_upload(folder, "acme/m")
    (folder / "last.ckpt").unlink()
    (folder / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        checkpoint_files(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"no model\.safetensors"):
        checkpoint_files(folder)
    with pytest.raises(PublishError, match="ORG/NAME"):
        plan_checkpoint_upload(folder, "no-org")


def _write_safetensors(path, tensors: dict[str, tuple[str, tuple[int, ...], bytes]]) -> None:
    """A safetensors file written by hand (NumPy has no bfloat16 to save with)."""
    header, blobs, offset = {}, b"", 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs += data
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + blobs)


def test_bfloat16_weights_load_as_exact_float32(tmp_path):
    values = np.array([[1.5, -2.0], [0.15625, 2.0**127]], dtype=np.float32)  # exact in bfloat16
    upper = (values.view(np.uint32) >> 16).astype("<u2")  # bfloat16: a float32's upper half
    folder = tmp_path / "ck"
    folder.mkdir()
    _write_safetensors(folder / "model.safetensors", {
        "w": ("BF16", (2, 2), upper.tobytes()),
        "b": ("F32", (2,), np.array([1, 2], "<f4").tobytes()),
    })  # fmt: skip
    (folder / "config.json").write_text("{}")
    checkpoint_files(folder)  # publish validation passes ...
    ckpt = load_checkpoint(folder)  # ... and so does loading
    assert ckpt.tensors["w"].dtype == np.float32
    np.testing.assert_array_equal(ckpt.tensors["w"], values)
    np.testing.assert_array_equal(ckpt.tensors["b"], [1, 2])
    _write_safetensors(folder / "model.safetensors", {"q": ("F8_E4M3", (2,), b"\x01\x02")})
    with pytest.raises(CheckpointError, match=r"tensor 'q' is F8_E4M3, which load_checkpoint"):
        checkpoint_files(folder)
    with pytest.raises(CheckpointError, match=r"not a checkpoint folder, nor a Hub repo id"):
        load_checkpoint(tmp_path / "nowhere")


def test_cards_with_placeholders_are_refused(tmp_path):
    assert find_placeholders("see <org>/dto-humans, {{ x }}, <br> <details> <https://a.b>") == [
        "<org>", "{{ x }}"]  # fmt: skip
    folder = tmp_path / "ck"
    save_checkpoint(folder, _tensors(), {"architecture": "x"}, repo_id="acme/m")
    assert find_placeholders((folder / "README.md").read_text()) == []  # ours have none
    plan_checkpoint_upload(folder, "acme/m")
    card = (folder / "README.md").read_text()
    (folder / "README.md").write_text(
        card.replace("acme/m", "<org>/m") + "[More Information Needed]"
    )
    with pytest.raises(
        PublishError, match=r"placeholders <org>, \[More Information Needed\].*delete"
    ):
        plan_checkpoint_upload(folder, "acme/m")


def test_cli_builds_verifies_and_the_dataset_plan_lists_only_published_files(tmp_path, capsys):
    fixtures, out = tmp_path / "fixtures", tmp_path / "ds"
    assert main(["make-fixtures", str(fixtures), "--images", "30"]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    opt = sorted(str(p) for p in fixtures.glob("*_OPT.npz") if not p.name.startswith("MPII"))
    release = [str(fixtures / "mpii-release.npz")]
    assert (
        main(["build", str(out), "--opt", *opt, "--release", *release, "--max-shard-mb", "0.1"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "annotations: 120 images" in printed
    assert main(["verify", str(out)]) == 0
    verified = capsys.readouterr().out
    manifest = verify_dataset(out)
    splits = manifest["families"]["annotations"]["splits"]
    for split, info in splits.items():
        assert (
            f"annotations/{split}: {info['num_rows']} rows in {len(info['shards'])} shards: OK"
            in verified
        )
    assert sum(info["num_rows"] for info in splits.values()) == 120
    assert [i["name"] for i in manifest["families"]["annotations"]["inputs"]] == [
        *(p.split("/")[-1] for p in opt), "mpii-release.npz"]  # fmt: skip
    (out / "notes.txt").write_text("local")
    plan = plan_dataset_upload(out, "acme/dto-humans")
    paths = [f.path for f in plan.files]
    assert paths[:2] == ["README.md", "manifest.json"] and "notes.txt" not in paths
    assert all(p.startswith(("data/annotations/", "figures/")) for p in paths[2:])
    assert any("notes.txt" in n for n in plan.notes)
    (out / "dto-humans.py").write_text("")
    with pytest.raises(PublishError, match="loading script"):
        plan_dataset_upload(out, "acme/dto-humans")


def test_importing_the_package_pulls_in_no_torch():
    code = (
        "import sys, pkgutil, importlib, dto_humans_hub\n"
        "for m in pkgutil.iter_modules(dto_humans_hub.__path__, 'dto_humans_hub.'):\n"
        "    if m.name != 'dto_humans_hub.__main__': importlib.import_module(m.name)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
