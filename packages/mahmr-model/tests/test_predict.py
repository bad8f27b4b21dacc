"""Image input validation, resizing, and the `predict` API in original-image units."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mahmr_model import ImageBatch, prepare_images
from mahmr_model.geometry import project
from mahmr_model.preprocess import resized_size, to_image_tensor

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (60, 80, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("image", "error", "message"),
    [
        (RGB[..., 0], ValueError, r"shape \(60, 80\); expected \(H, W, 3\)"),  # grayscale array
        (RGB[..., :1], ValueError, "expected \\(H, W, 3\\)"),
        (np.concatenate([RGB, RGB[..., :1]], -1), ValueError, "expected \\(H, W, 3\\)"),  # RGBA
        (Image.fromarray(RGB[..., 0]), ValueError, "mode 'L'.*convert"),
        (Image.fromarray(RGB).convert("RGBA"), ValueError, "mode 'RGBA'.*convert"),
        (np.zeros((0, 10, 3), np.uint8), ValueError, "empty image"),
        (torch.zeros(3, 5, 0), ValueError, "empty image"),
        (RGB.astype(np.uint16), TypeError, "dtype torch.uint16"),
        (RGB.astype(np.int32), TypeError, "dtype torch.int32"),
        (RGB.astype(np.float32), ValueError, "in \\[0, 1\\]"),  # 0..255 floats
        (np.full((4, 4, 3), np.nan, np.float32), ValueError, "finite"),
        (torch.rand(4, 4, 3), ValueError, "expected \\(3, H, W\\)"),  # HWC tensor
        ([[0, 1]], TypeError, "unsupported image type list"),
    ],
    ids=[
        "gray-array", "1-channel", "rgba-array", "pil-L", "pil-RGBA", "zero-size",
        "zero-size-tensor", "uint16", "int32", "float-255", "nan", "hwc-tensor", "list",
    ],
)  # fmt: skip
def test_bad_images_raise(image: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        to_image_tensor(image)


def test_accepted_images_and_files(tmp_path: Path) -> None:
    reference = torch.from_numpy(RGB).permute(2, 0, 1).float() / 255
    assert torch.equal(to_image_tensor(RGB), reference)
    assert torch.equal(to_image_tensor(Image.fromarray(RGB)), reference)
    assert torch.equal(to_image_tensor(reference), reference)
    assert torch.equal(to_image_tensor(RGB.astype(np.float64) / 255), reference)
    # files are converted to RGB (documented): grayscale replicated, alpha dropped
    Image.fromarray(RGB[..., 0]).save(tmp_path / "gray.png")
    Image.fromarray(RGB).convert("RGBA").save(tmp_path / "rgba.png")
    gray = to_image_tensor(tmp_path / "gray.png")
    assert gray.shape == (3, 60, 80) and torch.equal(gray[0], gray[2])
    assert torch.equal(to_image_tensor(str(tmp_path / "rgba.png")), reference)


def test_resize_and_pad() -> None:
    assert resized_size(3000, 4000, 1288) == (966, 1288)
    assert resized_size(4000, 3000, 1288) == (1288, 966)
    assert resized_size(1, 5000, 1288) == (1, 1288)


def test_resized_size_is_mahmr_float32_rule() -> None:
    """Against torch's own arithmetic of MA-HMR's dataset code: rate = size / tensor(long) and
    int(rate * short), over every short side of a few long sides (float64 differs on some)."""
    canvas = 1288
    differs_in_float64 = 0
    for long_side in (1081, 1920, 2731, 4000):
        shorts = torch.arange(1, long_side + 1)
        rate = canvas / torch.tensor(long_side)  # a float32 tensor, as in MA-HMR
        expected = (rate * shorts).int().tolist()
        for short, want in zip(shorts.tolist(), expected, strict=True):
            assert resized_size(short, long_side, canvas) == (max(1, want), canvas)
            assert resized_size(long_side, short, canvas) == (canvas, max(1, want))
            differs_in_float64 += int(canvas / long_side * short) != want
    assert differs_in_float64 > 0  # the rule matters on these sizes
    prepared = prepare_images([RGB, np.zeros((300, 100, 3), np.uint8)], canvas=224)
    batch = prepared.batch
    assert batch.pixels.shape == (2, 3, 224, 224)
    assert batch.image_sizes.tolist() == [[168, 224], [224, 74]]
    assert batch.grid_sizes.tolist() == [[6, 8], [8, 4]]  # own 28 px grids, padded to 56 px
    assert torch.all(batch.pixels[0, :, 168:] == 0) and torch.all(batch.pixels[1, :, :, 74:] == 0)
    assert prepared.scales.tolist() == pytest.approx([224 / 80, 224 / 300])
    with pytest.raises(TypeError, match="list of images"):
        prepare_images(RGB, canvas=224)
    with pytest.raises(ValueError, match="not a multiple of 56"):
        ImageBatch(torch.zeros(1, 3, 60, 56), torch.tensor([[60, 56]]))


def test_predict_outputs_in_original_units(make_tiny: Callable) -> None:
    model = make_tiny(seed=0)
    images = [
        RNG.integers(0, 256, (480, 640, 3), dtype=np.uint8),
        RNG.integers(0, 256, (300, 200, 3), dtype=np.uint8),
    ]
    results = model.predict(images, conf_thresh=0.0, return_vertices=True)
    assert [r.image_size for r in results] == [(480, 640), (300, 200)]
    for result, (height, width) in zip(results, [(480, 640), (300, 200)], strict=True):
        persons = result.persons
        assert len(persons) == model.config.num_queries
        assert np.all(np.diff(persons.scores) <= 0)
        assert result.camera_source == "predicted"
        k = result.intrinsics
        assert k[0, 2] == pytest.approx(width / 2, rel=0.02) and k[1, 2] == pytest.approx(
            height / 2, rel=0.02
        )
        assert result.fov == pytest.approx(2 * math.atan(height / 2 / result.focal), rel=1e-5)
        # 2D keypoints are the projections of the 3D joints with the original-pixel camera
        expected = project(torch.from_numpy(persons.joints)[None], torch.from_numpy(k)[None])[0]
        assert np.allclose(persons.keypoints_2d, expected.numpy(), rtol=1e-4, atol=1e-2)
        assert persons.vertices.shape == (len(persons), 6890, 3)
        assert persons.global_orient.shape == (len(persons), 3) and persons.body_pose.shape == (
            len(persons),
            69,
        )
    strict = model.predict(images, conf_thresh=0.99)
    assert all(len(r.persons) == 0 and r.persons.joints.shape == (0, 45, 3) for r in strict)


def test_predict_with_a_known_camera(make_tiny: Callable) -> None:
    model = make_tiny(seed=1)
    image = RNG.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    by_fov = model.predict([image, image], conf_thresh=0.0, fov=[0.6, 1.2])
    assert [r.fov for r in by_fov] == pytest.approx([0.6, 1.2], rel=1e-5)
    assert by_fov[0].camera_source == "fov"
    # depth scales with the focal length; the body origin's projection does not move
    ratio = by_fov[0].persons.transl[:, 2] / by_fov[1].persons.transl[:, 2]
    assert np.allclose(ratio, math.tan(0.6) / math.tan(0.3), rtol=1e-4)
    origins = [
        project(torch.from_numpy(r.persons.transl)[None], torch.from_numpy(r.intrinsics)[None])[0]
        for r in by_fov
    ]
    assert torch.allclose(origins[0], origins[1], atol=0.01, rtol=0)

    k = np.array([[500.0, 0.0, 210.0], [0.0, 500.0, 140.0], [0.0, 0.0, 1.0]])
    by_k = model.predict([image], conf_thresh=0.0, intrinsics=k)[0]
    assert by_k.camera_source == "intrinsics"
    assert np.allclose(by_k.intrinsics, k, rtol=1e-5)
    with pytest.raises(ValueError, match="fov or intrinsics"):
        model.predict([image], fov=0.5, intrinsics=k)
    with pytest.raises(ValueError, match="fov must be in"):
        model.predict([image], fov=4.0)
    with pytest.raises(ValueError, match="2 entries for 1 images"):
        model.predict([image], fov=[0.5, 0.6])
