"""The `synthetic` dataset: SMPL people (from the body model in use, e.g. `dto_core`'s synthetic
SMPL-format model) standing on a ground plane at known metric depths, rendered into images with
the workspace renderer (`hmr_render.overlay_meshes`), with their exact ground truth.

Image `i` of a spec depends only on (`seed`, `i`): the same images in every process and run.
It lets the trainer run anywhere; numbers measured on it say that the training works, nothing
about MA-HMR on real images.
"""

from __future__ import annotations

import math

import numpy as np

from dto_core.camera import intrinsics_from_fov

from ..config import DatasetSpec
from .bodies import BodyModels
from .records import ImageRecord

__all__ = ["IMAGE_SIZE", "SyntheticSource"]

IMAGE_SIZE = (192, 256)  # (h, w) px of the rendered images
CAMERA_HEIGHT = 1.6  # m above the ground plane (y = +1.6 in the OpenCV camera frame)
PELVIS_HEIGHT = 0.95  # m above the ground of a standing adult's root joint (approximately)


def _background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A smooth two-colour gradient (sky above the horizon, ground below) with mild noise."""
    h, w = size
    top, bottom = rng.integers(60, 200, 3), rng.integers(30, 150, 3)
    t = np.linspace(0.0, 1.0, h)[:, None, None]
    image = (1 - t) * top + t * bottom + rng.normal(0, 6, (h, w, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


class SyntheticSource:
    """`spec.num_images` images of 1 to `spec.max_people` people each (seeded by `spec.seed`)."""

    name = "synthetic"

    def __init__(self, spec: DatasetSpec, bodies: BodyModels) -> None:
        if spec.num_images < 1 or spec.max_people < 1:
            raise ValueError("synthetic dataset needs num_images >= 1 and max_people >= 1")
        self.spec = spec
        self.bodies = bodies
        self.keys = [f"synthetic/{spec.seed}/{i:06d}.png" for i in range(spec.num_images)]
        self._records: dict[int, ImageRecord] = {}  # posed and rendered once per process
        self._images: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.spec.num_images

    def __getitem__(self, index: int) -> ImageRecord:
        if index not in self._records:
            self._records[index] = self._record(index)
        return self._records[index]

    def _record(self, index: int) -> ImageRecord:
        rng = np.random.default_rng([self.spec.seed, index])
        h, w = IMAGE_SIZE
        k = intrinsics_from_fov(math.radians(rng.uniform(40.0, 70.0)), h, w)
        n = int(rng.integers(1, self.spec.max_people + 1))
        pose = np.zeros((n, 72))
        pose[:, :3] = [math.pi, 0.0, 0.0]  # upright, facing the camera (OpenCV y down)
        pose[:, 3:] = rng.normal(0.0, 0.1, (n, 69))
        betas = np.zeros((n, self.bodies.num_betas))
        betas[:, :10] = rng.normal(0.0, 0.7, (n, 10))
        depth = np.sort(rng.uniform(2.0, 5.0, n))[::-1]
        # spread people across the image: pixel column -> lateral position at that depth
        columns = (np.arange(n) + rng.uniform(0.2, 0.8, n)) / n * w
        x = (columns - k[0, 2]) * depth / k[0, 0]
        y = np.full(n, CAMERA_HEIGHT - PELVIS_HEIGHT)
        gender = np.full(n, "neutral")
        posed = self.bodies.pose(pose, betas, gender)
        transl = np.stack([x, y, depth], 1) - posed.joints[:, 0]  # root joint at (x, y, depth)
        vertices = posed.vertices + transl[:, None]
        background = _background(rng, IMAGE_SIZE)
        faces = self.bodies.faces

        def render() -> np.ndarray:
            from hmr_render import overlay_meshes  # trimesh, embree: loaded on first use

            if index not in self._images:
                self._images[index] = overlay_meshes(background, vertices, faces, k, alpha=1.0)
            return self._images[index].copy()

        return ImageRecord.camera_frame(
            self.keys[index], render, k, pose, betas, transl, has_3d=True, detect_all=True
        )
