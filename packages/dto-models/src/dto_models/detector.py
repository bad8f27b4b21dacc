"""Person detector with instance masks: torchvision's Mask R-CNN (ResNet-50-FPN v2, COCO).

Deviation from DTO-Humans: the official detector is Detectron2's ViTDet-H Cascade Mask R-CNN
(`model_final_f05665.pkl`, ~60 box AP / 52 mask AP on COCO, longest side 1024); this package uses
the pip-installable `torchvision.models.detection.maskrcnn_resnet50_fpn_v2` with
`MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1` (`maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth`, a
torch state dict, 47.4 box AP / 41.8 mask AP, 46.4 M parameters, BSD-3-Clause), so recall and
mask outlines differ. The settings follow the official overrides: class-wise NMS at IoU 0.7,
at most 100 detections, score > 0.5 (strict, as Detectron2's `scores > thresh`), masks
thresholded at 0.5 at the image's resolution. Any object with a `detect(image) -> Detections`
method can replace this one (`PersonDetector` protocol).

torchvision resizes internally (shorter side 800, longer <= 1333) and pastes the masks at the
input's resolution as float32 (N,1,H,W) for every class; to bound that and the (3,H,W) float
input, images whose longer side exceeds `max_side` (2048) are first downscaled (`limit_size`,
logged), and the boxes and mask probabilities are mapped back to the original pixels.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torchvision.models.detection import MaskRCNN, maskrcnn_resnet50_fpn_v2
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign

from .adapter import TorchAdapter
from .checkpoint import load_checked, read_state_dict, resolve_weights
from .image import as_rgb_uint8, autocast, limit_size
from .types import Detections

__all__ = [
    "COCO_PERSON_LABEL",
    "WEIGHTS_FILENAME",
    "WEIGHTS_URL",
    "DetectorConfig",
    "MaskRCNNDetector",
    "TinyBackbone",
    "binarize_masks",
    "boxes_to_original",
    "build_maskrcnn",
    "empty_detections",
    "select_persons",
    "to_input",
    "torchvision_weights_path",
]

logger = logging.getLogger(__name__)

COCO_PERSON_LABEL = 1  # torchvision's 91-category COCO indexing (Detectron2's person is 0)
WEIGHTS_FILENAME = "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth"
WEIGHTS_URL = f"https://download.pytorch.org/models/{WEIGHTS_FILENAME}"
TORCHVISION_WEIGHT_NAMES = frozenset(
    {
        "COCO_V1",
        "DEFAULT",
        "MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1",
        "MaskRCNN_ResNet50_FPN_V2_Weights.DEFAULT",
    }
)


@dataclass(frozen=True)
class DetectorConfig:
    """Mask R-CNN settings; the defaults are the COCO ResNet-50-FPN v2 model with DTO's overrides.

    `arch` is "resnet50_fpn_v2" or "tiny" (spec B.1's test model). `min_size` / `max_size` are
    torchvision's internal resize; `max_side` (pixels, None = never) bounds the image handed to
    it. `batch_size` images of the same size per forward.
    """

    arch: str = "resnet50_fpn_v2"
    num_classes: int = 91
    person_label: int = COCO_PERSON_LABEL
    score_thresh: float = 0.5
    nms_thresh: float = 0.7
    detections_per_img: int = 100
    mask_thresh: float = 0.5
    min_size: int = 800
    max_size: int = 1333
    max_side: int | None = 2048
    batch_size: int = 2

    @classmethod
    def resnet50_fpn_v2(cls) -> DetectorConfig:
        """COCO Mask R-CNN ResNet-50-FPN v2 (the default)."""
        return cls()

    @classmethod
    def tiny(cls) -> DetectorConfig:
        """Spec B.1's tiny model: 2 classes, images resized to 64..96 px, every score kept."""
        return cls(arch="tiny", num_classes=2, score_thresh=0.0, min_size=64, max_size=96)


class TinyBackbone(nn.Sequential):
    """Two stride-2 convolutions with ReLU, 16 output channels (a stand-in for ResNet-50-FPN)."""

    out_channels = 16

    def __init__(self) -> None:
        super().__init__(
            nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(8, self.out_channels, kernel_size=3, stride=2, padding=1),
            nn.ReLU(inplace=True),
        )


def build_maskrcnn(config: DetectorConfig) -> MaskRCNN:
    """A randomly initialised Mask R-CNN of `config.arch` (nothing downloaded)."""
    settings = dict(
        box_score_thresh=config.score_thresh,
        box_nms_thresh=config.nms_thresh,
        box_detections_per_img=config.detections_per_img,
        min_size=config.min_size,
        max_size=config.max_size,
    )
    if config.arch == "resnet50_fpn_v2":
        return maskrcnn_resnet50_fpn_v2(
            weights=None, weights_backbone=None, num_classes=config.num_classes, **settings
        )
    if config.arch == "tiny":
        return MaskRCNN(
            TinyBackbone(),
            rpn_anchor_generator=AnchorGenerator(((16, 32, 64),), ((0.5, 1.0, 2.0),)),
            box_roi_pool=MultiScaleRoIAlign(["0"], 7, 2),
            mask_roi_pool=MultiScaleRoIAlign(["0"], 14, 2),
            box_head=TwoMLPHead(TinyBackbone.out_channels * 7 * 7, 64),
            box_predictor=FastRCNNPredictor(64, config.num_classes),
            mask_head=MaskRCNNHeads(TinyBackbone.out_channels, [16, 16], 1),
            mask_predictor=MaskRCNNPredictor(16, 16, config.num_classes),
            rpn_pre_nms_top_n_test=200,
            rpn_post_nms_top_n_test=200,
            **settings,
        )
    raise ValueError(f"unknown detector arch {config.arch!r} (resnet50_fpn_v2 or tiny)")


def torchvision_weights_path(name: str = "COCO_V1") -> Path:
    """The torch hub cache file (`$TORCH_HOME/hub/checkpoints`) of torchvision weights `name`.

    Raises:
        FileNotFoundError: not cached; nothing is downloaded here.
    """
    if name not in TORCHVISION_WEIGHT_NAMES:
        raise ValueError(f"unknown weights {name!r}; one of {sorted(TORCHVISION_WEIGHT_NAMES)}")
    path = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILENAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: download {WEIGHTS_URL} there (or run torchvision's "
            "MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1.get_state_dict()), or pass the file's path"
        )
    return path


# Pre- and post-processing


def empty_detections(height: int, width: int) -> Detections:
    """No people: boxes (0,4) float32, scores (0,) float32, masks (0,H,W) bool."""
    return Detections(
        boxes_xyxy=np.zeros((0, 4), np.float32),
        scores=np.zeros((0,), np.float32),
        masks=np.zeros((0, height, width), bool),
    )


def to_input(image: np.ndarray, max_side: int | None = 2048) -> tuple[np.ndarray, float]:
    """Network input (3,h,w) float32 RGB in [0,1] of an RGB uint8 image, downscaled so that its
    longer side is <= `max_side`, and the scale (input pixels per original pixel)."""
    small, scale = limit_size(image, max_side)
    return np.ascontiguousarray(small.transpose(2, 0, 1), dtype=np.float32) / 255.0, scale


def select_persons(
    boxes: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    mask_probs: np.ndarray,
    *,
    person_label: int = COCO_PERSON_LABEL,
    score_thresh: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (M,4), scores (M,), mask probabilities (M,h,w) of the detections (N,...) with label
    `person_label` and score > `score_thresh` (strict), in input order."""
    keep = (np.asarray(labels) == person_label) & (np.asarray(scores) > score_thresh)
    return boxes[keep], scores[keep], mask_probs[keep]


def boxes_to_original(
    boxes_xyxy: np.ndarray, input_hw: tuple[int, int], image_hw: tuple[int, int]
) -> np.ndarray:
    """Boxes (N,4) xyxy in pixels of an (H,W) image from boxes on its resized (h,w) copy."""
    scale_x = image_hw[1] / input_hw[1]
    scale_y = image_hw[0] / input_hw[0]
    return (np.asarray(boxes_xyxy, np.float64) * [scale_x, scale_y, scale_x, scale_y]).astype(
        np.float32
    )


def binarize_masks(
    mask_probs: np.ndarray, image_hw: tuple[int, int], thresh: float = 0.5
) -> np.ndarray:
    """Masks (N,H,W) bool: probabilities (N,h,w) resized bilinearly to (H,W) if needed, > thresh."""
    height, width = image_hw
    if mask_probs.shape[1:] == (height, width):
        return mask_probs > thresh
    masks = np.zeros((len(mask_probs), height, width), bool)
    for n, probs in enumerate(mask_probs):
        masks[n] = cv2.resize(probs, (width, height), interpolation=cv2.INTER_LINEAR) > thresh
    return masks


# Adapter


class MaskRCNNDetector(TorchAdapter):
    """PersonDetector: boxes, scores and instance masks of the people in RGB images.

    Use `from_pretrained(path)` for the COCO weights or `tiny(seed)` for tests.
    """

    @classmethod
    def from_pretrained(
        cls,
        path_or_name: str | os.PathLike[str] = "COCO_V1",
        *,
        config: DetectorConfig | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> MaskRCNNDetector:
        """Load `maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth` strictly: a file path, a directory
        holding it, or a torchvision weights name ("COCO_V1", "DEFAULT", ...) already in the torch
        hub cache.

        Raises:
            CheckpointError: a missing, unexpected or mis-shaped key (named in the message).
            FileNotFoundError: no such file (nothing is downloaded for weights names).
        """
        config = config or DetectorConfig()
        if str(path_or_name) in TORCHVISION_WEIGHT_NAMES:
            path = torchvision_weights_path(str(path_or_name))
        else:
            path = resolve_weights(path_or_name, WEIGHTS_FILENAME)
        model = build_maskrcnn(config)
        load_checked(model, read_state_dict(path))
        return cls(model, config, device=device, dtype=dtype)

    @classmethod
    def tiny(
        cls,
        seed: int = 0,
        *,
        score_thresh: float = 0.0,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> MaskRCNNDetector:
        """Randomly initialised tiny Mask R-CNN (spec B.1; deterministic in `seed`)."""
        config = replace(DetectorConfig.tiny(), score_thresh=score_thresh)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_maskrcnn(config)
        return cls(model, config, device=device, dtype=dtype)

    def forward(self, images: Sequence[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """torchvision's raw outputs (boxes, labels, scores, masks (N,1,h,w)) on CPU, float32,
        for images (3,h,w) float in [0,1] (any sizes; padded together by torchvision)."""
        with torch.inference_mode(), autocast(self.device, self.dtype):
            outputs = self.model([image.to(self.device, torch.float32) for image in images])
        return [
            {k: v.float().cpu() if v.is_floating_point() else v.cpu() for k, v in out.items()}
            for out in outputs
        ]

    def detect(self, image: np.ndarray) -> Detections:
        """People in an RGB uint8 (H,W,3) image (grayscale / RGBA accepted)."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """`detect` for several images; images of equal size run `config.batch_size` at a time
        (never padded together with other sizes, so the result equals one-by-one)."""
        rgbs = [as_rgb_uint8(image) for image in images]
        inputs = [to_input(rgb, self.config.max_side)[0] for rgb in rgbs]
        by_size: dict[tuple[int, ...], list[int]] = {}
        for index, pixels in enumerate(inputs):
            by_size.setdefault(pixels.shape, []).append(index)
        results: list[Detections | None] = [None] * len(rgbs)
        step = self.config.batch_size
        for indices in by_size.values():
            for start in range(0, len(indices), step):
                chunk = indices[start : start + step]
                outputs = self.forward([torch.from_numpy(inputs[i]) for i in chunk])
                for i, out in zip(chunk, outputs, strict=True):
                    results[i] = self._postprocess(out, inputs[i].shape[1:], rgbs[i].shape[:2])
        return results  # type: ignore[return-value]

    def _postprocess(
        self, out: dict[str, torch.Tensor], input_hw: tuple[int, int], image_hw: tuple[int, int]
    ) -> Detections:
        boxes, scores, probs = select_persons(
            out["boxes"].numpy(),
            out["labels"].numpy(),
            out["scores"].numpy(),
            out["masks"][:, 0].numpy(),
            person_label=self.config.person_label,
            score_thresh=self.config.score_thresh,
        )
        if len(scores) == 0:
            return empty_detections(*image_hw)
        return Detections(
            boxes_xyxy=boxes_to_original(boxes, input_hw, image_hw),
            scores=scores.astype(np.float32),
            masks=binarize_masks(probs, image_hw, self.config.mask_thresh),
        )
