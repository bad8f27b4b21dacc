"""Official SAT-HMR / MA-HMR layouts (every manifest key, strict, round trip), variant and key
errors, DINOv2 initialisation, our safetensors format and `from_pretrained`."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from mahmr_model import MAHMR, CheckpointError, SMPLBody, get_config, mahmr, tiny
from mahmr_model.checkpoint import (
    from_official_names,
    init_from_dinov2,
    load_official_state_dict,
    to_official_state_dict,
)


@pytest.mark.parametrize(("variant", "denoising"), [("sat_hmr_stage1", True), ("mahmr", False)])
def test_every_manifest_key_loads_and_maps_back(
    variant: str,
    denoising: bool,
    load_manifest: Callable[[str], dict],
    official_state_dict: Callable[..., dict],
    kid_body: SMPLBody,
    adult_body: SMPLBody,
) -> None:
    body = kid_body if variant == "mahmr" else adult_body
    state = official_state_dict(variant, seed=1, body=body)
    manifest = load_manifest(variant)
    assert len(state) == manifest["num_state_dict_entries"]
    model, report = MAHMR.from_official(state, denoising=denoising, body=body)
    assert model.config.variant == variant

    ours = model.state_dict()
    dropped = report.dropped
    for entry in manifest["entries"]:
        name = entry["name"]
        if name in dropped:
            assert entry.get("alias_of") or name.startswith("human_model.") or name in (
                "cam_intrinsics", "z_order_map", "y_coords", "x_coords"
            )  # fmt: skip
            continue
        mapped = from_official_names(name)
        assert list(ours[mapped].shape) == entry["shape"], name
        assert str(ours[mapped].dtype) == f"torch.{entry['dtype']}", name
        assert torch.equal(ours[mapped], state[name]), name
    assert len(report.loaded) == len(ours) == len(state) - len(dropped)

    back = to_official_state_dict(model, body)
    assert sorted(back) == sorted(state)
    for name, value in state.items():
        assert torch.equal(back[name].to(value.dtype), value), name


def test_denoising_encoder_is_dropped_by_name_unless_kept(official_state_dict: Callable) -> None:
    state = official_state_dict("sat_hmr_stage1")
    model, report = MAHMR.from_official(state)
    assert model.dn_enc is None
    assert {k for k, why in report.dropped.items() if "denoising" in why} == {
        "dn_enc.weight",
        "dn_enc.bias",
    }
    with pytest.raises(CheckpointError, match="no dn_enc"):
        MAHMR.from_official(official_state_dict("mahmr"), denoising=True)


def test_checkpoint_of_another_variant_is_refused(official_state_dict: Callable) -> None:
    with torch.device("meta"):
        full = MAHMR(mahmr())
        sat = MAHMR(get_config("sat_hmr_stage1"))
    with pytest.raises(
        CheckpointError, match=r"official 'sat_hmr_stage1' model .* but the model is 'mahmr'"
    ):
        load_official_state_dict(full, official_state_dict("sat_hmr_stage1"))
    with pytest.raises(CheckpointError, match="official 'mahmr' model"):
        load_official_state_dict(sat, official_state_dict("mahmr"))
    with torch.device("meta"):
        other_canvas = MAHMR(mahmr(input_size=644 + 28))
    with pytest.raises(CheckpointError, match="cam_intrinsics differs"):
        load_official_state_dict(other_canvas, official_state_dict("mahmr"))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda s: s.pop("encoder.blocks.7.mlp.fc1.weight"),
            "missing \\(1\\): encoder.blocks.7.mlp.fc1.weight",
        ),
        (
            lambda s: s.__setitem__("encoder.extra_token", torch.zeros(3)),
            "unexpected \\(1\\): encoder.extra_token",
        ),
        (
            lambda s: s.__setitem__("tgt_embed.weight", torch.zeros(60, 768)),
            re.escape(
                "shape mismatch (1): tgt_embed.weight: checkpoint (60, 768) vs model (50, 768)"
            ),
        ),
        (
            lambda s: s.__setitem__("bbox_embed.0.layers.0.bias", torch.zeros(768)),
            "bbox_embed.0.layers.0.bias differs from its alias",
        ),
    ],
    ids=["missing", "unexpected", "shape", "alias"],
)
def test_key_problems_are_named(
    edit: Callable, message: str, official_state_dict: Callable
) -> None:
    state = official_state_dict("mahmr")
    edit(state)
    with torch.device("meta"):
        model = MAHMR(mahmr())
    with pytest.raises(CheckpointError, match=message):
        load_official_state_dict(model, state)


def test_official_file_round_trip_tiny(
    make_tiny: Callable, tmp_path: Path, kid_body: SMPLBody
) -> None:
    """A tiny model written in the official layout (.bin) loads back with identical outputs."""
    model = make_tiny(seed=3)
    path = tmp_path / "tiny_official.bin"
    torch.save(to_official_state_dict(model, kid_body), path)
    other = make_tiny(seed=4)
    report = other.load_checkpoint(path)
    assert any(k.startswith("human_model.") for k in report.dropped)
    for key, value in model.state_dict().items():
        assert torch.equal(other.state_dict()[key], value), key


def test_pickles_are_loaded_with_weights_only(tmp_path: Path, make_tiny: Callable) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"weights": Path("/etc")}, path)  # an arbitrary Python object
    with pytest.raises(CheckpointError, match=r"evil\.pth: holds Python objects") as caught:
        make_tiny().load_checkpoint(path)
    assert "weights_only" not in str(caught.value)


@pytest.mark.parametrize("suffix", [".pth", ".bin", ".safetensors"])
def test_unreadable_checkpoints_are_named(tmp_path: Path, make_tiny: Callable, suffix: str) -> None:
    """Junk text and a truncated file: one CheckpointError naming the file, no unpickling advice."""
    model = make_tiny()
    good = tmp_path / f"good{suffix}"
    if suffix == ".safetensors":
        model.save_pretrained(tmp_path / "ckpt")
        good = tmp_path / "ckpt" / "model.safetensors"
    else:
        torch.save(model.state_dict(), good)
    truncated = tmp_path / f"truncated{suffix}"
    truncated.write_bytes(good.read_bytes()[:3000])
    junk = tmp_path / f"junk{suffix}"
    junk.write_text("not a checkpoint\n")
    for path in (truncated, junk):
        message = re.escape(f"{path.name}: not a readable")
        with pytest.raises(CheckpointError, match=message) as caught:
            make_tiny().load_checkpoint(path)
        assert "weights_only" not in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(FileNotFoundError, match=r"missing\.pth: checkpoint file not found"):
        make_tiny().load_checkpoint(tmp_path / "missing.pth")


def test_from_pretrained_names_a_missing_folder(tmp_path: Path) -> None:
    """A path that is not a folder is not sent to the Hub as a repo id."""
    with pytest.raises(FileNotFoundError, match="nomodel: no such model folder"):
        MAHMR.from_pretrained(tmp_path / "nomodel")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    (tmp_path / "bad" / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"config\.json: not valid JSON"):
        MAHMR.from_pretrained(tmp_path / "bad")


def _fake_dinov2(dim: int, depth: int, side: int, *, mask_token: bool) -> dict[str, torch.Tensor]:
    """DINOv2 layout at a small size: official when `mask_token`, else timm's."""
    with torch.device("meta"):
        reference = timm.create_model(
            "vit_base_patch14_dinov2",
            pretrained=False,
            embed_dim=dim,
            depth=depth,
            num_heads=2,
            img_size=14 * side,
        )
    generator = torch.Generator().manual_seed(0)
    state = {
        k: torch.randn(v.shape, generator=generator) for k, v in reference.state_dict().items()
    }
    if mask_token:
        state["mask_token"] = torch.zeros(1, dim)
    return state


@pytest.mark.parametrize("mask_token", [True, False], ids=["official", "timm"])
def test_dinov2_initialisation(mask_token: bool, make_tiny: Callable) -> None:
    model = make_tiny()
    config = model.config
    state = _fake_dinov2(config.embed_dim, config.depth, side=5, mask_token=mask_token)
    report = model.load_dinov2(state)
    assert ("mask_token" in report.dropped) == mask_token
    enc = model.encoder
    for i in range(config.depth):
        assert torch.equal(enc.blocks[i].attn.qkv.weight, state[f"blocks.{i}.attn.qkv.weight"])
    for i in range(config.num_map_blocks):
        assert torch.equal(enc.map_blocks[i].mlp.fc2.weight, state[f"blocks.{i}.mlp.fc2.weight"])
        assert torch.equal(enc.map_blocks[i].ls1.gamma, state[f"blocks.{i}.ls1.gamma"])
    for conv in (enc.patch_embed_fine, enc.patch_embed_coarse):
        assert torch.equal(conv.weight, state["patch_embed.proj.weight"])
    assert torch.equal(enc.map_norm.weight, state["norm.weight"])
    table = state["pos_embed"]
    grid = config.grid_sizes[0]
    expected = F.interpolate(
        table[0, 1:].reshape(1, 5, 5, -1).permute(0, 3, 1, 2),
        scale_factor=(grid + 0.1) / 5,
        mode="bicubic",
        antialias=False,
    )[0].permute(1, 2, 0)
    assert torch.equal(enc.pos_embed, expected)
    assert torch.equal(enc.camera_token, state["cls_token"][0] + table[0, :1])


def test_dinov2_layout_errors(make_tiny: Callable) -> None:
    model = make_tiny()
    config = model.config
    state = _fake_dinov2(config.embed_dim, config.depth, side=5, mask_token=False)
    with pytest.raises(CheckpointError, match=r"unexpected head\.weight"):
        model.load_dinov2({**state, "head.weight": torch.zeros(10, config.embed_dim)})
    with pytest.raises(CheckpointError, match="unexpected register_tokens"):
        model.load_dinov2({**state, "register_tokens": torch.zeros(1, 4, config.embed_dim)})
    shallow = {k: v for k, v in state.items() if not k.startswith(f"blocks.{config.depth - 1}.")}
    with pytest.raises(CheckpointError, match=f"missing blocks.{config.depth - 1}"):
        model.load_dinov2(shallow)


def test_dinov2_vitb14_layout_fits_the_full_encoder() -> None:
    """timm's `vit_base_patch14_dinov2` names and shapes (37 x 37 table -> 92 x 92) fit."""
    with torch.device("meta"):
        reference = timm.create_model("vit_base_patch14_dinov2", pretrained=False)
        model = MAHMR(mahmr())
    state = {**reference.state_dict(), "mask_token": torch.empty(1, 768, device="meta")}
    report = init_from_dinov2(model, state)
    assert len(report.loaded) == len(model.encoder.state_dict()) - 8  # all but the scale head


def test_save_pretrained_from_pretrained(
    make_tiny: Callable, tmp_path: Path, kid_body: SMPLBody
) -> None:
    model = make_tiny(seed=5)
    model.save_pretrained(tmp_path / "ckpt")
    files = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert files == ["README.md", "config.json", "model.safetensors"]
    saved = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert saved["architecture"] == "MAHMR" and saved["config"] == tiny().to_dict()
    assert not any(
        k.startswith("body.") for k in load_file(tmp_path / "ckpt" / "model.safetensors")
    )

    loaded = MAHMR.from_pretrained(tmp_path / "ckpt", body=kid_body)
    assert not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key

    bad = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    bad["config"]["typo"] = 1
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="unknown MAHMRConfig keys"):
        MAHMR.from_pretrained(tmp_path / "ckpt")


def test_safetensors_refuses_other_configs_and_partial_files(
    make_tiny: Callable, tmp_path: Path
) -> None:
    model = make_tiny()
    model.save_pretrained(tmp_path / "ckpt")
    weights = tmp_path / "ckpt" / "model.safetensors"
    other = make_tiny(config=tiny(num_queries=12))
    with pytest.raises(
        CheckpointError, match="differs from the model's: \\{'num_queries': \\(8, 12\\)\\}"
    ):
        other.load_checkpoint(weights)
    state = load_file(weights)
    state.pop("conf_head.bias")
    save_file(state, tmp_path / "partial.safetensors")
    with pytest.raises(CheckpointError, match=re.escape("missing (1): conf_head.bias")):
        model.load_checkpoint(tmp_path / "partial.safetensors")


def test_from_pretrained_hub_id_offline(make_tiny: Callable, tmp_path: Path) -> None:
    """A repo id resolves through the huggingface_hub cache without network access."""
    model = make_tiny(seed=6)
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "models--someone--mahmr-tiny"
    model.save_pretrained(repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    loaded = MAHMR.from_pretrained(
        "someone/mahmr-tiny", cache_dir=tmp_path / "cache", local_files_only=True
    )
    assert torch.equal(loaded.tgt_embed.weight, model.tgt_embed.weight)


def test_full_size_forward_from_manifest_weights(
    official_state_dict: Callable, kid_body: SMPLBody
) -> None:
    """The full MA-HMR config runs end to end (random weights in the official layout)."""
    model, _ = MAHMR.from_official(official_state_dict("mahmr", seed=2), body=kid_body)
    from mahmr_model import ImageBatch

    batch = ImageBatch(torch.rand(1, 3, 112, 168), torch.tensor([[100, 168]]))
    with torch.no_grad():
        out = model(batch)
    assert out.final.joints.shape == (1, 50, 45, 3)
    assert torch.isfinite(out.final.joints).all()
    assert out.scale_logits.shape == (1, 4, 6, 2)
    assert math.isfinite(float(out.fov[0]))
