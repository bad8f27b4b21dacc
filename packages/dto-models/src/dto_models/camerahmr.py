"""CameraHMR: one SMPL body per person box, placed in a camera of known intrinsics (spec B.4).

A ViTPose-style ViT-H/16 encodes a 256x192 person crop into 16x12 tokens; a one-token
transformer decoder, conditioned CLIFF-style on where the box lies in the camera
(`bbox_info`), reads out 24 joint rotations (6D), 10 betas and a weak-perspective crop camera
(s, t_x, t_y) as offsets from the SMPL mean parameters. The crop camera is converted to a
full-image translation with the focal length. Module attribute names equal the official
Lightning checkpoint's keys (`camerahmr_checkpoint_cleaned.ckpt`), so it loads without renaming.

The 44 keypoints are 4D-Humans': smplx's 45 SMPL joints mapped to OpenPose-25, then the 19
joints of `SMPL_to_J19.pkl` regressed from the vertices.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial.transform import Rotation
from torch import nn

from dto_core.body import (
    OPENPOSE_FROM_SMPLX,
    SMPLX_VERTEX_JOINTS,
    BodyModel,
    load_pickled_array,
)
from dto_core.camera import project

from .adapter import TorchAdapter
from .checkpoint import load_checked, read_state_dict, resolve_weights
from .image import IMAGENET_MEAN, IMAGENET_STD, as_rgb_uint8, autocast
from .types import Detections, SMPLEstimates

__all__ = [
    "CHECKPOINT_FILE",
    "CameraHMR",
    "CameraHMRConfig",
    "CameraHMRModel",
    "bbox_info",
    "box_centers_sizes",
    "crop_to_full_translation",
    "crop_transform",
    "keypoints_44",
    "load_body",
    "preprocess_crop",
    "read_j19_regressor",
    "read_mean_params",
    "rot6d_to_rotmat",
    "rotmat_to_axis_angle",
    "smpl_keypoints_2d",
    "tiny_model",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "camerahmr_checkpoint_cleaned.ckpt"
MEAN_PARAMS_FILE = "smpl_mean_params.npz"
J19_FILE = "SMPL_to_J19.pkl"
MODEL_DIR_ENV = "SMPL_MODEL_DIR"
CROP_SIZE = 256  # px, the square crop; the network sees its columns 32..223
CROP_COLUMNS = slice(32, 224)
IMAGE_MEAN = np.array(IMAGENET_MEAN) * 255.0  # on the [0,255] scale of the crop
IMAGE_STD = np.array(IMAGENET_STD) * 255.0
MEAN_BUFFERS = {"pose": "init_body_pose", "shape": "init_betas", "cam": "init_cam"}


@dataclass(frozen=True)
class CameraHMRConfig:
    """Architecture of CameraHMR; the defaults are the official ViT-H/16 + decoder model."""

    image_size: tuple[int, int] = (256, 192)  # (H, W) px of the network input
    patch_size: int = 16
    patch_padding: int = 2  # ViTPose's patch conv padding: 16x12 tokens from 256x192
    embed_dim: int = 1280
    depth: int = 32
    num_heads: int = 16
    mlp_ratio: int = 4
    decoder_dim: int = 1024
    decoder_depth: int = 6
    decoder_heads: int = 8
    decoder_head_dim: int = 64
    decoder_mlp_dim: int = 1024
    num_joints: int = 24  # 6D rotations read out: global orientation + 23 body joints
    num_betas: int = 10
    num_keypoint_outputs: int = 88  # the unused `deckp` readout (44 x 2)
    backbone_eps: float = 1e-6
    decoder_eps: float = 1e-5

    @classmethod
    def tiny(cls) -> CameraHMRConfig:
        """Spec B.4's tiny instance (same input size, so still 192 + 1 position embeddings)."""
        return cls(
            embed_dim=64,
            depth=2,
            num_heads=2,
            decoder_dim=64,
            decoder_depth=1,
            decoder_heads=2,
            decoder_head_dim=16,
            decoder_mlp_dim=64,
        )

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, columns) of backbone tokens."""
        height, width = self.image_size
        pad, patch = self.patch_padding, self.patch_size
        return (height + 2 * pad - patch) // patch + 1, (width + 2 * pad - patch) // patch + 1

    @property
    def token_dim(self) -> int:
        """Decoder query: bbox_info (3) + mean pose 6D + mean betas + mean camera (3)."""
        return 3 + 6 * self.num_joints + self.num_betas + 3


# --- backbone: ViTPose-style ViT ----------------------------------------------------------------


class PatchEmbed(nn.Module):
    def __init__(self, config: CameraHMRConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(
            3,
            config.embed_dim,
            kernel_size=config.patch_size,
            stride=config.patch_size,
            padding=config.patch_padding,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, config: CameraHMRConfig) -> None:
        super().__init__()
        dim = config.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=config.backbone_eps)
        self.attn = Attention(dim, config.num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=config.backbone_eps)
        self.mlp = Mlp(dim, dim * config.mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """(B,3,256,192) normalised crops -> (B,C,16,12) features."""

    def __init__(self, config: CameraHMRConfig) -> None:
        super().__init__()
        self.grid = config.grid
        self.patch_embed = PatchEmbed(config)
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.grid[0] * self.grid[1] + 1, config.embed_dim)
        )
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.last_norm = nn.LayerNorm(config.embed_dim, eps=config.backbone_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        # ViTPose adds the (unused) cls entry of the position embedding to every token
        x = x + self.pos_embed[:, 1:] + self.pos_embed[:, :1]
        for block in self.blocks:
            x = block(x)
        x = self.last_norm(x)
        return x.transpose(1, 2).reshape(len(x), -1, *self.grid)


# --- head: one-token transformer decoder ------------------------------------------------------


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * heads * head_dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * head_dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (_split_heads(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=-1))
        return self.to_out(_merge_heads(F.scaled_dot_product_attention(q, k, v)))


class CrossAttention(nn.Module):
    def __init__(self, dim: int, context_dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_kv = nn.Linear(context_dim, 2 * heads * head_dim, bias=False)
        self.to_q = nn.Linear(dim, heads * head_dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * head_dim, dim))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        k, v = (_split_heads(t, self.heads) for t in self.to_kv(context).chunk(2, dim=-1))
        q = _split_heads(self.to_q(x), self.heads)
        return self.to_out(_merge_heads(F.scaled_dot_product_attention(q, k, v)))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        # index 2 held the official zero-probability dropout; the second linear stays net.3
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Identity(), nn.Linear(hidden, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module, eps: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.fn = fn

    def forward(self, x: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x), **kwargs)


class TransformerCrossAttn(nn.Module):
    def __init__(self, config: CameraHMRConfig) -> None:
        super().__init__()
        dim, heads, head_dim, eps = (
            config.decoder_dim,
            config.decoder_heads,
            config.decoder_head_dim,
            config.decoder_eps,
        )
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    PreNorm(dim, SelfAttention(dim, heads, head_dim), eps),
                    PreNorm(dim, CrossAttention(dim, config.embed_dim, heads, head_dim), eps),
                    PreNorm(dim, FeedForward(dim, config.decoder_mlp_dim), eps),
                ]
            )
            for _ in range(config.decoder_depth)
        )

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        for self_attn, cross_attn, feed_forward in self.layers:
            x = self_attn(x) + x
            x = cross_attn(x, context=context) + x
            x = feed_forward(x) + x
        return x


class TransformerDecoder(nn.Module):
    def __init__(self, config: CameraHMRConfig) -> None:
        super().__init__()
        self.to_token_embedding = nn.Linear(config.token_dim, config.decoder_dim)
        self.pos_embedding = nn.Parameter(torch.zeros(1, 1, config.decoder_dim))
        self.transformer = TransformerCrossAttn(config)

    def forward(self, token: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.to_token_embedding(token) + self.pos_embedding
        return self.transformer(x, context=context)


class SMPLTransformerDecoderHead(nn.Module):
    """Backbone features + bbox_info -> 6D pose (B,144), betas (B,10), crop camera (B,3)."""

    def __init__(self, config: CameraHMRConfig) -> None:
        super().__init__()
        dim, npose = config.decoder_dim, 6 * config.num_joints
        self.transformer = TransformerDecoder(config)
        self.decpose = nn.Linear(dim, npose)
        self.decshape = nn.Linear(dim, config.num_betas)
        self.deccam = nn.Linear(dim, 3)
        self.deckp = nn.Linear(dim, config.num_keypoint_outputs)  # unused readout, kept to load
        identity_6d = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).repeat(config.num_joints)
        self.register_buffer("init_body_pose", identity_6d[None])
        self.register_buffer("init_betas", torch.zeros(1, config.num_betas))
        self.register_buffer("init_cam", torch.tensor([[0.9, 0.0, 0.0]]))

    def forward(
        self, features: torch.Tensor, bbox_info: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        context = features.flatten(2).transpose(1, 2)  # (B, rows * columns, C)
        b = len(context)
        pose = self.init_body_pose.expand(b, -1)
        betas = self.init_betas.expand(b, -1)
        cam = self.init_cam.expand(b, -1)
        token = torch.cat([bbox_info, pose, betas, cam], dim=1)[:, None]
        out = self.transformer(token, context=context)[:, 0]
        return pose + self.decpose(out), betas + self.decshape(out), cam + self.deccam(out)


class CameraHMRModel(nn.Module):
    """Crops (B,3,256,192) + bbox_info (B,3) -> rotations (B,24,3,3), betas (B,10), cam (B,3).

    Rotation 0 is the global orientation, 1..23 the body joints (SMPL order, parent-relative);
    cam = (s, t_x, t_y) is the weak-perspective camera of the crop (see crop_to_full_translation).
    """

    def __init__(self, config: CameraHMRConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = ViT(config)
        self.smpl_head = SMPLTransformerDecoderHead(config)

    def forward(
        self, crops: torch.Tensor, bbox_info: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pose_6d, betas, cam = self.smpl_head(self.backbone(crops), bbox_info)
        rotmats = rot6d_to_rotmat(pose_6d.reshape(-1, 6)).reshape(len(crops), -1, 3, 3)
        return rotmats, betas, cam


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, _ = x.shape
    return x.reshape(b, n, heads, -1).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    b, _, n, _ = x.shape
    return x.transpose(1, 2).reshape(b, n, -1)


# --- rotations -----------------------------------------------------------------------------------


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """(N,6) -> (N,3,3): numbers 0..2 are the first column candidate a1, 3..5 the second a2;
    Gram-Schmidt b1 = a1/|a1|, b2 = unit(a2 - (b1.a2) b1), b3 = b1 x b2; R = [b1 b2 b3]."""
    a1, a2 = x[:, :3], x[:, 3:]
    b1 = F.normalize(a1, dim=1)
    b2 = F.normalize(a2 - (b1 * a2).sum(dim=1, keepdim=True) * b1, dim=1)
    b3 = torch.linalg.cross(b1, b2, dim=1)
    return torch.stack([b1, b2, b3], dim=-1)


def rotmat_to_axis_angle(rotmats: np.ndarray) -> np.ndarray:
    """Rotation matrices (...,3,3) -> axis-angle (...,3) rad, angle in [0, pi] (SciPy, through
    quaternions: accurate near 0 and near pi, where the official `batch_rot2aa` degrades)."""
    r = np.asarray(rotmats, dtype=np.float64)
    return Rotation.from_matrix(r.reshape(-1, 3, 3)).as_rotvec().reshape(*r.shape[:-2], 3)


# --- pre- and post-processing (pure NumPy) -------------------------------------------------------


def box_centers_sizes(boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop centres (N,2) px (box centres) and square sides b (N,) px = max(box w, box h)."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    sizes = (boxes[:, 2:] - boxes[:, :2]).max(axis=1)
    return centers, sizes


def crop_transform(center: np.ndarray, size: float, crop_size: int = CROP_SIZE) -> np.ndarray:
    """(2,3) affine from image px to crop px: the square of side `size` about `center` onto
    [0, crop_size]^2, centre onto crop_size/2 (OpenCV pixel-centre coordinates)."""
    k = crop_size / size
    return np.array(
        [[k, 0.0, crop_size / 2 - k * center[0]], [0.0, k, crop_size / 2 - k * center[1]]]
    )


def preprocess_crop(
    image: np.ndarray, center: np.ndarray, size: float, mask: np.ndarray | None = None
) -> np.ndarray:
    """Network input (3,256,192) float32 of one person.

    `image` RGB uint8 (H,W,3) (the official code reads BGR and flips to RGB: same input);
    `mask` (H,W) bool multiplies the image first (DTO blanks other people). Bilinear square warp
    with a constant-0 border to 256x256, ImageNet normalisation on the [0,255] scale, columns
    32..223 kept. Only the window the warp reads is masked, so huge images cost no copy.
    """
    height, width = image.shape[:2]
    half = size / 2.0
    x0 = int(np.clip(np.floor(center[0] - half) - 2, 0, width))
    x1 = int(np.clip(np.ceil(center[0] + half) + 3, x0, width))
    y0 = int(np.clip(np.floor(center[1] - half) - 2, 0, height))
    y1 = int(np.clip(np.ceil(center[1] + half) + 3, y0, height))
    window = image[y0:y1, x0:x1]
    if mask is not None:
        window = window * mask[y0:y1, x0:x1, None].astype(np.uint8)
    matrix = crop_transform(np.asarray(center, dtype=np.float64) - (x0, y0), size)
    if window.size == 0:
        patch = np.zeros((CROP_SIZE, CROP_SIZE, 3), np.uint8)
    else:
        patch = cv2.warpAffine(
            np.ascontiguousarray(window),
            matrix,
            (CROP_SIZE, CROP_SIZE),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
    patch = (patch[:, CROP_COLUMNS].astype(np.float64) - IMAGE_MEAN) / IMAGE_STD
    return np.ascontiguousarray(patch.transpose(2, 0, 1), dtype=np.float32)


def bbox_info(centers: np.ndarray, sizes: np.ndarray, K: np.ndarray) -> np.ndarray:
    """CLIFF conditioning (N,3) float32: [(c_x - p_x)/f, (c_y - p_y)/f, b/f] with f = K[0,0]
    and (p_x, p_y) = K's principal point (the official code uses the image centre, which is
    K's principal point for HumanFoV intrinsics)."""
    K = np.asarray(K, dtype=np.float64)
    f = K[0, 0]
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    info = np.concatenate([centers - K[:2, 2], np.reshape(sizes, (-1, 1))], axis=1) / f
    return info.astype(np.float32)


def crop_to_full_translation(
    cam: np.ndarray, centers: np.ndarray, sizes: np.ndarray, K: np.ndarray
) -> np.ndarray:
    """Crop weak-perspective cameras (N,3) (s, t_x, t_y) -> camera translations (N,3) m.

    t_z = 2 f / (b s); t_x = t_x_crop + 2 (c_x - p_x) / (b s); t_y likewise, with f = K[0,0],
    (p_x, p_y) K's principal point, c the crop centre and b its side (px).
    """
    K = np.asarray(K, dtype=np.float64)
    cam = np.asarray(cam, dtype=np.float64).reshape(-1, 3)
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    bs = np.asarray(sizes, dtype=np.float64).reshape(-1) * cam[:, 0]
    t_xy = cam[:, 1:] + 2.0 * (centers - K[:2, 2]) / bs[:, None]
    return np.concatenate([t_xy, (2.0 * K[0, 0] / bs)[:, None]], axis=1)


def keypoints_44(vertices: np.ndarray, joints: np.ndarray, j19: np.ndarray) -> np.ndarray:
    """4D-Humans' 44 joints (N,44,3): OpenPose-25 from smplx's 45 SMPL joints (24 skeleton
    joints + vertex joints), then the 19 joints of SMPL_to_J19 regressed from the vertices.

    vertices (N,6890,3), joints (N,24,3) the SMPL skeleton joints, j19 (19,6890).
    """
    smpl45 = np.concatenate([joints, vertices[:, list(SMPLX_VERTEX_JOINTS)]], axis=1)
    openpose = smpl45[:, list(OPENPOSE_FROM_SMPLX)]
    return np.concatenate([openpose, np.einsum("jv,nvk->njk", j19, vertices)], axis=1)


def smpl_keypoints_2d(
    body_model: BodyModel,
    j19: np.ndarray,
    global_orient: np.ndarray,
    body_pose: np.ndarray,
    betas: np.ndarray,
    transl: np.ndarray,
    K: np.ndarray,
) -> np.ndarray:
    """The 44 joints of N posed SMPL bodies projected with K: (N,44,2) float32 pixels.

    global_orient (N,3), body_pose (N,69) or (N,23,3) axis-angle, betas (N,10), transl (N,3) m.
    """
    n = len(betas)
    body = body_model.forward(
        np.asarray(betas, np.float64),
        np.asarray(body_pose, np.float64).reshape(n, 23, 3),
        np.asarray(global_orient, np.float64).reshape(n, 3),
        np.asarray(transl, np.float64).reshape(n, 3),
    )
    return project(keypoints_44(body.vertices, body.joints, j19), K).astype(np.float32)


def read_j19_regressor(path: str | os.PathLike[str]) -> np.ndarray:
    """SMPL_to_J19.pkl: the (19, V) float64 extra-joint regressor (restricted unpickling)."""
    array = load_pickled_array(path)
    if array.ndim != 2 or array.shape[0] != 19:
        raise ValueError(f"{path}: expected a (19, V) regressor, got shape {array.shape}")
    return array


def read_mean_params(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """smpl_mean_params.npz -> the head's buffers {init_body_pose (1,144), init_betas (1,10),
    init_cam (1,3)} float32 (without the `smpl_head.` prefix)."""
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in MEAN_BUFFERS if k not in data.files]
        if missing:
            raise ValueError(f"{path}: no {missing} entries")
        return {
            buffer: torch.from_numpy(data[key].astype(np.float32).reshape(1, -1))
            for key, buffer in MEAN_BUFFERS.items()
        }


def _empty_estimates(K: np.ndarray, with_keypoints: bool) -> SMPLEstimates:
    zeros = np.zeros
    return SMPLEstimates(
        global_orient=zeros((0, 3), np.float32),
        body_pose=zeros((0, 69), np.float32),
        betas=zeros((0, 10), np.float32),
        transl=zeros((0, 3), np.float32),
        keypoints_2d=zeros((0, 44, 2), np.float32) if with_keypoints else None,
        K=np.asarray(K, dtype=np.float32),
    )


# --- adapter -------------------------------------------------------------------------------------


class CameraHMR(TorchAdapter):
    """SingleHMR adapter: `estimate(image, detections, K)` -> one SMPL body per detection.

    `body_model` (a neutral SMPL `dto_core.body.BodyModel`) and `j19` (19, V) enable the 44
    projected keypoints; without them `keypoints_2d` is None. Persons run in chunks of
    `batch_size`; `use_masks` multiplies each crop's image by that person's mask (as DTO does)
    when the detections carry masks.
    """

    def __init__(
        self,
        model: CameraHMRModel,
        config: CameraHMRConfig | None = None,
        *,
        body_model: BodyModel | None = None,
        j19: np.ndarray | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
        batch_size: int = 32,
        use_masks: bool = True,
    ) -> None:
        if (body_model is None) != (j19 is None):
            raise ValueError("body_model and j19 go together (both or neither)")
        super().__init__(model, config or model.config, device=device, dtype=dtype)
        self.body_model = body_model
        self.j19 = j19
        self.batch_size = batch_size
        self.use_masks = use_masks

    @classmethod
    def from_pretrained(
        cls,
        path_or_hub_id: str | os.PathLike[str],
        *,
        config: CameraHMRConfig | None = None,
        mean_params: str | os.PathLike[str] | None = None,
        smpl_dir: str | os.PathLike[str] | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
        **kwargs: Any,
    ) -> CameraHMR:
        """Load `camerahmr_checkpoint_cleaned.ckpt` (a file, or a directory holding it).

        Like the official non-strict loader, keys the model lacks are ignored (logged); every
        key of the model must be in the file with its shape, else CheckpointError naming it.
        `mean_params` (smpl_mean_params.npz) fills the head's mean buffers only where the file
        lacks them (the file's values win, as in the official loading order). `smpl_dir` (or
        $SMPL_MODEL_DIR) holds SMPL_NEUTRAL.pkl/.npz and SMPL_to_J19.pkl for the keypoints.
        `config` defaults to the official architecture.
        """
        config = config or CameraHMRConfig()
        state = dict(read_state_dict(resolve_weights(path_or_hub_id, CHECKPOINT_FILE)))
        if mean_params is not None:
            for name, value in read_mean_params(mean_params).items():
                key = f"smpl_head.{name}"
                if key not in state:
                    state[key] = value
                elif not torch.equal(state[key].float(), value):
                    logger.info("%s: the checkpoint's value is used, not %s", key, mean_params)
        with torch.device("meta"):
            model = CameraHMRModel(config)
        expected = model.state_dict()
        model = model.to_empty(device="cpu")
        load_checked(model, state, key_map=lambda k: k if k in expected else None)
        body_model, j19 = load_body(smpl_dir)
        return cls(
            model, config, body_model=body_model, j19=j19, device=device, dtype=dtype, **kwargs
        )

    @classmethod
    def tiny(
        cls,
        seed: int = 0,
        *,
        smpl_dir: str | os.PathLike[str] | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
        **kwargs: Any,
    ) -> CameraHMR:
        """Spec B.4's tiny instance, randomly initialised (deterministic for `seed`)."""
        config = CameraHMRConfig.tiny()
        model = tiny_model(seed)
        body_model, j19 = load_body(smpl_dir)
        return cls(
            model, config, body_model=body_model, j19=j19, device=device, dtype=dtype, **kwargs
        )

    def predict_crops(
        self, crops: np.ndarray, info: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Network outputs for crops (N,3,256,192) and bbox_info (N,3), in chunks of batch_size:
        rotation matrices (N,24,3,3), betas (N,10), crop cameras (N,3), float32."""
        rotmats, betas, cams = [], [], []
        with torch.inference_mode(), autocast(self.device, self.dtype):
            for start in range(0, len(crops), self.batch_size):
                chunk = slice(start, start + self.batch_size)
                x = torch.from_numpy(np.ascontiguousarray(crops[chunk])).to(self.device)
                c = torch.from_numpy(np.ascontiguousarray(info[chunk])).to(self.device)
                r, b, s = self.model(x, c)
                rotmats.append(r.float().cpu().numpy())
                betas.append(b.float().cpu().numpy())
                cams.append(s.float().cpu().numpy())
        if not rotmats:
            n = self.config.num_joints
            return (
                np.zeros((0, n, 3, 3), np.float32),
                np.zeros((0, 10), np.float32),
                np.zeros((0, 3), np.float32),
            )
        return np.concatenate(rotmats), np.concatenate(betas), np.concatenate(cams)

    def estimate(self, image: np.ndarray, detections: Detections, K: np.ndarray) -> SMPLEstimates:
        """One SMPL body per detection of an RGB uint8 image, placed with intrinsics K (3,3)."""
        image = as_rgb_uint8(image)
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3) or not K[0, 0] > 0:
            raise ValueError(f"K must be (3,3) with a positive focal length, got {K}")
        with_keypoints = self.body_model is not None
        if len(detections) == 0:
            return _empty_estimates(K, with_keypoints)
        centers, sizes = box_centers_sizes(detections.boxes_xyxy)
        if not np.all(sizes > 0):
            raise ValueError("every detection box needs a positive width or height")
        masks = detections.masks_for(image.shape[:2]) if self.use_masks else None
        crops = np.stack(
            [
                preprocess_crop(image, c, b, None if masks is None else masks[i])
                for i, (c, b) in enumerate(zip(centers, sizes, strict=True))
            ]
        )
        rotmats, betas, cams = self.predict_crops(crops, bbox_info(centers, sizes, K))
        pose = rotmat_to_axis_angle(rotmats)  # (N,24,3)
        transl = crop_to_full_translation(cams, centers, sizes, K)
        keypoints = None
        if with_keypoints:
            keypoints = smpl_keypoints_2d(
                self.body_model, self.j19, pose[:, 0], pose[:, 1:], betas, transl, K
            )
        return SMPLEstimates(
            global_orient=pose[:, 0].astype(np.float32),
            body_pose=pose[:, 1:].reshape(len(pose), -1).astype(np.float32),
            betas=betas.astype(np.float32),
            transl=transl.astype(np.float32),
            keypoints_2d=keypoints,
            K=K.astype(np.float32),
        )


def tiny_model(seed: int = 0) -> CameraHMRModel:
    """The tiny CameraHMRModel with seeded random weights (readouts scaled down so the outputs
    stay near the mean parameters: a positive crop scale, plausible rotations)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CameraHMRModel(CameraHMRConfig.tiny())
        with torch.no_grad():
            nn.init.trunc_normal_(model.backbone.pos_embed, std=0.02)
            nn.init.trunc_normal_(model.smpl_head.transformer.pos_embedding, std=0.02)
            for readout in (
                model.smpl_head.decpose,
                model.smpl_head.decshape,
                model.smpl_head.deccam,
            ):
                readout.weight.mul_(0.05)
                readout.bias.mul_(0.05)
    return model.eval()


def load_body(
    smpl_dir: str | os.PathLike[str] | None,
) -> tuple[BodyModel | None, np.ndarray | None]:
    """Neutral SMPL model and J19 regressor from `smpl_dir` (or $SMPL_MODEL_DIR; DIR or DIR/smpl);
    (None, None) when neither is given."""
    if smpl_dir is None:
        smpl_dir = os.environ.get(MODEL_DIR_ENV)
        if smpl_dir is None:
            return None, None
    root = Path(smpl_dir)
    body = BodyModel.from_dir(root, "neutral")
    for folder in (root, root / "smpl"):
        if (folder / J19_FILE).is_file():
            j19 = read_j19_regressor(folder / J19_FILE)
            if j19.shape[1] != len(body.v_template):
                raise ValueError(
                    f"{folder / J19_FILE}: {j19.shape[1]} vertices, the model "
                    f"{len(body.v_template)}"
                )
            return body, j19
    raise FileNotFoundError(f"{J19_FILE} not found in {root} or {root / 'smpl'}")
