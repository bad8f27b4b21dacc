"""Camera and rotation geometry (stateless, torch).

Camera: pinhole, OpenCV axes (x right, y down, z forward), metres, intrinsics in pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .conventions import PROJECTION_EPS, SCALE_EPS

__all__ = [
    "axis_angle_to_matrix",
    "focal_from_fov",
    "fov_from_focal",
    "intrinsics_matrix",
    "matrix_to_axis_angle",
    "project",
    "rot6d_to_matrix",
    "translation_from_camera",
]


def focal_from_fov(fov: Tensor, height: Tensor) -> Tensor:
    """Focal length (px) from the vertical field of view (rad): f = h / (2 tan(fov / 2))."""
    return height / (2.0 * torch.tan(fov / 2.0))


def fov_from_focal(focal: Tensor, height: Tensor) -> Tensor:
    """Vertical field of view (rad) from the focal length (px): fov = 2 atan(h / (2 f))."""
    return 2.0 * torch.atan(height / (2.0 * focal))


def intrinsics_matrix(focal: Tensor, image_size: Tensor) -> Tensor:
    """(B,) focal (px), (B, 2) image (h, w) (px) -> (B, 3, 3) K: fx = fy = f, centred principal
    point."""
    k = torch.zeros(*focal.shape, 3, 3, dtype=focal.dtype, device=focal.device)
    k[..., 0, 0] = focal
    k[..., 1, 1] = focal
    k[..., 0, 2] = image_size[..., 1].to(focal.dtype) / 2.0
    k[..., 1, 2] = image_size[..., 0].to(focal.dtype) / 2.0
    k[..., 2, 2] = 1.0
    return k


def translation_from_camera(
    cam: Tensor, intrinsics: Tensor, image_size: Tensor, canvas: int
) -> Tensor:
    """Weak-perspective head output -> camera-space translation of the body frame (metres).

    With `s = 2 sigmoid(c_s) + 1e-6`, the body origin is placed at depth `t_z = 2 fx / (s S)`
    and at the pixel `(w/2 + S c_x / 2, h/2 + S c_y / 2)`; with the model's own camera (fx = fy,
    principal point at the image centre) this is exactly `(c_x / s, c_y / s, t_z)`, the
    official formula. The 2D position of the origin does not depend on the focal length; the
    depth is proportional to it.

    Args:
        cam: (B, Q, 3) head output (c_x, c_y, c_s).
        intrinsics: (B, 3, 3) K in network-frame pixels.
        image_size: (B, 2) (h, w) of each resized, unpadded image in px.
        canvas: the canvas side S in px.

    Returns:
        (B, Q, 3) translation in metres.
    """
    s = 2.0 * torch.sigmoid(cam[..., 2]) + SCALE_EPS
    k = intrinsics[:, None]  # (B, 1, 3, 3)
    size = image_size.to(cam.dtype)[:, None]  # (B, 1, 2)
    t_z = 2.0 * k[..., 0, 0] / (s * canvas)
    u = size[..., 1] / 2.0 + canvas * cam[..., 0] / 2.0
    v = size[..., 0] / 2.0 + canvas * cam[..., 1] / 2.0
    t_x = (u - k[..., 0, 2]) * t_z / k[..., 0, 0]
    t_y = (v - k[..., 1, 2]) * t_z / k[..., 1, 1]
    return torch.stack([t_x, t_y, t_z], dim=-1)


def project(points: Tensor, intrinsics: Tensor) -> Tensor:
    """(B, ..., 3) camera-space points, (B, 3, 3) K -> (B, ..., 2) pixels (divide by z + 1e-6)."""
    k = intrinsics.reshape(intrinsics.shape[0], *([1] * (points.dim() - 2)), 3, 3)
    homogeneous = (k @ points[..., None])[..., 0]
    return homogeneous[..., :2] / (homogeneous[..., 2:] + PROJECTION_EPS)


def rot6d_to_matrix(x: Tensor) -> Tensor:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt (Zhou et al. 2019).

    The six numbers are read as a row-major 3x2 matrix (columns = elements (0, 2, 4) and
    (1, 3, 5)), the SPIN / HMR convention that SPIN's mean pose is stored in.
    """
    m = x.reshape(*x.shape[:-1], 3, 2)
    b1 = F.normalize(m[..., 0], dim=-1)
    a2 = m[..., 1]
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def axis_angle_to_matrix(aa: Tensor) -> Tensor:
    """(..., 3) axis-angle (rad) -> (..., 3, 3) by Rodrigues' formula."""
    angle = aa.norm(dim=-1, keepdim=True)[..., None]  # (..., 1, 1)
    axis = aa / aa.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(
        *aa.shape[:-1], 3, 3
    )
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(skew)
    return eye + torch.sin(angle) * skew + (1.0 - torch.cos(angle)) * (skew @ skew)


def matrix_to_axis_angle(r: Tensor) -> Tensor:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle with angle in [0, pi].

    Through the unit quaternion, computed from the largest of its four candidate forms
    (numerically stable for every rotation, including angles near pi).
    """
    m00, m01, m02 = r[..., 0, 0], r[..., 0, 1], r[..., 0, 2]
    m10, m11, m12 = r[..., 1, 0], r[..., 1, 1], r[..., 1, 2]
    m20, m21, m22 = r[..., 2, 0], r[..., 2, 1], r[..., 2, 2]
    candidates = torch.stack(
        [
            torch.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], -1),
            torch.stack([m21 - m12, 1 + m00 - m11 - m22, m10 + m01, m02 + m20], -1),
            torch.stack([m02 - m20, m10 + m01, 1 - m00 + m11 - m22, m21 + m12], -1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, 1 - m00 - m11 + m22], -1),
        ],
        dim=-2,
    )  # (..., 4, 4): row i is 4 q_i q (w, x, y, z)
    diagonal = torch.stack([candidates[..., i, i] for i in range(4)], -1)
    best = diagonal.argmax(-1, keepdim=True)
    row = torch.gather(candidates, -2, best[..., None].expand(*best.shape, 4)).squeeze(-2)
    q = row / (2.0 * torch.gather(diagonal, -1, best).clamp(min=1e-12).sqrt())
    q = torch.where(q[..., :1] < 0, -q, q)  # w >= 0: angle in [0, pi]
    sin_half = q[..., 1:].norm(dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(sin_half, q[..., :1])
    # angle / sin(angle / 2) -> 2 as the angle -> 0
    factor = torch.where(
        sin_half > 1e-8, angle / sin_half.clamp(min=1e-8), torch.full_like(angle, 2.0)
    )
    return q[..., 1:] * factor
