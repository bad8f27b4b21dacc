"""Input images and devices, shared by every adapter.

Adapters take RGB uint8 (H,W,3). `as_rgb_uint8` also accepts grayscale (H,W) / (H,W,1) and RGBA
(alpha dropped) and rejects everything else with a message; `limit_size` downscales huge images
(with a logged warning) before anything full-resolution is allocated on the device.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import cv2
import numpy as np
import torch

__all__ = [
    "DEFAULT_MAX_SIDE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageError",
    "as_rgb_uint8",
    "autocast",
    "limit_size",
    "resolve_device",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_SIDE = 4096  # pixels; larger images are downscaled before inference
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB, on the [0,1] scale
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageError(ValueError):
    """An input image that no adapter can use."""


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """The image as a C-contiguous RGB uint8 (H,W,3) array.

    Raises:
        ImageError: not a numpy array, empty, not uint8, or not (H,W), (H,W,1), (H,W,3), (H,W,4).
    """
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy uint8 image, got {type(image).__name__}")
    if image.size == 0:
        raise ImageError(f"empty image of shape {image.shape}")
    if image.dtype != np.uint8:
        raise ImageError(
            f"expected uint8 pixels in [0,255], got {image.dtype} (convert floats explicitly)"
        )
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ImageError(f"expected (H,W), (H,W,1), (H,W,3) or (H,W,4), got {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def limit_size(
    image: np.ndarray, max_side: int | None = DEFAULT_MAX_SIDE
) -> tuple[np.ndarray, float]:
    """Downscale (INTER_AREA) so that the longer side is <= `max_side`; (image, scale).

    `scale` maps original pixels to returned pixels (1.0 when unchanged); divide outputs by it.
    """
    height, width = image.shape[:2]
    if max_side is None or max(height, width) <= max_side:
        return image, 1.0
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    logger.warning(
        "image of %dx%d px downscaled to %dx%d (max_side=%d)", width, height, *size, max_side
    )
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def resolve_device(device: str | torch.device | None) -> torch.device:
    """`device`, or CUDA when available and CPU otherwise."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Mixed precision when `dtype` is float16/bfloat16, a no-op for float32."""
    if dtype == torch.float32:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield
