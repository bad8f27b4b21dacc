"""Geometric and photometric augmentation (spec 10.2), consistent between image and camera.

A `View` is one affine map A of original pixel coordinates to network pixel coordinates (resize
so that the long side is S, horizontal flip, rotation and scaling about the image centre, bottom
crop) plus the rigid map T of the camera frame that goes with it (the rotation about the optical
axis, the mirror). The image is warped once with A; the intrinsics become K' = A K T^T, so that
projecting T X with K' gives exactly A applied to the projection of X with K, for any K.
Pixel centres lie at integer coordinates (OpenCV, `dto_core.camera.project`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from mahmr_model.preprocess import resized_size

from ..config import AugmentConfig

__all__ = ["AugmentDraw", "View", "color_jitter", "draw_augmentation", "occlude"]

MIRROR = np.diag([-1.0, 1.0, 1.0])


@dataclass(frozen=True)
class AugmentDraw:
    """One draw: rotation (rad, positive = clockwise on screen: x towards y), flip, scale, whether
    to crop and the Beta(2, 5) variate that sets the crop height."""

    rot: float = 0.0
    flip: bool = False
    scale: float = 1.0
    crop: bool = False
    crop_beta: float = 0.0

    def without_rotation_and_scale(self) -> AugmentDraw:
        return AugmentDraw(0.0, self.flip, 1.0, self.crop, self.crop_beta)


def draw_augmentation(config: AugmentConfig, rng: np.random.Generator) -> AugmentDraw:
    """Draw rotation, flip, scale and crop (every number drawn, so draws stay aligned)."""
    rot, flip, scale, crop, beta = (
        rng.uniform(*config.rot_deg),
        rng.random() < config.flip,
        rng.uniform(*config.scale),
        rng.random() < config.crop,
        rng.beta(2.0, 5.0),
    )
    if not config.enabled:
        return AugmentDraw()
    return AugmentDraw(math.radians(rot), bool(flip), float(scale), bool(crop), float(beta))


def _rotation_2d(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def _homogeneous(linear: np.ndarray, offset: np.ndarray) -> np.ndarray:
    out = np.eye(3)
    out[:2, :2], out[:2, 2] = linear, offset
    return out


@dataclass(frozen=True)
class View:
    """Original image (H, W) -> network image `size` = (h, w).

    Attributes:
        affine: (3, 3) homogeneous map of pixel coordinates.
        transform: (3, 3) orthogonal map of the camera frame (rotation about z, times the mirror
            diag(-1, 1, 1) when flipped).
        flipped: the image (and the bodies) are mirrored.
        original: (H, W); size: (h, w).
    """

    affine: np.ndarray
    transform: np.ndarray
    flipped: bool
    original: tuple[int, int]
    size: tuple[int, int]

    @classmethod
    def create(cls, height: int, width: int, canvas: int, draw: AugmentDraw) -> View:
        """Resize (long side = canvas), flip, then rotate and scale about the image centre."""
        h, w = resized_size(height, width, canvas)
        r = canvas / max(height, width)
        affine = np.diag([r, r, 1.0])
        transform = np.eye(3)
        if draw.flip:
            affine = np.array([[-1.0, 0.0, w - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ affine
            transform = MIRROR @ transform
        if draw.rot != 0.0 or draw.scale != 1.0:
            centre = np.array([(w - 1) / 2, (h - 1) / 2])
            linear = draw.scale * _rotation_2d(draw.rot)
            affine = _homogeneous(linear, centre - linear @ centre) @ affine
            rz = np.eye(3)
            rz[:2, :2] = _rotation_2d(draw.rot)
            transform = rz @ transform
        return cls(affine, transform, draw.flip, (height, width), (h, w))

    def cropped(self, height: int, canvas: int) -> View:
        """Keep the top `height` rows, then resize so that the long side is the canvas again."""
        h, w = resized_size(height, self.size[1], canvas)
        r = canvas / max(height, self.size[1])
        return View(
            np.diag([r, r, 1.0]) @ self.affine, self.transform, self.flipped, self.original, (h, w)
        )

    def intrinsics(self, k: np.ndarray) -> np.ndarray:
        """K' = A K T^T: the camera of the network image for camera-frame points T X."""
        return self.affine @ k @ self.transform.T

    def points(self, uv: np.ndarray) -> np.ndarray:
        """(..., 2) original pixel coordinates -> network pixel coordinates."""
        return uv @ self.affine[:2, :2].T + self.affine[:2, 2]

    def visible(self, uv: np.ndarray) -> np.ndarray:
        """(..., 2) network px -> bool: inside the network image and on a pixel that comes from
        the original image (not the black fill of a rotation or downscaling)."""
        h, w = self.size
        inside = (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
        inverse = np.linalg.inv(self.affine)
        source = uv @ inverse[:2, :2].T + inverse[:2, 2]
        height, width = self.original
        from_image = (
            (source[..., 0] >= -0.5)
            & (source[..., 0] < width - 0.5)
            & (source[..., 1] >= -0.5)
            & (source[..., 1] < height - 0.5)
        )
        return inside & from_image

    def warp(self, image: np.ndarray) -> np.ndarray:
        """The network image: one bilinear warp of the original, black outside it."""
        h, w = self.size
        return cv2.warpAffine(
            image, self.affine[:2], (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0)
        )


def color_jitter(image: torch.Tensor, strength: float, rng: np.random.Generator) -> torch.Tensor:
    """ColorJitter(strength, strength, strength) (brightness, contrast, saturation factors in
    [1 - s, 1 + s], applied in a random order) on a (3, H, W) uint8 tensor, drawn from `rng`."""
    factors = rng.uniform(1 - strength, 1 + strength, 3)
    ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation)
    for i in rng.permutation(3):
        image = ops[i](image, float(factors[i]))
    return image


def occlude(
    image: np.ndarray, boxes_xyxy: np.ndarray, probability: float, rng: np.random.Generator
) -> None:
    """Synthetic occlusion (in place): per person with `probability`, a rectangle of area
    U(0, 0.3) x box area and aspect U(0.5, 2) inside the box, filled with uniform noise (up to
    5 placements that must fit the image)."""
    height, width = image.shape[:2]
    for x0, y0, x1, y1 in boxes_xyxy:
        if rng.random() > probability:
            continue
        for _ in range(5):
            area = rng.uniform(0.0, 0.3) * (x1 - x0) * (y1 - y0)
            ratio = rng.uniform(0.5, 2.0)
            h, w = math.sqrt(area * ratio), math.sqrt(area / ratio)
            left = rng.random() * ((x1 - x0) - w - 1) + x0
            top = rng.random() * ((y1 - y0) - h - 1) + y0
            if left >= 0 and top >= 0 and left + w < width and top + h < height:
                y, x, hh, ww = int(top), int(left), int(h), int(w)
                image[y : y + hh, x : x + ww] = rng.integers(0, 256, (hh, ww, 3), dtype=np.uint8)
                break
