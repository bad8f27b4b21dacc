"""Ground truth of a batch as padded tensors (B images, P = the most people of any image)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Targets"]


@dataclass(frozen=True)
class Targets:
    """Per-image and per-person ground truth in the network frame.

    Attributes:
        mask: (B, P) bool, real people (the rest is padding).
        boxes: (B, P, 4) (cx, cy, w, h) divided by the canvas side S.
        joints_2d: (B, P, J, 2) projections of the GT joints, network-frame px.
        joints_2d_mask: (B, P, J) bool, supervised 2D joints (visible ones, or all in compat).
        joints_3d: (B, P, J, 3) camera-frame joints, m.
        poses: (B, P, 72) SMPL axis-angle pose (rad), camera-frame global orientation first.
        betas: (B, P, K) shape (K = the model's number of betas).
        depths: (B, P) pelvis z in the camera frame, m.
        depth_layers: (B, P) int64 ordinal depth layer (0 = front), -1 unknown.
        intrinsics: (B, 3, 3) GT camera, network-frame px.
        image_sizes: (B, 2) int64 (h, w) of each resized image, px.
        has_3d: (B,) bool, the image supervises 3D (pose, shape, 3D joints, depth).
        has_smpl: (B,) bool, `poses` / `betas` hold (pseudo-)GT values (else zeros).
        has_camera: (B,) bool, `intrinsics` is a real camera (FoV supervision).
        detect_all: (B,) bool, every person of the image is annotated (unmatched queries and
            empty scale-map cells are negatives).
        scale_map: (B, H1, W1, 2) GT (presence, scale) of the 28 px cells of the canvas.
    """

    mask: Tensor
    boxes: Tensor
    joints_2d: Tensor
    joints_2d_mask: Tensor
    joints_3d: Tensor
    poses: Tensor
    betas: Tensor
    depths: Tensor
    depth_layers: Tensor
    intrinsics: Tensor
    image_sizes: Tensor
    has_3d: Tensor
    has_smpl: Tensor
    has_camera: Tensor
    detect_all: Tensor
    scale_map: Tensor

    @property
    def num_people(self) -> Tensor:
        """(B,) people per image."""
        return self.mask.sum(1)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Targets:
        return Targets(
            **{
                f.name: getattr(self, f.name).to(device, non_blocking=non_blocking)
                for f in dataclasses.fields(self)
            }
        )

    def pin_memory(self) -> Targets:
        return Targets(
            **{f.name: getattr(self, f.name).pin_memory() for f in dataclasses.fields(self)}
        )
