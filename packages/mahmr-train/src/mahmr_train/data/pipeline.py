"""One image's way from an `ImageRecord` to a training `Sample` (spec 10.2, official defects fixed
unless `CompatConfig` asks for them).

SMPL records: draw the augmentation; put every person in the camera frame, mirror and rotate it
with the view; pose the (gendered, kid-aware) SMPL; project the 45 joints with the augmented
intrinsics; bottom crop; drop people with fewer than 4 visible joints (redraw when nobody is
left or somebody has no visible body joint); pelvis depths; boxes from the joints; the image
warped once; synthetic occlusion; the GT scale map; colour jitter. Relative Human records (2D
keypoints, no SMPL) are only resized, as in the official pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mahmr_model.geometry import axis_angle_to_matrix, matrix_to_axis_angle

from ..config import AugmentConfig, CompatConfig
from .augment import AugmentDraw, View, color_jitter, draw_augmentation, occlude
from .bodies import SMPL_FLIP, BodyModels
from .records import DataError, ImageRecord, read_image
from .scale_map import grid_size, paint_scale_map

__all__ = ["Sample", "SamplePipeline"]

NUM_JOINTS = 45
MATCHER_JOINTS = 22
SPINE_JOINT = 9  # the official crop keeps the spine (joint 9) of the lowest person


@dataclass(frozen=True)
class Sample:
    """One network image and its people (n), numpy unless noted.

    Attributes:
        image: (3, h, w) float32 tensor in [0, 1] (long side = canvas).
        intrinsics: (3, 3) GT camera of the network image, px.
        boxes: (n, 4) cxcywh / canvas; joints_2d: (n, 45, 2) px; joints_2d_mask: (n, 45) bool;
        joints_3d: (n, 45, 3) m; poses: (n, 72) axis-angle; betas: (n, K); depths: (n,) pelvis z;
        depth_layers: (n,) int (-1 unknown); scale_map: (H1, W1, 2) of the image's own grid.
    """

    key: str
    image: torch.Tensor
    intrinsics: np.ndarray
    boxes: np.ndarray
    joints_2d: np.ndarray
    joints_2d_mask: np.ndarray
    joints_3d: np.ndarray
    poses: np.ndarray
    betas: np.ndarray
    depths: np.ndarray
    depth_layers: np.ndarray
    scale_map: np.ndarray
    has_3d: bool
    has_smpl: bool
    has_camera: bool
    detect_all: bool

    @property
    def num_people(self) -> int:
        return int(self.boxes.shape[0])


def _aa_to_matrix(aa: np.ndarray) -> np.ndarray:
    return axis_angle_to_matrix(torch.from_numpy(aa)).numpy()


def _matrix_to_aa(r: np.ndarray) -> np.ndarray:
    return matrix_to_axis_angle(torch.from_numpy(r)).numpy()


def _project(points: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(..., 3) camera points -> (..., 2) px; NaN behind the camera."""
    uvw = points @ k.T
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = uvw[..., :2] / uvw[..., 2:]
    return np.where(uvw[..., 2:] > 1e-6, uv, np.nan)


class SamplePipeline:
    """Record -> sample.

    Args:
        canvas: S, the network's input size (long image side).
        bodies: the SMPL layers (betas fitted to the model's count).
        augment: augmentation (used when `train`); compat: official defects to reproduce.
        min_visible: people with fewer visible joints are dropped; box_enlarge: box factor;
        max_redraws: augmentation redraws before rotation and scale are switched off.
    """

    def __init__(
        self,
        canvas: int,
        bodies: BodyModels,
        augment: AugmentConfig,
        compat: CompatConfig,
        *,
        min_visible: int = 4,
        box_enlarge: float = 1.2,
        max_redraws: int = 10,
    ) -> None:
        self.canvas = canvas
        self.bodies = bodies
        self.augment = augment
        self.compat = compat
        self.min_visible = min_visible
        self.box_enlarge = box_enlarge
        self.max_redraws = max_redraws

    # ------------------------------------------------------------------------------------------
    def __call__(self, record: ImageRecord, rng: np.random.Generator, train: bool) -> Sample | None:
        """The sample, or None when no augmentation leaves anybody visible (training only)."""
        image = read_image(record)
        if not record.has_smpl:
            return self._keypoint_sample(record, image)
        if record.intrinsics is None:
            raise DataError(f"{record.key}: SMPL annotations need camera intrinsics")
        people = self._camera_frame(record)
        for attempt in range(self.max_redraws + 1):
            draw = draw_augmentation(self.augment, rng) if train else AugmentDraw()
            if attempt == self.max_redraws:
                draw = draw.without_rotation_and_scale()
            geometry = self._geometry(record, people, image.shape[:2], draw)
            if not train:
                break
            visible = geometry["visible"][geometry["keep"]]
            if len(visible) and visible[:, :MATCHER_JOINTS].any(1).all():
                break
        else:
            return None
        return self._finish(record, image, geometry, rng, train)

    # ------------------------------------------------------------------------------------------
    def _camera_frame(self, record: ImageRecord) -> dict[str, np.ndarray]:
        """Global orientation as a camera-frame rotation; body pose; betas fitted."""
        rot = record.cam_rot @ _aa_to_matrix(record.global_orient)
        return {
            "orient": rot,
            "body_pose": record.body_pose.reshape(-1, 23, 3),
            "betas": self.bodies.fit_betas(record.betas),
        }

    def _geometry(
        self,
        record: ImageRecord,
        people: dict[str, np.ndarray],
        size: tuple[int, int],
        draw: AugmentDraw,
    ) -> dict:
        view = View.create(*size, self.canvas, draw)
        t = view.transform
        orient, body = people["orient"], people["body_pose"]
        if view.flipped:  # mirrored body: left / right joints swapped, rotations conjugated
            pose = np.concatenate([_matrix_to_aa(orient)[:, None], body], axis=1)[:, SMPL_FLIP]
            pose = pose * np.array([1.0, -1.0, -1.0])
            orient = _aa_to_matrix(pose[:, 0])
            body = pose[:, 1:]
        # t = R_z M: the rotation part acts on the (possibly mirrored) orientation
        rz = t @ (np.diag([-1.0, 1.0, 1.0]) if view.flipped else np.eye(3))
        pose = np.concatenate([_matrix_to_aa(rz @ orient)[:, None], body], axis=1).reshape(-1, 72)
        posed = self.bodies.pose(pose, people["betas"], record.gender)
        root = posed.joints[:, 0]  # the rest root joint: the pose rotates about it
        root_cam = np.einsum("nij,nj->ni", record.cam_rot, root + record.transl) + record.cam_trans
        transl = root_cam @ t.T - root
        if view.flipped and self.compat.flip_negate_transl:
            transl[:, 0] += 2 * root[:, 0]  # official: transl.x -> -transl.x (#15)
        joints = posed.joints + transl[:, None]
        k = view.intrinsics(record.intrinsics)
        uv = _project(joints, k)
        if draw.crop:
            height, width = view.size
            spine = max(height / 2, float(np.nanmax(uv[:, SPINE_JOINT, 1], initial=-np.inf)))
            if spine < height:
                kept = int(spine + draw.crop_beta * (height - spine))
                view = view.cropped(kept, self.canvas)
                k = view.intrinsics(record.intrinsics)
                if self.compat.crop_half_pixel:  # official: principal point r c + 0.5 (r - 1)
                    k[:2, 2] += 0.5 * (self.canvas / max(kept, width) - 1)
                uv = _project(joints, k)
        visible = view.visible(uv) & np.isfinite(uv).all(-1)
        keep = visible.sum(1) >= self.min_visible
        return {
            "view": view, "k": k, "pose": pose, "betas": people["betas"], "transl": transl,
            "joints": joints, "vertices": posed.vertices + transl[:, None], "uv": uv,
            "visible": visible, "keep": keep,
        }  # fmt: skip

    def _boxes(self, uv: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """(n, J, 2) px (NaN ignored) -> (n, 4) cxcywh / S: the points' box enlarged by
        `box_enlarge` about its centre and clipped to the image."""
        s, (h, w) = self.canvas, size
        lo, hi = np.nanmin(uv, axis=1), np.nanmax(uv, axis=1)
        centre, extent = (lo + hi) / 2, (hi - lo) * self.box_enlarge
        xyxy = np.concatenate([centre - extent / 2, centre + extent / 2], axis=1) / s
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(1e-6, (w - 1) / s)
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(1e-6, (h - 1) / s)
        return np.concatenate([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], 1)

    def _finish(
        self, record: ImageRecord, image: np.ndarray, g: dict, rng: np.random.Generator, train: bool
    ) -> Sample:
        view: View = g["view"]
        keep = g["keep"]
        uv, visible, joints = g["uv"][keep], g["visible"][keep], g["joints"][keep]
        boxes = self._boxes(uv, view.size)
        depths = joints[:, 0, 2]
        warped = view.warp(image)
        if train and self.augment.enabled:
            occlude(warped, self._xyxy_px(boxes), self.augment.occlusion, rng)
        # scale map: subdivided meshes painted far to near (by depth / focal)
        vertices = g["vertices"][keep]
        pairs = self.bodies.edge_pairs
        points = [
            _project(np.concatenate([v, (v[pairs[:, 0]] + v[pairs[:, 1]]) / 2]), g["k"])
            for v in vertices
        ]
        scales = np.linalg.norm(boxes[:, 2:], axis=1).clip(0.0, 1.0)
        order = np.argsort(-(depths / g["k"][0, 0]), kind="stable")
        scale_map = paint_scale_map(points, scales, order, view.size, self.compat.scale_map_clamp)
        pixels = torch.from_numpy(warped).permute(2, 0, 1).contiguous()
        if train and self.augment.enabled and self.augment.color_jitter > 0:
            pixels = color_jitter(pixels, self.augment.color_jitter, rng)
        mask = np.ones_like(visible) if self.compat.j2d_mask_all else visible
        n = int(keep.sum())
        return Sample(
            key=record.key,
            image=pixels.float() / 255.0,
            intrinsics=g["k"],
            boxes=boxes,
            joints_2d=uv,
            joints_2d_mask=mask,
            joints_3d=joints,
            poses=g["pose"][keep],
            betas=g["betas"][keep],
            depths=depths,
            depth_layers=(
                record.depth_layers[keep] if record.depth_layers is not None else np.full(n, -1)
            ),
            scale_map=scale_map,
            has_3d=record.has_3d,
            has_smpl=True,
            has_camera=True,
            detect_all=record.detect_all,
        )

    def _xyxy_px(self, boxes: np.ndarray) -> np.ndarray:
        centre, extent = boxes[:, :2], boxes[:, 2:]
        return np.concatenate([centre - extent / 2, centre + extent / 2], 1) * self.canvas

    def _keypoint_sample(self, record: ImageRecord, image: np.ndarray) -> Sample:
        """2D-only annotation (Relative Human): resize, keypoints and boxes, no augmentation."""
        if record.keypoints is None:
            raise DataError(f"{record.key}: a record without SMPL needs 2D keypoints")
        view = View.create(*image.shape[:2], self.canvas, AugmentDraw())
        kp = record.keypoints
        uv = view.points(kp[..., :2])
        visible = (kp[..., 2] > 0) & view.visible(uv)
        pts = np.where(visible[..., None], uv, np.nan)
        if record.boxes_xyxy is not None:  # the box covers the annotated box too (official)
            pts = np.concatenate([pts, view.points(record.boxes_xyxy.reshape(-1, 2, 2))], axis=1)
        keep = np.isfinite(pts).all(-1).any(1)
        uv, visible = uv[keep], visible[keep]
        boxes = self._boxes(pts[keep], view.size)
        n = int(keep.sum())
        k = np.eye(3)
        return Sample(
            key=record.key,
            image=torch.from_numpy(view.warp(image)).permute(2, 0, 1).float() / 255.0,
            intrinsics=k,
            boxes=boxes,
            joints_2d=np.nan_to_num(uv),
            joints_2d_mask=visible,
            joints_3d=np.zeros((n, NUM_JOINTS, 3)),
            poses=np.zeros((n, 72)),
            betas=np.zeros((n, self.bodies.num_betas)),
            depths=np.zeros(n),
            depth_layers=(
                record.depth_layers[keep] if record.depth_layers is not None else np.full(n, -1)
            ),
            scale_map=np.zeros((*grid_size(*view.size), 2), np.float32),
            has_3d=False,
            has_smpl=False,
            has_camera=False,
            detect_all=record.detect_all,
        )
