"""2D keypoints: ViTPose-B "simple" (COCO-17) through `transformers`, and the keypoint NMS.

The network is `transformers`' `VitPoseForPoseEstimation` (ViT-B backbone, simple decoder:
ReLU, bilinear x4, 3x3 conv) giving heatmaps (B,17,64,48) for 256 x 192 person crops. Weights:
the Hub repository `usyd-community/vitpose-base-simple` (`config.json` + `model.safetensors`,
~344 MB, Apache-2.0), loaded STRICTLY (a missing or mis-shaped key raises `CheckpointError`).

Pre- and post-processing are this module's NumPy re-implementation of `VitPoseImageProcessor`
(transformers 5.x), tested against it:
- per box (COCO xywh): centre = box centre, box enlarged to the input aspect (w:h = 192:256)
  around it, times 1.25; UDP warp matrix; bilinear warp with SciPy `affine_transform`
  (order 1, uint8 in and out, as the processor does) of the person's masked copy of the image;
  /255, ImageNet mean/std, CHW;
- argmax per heatmap; DARK refinement (SciPy `gaussian_filter`, sigma 0.8, radius 5 for the
  kernel 11; clip to [0.001, 50]; log; one Newton step); UDP back-projection
  x = x_hm * w_box / (W_hm - 1) + c_x - w_box / 2 (likewise y) with the enlarged box.

Differences from the processor, all outside its normal operating range: the warp only reads the
box's neighbourhood of the image (identical output, no full-image copy per person), and a joint
whose heatmap maximum is <= 0 keeps the argmax placeholder -1 without a DARK step (the
processor's DARK step then reads neighbouring heatmaps' memory).

DTO usage (`enough_visible`): a joint is visible when its score >= 0.5; a detection is kept when
at least 5 joints are visible. `nms_kp2d` is DTO-Humans' keypoint NMS (spec B.3).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import affine_transform, gaussian_filter
from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation

from .adapter import TorchAdapter
from .checkpoint import load_checked, read_state_dict, resolve_weights
from .image import IMAGENET_MEAN, IMAGENET_STD, as_rgb_uint8, autocast
from .types import Detections, Keypoints2D

__all__ = [
    "COCO17_NAMES",
    "HUB_ID",
    "ViTPoseConfig",
    "ViTPoseEstimator",
    "box_to_center_size",
    "dark_refine",
    "enough_visible",
    "heatmap_maxima",
    "nms_kp2d",
    "normalize",
    "postprocess",
    "preprocess",
    "udp_to_image",
    "warp_person",
    "xyxy_to_xywh",
]

logger = logging.getLogger(__name__)

HUB_ID = "usyd-community/vitpose-base-simple"
WEIGHTS_FILENAME = "model.safetensors"
COCO17_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)


@dataclass(frozen=True)
class ViTPoseConfig:
    """ViTPose hyper-parameters and processing; the defaults are ViTPose-B simple (COCO-17).

    `input_size` is (height, width) of the person crop; heatmaps are `input_size / patch_size *
    scale_factor`. `padding` enlarges the aspect-corrected box; `dark_kernel` is the processor's
    Gaussian kernel size (sigma 0.8, radius (kernel-1)/2). `batch_size` people per forward.
    """

    input_size: tuple[int, int] = (256, 192)
    patch_size: tuple[int, int] = (16, 16)
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    mlp_ratio: int = 4
    layer_norm_eps: float = 1e-12
    num_keypoints: int = 17
    scale_factor: int = 4
    padding: float = 1.25
    image_mean: tuple[float, float, float] = IMAGENET_MEAN
    image_std: tuple[float, float, float] = IMAGENET_STD
    dark_kernel: int = 11
    batch_size: int = 32

    @classmethod
    def base(cls) -> ViTPoseConfig:
        """ViTPose-B simple, 256 x 192 input, heatmaps 64 x 48 (the default)."""
        return cls()

    @classmethod
    def tiny(cls) -> ViTPoseConfig:
        """Spec B.2's tiny instance: 64 x 48 input, hidden 32, 2 layers -> heatmaps 16 x 12."""
        return cls(
            input_size=(64, 48),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            mlp_ratio=2,
        )

    @classmethod
    def from_hf(
        cls, hf_config: VitPoseConfig, preprocessor: dict | None = None, **overrides: object
    ) -> ViTPoseConfig:
        """From a `transformers` `VitPoseConfig` and an optional `preprocessor_config.json`."""
        backbone = hf_config.backbone_config
        fields: dict = dict(
            input_size=tuple(backbone.image_size),
            patch_size=tuple(backbone.patch_size),
            hidden_size=backbone.hidden_size,
            num_hidden_layers=backbone.num_hidden_layers,
            num_attention_heads=backbone.num_attention_heads,
            mlp_ratio=backbone.mlp_ratio,
            layer_norm_eps=backbone.layer_norm_eps,
            num_keypoints=hf_config.num_labels,
            scale_factor=hf_config.scale_factor,
        )
        if preprocessor:
            size = preprocessor.get("size", {})
            if size and (size["height"], size["width"]) != fields["input_size"]:
                raise ValueError(f"processor size {size} differs from the model's input size")
            fields["image_mean"] = tuple(preprocessor.get("image_mean", IMAGENET_MEAN))
            fields["image_std"] = tuple(preprocessor.get("image_std", IMAGENET_STD))
        fields.update(overrides)
        return cls(**fields)

    def to_hf(self) -> VitPoseConfig:
        """The `transformers` config of this architecture (single expert, simple decoder)."""
        backbone = VitPoseBackboneConfig(
            image_size=list(self.input_size),
            patch_size=list(self.patch_size),
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            mlp_ratio=self.mlp_ratio,
            layer_norm_eps=self.layer_norm_eps,
            out_indices=[self.num_hidden_layers],
        )
        return VitPoseConfig(
            backbone_config=backbone,
            num_labels=self.num_keypoints,  # explicit: the generic default is 2
            scale_factor=self.scale_factor,
            use_simple_decoder=True,
            id2label=dict(enumerate(COCO17_NAMES)) if self.num_keypoints == 17 else None,
        )

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(height, width) of the output heatmaps."""
        return (
            self.input_size[0] // self.patch_size[0] * self.scale_factor,
            self.input_size[1] // self.patch_size[1] * self.scale_factor,
        )


# Pre-processing


def xyxy_to_xywh(boxes_xyxy: np.ndarray) -> np.ndarray:
    """COCO boxes (N,4) x, y, w, h from corner boxes (N,4) x1, y1, x2, y2 (pixels)."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def box_to_center_size(
    boxes_xywh: np.ndarray, input_size: tuple[int, int] = (256, 192), padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Centres (N,2) and enlarged sizes (N,2) (w, h) float32 pixels of COCO boxes (N,4).

    The box is widened or heightened around its centre to the crop's aspect (`input_size` is
    (height, width)), then scaled by `padding`. Rounded through float32 in units of 200 px like
    the processor (`scale * 200`), so that the warp matches it bit for bit.
    """
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    centers = (boxes[:, :2] + 0.5 * boxes[:, 2:]).astype(np.float32)
    width, height = boxes[:, 2], boxes[:, 3]
    aspect = input_size[1] / input_size[0]
    wide, tall = width > aspect * height, width < aspect * height
    width, height = np.where(tall, height * aspect, width), np.where(wide, width / aspect, height)
    scale = (np.stack([width, height], axis=1) / 200.0).astype(np.float32) * np.float32(padding)
    return centers, scale * np.float32(200.0)


def _udp_matrix(center: np.ndarray, size: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """UDP warp (2,3) float32 from image pixels to crop pixels (the processor's matrix)."""
    scale_x = (input_size[1] - 1.0) / np.float64(size[0])
    scale_y = (input_size[0] - 1.0) / np.float64(size[1])
    return np.array(
        [
            [scale_x, 0.0, scale_x * (0.5 * size[0] - center[0])],
            [0.0, scale_y, scale_y * (0.5 * size[1] - center[1])],
        ],
        dtype=np.float32,
    )


def warp_person(
    image: np.ndarray,
    mask: np.ndarray | None,
    center: np.ndarray,
    size: np.ndarray,
    input_size: tuple[int, int] = (256, 192),
) -> np.ndarray:
    """The person crop (h,w,3) uint8 of `input_size` = (h,w): the image times `mask` (H,W) bool
    (None: the plain image) warped bilinearly so that the enlarged box (`center`, `size` (w,h)
    pixels) spans the crop corner pixel to corner pixel (UDP). Pixels outside the image are 0.

    Only the box's neighbourhood of the image is read and masked; the result equals warping the
    full masked image (SciPy `affine_transform`, order 1, constant 0 outside, uint8 rounding).
    """
    height, width = image.shape[:2]
    forward = np.vstack([_udp_matrix(center, size, input_size), [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(forward.astype(np.float64))
    # SciPy works in (row, col): crop pixel (v, u) samples the image at inverse @ (u, v, 1).
    matrix = np.array([[inverse[1, 1], inverse[1, 0]], [inverse[0, 1], inverse[0, 0]]])
    offset = np.array([inverse[1, 2], inverse[0, 2]])
    corners = np.array([[0.0, 0.0], [input_size[0] - 1.0, input_size[1] - 1.0]])
    reach = corners @ matrix.T + offset  # (row, col) of the crop's first and last pixel
    row0 = int(np.clip(math.floor(reach[:, 0].min()) - 1, 0, height))
    row1 = int(np.clip(math.ceil(reach[:, 0].max()) + 2, 0, height))
    col0 = int(np.clip(math.floor(reach[:, 1].min()) - 1, 0, width))
    col1 = int(np.clip(math.ceil(reach[:, 1].max()) + 2, 0, width))
    crop = np.zeros((*input_size, 3), dtype=np.uint8)
    if row1 - row0 < 1 or col1 - col0 < 1:
        return crop
    region = image[row0:row1, col0:col1]
    if mask is not None:
        region = region * mask[row0:row1, col0:col1, None]
    offset = offset - np.array([row0, col0])
    for channel in range(3):
        affine_transform(
            np.ascontiguousarray(region[..., channel]),
            matrix,
            offset=offset,
            output=crop[..., channel],
            order=1,
        )
    return crop


def normalize(
    crops: np.ndarray,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """Network input (N,3,h,w) float32 from crops (N,h,w,3) uint8: /255, mean/std, CHW."""
    pixels = crops.astype(np.float32) / np.float32(255.0)
    pixels = (pixels - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))


def preprocess(
    image: np.ndarray,
    boxes_xyxy: np.ndarray,
    masks: np.ndarray | None = None,
    config: ViTPoseConfig | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Network input (N,3,h,w) float32, centres (N,2) and enlarged sizes (N,2) in pixels for N
    boxes (N,4) xyxy of an RGB uint8 image, person n masked by `masks[n]` (N,H,W) bool if given.
    """
    config = config or ViTPoseConfig()
    centers, sizes = box_to_center_size(xyxy_to_xywh(boxes_xyxy), config.input_size, config.padding)
    crops = np.zeros((len(centers), *config.input_size, 3), dtype=np.uint8)
    for n, (center, size) in enumerate(zip(centers, sizes, strict=True)):
        mask = None if masks is None else masks[n]
        crops[n] = warp_person(image, mask, center, size, config.input_size)
    return normalize(crops, config.image_mean, config.image_std), centers, sizes


# Post-processing


def heatmap_maxima(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Argmax (N,K,2) (x, y heatmap pixels, float32) and maxima (N,K) of heatmaps (N,K,h,w).

    A joint whose maximum is <= 0 gets (-1, -1), as in the processor.
    """
    n, k, _, width = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    index = flat.argmax(axis=2)
    scores = np.take_along_axis(flat, index[..., None], axis=2)[..., 0]
    coords = np.stack([index % width, index // width], axis=-1).astype(np.float32)
    coords[scores <= 0] = -1.0
    return coords, scores


def dark_refine(coords: np.ndarray, heatmaps: np.ndarray, kernel: int = 11) -> np.ndarray:
    """DARK sub-pixel refinement (N,K,2) of integer argmax `coords` (N,K,2) on heatmaps (N,K,h,w).

    Smooths each heatmap (Gaussian, sigma 0.8, radius (kernel-1)/2, as transformers does), clips
    to [0.001, 50], takes the log and moves each joint by one Newton step -H^-1 g with central
    differences on the edge-padded map. Joints at -1 (maximum <= 0) are returned unchanged.
    """
    radius = (kernel - 1) // 2
    smooth = gaussian_filter(
        heatmaps.astype(np.float32), sigma=0.8, radius=(radius, radius), axes=(2, 3)
    )
    logmap = np.log(np.clip(smooth, 0.001, 50))
    padded = np.pad(logmap, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    valid = coords[..., 0] >= 0
    x = np.where(valid, coords[..., 0], 0).astype(np.int64) + 1
    y = np.where(valid, coords[..., 1], 0).astype(np.int64) + 1
    n_index, k_index = np.indices(x.shape)

    def at(dy: int, dx: int) -> np.ndarray:
        return padded[n_index, k_index, y + dy, x + dx]

    center = at(0, 0)
    dx = 0.5 * (at(0, 1) - at(0, -1))
    dy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = at(0, 1) - 2 * center + at(0, -1)
    dyy = at(1, 0) - 2 * center + at(-1, 0)
    dxy = 0.5 * (at(1, 1) - at(0, 1) - at(1, 0) + 2 * center - at(0, -1) - at(-1, 0) + at(-1, -1))
    hessian = np.stack([np.stack([dxx, dxy], -1), np.stack([dxy, dyy], -1)], -2)
    hessian = hessian + np.finfo(np.float32).eps * np.eye(2, dtype=np.float32)
    step = np.einsum("nkij,nkj->nki", np.linalg.inv(hessian), np.stack([dx, dy], -1))
    return np.where(valid[..., None], coords - step, coords).astype(np.float32)


def udp_to_image(
    coords: np.ndarray, centers: np.ndarray, sizes: np.ndarray, heatmap_size: tuple[int, int]
) -> np.ndarray:
    """Image pixels (N,K,2) of heatmap coordinates (N,K,2) (UDP):
    x = x_hm * w_box / (w_hm - 1) + c_x - w_box / 2, likewise y; `heatmap_size` = (h_hm, w_hm),
    `centers` (N,2) and `sizes` (N,2) (w, h) of the enlarged boxes in pixels."""
    hm_height, hm_width = heatmap_size
    per_pixel = sizes / np.array([hm_width - 1.0, hm_height - 1.0])
    origin = centers - 0.5 * sizes
    return coords * per_pixel[:, None, :] + origin[:, None, :]


def postprocess(
    heatmaps: np.ndarray, centers: np.ndarray, sizes: np.ndarray, kernel: int = 11
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (N,K,2) float32 image pixels and scores (N,K) float32 (heatmap maxima) from
    heatmaps (N,K,h,w) and the enlarged boxes (`centers`, `sizes` (N,2) pixels)."""
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    coords, scores = heatmap_maxima(heatmaps)
    coords = dark_refine(coords, heatmaps, kernel)
    keypoints = udp_to_image(coords, centers, sizes, heatmaps.shape[2:])
    return keypoints.astype(np.float32), scores.astype(np.float32)


# DTO's use of the keypoints


def enough_visible(
    keypoint_scores: np.ndarray, min_visible: int = 5, thresh: float = 0.5
) -> np.ndarray:
    """(N,) bool: person n has at least `min_visible` joints with score >= `thresh` (N,K)."""
    return (np.asarray(keypoint_scores) >= thresh).sum(axis=-1) >= min_visible


def nms_kp2d(
    keypoints: np.ndarray,
    scores: np.ndarray,
    boxes_xyxy: np.ndarray,
    ratio: float = 1 / 8,
    vis_thresh: float = 0.5,
) -> np.ndarray:
    """Indices (M,) int64 of the people kept by DTO-Humans' keypoint NMS, by descending score.

    Greedy over detector `scores` (N,) (descending, ties in input order): keep person b and
    suppress every remaining person c whose mean joint distance to b is < ratio * 0.6 *
    max(w_b, h_b) (b's box from `boxes_xyxy` (N,4)). With a third column in `keypoints` (N,K,3)
    the mean runs over the joints visible (>= `vis_thresh`) in both, or over all K joints when
    none is; with (N,K,2) over all joints.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    has_visibility = keypoints.shape[-1] == 3
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    suppressed = np.zeros(len(order), dtype=bool)
    kept: list[int] = []
    for rank, b in enumerate(order):
        if suppressed[b]:
            continue
        kept.append(int(b))
        others = order[rank + 1 :][~suppressed[order[rank + 1 :]]]
        if len(others) == 0:
            continue
        distances = np.linalg.norm(keypoints[others, :, :2] - keypoints[b, :, :2], axis=-1)
        if has_visibility:
            common = (keypoints[others, :, 2] >= vis_thresh) & (keypoints[b, :, 2] >= vis_thresh)
            count = common.sum(axis=1)
            mean_common = (distances * common).sum(axis=1) / np.maximum(count, 1)
            mean_distance = np.where(count > 0, mean_common, distances.mean(axis=1))
        else:
            mean_distance = distances.mean(axis=1)
        suppressed[others[mean_distance < ratio * sides[b] * 0.6]] = True
    return np.asarray(kept, dtype=np.int64)


# Adapter


class ViTPoseEstimator(TorchAdapter):
    """KeypointEstimator: COCO-17 keypoints of each detected person with ViTPose (top-down).

    Use `from_pretrained(dir_or_hub_id)` for the official weights or `tiny(seed)` for tests.
    """

    @classmethod
    def from_pretrained(
        cls,
        path_or_hub_id: str | os.PathLike[str] = HUB_ID,
        *,
        batch_size: int = 32,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> ViTPoseEstimator:
        """Load a `save_pretrained` directory (`config.json`, `model.safetensors`, optionally
        `preprocessor_config.json`) or a Hub id (cached snapshot or download) strictly.

        Raises:
            CheckpointError: a missing, unexpected or mis-shaped key (named in the message).
        """
        directory = resolve_weights(path_or_hub_id)
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory}: expected a directory with config.json")
        hf_config = VitPoseConfig.from_pretrained(directory)
        processor_file = Path(directory) / "preprocessor_config.json"
        processor = json.loads(processor_file.read_text()) if processor_file.exists() else None
        config = ViTPoseConfig.from_hf(hf_config, processor, batch_size=batch_size)
        model = VitPoseForPoseEstimation(hf_config)
        load_checked(model, read_state_dict(Path(directory) / WEIGHTS_FILENAME))
        return cls(model, config, device=device, dtype=dtype)

    @classmethod
    def tiny(
        cls,
        seed: int = 0,
        *,
        batch_size: int = 32,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> ViTPoseEstimator:
        """Randomly initialised tiny model (spec B.2; deterministic in `seed`)."""
        config = replace(ViTPoseConfig.tiny(), batch_size=batch_size)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = VitPoseForPoseEstimation(config.to_hf())
        return cls(model, config, device=device, dtype=dtype)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Heatmaps (B,K,h/4,w/4) float32 on CPU for network input (B,3,h,w)."""
        with torch.inference_mode(), autocast(self.device, self.dtype):
            heatmaps = self.model(pixel_values.to(self.device, torch.float32)).heatmaps
        return heatmaps.float().cpu()

    def estimate(self, image: np.ndarray, detections: Detections) -> Keypoints2D:
        """COCO-17 keypoints (N,17,2) pixels and scores (N,17) for the N detections of an RGB
        uint8 (H,W,3) image; person n sees the image times its mask (the plain image when
        `detections.masks` is None). Runs `config.batch_size` people per forward."""
        rgb = as_rgb_uint8(image)
        boxes = np.asarray(detections.boxes_xyxy, dtype=np.float32).reshape(-1, 4)
        masks = detections.masks_for(rgb.shape[:2])
        k = self.config.num_keypoints
        keypoints = np.zeros((len(boxes), k, 2), dtype=np.float32)
        scores = np.zeros((len(boxes), k), dtype=np.float32)
        step = self.config.batch_size
        for start in range(0, len(boxes), step):
            chunk = slice(start, start + step)
            pixels, centers, sizes = preprocess(
                rgb, boxes[chunk], None if masks is None else masks[chunk], self.config
            )
            heatmaps = self.forward(torch.from_numpy(pixels)).numpy()
            keypoints[chunk], scores[chunk] = postprocess(
                heatmaps, centers, sizes, self.config.dark_kernel
            )
        return Keypoints2D(keypoints=keypoints, scores=scores, boxes_xyxy=boxes)
