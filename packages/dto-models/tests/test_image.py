"""Input validation, huge-image downscaling and device helpers."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from dto_models.image import ImageError, as_rgb_uint8, autocast, limit_size, resolve_device


def test_as_rgb_uint8_converts_gray_and_rgba() -> None:
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert np.array_equal(as_rgb_uint8(rgb), rgb)
    gray = np.array([[0, 7], [200, 255]], dtype=np.uint8)
    out = as_rgb_uint8(gray)
    assert out.shape == (2, 2, 3) and np.array_equal(out[..., 1], gray)
    assert np.array_equal(as_rgb_uint8(gray[..., None]), out)
    rgba = np.concatenate([rgb, np.full((2, 3, 1), 9, np.uint8)], axis=2)
    out = as_rgb_uint8(rgba)
    assert np.array_equal(out, rgb) and out.flags.c_contiguous


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((0, 5, 3), np.uint8), "empty image"),
        (np.zeros((4, 5, 3), np.float32), "expected uint8"),
        (np.zeros((4, 5, 2), np.uint8), r"got \(4, 5, 2\)"),
        (np.zeros((2, 4, 5, 3), np.uint8), "expected"),
        ([[0, 1]], "got list"),
    ],
)
def test_as_rgb_uint8_rejects(image: object, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        as_rgb_uint8(image)  # type: ignore[arg-type]


def test_limit_size_downscales_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    image = np.zeros((300, 1000, 3), np.uint8)
    same, scale = limit_size(image, 1000)
    assert same is image and scale == 1.0
    with caplog.at_level(logging.WARNING, logger="dto_models.image"):
        small, scale = limit_size(image, 500)
    assert scale == 0.5 and small.shape == (150, 500, 3)
    assert "1000x300 px downscaled to 500x150" in caplog.text
    assert limit_size(image, None)[1] == 1.0


def test_limit_size_keeps_content_at_scaled_positions() -> None:
    image = np.zeros((400, 800, 3), np.uint8)
    image[100:200, 400:600] = 255  # a block whose area average survives INTER_AREA exactly
    small, scale = limit_size(image, 200)
    assert scale == 0.25
    ys, xs = np.nonzero(small[..., 0] == 255)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (25, 49, 100, 149)


def test_resolve_device_and_autocast() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected
    x = torch.ones(2, 2)
    with autocast(torch.device("cpu"), torch.float32):
        assert (x @ x).dtype == torch.float32
    with autocast(torch.device("cpu"), torch.bfloat16):
        assert (x @ x).dtype == torch.bfloat16
