"""Image input: validation, resizing to the canvas, padding, batching.

The network frame is the image resized so that its long side equals the canvas side S (the
short side is `int(S / long * short)`, as the official code), placed at the top-left of a
canvas padded with black to multiples of 56 px. Pixels stay RGB in [0, 1]; the model applies
the ImageNet normalisation itself, so padding is black before normalisation, as the official
pipeline (pad, then normalise).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor

from .conventions import TOKEN_GRID_MULTIPLE

__all__ = ["ImageBatch", "ImageLike", "PreparedImages", "prepare_images", "to_image_tensor"]

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, Tensor]  # noqa: UP007


@dataclass(frozen=True)
class ImageBatch:
    """Network input of B images.

    Attributes:
        pixels: (B, 3, H, W) float RGB in [0, 1], each image at the top-left, black elsewhere;
            H and W are multiples of 4 patches (56 px) and at most the canvas side S.
        image_sizes: (B, 2) int64 (h, w) of each resized, unpadded image in px.
        patch_size: ViT patch side (px).
    """

    pixels: Tensor
    image_sizes: Tensor
    patch_size: int = 14

    def __post_init__(self) -> None:
        unit = self.patch_size * TOKEN_GRID_MULTIPLE
        if self.pixels.dim() != 4 or self.pixels.shape[1] != 3:
            raise ValueError(f"pixels must be (B, 3, H, W), got {tuple(self.pixels.shape)}")
        if not self.pixels.is_floating_point():
            raise TypeError(f"pixels must be floating point in [0, 1], got {self.pixels.dtype}")
        if self.pixels.shape[2] % unit or self.pixels.shape[3] % unit:
            raise ValueError(
                f"canvas {tuple(self.pixels.shape[2:])} is not a multiple of {unit} px"
            )
        if tuple(self.image_sizes.shape) != (self.pixels.shape[0], 2):
            raise ValueError(f"image_sizes must be (B, 2), got {tuple(self.image_sizes.shape)}")
        sizes = self.image_sizes
        if bool((sizes <= 0).any()) or bool(
            (sizes > torch.tensor(self.pixels.shape[2:], device=sizes.device)).any()
        ):
            raise ValueError(f"image sizes {sizes.tolist()} must be positive and fit the canvas")

    @property
    def grid_sizes(self) -> Tensor:
        """(B, 2) rows and columns of each image's own 28 px grid (padded to even counts)."""
        unit = self.patch_size * TOKEN_GRID_MULTIPLE
        return torch.div(self.image_sizes + unit - 1, unit, rounding_mode="floor") * 2

    def to(self, device: torch.device | str) -> ImageBatch:
        return ImageBatch(self.pixels.to(device), self.image_sizes.to(device), self.patch_size)

    @classmethod
    def from_tensors(
        cls, images: Sequence[Tensor], canvas: int, patch_size: int = 14
    ) -> ImageBatch:
        """Batch resized (3, h, w) images in [0, 1] (max side <= canvas) by black padding."""
        if not images:
            raise ValueError("no images")
        unit = patch_size * TOKEN_GRID_MULTIPLE
        sizes = torch.tensor([tuple(img.shape[1:]) for img in images], dtype=torch.int64)
        if bool((sizes > canvas).any()):
            raise ValueError(f"image sizes {sizes.tolist()} exceed the canvas side {canvas}")
        height, width = (int(math.ceil(int(s) / unit) * unit) for s in sizes.max(0).values)
        pixels = images[0].new_zeros(len(images), 3, height, width)
        for b, img in enumerate(images):
            pixels[b, :, : img.shape[1], : img.shape[2]] = img
        return cls(pixels, sizes.to(pixels.device), patch_size)


@dataclass(frozen=True)
class PreparedImages:
    """Network batch plus what maps its pixels back to the originals.

    Attributes:
        batch: the network input.
        original_sizes: (B, 2) int64 (H, W) of the input images in px.
        scales: (B,) float64 resize factors, network px = original px * scale.
    """

    batch: ImageBatch
    original_sizes: Tensor
    scales: Tensor


def to_image_tensor(image: ImageLike) -> Tensor:
    """One image as a (3, H, W) float32 RGB tensor in [0, 1].

    Accepted: a file path (read with PIL, EXIF orientation applied, converted to RGB: grayscale
    is replicated, alpha dropped); a PIL image in mode RGB; an (H, W, 3) numpy array or a
    (3, H, W) tensor, uint8 or floating point in [0, 1]. Anything else raises: grayscale, RGBA
    or other modes in memory (convert them explicitly, e.g. `image.convert("RGB")`), other
    dtypes, empty images, non-finite or out-of-range values.
    """
    if isinstance(image, (str, os.PathLike)):
        with Image.open(image) as img:
            return to_image_tensor(ImageOps.exif_transpose(img).convert("RGB"))
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            raise ValueError(
                f"PIL image in mode {image.mode!r}; expected 'RGB' (use image.convert('RGB'))"
            )
        tensor = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)
    elif isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"numpy image of shape {image.shape}; expected (H, W, 3) RGB")
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    elif isinstance(image, Tensor):
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"image tensor of shape {tuple(image.shape)}; expected (3, H, W) RGB")
        tensor = image.detach().cpu()
    else:
        raise TypeError(f"unsupported image type {type(image).__name__}")
    if tensor.shape[1] == 0 or tensor.shape[2] == 0:
        raise ValueError(f"empty image of size {tuple(tensor.shape[1:])}")
    if tensor.dtype == torch.uint8:
        return tensor.float() / 255.0
    if not tensor.is_floating_point():
        raise TypeError(f"image dtype {tensor.dtype}; expected uint8 or floating point in [0, 1]")
    tensor = tensor.float()
    if (
        not bool(torch.isfinite(tensor).all())
        or float(tensor.min()) < 0.0
        or float(tensor.max()) > 1.0
    ):
        raise ValueError("floating-point image values must be finite and in [0, 1]")
    return tensor


def resized_size(height: int, width: int, canvas: int) -> tuple[int, int]:
    """Network-frame (h, w): long side = canvas, short side >= 1 as MA-HMR computes it, in float32:
    int(float32(1 / long) * canvas * short) (torch divides by an int64 tensor as reciprocal()
    times the numerator; float64 arithmetic differs by 1 px for about 0.07 % of sizes)."""
    rate = np.float32(1.0) / np.float32(max(height, width)) * np.float32(canvas)
    if width >= height:
        return max(1, int(rate * np.float32(height))), canvas
    return canvas, max(1, int(rate * np.float32(width)))


def prepare_images(
    images: Sequence[ImageLike], canvas: int, patch_size: int = 14
) -> PreparedImages:
    """Validate, resize (bilinear, no antialiasing, as cv2.INTER_LINEAR) and batch images."""
    if isinstance(images, (str, os.PathLike, Image.Image, np.ndarray, Tensor)):
        raise TypeError("pass a list of images, not a single image")
    if len(images) == 0:
        raise ValueError("no images")
    resized, original, scales = [], [], []
    for image in images:
        tensor = to_image_tensor(image)
        height, width = tensor.shape[1:]
        size = resized_size(height, width, canvas)
        out = F.interpolate(
            tensor[None], size=size, mode="bilinear", align_corners=False, antialias=False
        )
        resized.append(out[0].clamp(0.0, 1.0))
        original.append((height, width))
        scales.append(canvas / max(height, width))
    return PreparedImages(
        ImageBatch.from_tensors(resized, canvas, patch_size),
        torch.tensor(original, dtype=torch.int64),
        torch.tensor(scales, dtype=torch.float64),
    )
