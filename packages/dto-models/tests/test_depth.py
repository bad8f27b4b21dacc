"""Depth-Anything-V2 adapter (spec B.6, B.10 item 3): resize rule, up-sampling, key map, loading."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file
from transformers import DepthAnythingForDepthEstimation, DPTImageProcessor

from dto_models import depth
from dto_models.checkpoint import CheckpointError, manifest, manifest_mismatches, read_manifest
from dto_models.depth import (
    DepthAnythingV2,
    DepthAnythingV2Config,
    hf_to_official_name,
    hf_to_official_state_dict,
    interpolate_pos_encoding,
    network_input_size,
    official_layout,
    official_to_hf_names,
    preprocess,
    upsample_disparity,
)
from dto_models.image import IMAGENET_MEAN, IMAGENET_STD, ImageError
from dto_models.types import DepthEstimator

FIXTURES = Path(__file__).parent / "fixtures"
PRESETS = {
    "vits": DepthAnythingV2Config.small,
    "vitb": DepthAnythingV2Config.base,
    "vitl": DepthAnythingV2Config.large,
}


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny() -> DepthAnythingV2:
    return DepthAnythingV2.tiny(seed=0)


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoder", "hidden", "layers", "heads", "out_indices", "neck", "fusion"),
    [
        ("vits", 384, 12, 6, [3, 6, 9, 12], [48, 96, 192, 384], 64),
        ("vitb", 768, 12, 12, [3, 6, 9, 12], [96, 192, 384, 768], 128),
        ("vitl", 1024, 24, 16, [5, 12, 18, 24], [256, 512, 1024, 1024], 256),
    ],
)
def test_hf_config_matches_spec(encoder, hidden, layers, heads, out_indices, neck, fusion):
    hf = PRESETS[encoder]().hf_config()
    bb = hf.backbone_config
    assert (bb.model_type, bb.hidden_size, bb.num_hidden_layers) == ("dinov2", hidden, layers)
    assert (bb.num_attention_heads, bb.mlp_ratio, bb.patch_size, bb.image_size) == (
        heads,
        4,
        14,
        518,
    )
    assert list(bb.out_indices) == out_indices
    assert bb.apply_layernorm is True and bb.reshape_hidden_states is False
    assert hf.reassemble_hidden_size == hidden and hf.patch_size == 14
    assert list(hf.reassemble_factors) == [4, 2, 1, 0.5]
    assert list(hf.neck_hidden_sizes) == neck and hf.fusion_hidden_size == fusion
    assert hf.head_hidden_size == 32 and hf.depth_estimation_type == "relative"
    assert DepthAnythingV2Config.from_hf_config(hf) == PRESETS[encoder]()


def test_tiny_config_matches_spec():
    hf = DepthAnythingV2Config.tiny().hf_config()
    bb = hf.backbone_config
    assert (bb.hidden_size, bb.num_hidden_layers, bb.num_attention_heads, bb.mlp_ratio) == (
        32,
        4,
        2,
        2,
    )
    assert (bb.patch_size, bb.image_size, list(bb.out_indices)) == (14, 56, [1, 2, 3, 4])
    assert (hf.reassemble_hidden_size, list(hf.neck_hidden_sizes)) == (32, [8, 16, 32, 32])
    assert (hf.fusion_hidden_size, hf.head_hidden_size) == (16, 8)


def test_unsupported_hf_config_is_rejected():
    hf = DepthAnythingV2Config.small().hf_config()
    hf.depth_estimation_type = "metric"
    with pytest.raises(CheckpointError, match="depth_estimation_type"):
        DepthAnythingV2Config.from_hf_config(hf)


# --- key map vs the official manifests -----------------------------------------------------------


@pytest.mark.parametrize("encoder", list(PRESETS))
def test_key_map_vs_manifest(encoder):
    official = read_manifest(FIXTURES / f"depth_anything_v2_{encoder}_state_dict.json")
    with torch.device("meta"):
        model = DepthAnythingForDepthEstimation(PRESETS[encoder]().hf_config())
    ours = manifest(model)
    converted: dict[str, tuple[int, ...]] = {}
    for key, shape in official.items():
        names = official_to_hf_names(key)
        assert len(names) == (3 if ".attn.qkv." in key else 1), key
        for name in names:
            assert name not in converted, f"{name} covered twice"
            converted[name] = (shape[0] // 3, *shape[1:]) if len(names) == 3 else shape
            assert hf_to_official_name(name) == key
    assert manifest_mismatches(converted, ours) == []
    # the other direction: the official layout derived from the model is the manifest
    assert manifest_mismatches(official_layout(model), official) == []


def test_key_map_spot_checks():
    """Names from transformers' convert_depth_anything_to_hf.py (refinenet i -> fusion 4 - i)."""
    assert official_to_hf_names("pretrained.blocks.7.ls1.gamma") == (
        "backbone.encoder.layer.7.layer_scale1.lambda1",
    )
    assert official_to_hf_names("pretrained.blocks.0.attn.qkv.bias") == tuple(
        f"backbone.encoder.layer.0.attention.{q}_proj.bias" for q in "qkv"
    )
    assert official_to_hf_names("depth_head.scratch.refinenet1.resConfUnit2.conv1.weight") == (
        "neck.fusion_stage.layers.3.residual_layer2.convolution1.weight",
    )
    assert official_to_hf_names("depth_head.scratch.layer4_rn.weight") == ("neck.convs.3.weight",)
    assert official_to_hf_names("depth_head.scratch.output_conv2.2.bias") == ("head.conv3.bias",)
    assert official_to_hf_names("pretrained.pos_embed") == (
        "backbone.embeddings.position_embeddings",
    )
    assert official_to_hf_names("depth_head.readout_projects.0.0.weight") == ()
    assert hf_to_official_name("neck.fusion_stage.layers.0.projection.bias") == (
        "depth_head.scratch.refinenet4.out_conv.bias"
    )


# --- loading -------------------------------------------------------------------------------------


@pytest.fixture()
def official_pth(tiny, tmp_path) -> tuple[Path, dict[str, torch.Tensor]]:
    state = hf_to_official_state_dict(tiny.model.state_dict())
    path = tmp_path / "depth_anything_v2_tiny.pth"
    torch.save(state, path)
    return path, state


def test_official_pth_loads_strictly_and_round_trips(tiny, official_pth):
    path, state = official_pth
    assert set(state) == set(official_layout(tiny.model))
    assert state["pretrained.blocks.0.attn.qkv.weight"].shape == (96, 32)
    loaded = DepthAnythingV2.from_pretrained(path, DepthAnythingV2Config.tiny())
    ours = loaded.model.state_dict()
    reference = tiny.model.state_dict()
    assert set(ours) == set(reference)
    for key, value in reference.items():
        assert torch.equal(ours[key], value), key
    # split along dim 0 in the order query, key, value (the conversion script's slicing)
    qkv = state["pretrained.blocks.2.attn.qkv.weight"]
    for i, q in enumerate("qkv"):
        split = ours[f"backbone.encoder.layer.2.attention.{q}_proj.weight"]
        assert torch.equal(split, qkv[32 * i : 32 * (i + 1)])
    back = hf_to_official_state_dict(ours)
    assert set(back) == set(state)
    assert all(torch.equal(back[k], state[k]) for k in state)
    image = _image(40, 50)
    np.testing.assert_array_equal(loaded.estimate(image), tiny.estimate(image))


def test_official_dir_is_found(tiny, official_pth, tmp_path):
    _, state = official_pth
    folder = tmp_path / "release"
    folder.mkdir()
    torch.save(state, folder / "depth_anything_v2_vits.pth")
    loaded = DepthAnythingV2.from_pretrained(folder, DepthAnythingV2Config.tiny())
    assert torch.equal(
        loaded.model.state_dict()["head.conv3.weight"], tiny.model.state_dict()["head.conv3.weight"]
    )


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        ("drop", "pretrained.blocks.1.ls2.gamma"),
        ("drop", "depth_head.scratch.refinenet2.out_conv.bias"),
        ("reshape", "depth_head.scratch.layer2_rn.weight"),
        ("reshape", "pretrained.blocks.3.attn.qkv.weight"),
        ("add", "depth_head.readout_projects.0.0.weight"),
    ],
)
def test_bad_official_checkpoint_names_the_key(official_pth, tmp_path, edit, key):
    _, state = official_pth
    state = dict(state)
    if edit == "drop":
        del state[key]
    elif edit == "reshape":
        state[key] = torch.zeros(state[key].shape[0] - 3, *state[key].shape[1:])
    else:
        state[key] = torch.zeros(3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    label = {"drop": "missing", "reshape": "shape mismatch", "add": "unexpected"}[edit]
    with pytest.raises(CheckpointError, match=re.escape(f"{label} (1): {key}")):
        DepthAnythingV2.from_pretrained(path, DepthAnythingV2Config.tiny())


def test_official_width_selects_the_release(official_pth):
    path, _ = official_pth
    with pytest.raises(CheckpointError, match="no Depth-Anything-V2 release is 32 wide"):
        DepthAnythingV2.from_pretrained(path)


def test_hf_dir_round_trip(tiny, tmp_path):
    tiny.model.save_pretrained(tmp_path)
    loaded = DepthAnythingV2.from_pretrained(tmp_path)
    tiny_arch = replace(DepthAnythingV2Config.tiny(), encoder="custom")
    assert loaded.config == replace(
        tiny_arch, input_size=518, max_input_side=4 * 518, max_image_side=4096
    )
    reference = tiny.model.state_dict()
    ours = loaded.model.state_dict()
    assert set(ours) == set(reference)
    assert all(torch.equal(ours[k], reference[k]) for k in reference)


def test_hf_dir_with_pre_v5_attention_names(tiny, tmp_path):
    """The `-hf` Hub repos were converted with `attention.attention.query` / `.output.dense`."""
    tiny.model.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    legacy = {
        k.replace("attention.q_proj.", "attention.attention.query.")
        .replace("attention.k_proj.", "attention.attention.key.")
        .replace("attention.v_proj.", "attention.attention.value.")
        .replace("attention.o_proj.", "attention.output.dense."): v
        for k, v in state.items()
    }
    assert "backbone.encoder.layer.0.attention.attention.key.bias" in legacy
    save_file(legacy, tmp_path / "model.safetensors")
    loaded = DepthAnythingV2.from_pretrained(tmp_path, DepthAnythingV2Config.tiny())
    reference = tiny.model.state_dict()
    assert all(torch.equal(loaded.model.state_dict()[k], reference[k]) for k in reference)
    del legacy["backbone.encoder.layer.1.attention.attention.value.weight"]
    save_file(legacy, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"backbone\.encoder\.layer\.1\.attention\.v_proj"):
        DepthAnythingV2.from_pretrained(tmp_path, DepthAnythingV2Config.tiny())


def test_hub_ids_resolve_to_the_release_files(monkeypatch, tmp_path):
    calls = []

    def fake_resolve(repo, filename):
        calls.append((repo, filename))
        return tmp_path / filename

    monkeypatch.setattr(depth, "resolve_weights", fake_resolve)
    depth._locate("depth-anything/Depth-Anything-V2-Large")
    depth._locate("depth-anything/Depth-Anything-V2-Small-hf")
    assert calls == [
        ("depth-anything/Depth-Anything-V2-Large", "depth_anything_v2_vitl.pth"),
        ("depth-anything/Depth-Anything-V2-Small-hf", "model.safetensors"),
        ("depth-anything/Depth-Anything-V2-Small-hf", "config.json"),
    ]
    with pytest.raises(FileNotFoundError):
        depth._locate("someone/not-a-depth-model")
    with pytest.raises(FileNotFoundError):
        depth._locate(tmp_path)  # an empty directory


# --- resize rule ---------------------------------------------------------------------------------


def _hf_processor_size(height: int, width: int) -> tuple[int, int]:
    processor = DPTImageProcessor(
        do_resize=True,
        size={"height": 518, "width": 518},
        keep_aspect_ratio=True,
        ensure_multiple_of=14,
    )
    pixels = processor(_image(height, width), return_tensors="pt").pixel_values
    return tuple(pixels.shape[-2:])


@pytest.mark.parametrize(
    ("size", "original", "hf"),
    [((480, 640), (518, 686), (518, 686)), ((300, 600), (518, 1036), (252, 518))],
)
def test_network_input_size_vs_hf_rule(size, original, hf):
    assert network_input_size(*size) == original
    assert _hf_processor_size(*size) == hf


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 5000))
def test_network_input_size_lower_bound(height, width):
    out_h, out_w = network_input_size(height, width)
    assert out_h % 14 == 0 and out_w % 14 == 0
    assert min(out_h, out_w) >= 518
    scale = max(518 / height, 518 / width)
    assert abs(out_h - scale * height) < 14 and abs(out_w - scale * width) < 14


def test_network_input_size_cap(caplog):
    assert network_input_size(100, 1000) == (518, 5180)
    with caplog.at_level(logging.WARNING, logger="dto_models.depth"):
        # 2072 / 1000 scales 100 -> 207.2 -> 196 (floor to 14), 1000 -> 2072
        assert network_input_size(100, 1000, max_side=2072) == (196, 2072)
    assert "capped" in caplog.text
    assert network_input_size(480, 640, max_side=2072) == (518, 686)


# --- pre- and post-processing --------------------------------------------------------------------


def _original_preprocess(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """infer_image's transform in float64: /255, INTER_CUBIC, NormalizeImage, PrepareForNet."""
    x = image.astype(np.float64) / 255.0
    x = cv2.resize(x, size[::-1], interpolation=cv2.INTER_CUBIC)
    x = (x - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    return np.ascontiguousarray(x.transpose(2, 0, 1)).astype(np.float32)


def test_preprocess_matches_original_transform():
    image = _image(300, 400, seed=3)
    x = preprocess(image)
    assert x.shape == (3, 518, 686) and x.dtype == np.float32
    np.testing.assert_allclose(x, _original_preprocess(image, (518, 686)), atol=1e-6)


def test_preprocess_constant_image():
    image = np.empty((20, 30, 3), np.uint8)
    image[...] = (10, 128, 250)
    x = preprocess(image, input_size=56)
    expected = ((np.array([10, 128, 250]) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).astype(
        np.float32
    )
    assert x.shape == (3, 56, 84)
    np.testing.assert_allclose(x, np.broadcast_to(expected[:, None, None], x.shape), atol=1e-6)


@pytest.mark.parametrize(
    ("src", "dst"), [((37, 49), (480, 640)), ((5, 7), (5, 7)), ((4, 6), (3, 2))]
)
def test_upsample_matches_torch_align_corners(src, dst):
    pred = np.random.default_rng(1).random(src, dtype=np.float32) * 10
    out = upsample_disparity(pred, dst)
    assert out.shape == dst and out.dtype == np.float32
    # torch in float64 is exact to float32 rounding; in float32 (the original's) its source
    # coordinates carry ~1e-6 relative error
    for dtype, atol in [(torch.float64, 2e-6), (torch.float32, 1e-4)]:
        oracle = F.interpolate(
            torch.from_numpy(pred).to(dtype)[None, None], dst, mode="bilinear", align_corners=True
        )[0, 0].numpy()
        np.testing.assert_allclose(out, oracle, rtol=0, atol=atol)
    for r, c in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
        assert out[r, c] == pred[r, c]


def test_upsample_linear_ramp_is_exact():
    # a plane a*i + b*j resampled with align_corners=True is the same plane in scaled coordinates
    i, j = np.mgrid[0:8, 0:11].astype(np.float32)
    out = upsample_disparity(2 * i + 3 * j, (22, 31))
    ii, jj = np.mgrid[0:22, 0:31]
    np.testing.assert_allclose(out, 2 * ii * 7 / 21 + 3 * jj * 10 / 30, rtol=1e-6, atol=1e-5)


def test_upsample_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        upsample_disparity(np.zeros((0, 3)), (4, 4))


def _cubic_matrix(n_in: int, n_out: int, scale: float) -> np.ndarray:
    """Keys cubic convolution (A = -0.75) at src = (dst + 0.5) / scale - 0.5, edge-clamped taps."""

    def kernel(x: float) -> float:
        x, a = abs(x), -0.75
        if x <= 1:
            return (a + 2) * x**3 - (a + 3) * x**2 + 1
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a if x < 2 else 0.0

    matrix = np.zeros((n_out, n_in))
    for dst in range(n_out):
        src = (dst + 0.5) / scale - 0.5
        base = int(np.floor(src))
        for tap in range(base - 1, base + 3):
            matrix[dst, min(max(tap, 0), n_in - 1)] += kernel(src - tap)
    return matrix


def test_pos_encoding_interpolation_is_the_originals():
    """Bicubic with the original's scale factors (grid + 0.1) / 37, checked against an explicit
    cubic-convolution resampling; a side whose patch count is unchanged is still resampled."""
    field = np.random.default_rng(4).standard_normal((37, 37))
    pos = torch.cat(
        [torch.full((1, 1, 1), 9.0), torch.from_numpy(field.reshape(1, -1, 1)).float()], dim=1
    )
    out = interpolate_pos_encoding(pos, 37, 49)
    assert out.shape == (1, 1 + 37 * 49, 1) and out[0, 0, 0] == 9.0
    rows = _cubic_matrix(37, 37, 37.1 / 37)
    cols = _cubic_matrix(37, 49, 49.1 / 37)
    expected = rows @ field @ cols.T
    np.testing.assert_allclose(out[0, 1:, 0].reshape(37, 49).numpy(), expected, atol=5e-5)
    assert np.abs(rows - np.eye(37)).max() > 0.01  # transformers would use the identity here
    assert interpolate_pos_encoding(pos, 37, 37) is pos


def test_model_uses_the_original_pos_encoding(tiny):
    embeddings = tiny.model.backbone.embeddings
    hf_rule = type(embeddings).interpolate_pos_encoding
    tokens = torch.zeros(1, 1 + 4 * 5, 32)
    ours = embeddings.interpolate_pos_encoding(tokens, 56, 70)
    theirs = hf_rule(embeddings, tokens, 56, 70)
    assert ours.shape == theirs.shape == (1, 21, 32) and not torch.allclose(ours, theirs)
    expected = interpolate_pos_encoding(embeddings.position_embeddings, 4, 5)
    assert torch.equal(ours, expected)
    assert torch.equal(
        embeddings.interpolate_pos_encoding(tokens[:, :17], 56, 56),
        hf_rule(embeddings, tokens[:, :17], 56, 56),
    )


# --- the adapter ---------------------------------------------------------------------------------


def test_tiny_forward_shape(tiny):
    x = torch.randn(1, 3, 56, 70, generator=torch.Generator().manual_seed(0))
    out = tiny.forward(x)
    assert out.shape == (1, 56, 70) and out.dtype == torch.float32
    assert (out >= 0).all() and (out > 0).any()


def test_estimate_full_size_corners_are_the_network_output(tiny):
    assert isinstance(tiny, DepthEstimator)
    image = _image(480, 640)
    disparity = tiny.estimate(image)
    assert disparity.shape == (480, 640) and disparity.dtype == np.float32
    assert (disparity >= 0).all() and disparity.max() > 0
    x = preprocess(image, 56, 14)
    assert x.shape == (3, 56, 70)
    pred = tiny.forward(torch.from_numpy(x)[None])[0].numpy()
    for r, c in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
        assert disparity[r, c] == pred[r, c]
    np.testing.assert_array_equal(disparity, upsample_disparity(pred, (480, 640)))


def test_batch_equals_one_by_one(tiny):
    sizes = [(60, 80), (61, 79), (40, 120), (60, 80), (33, 33)]
    images = [_image(h, w, seed=i) for i, (h, w) in enumerate(sizes)]
    # (60,80) and (61,79) share the 56 x 70 network input and are batched together
    assert network_input_size(60, 80, 56) == network_input_size(61, 79, 56) == (56, 70)
    batched = tiny.estimate_batch(images, batch_size=2)
    assert [d.shape for d in batched] == sizes
    for image, out in zip(images, batched, strict=True):
        np.testing.assert_allclose(out, tiny.estimate(image), rtol=1e-4, atol=1e-5)
    assert tiny.estimate_batch([]) == []


def test_deterministic():
    image = _image(50, 60, seed=7)
    a = DepthAnythingV2.tiny(seed=0).estimate(image)
    b = DepthAnythingV2.tiny(seed=0).estimate(image)
    c = DepthAnythingV2.tiny(seed=1).estimate(image)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_bf16_autocast_runs_on_cpu(tiny):
    image = _image(56, 70, seed=2)
    low = DepthAnythingV2(tiny.model, tiny.config, device="cpu", dtype=torch.bfloat16)
    out = low.estimate(image)
    ref = tiny.estimate(image)
    assert out.dtype == np.float32 and (out >= 0).all()
    np.testing.assert_allclose(out, ref, atol=0.05 * ref.max())


def test_gray_and_rgba_inputs(tiny):
    gray = _image(40, 50)[..., 0]
    rgb = np.repeat(gray[..., None], 3, axis=2)
    rgba = np.concatenate([rgb, np.full((40, 50, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(tiny.estimate(gray), tiny.estimate(rgb))
    np.testing.assert_array_equal(tiny.estimate(rgba), tiny.estimate(rgb))


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((0, 10, 3), np.uint8),
        np.zeros((10, 10, 3), np.float32),
        np.zeros((4, 4, 2), np.uint8),
    ],
)
def test_bad_images_raise(tiny, image):
    with pytest.raises(ImageError):
        tiny.estimate(image)


def test_one_pixel_image(tiny):
    out = tiny.estimate(np.full((1, 1, 3), 200, np.uint8))
    pred = tiny.forward(torch.from_numpy(preprocess(np.full((1, 1, 3), 200, np.uint8), 56))[None])
    assert out.shape == (1, 1) and out[0, 0] == pred[0, 0, 0].item()


def test_extreme_aspect_and_huge_images_are_bounded(tiny, caplog):
    small = DepthAnythingV2(tiny.model, replace(tiny.config, max_image_side=64))
    with caplog.at_level(logging.WARNING):
        wide = small.estimate(_image(10, 400))  # 56 x 2240 network input capped to 14 x 224
        big = small.estimate(_image(100, 150))  # longer side 150 > 64: downscaled first
    assert wide.shape == (10, 400) and big.shape == (100, 150)
    assert "capped at 14x224" in caplog.text and "downscaled" in caplog.text
