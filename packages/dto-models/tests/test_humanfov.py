"""HumanFoV (CameraHMR `cam_model`, spec B.5): pre-processing, intrinsics, checkpoint layout."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dto_models.checkpoint import CheckpointError, manifest, manifest_mismatches, read_manifest
from dto_models.humanfov import (
    FLNet,
    FoVError,
    HumanFoV,
    HumanFoVConfig,
    clip_fov,
    fov_to_K,
    letterbox,
    letterbox_geometry,
    preprocess,
)
from dto_models.image import IMAGENET_MEAN, IMAGENET_STD, ImageError
from dto_models.types import FoVEstimate, FoVEstimator

FIXTURE = Path(__file__).parent / "fixtures" / "humanfov_state_dict.json"


@pytest.fixture(scope="module")
def tiny() -> HumanFoV:
    return HumanFoV.tiny(seed=0, device="cpu")


def _images(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = [(100, 200), (300, 100), (64, 64), (48, 80), (31, 17)]
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]


def _forced(value: float) -> HumanFoV:
    """Tiny adapter whose output column 1 is exactly `value` (fc3 weight 0, bias value)."""
    adapter = HumanFoV.tiny(seed=0, device="cpu")
    with torch.no_grad():
        adapter.model.fc3.weight.zero_()
        adapter.model.fc3.bias.copy_(torch.tensor([0.0, value]))
    return adapter


# ---------------------------------------------------------------------------- intrinsics


def test_fov_to_K_hand_computed():
    K = fov_to_K(math.radians(60.0), height=480, width=640)
    # f = 480 / (2 tan 30 deg) = 240 sqrt(3)
    assert K[0, 0] == pytest.approx(415.69219, abs=1e-4)
    assert K[0, 0] == pytest.approx(240.0 * math.sqrt(3.0), rel=1e-12)
    np.testing.assert_allclose(
        K, [[240 * math.sqrt(3), 0, 320], [0, 240 * math.sqrt(3), 240], [0, 0, 1]], rtol=1e-12
    )
    # 90 degrees: f = H/2
    assert fov_to_K(math.pi / 2, 100, 30)[1, 1] == pytest.approx(50.0)
    for bad in (0.0, -0.1, math.pi, float("nan")):
        with pytest.raises(ValueError, match="FoV"):
            fov_to_K(bad, 480, 640)


def test_clip_fov_clips_with_warning_and_rejects_non_finite(caplog):
    low, high = math.radians(5.0), math.radians(170.0)
    with caplog.at_level(logging.WARNING, logger="dto_models.humanfov"):
        out = clip_fov(np.array([1.0, -0.2, 3.1]), (low, high))
    np.testing.assert_array_equal(out, [1.0, low, high])
    assert "clipped" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dto_models.humanfov"):
        np.testing.assert_array_equal(clip_fov(np.array([0.5, 2.0]), (low, high)), [0.5, 2.0])
    assert caplog.text == ""
    with pytest.raises(FoVError, match=r"\[1\]"):
        clip_fov(np.array([1.0, np.nan]), (low, high))
    with pytest.raises(FoVError):
        clip_fov(np.array([np.inf]), (low, high))


# ---------------------------------------------------------------------------- letterbox


@pytest.mark.parametrize(
    ("hw", "expected"),
    [
        ((100, 200), (128, 256, 64, 0)),  # landscape: height int(256 / 2)
        ((300, 100), (256, 85, 0, 85)),  # portrait: width int(256 / 3) = 85 (not 85.33 rounded)
        ((480, 640), (192, 256, 32, 0)),
        ((2, 3), (170, 256, 43, 0)),  # int(170.67) = 170, truncated, (256-170)//2 = 43
        ((3, 2), (256, 170, 0, 43)),
        ((50, 50), (256, 256, 0, 0)),  # square takes the portrait branch
        ((1, 1000), (1, 256, 127, 0)),  # would be 0 rows (official crash): kept at 1
    ],
)
def test_letterbox_geometry_hand_computed(hw, expected):
    assert letterbox_geometry(*hw, size=256) == expected


@pytest.mark.parametrize(
    ("hw", "content", "border_pixels"),
    [
        ((100, 200), (slice(64, 192), slice(0, 256)), 256 * 128),  # rows 0-63 and 192-255
        ((300, 100), (slice(0, 256), slice(85, 170)), 256 * 171),  # columns 0-84 and 170-255
    ],
)
def test_letterbox_white_border_and_content(hw, content, border_pixels):
    image = np.empty((*hw, 3), dtype=np.uint8)
    image[:] = (10, 20, 30)
    out = letterbox(image, 256)
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8
    inside = np.zeros((256, 256), dtype=bool)
    inside[content] = True
    assert (out[inside] == (10, 20, 30)).all()
    assert (out[~inside] == 255).all()
    assert (out.min(axis=2) == 255).sum() == (~inside).sum() == border_pixels


def test_letterbox_content_is_area_downscaled():
    # 256 x 1024 with constant 4x4 blocks -> 64 x 256: INTER_AREA averages each block exactly.
    rng = np.random.default_rng(1)
    blocks = rng.integers(0, 255, (64, 256, 3), dtype=np.uint8)
    image = np.repeat(np.repeat(blocks, 4, axis=0), 4, axis=1)
    out = letterbox(image, 256)
    np.testing.assert_array_equal(out[96:160], blocks)
    assert (out[:96] == 255).all() and (out[160:] == 255).all()


def test_preprocess_bgr_order_and_normalisation():
    image = np.empty((100, 200, 3), dtype=np.uint8)
    image[:] = (10, 20, 30)  # R, G, B
    x = preprocess(image, 256)
    assert x.shape == (3, 256, 256) and x.dtype == np.float32
    bgr = (30, 20, 10)
    for c in range(3):
        # channel 0 is blue but is normalised with the ImageNet *red* statistics (official)
        content = (bgr[c] / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        border = (1.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        np.testing.assert_allclose(x[c, 64:192], content, rtol=1e-6)
        np.testing.assert_allclose(x[c, :64], border, rtol=1e-6)
        np.testing.assert_allclose(x[c, 192:], border, rtol=1e-6)


def test_preprocess_equals_official_recipe_on_bgr_image():
    """The official path: cv2 BGR image -> resize_image -> /255 -> Normalize."""
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (37, 91, 3), dtype=np.uint8)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    assert letterbox_geometry(37, 91) == (104, 256, 76, 0)  # int(256 / (91/37)) = 104
    canvas = np.full((256, 256, 3), 255, np.uint8)
    canvas[76:180] = cv2.resize(bgr, (256, 104), interpolation=cv2.INTER_AREA)
    mean = np.array(IMAGENET_MEAN, np.float32)[:, None, None]
    std = np.array(IMAGENET_STD, np.float32)[:, None, None]
    expected = (canvas.transpose(2, 0, 1).astype(np.float32) / 255.0 - mean) / std
    np.testing.assert_allclose(preprocess(rgb), expected, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------- checkpoint layout


def test_full_size_module_matches_official_manifest():
    with torch.device("meta"):
        model = FLNet(HumanFoVConfig.w48())
    official = read_manifest(FIXTURE)
    assert manifest_mismatches(manifest(model), official) == []
    assert manifest(model) == official
    meta = json.loads(FIXTURE.read_text())
    dtypes = {e["name"]: e["dtype"] for e in meta["entries"]}
    assert {k: str(v.dtype).removeprefix("torch.") for k, v in model.state_dict().items()} == dtypes
    assert sum(p.numel() for p in model.parameters()) == meta["total_parameter_count"] == 67677178


def _random_official_state_dict(config: HumanFoVConfig, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        layout = FLNet(config).state_dict()
    state = {}
    for name, meta in layout.items():
        if meta.dtype == torch.int64:
            state[name] = torch.randint(0, 1000, meta.shape, generator=gen)
        elif name.endswith("running_var"):
            state[name] = torch.rand(meta.shape, generator=gen) + 0.5
        else:
            state[name] = torch.randn(meta.shape, generator=gen) * 0.1
    return state


def test_tiny_ckpt_round_trip(tmp_path):
    state = _random_official_state_dict(HumanFoVConfig.tiny(), seed=3)
    torch.save({"state_dict": state}, tmp_path / "cam_model_cleaned.ckpt")
    for source in (tmp_path, tmp_path / "cam_model_cleaned.ckpt"):
        adapter = HumanFoV.from_pretrained(source, config=HumanFoVConfig.tiny(), device="cpu")
        loaded = adapter.model.state_dict()
        assert loaded.keys() == state.keys()
        for name, value in state.items():
            assert torch.equal(loaded[name], value), name
    assert not adapter.model.training


@pytest.mark.parametrize("defect", ["missing", "unexpected", "shape"])
def test_checkpoint_errors_name_the_key(tmp_path, defect):
    state = _random_official_state_dict(HumanFoVConfig.tiny(), seed=4)
    if defect == "missing":
        key = "backbone.stage3.0.fuse_layers.2.0.1.1.running_var"
        del state[key]
    elif defect == "unexpected":
        key = "fc4.weight"
        state[key] = torch.zeros(2, 2)
    else:
        key = "fc1.weight"
        state[key] = torch.zeros(32, 61)
    path = tmp_path / "cam_model_cleaned.ckpt"
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
        HumanFoV.from_pretrained(path, config=HumanFoVConfig.tiny(), device="cpu")


# ---------------------------------------------------------------------------- tiny adapter


def test_tiny_shapes_protocol_and_unused_layers(tiny):
    assert isinstance(tiny, FoVEstimator)
    x = torch.from_numpy(np.stack([preprocess(im, 64) for im in _images()]))
    out = tiny.forward(x)
    assert out.shape == (5, 2) and out.dtype == torch.float32
    with torch.inference_mode():
        assert tuple(tiny.model.backbone(x).shape) == (5, 60, 2, 2)
    # fc2 and final_layer are checkpoint-only: changing them changes nothing
    other = HumanFoV.tiny(seed=0, device="cpu")
    with torch.no_grad():
        other.model.fc2.weight.normal_()
        other.model.backbone.final_layer.weight.normal_()
    assert torch.equal(other.forward(x), out)
    estimate = tiny.estimate(_images()[0])
    assert isinstance(estimate, FoVEstimate) and isinstance(estimate.fov_y, float)
    assert estimate.K.shape == (3, 3) and estimate.K.dtype == np.float64


def test_estimate_uses_output_column_1_and_original_image_size():
    value = math.radians(50.0)
    adapter = _forced(value)
    image = np.zeros((120, 200, 3), dtype=np.uint8)
    estimate = adapter.estimate(image)
    assert estimate.fov_y == pytest.approx(value, abs=1e-7)
    f = 120 / (2 * math.tan(value / 2))
    np.testing.assert_allclose(estimate.K, [[f, 0, 100], [0, f, 60], [0, 0, 1]], rtol=1e-6)


def test_out_of_range_output_is_clipped_and_nan_raises(caplog):
    low, high = HumanFoVConfig.tiny().fov_range
    image = np.zeros((40, 40, 3), dtype=np.uint8)
    with caplog.at_level(logging.WARNING, logger="dto_models.humanfov"):
        assert _forced(-0.3).estimate(image).fov_y == low
        assert _forced(3.5).estimate(image).fov_y == high
    assert caplog.text.count("clipped") == 2
    with pytest.raises(FoVError):
        _forced(float("nan")).estimate(image)


def test_batch_equals_one_by_one(tiny):
    images = _images()
    one_by_one = [tiny.estimate(im) for im in images]
    for batch_size in (16, 2):
        batched = tiny.estimate_batch(images, batch_size=batch_size)
        for a, b in zip(batched, one_by_one, strict=True):
            assert a.fov_y == pytest.approx(b.fov_y, abs=1e-6)
            np.testing.assert_allclose(a.K, b.K, rtol=1e-5)
    fovs = [e.fov_y for e in one_by_one]
    assert max(fovs) - min(fovs) > 1e-5  # the images give different outputs
    x = torch.from_numpy(np.stack([preprocess(im, 64) for im in images]))
    single = torch.cat([tiny.forward(x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(tiny.forward(x).numpy(), single.numpy(), rtol=1e-5, atol=1e-6)
    assert tiny.estimate_batch([]) == []


def test_cpu_determinism():
    images = _images(5)
    a = [e.fov_y for e in HumanFoV.tiny(seed=0, device="cpu").estimate_batch(images)]
    b = [e.fov_y for e in HumanFoV.tiny(seed=0, device="cpu").estimate_batch(images)]
    c = [e.fov_y for e in HumanFoV.tiny(seed=1, device="cpu").estimate_batch(images)]
    assert a == b
    assert a != c


def test_bad_and_converted_inputs(tiny):
    for bad in (np.zeros((0, 10, 3), np.uint8), np.zeros((10, 10, 3), np.float32), [[1, 2]]):
        with pytest.raises(ImageError):
            tiny.estimate(bad)
    rng = np.random.default_rng(7)
    gray = rng.integers(0, 256, (50, 70), dtype=np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    assert tiny.estimate(gray).fov_y == tiny.estimate(rgb).fov_y
    rgba = np.concatenate([rgb, np.zeros_like(gray)[..., None]], axis=2)
    assert tiny.estimate(rgba).fov_y == tiny.estimate(rgb).fov_y
