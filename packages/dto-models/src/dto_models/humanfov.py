"""HumanFoV: the vertical field of view of a whole image, from CameraHMR's `cam_model` (FLNet).

FLNet is an HRNet-W48 backbone whose four branches are brought to 1/32 resolution with strided
convolutions and concatenated (48 + 96 + 192 + 384 = 720 channels), global-average pooled and
mapped by two linear layers to two numbers; the second is the vertical FoV v in radians. The
intrinsics follow as f = H / (2 tan(v/2)), principal point at the image centre.

Weights: `cam_model_cleaned.ckpt` (CameraHMR release, registration required, non-commercial),
a `{"state_dict": ...}` file loaded STRICTLY (keys `backbone.*`, `fc1.*`, `fc2.*`, `fc3.*`).
`fc2` and the HRNet `final_layer` are in the file but unused by the forward; they exist here only
so that the file loads strictly.

Pre-processing replicates the official `resize_image` + `get_cam_intrinsics`: letterbox to
256 x 256 on a white canvas (INTER_AREA), BGR channel order (the official code feeds OpenCV's
BGR image), /255, ImageNet mean/std in their RGB order applied to the B, G, R channels.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from dto_core.camera import intrinsics_from_fov

from .adapter import TorchAdapter
from .checkpoint import load_checked, read_state_dict, resolve_weights
from .image import IMAGENET_MEAN, IMAGENET_STD, as_rgb_uint8, autocast
from .types import FoVEstimate

__all__ = [
    "FLNet",
    "FoVError",
    "HRNet",
    "HumanFoV",
    "HumanFoVConfig",
    "clip_fov",
    "fov_to_K",
    "letterbox",
    "letterbox_geometry",
    "preprocess",
]

logger = logging.getLogger(__name__)

WEIGHTS_FILENAME = "cam_model_cleaned.ckpt"
BN_MOMENTUM = 0.1


class FoVError(ValueError):
    """The network returned a field of view that is not a finite number."""


@dataclass(frozen=True)
class HumanFoVConfig:
    """FLNet hyper-parameters; the defaults are the official HRNet-W48 model.

    Branch k of the HRNet has `width * 2**k` channels (k = 0..3); the pooled feature has
    `15 * width` channels. `fov_range` (radians) is this package's safety clip of the output,
    not part of the official model (see `clip_fov`).
    """

    width: int = 48
    stem_channels: int = 64  # stem convs; layer1 bottlenecks have this many planes (x4 out)
    layer1_blocks: int = 4
    num_modules: tuple[int, int, int] = (1, 4, 3)  # HighResolutionModules in stages 2, 3, 4
    num_blocks: int = 4  # BasicBlocks per branch in every module
    num_joints: int = 24  # output channels of the unused `final_layer`
    hidden_size: int = 1024  # fc1 / fc2 width
    image_size: int = 256  # letterbox side (any multiple of 32 works)
    fov_range: tuple[float, float] = (math.radians(5.0), math.radians(170.0))

    def __post_init__(self) -> None:
        if self.image_size <= 0 or self.image_size % 32:
            raise ValueError(f"image_size must be a positive multiple of 32, got {self.image_size}")
        low, high = self.fov_range
        if not 0.0 < low < high < math.pi:
            raise ValueError(f"fov_range must satisfy 0 < low < high < pi, got {self.fov_range}")

    @classmethod
    def w48(cls) -> HumanFoVConfig:
        """The official model (`hrnet_w48(downsample=True, use_conv=True)` + fc 720->1024->2)."""
        return cls()

    @classmethod
    def tiny(cls) -> HumanFoVConfig:
        """Test-sized model: width 4 (60 pooled channels), one module per stage, one block per
        branch, fc 60->32->2, 64 x 64 input."""
        return cls(
            width=4,
            stem_channels=8,
            layer1_blocks=1,
            num_modules=(1, 1, 1),
            num_blocks=1,
            hidden_size=32,
            image_size=64,
        )

    @property
    def branch_channels(self) -> tuple[int, int, int, int]:
        return tuple(self.width * 2**k for k in range(4))  # type: ignore[return-value]

    @property
    def feature_channels(self) -> int:
        return sum(self.branch_channels)


# ------------------------------------------------------------------------------------------------
# Network


def _conv_bn(
    in_channels: int, out_channels: int, kernel_size: int, stride: int, relu: bool
) -> nn.Sequential:
    """conv (no bias) -> BN [-> ReLU], indexed 0, 1[, 2] like the official Sequentials."""
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False
        ),
        nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity shortcut (channels unchanged)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 (x4 channels) conv-BN layers; a 1x1 conv-BN `downsample` shortcut when
    the channel count changes."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            _conv_bn(in_channels, out_channels, 1, 1, relu=False)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.downsample(x))


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks, then every output branch i sums all branches j brought to
    its resolution (`fuse_layers[i][j]`) and applies ReLU.

    j > i: 1x1 conv-BN then nearest upsampling by 2**(j-i); j < i: (i-j) stride-2 3x3 conv-BN
    (ReLU between them, not after the last); j == i: identity (None in the official code).
    """

    def __init__(self, channels: Sequence[int], num_blocks: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*(BasicBlock(c) for _ in range(num_blocks))) for c in channels
        )
        n = len(channels)
        self.fuse_layers = nn.ModuleList()
        for i in range(n):
            row = nn.ModuleList()
            for j in range(n):
                if j > i:
                    row.append(
                        nn.Sequential(
                            *_conv_bn(channels[j], channels[i], 1, 1, relu=False),
                            nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
                        )
                    )
                elif j == i:
                    row.append(nn.Identity())
                else:
                    row.append(
                        nn.Sequential(
                            *(
                                _conv_bn(channels[j], channels[j], 3, 2, relu=True)
                                for _ in range(i - j - 1)
                            ),
                            _conv_bn(channels[j], channels[i], 3, 2, relu=False),
                        )
                    )
            self.fuse_layers.append(row)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs, strict=True)]
        fused = []
        for row in self.fuse_layers:
            y = row[0](xs[0])
            for j in range(1, len(xs)):
                y = y + row[j](xs[j])
            fused.append(self.relu(y))
        return fused


def _transition(previous: Sequence[int], current: Sequence[int]) -> nn.ModuleList:
    """Inputs of the next stage, which has one branch more than `previous`: each old branch i is
    the previous branch i (3x3 conv-BN-ReLU if its channel count changes, identity otherwise);
    the new branch is a stride-2 3x3 conv-BN-ReLU of the previous last branch, wrapped in a
    one-element Sequential as in the official checkpoint (`transition1.1.0.0.weight`)."""
    layers = nn.ModuleList(
        _conv_bn(before, after, 3, 1, relu=True) if before != after else nn.Identity()
        for before, after in zip(previous, current, strict=False)
    )
    layers.append(nn.Sequential(_conv_bn(previous[-1], current[-1], 3, 2, relu=True)))
    return layers


def _downsample(channels: int, num_layers: int) -> nn.Sequential:
    """`num_layers` x (stride-2 3x3 conv, BN, ReLU), flat (indices 0, 1, 2, 3, ...)."""
    return nn.Sequential(
        *(m for _ in range(num_layers) for m in _conv_bn(channels, channels, 3, 2, True))
    )


class HRNet(nn.Module):
    """HRNet with the "downsample with convs" head: (B,3,S,S) -> (B, 15 width, S/32, S/32)."""

    def __init__(self, config: HumanFoVConfig) -> None:
        super().__init__()
        c = config.branch_channels
        stem = config.stem_channels
        self.conv1 = nn.Conv2d(3, stem, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(stem, stem, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(stem, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        layer1_out = stem * Bottleneck.expansion
        self.layer1 = nn.Sequential(
            Bottleneck(stem, stem),
            *(Bottleneck(layer1_out, stem) for _ in range(config.layer1_blocks - 1)),
        )
        modules2, modules3, modules4 = config.num_modules
        self.transition1 = _transition([layer1_out], c[:2])
        self.stage2 = nn.Sequential(
            *(HighResolutionModule(c[:2], config.num_blocks) for _ in range(modules2))
        )
        self.transition2 = _transition(c[:2], c[:3])
        self.stage3 = nn.Sequential(
            *(HighResolutionModule(c[:3], config.num_blocks) for _ in range(modules3))
        )
        self.transition3 = _transition(c[:3], c)
        self.stage4 = nn.Sequential(
            *(HighResolutionModule(c, config.num_blocks) for _ in range(modules4))
        )
        # Heatmap layer of the pose HRNet: in the checkpoint, never called by FLNet.
        self.final_layer = nn.Conv2d(c[0], config.num_joints, 1)
        self.downsample_stage_1 = _downsample(c[0], 3)
        self.downsample_stage_2 = _downsample(c[1], 2)
        self.downsample_stage_3 = _downsample(c[2], 1)

    @staticmethod
    def _next_inputs(transition: nn.ModuleList, ys: list[torch.Tensor]) -> list[torch.Tensor]:
        return [layer(ys[i] if i < len(ys) else ys[-1]) for i, layer in enumerate(transition)]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(images)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        ys = self.stage2(self._next_inputs(self.transition1, [x]))
        ys = self.stage3(self._next_inputs(self.transition2, ys))
        ys = self.stage4(self._next_inputs(self.transition3, ys))
        return torch.cat(
            [
                self.downsample_stage_1(ys[0]),
                self.downsample_stage_2(ys[1]),
                self.downsample_stage_3(ys[2]),
                ys[3],
            ],
            dim=1,
        )


class FLNet(nn.Module):
    """HRNet features -> global average pool -> fc1 -> dropout -> fc3: (B,3,S,S) -> (B,2).

    Output column 1 is the vertical FoV in radians. There is no non-linearity between fc1 and fc3
    (as in the official forward); `fc2` is never called.
    """

    def __init__(self, config: HumanFoVConfig) -> None:
        super().__init__()
        self.backbone = HRNet(config)
        self.fc1 = nn.Linear(config.feature_channels, config.hidden_size)
        self.fc2 = nn.Linear(config.hidden_size, config.hidden_size)  # checkpoint only
        self.drop2 = nn.Dropout()
        self.fc3 = nn.Linear(config.hidden_size, 2)
        nn.init.xavier_uniform_(self.fc3.weight, gain=0.1)  # official init

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.backbone(images).mean(dim=(2, 3))
        return self.fc3(self.drop2(self.fc1(features)))


# ------------------------------------------------------------------------------------------------
# Pre- and post-processing (pure NumPy)


def letterbox_geometry(height: int, width: int, size: int = 256) -> tuple[int, int, int, int]:
    """(new_height, new_width, top, left) of the official letterbox of an H x W image.

    Landscape (W/H > 1): width -> size, height -> int(size / (W/H)); otherwise (portrait and
    square) height -> size, width -> int(size * (W/H)); truncation, not rounding. Placed at
    ((size - new)//2) on each axis. A side that would truncate to 0 (aspect ratio beyond `size`,
    where the official code crashes) is kept at 1 pixel.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    aspect = width / height
    if aspect > 1:
        new_width, new_height = size, int(size / aspect)
    else:
        new_width, new_height = int(size * aspect), size
    new_height, new_width = max(new_height, 1), max(new_width, 1)
    return new_height, new_width, (size - new_height) // 2, (size - new_width) // 2


def letterbox(image: np.ndarray, size: int = 256) -> np.ndarray:
    """The (H,W,C) uint8 image resized with INTER_AREA to fit `size` x `size` (aspect kept) and
    pasted centred on a white (255) canvas; channel order unchanged. Returns (size,size,C) uint8."""
    new_height, new_width, top, left = letterbox_geometry(*image.shape[:2], size)
    resized = cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_AREA)
    canvas = np.full((size, size, image.shape[2]), 255, dtype=np.uint8)
    canvas[top : top + new_height, left : left + new_width] = resized.reshape(
        new_height, new_width, -1
    )
    return canvas


def preprocess(image_rgb: np.ndarray, size: int = 256) -> np.ndarray:
    """Network input (3,size,size) float32 of an RGB uint8 (H,W,3) image, as the official code.

    Letterbox, RGB -> BGR (the official code feeds OpenCV's BGR image), /255, then
    (x - mean[c]) / std[c] with the ImageNet mean/std in their usual (R,G,B) order applied to
    channels (B,G,R) in that order.
    """
    bgr = letterbox(image_rgb, size)[..., ::-1]
    pixels = bgr.astype(np.float32).transpose(2, 0, 1) / np.float32(255.0)
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(IMAGENET_STD, dtype=np.float32)[:, None, None]
    return np.ascontiguousarray((pixels - mean) / std, dtype=np.float32)


def fov_to_K(fov_y: float, height: int, width: int) -> np.ndarray:
    """Intrinsics (3,3) float64 of an H x W image with vertical FoV `fov_y` (radians):
    f = H / (2 tan(fov_y/2)) for fx = fy, principal point (W/2, H/2)."""
    if not 0.0 < fov_y < math.pi:
        raise ValueError(f"vertical FoV must be in (0, pi) radians, got {fov_y}")
    return intrinsics_from_fov(fov_y, height, width)


def clip_fov(fov_y: np.ndarray, fov_range: tuple[float, float]) -> np.ndarray:
    """`fov_y` (N,) radians clipped to `fov_range`, with a logged warning when any value is
    clipped (the official code would produce a negative or absurd focal length).

    Raises:
        FoVError: a value is NaN or infinite (broken weights or input; nothing sane to clip to).
    """
    fov_y = np.asarray(fov_y, dtype=np.float64)
    bad = ~np.isfinite(fov_y)
    if bad.any():
        raise FoVError(f"HumanFoV returned non-finite FoV at batch indices {np.flatnonzero(bad)}")
    low, high = fov_range
    outside = (fov_y < low) | (fov_y > high)
    if outside.any():
        logger.warning(
            "HumanFoV output(s) %s rad outside [%.4f, %.4f] rad clipped",
            np.round(fov_y[outside], 4).tolist(),
            low,
            high,
        )
    return np.clip(fov_y, low, high)


# ------------------------------------------------------------------------------------------------
# Adapter


class HumanFoV(TorchAdapter):
    """FoVEstimator: vertical FoV and intrinsics of whole RGB images with FLNet.

    Use `from_pretrained(path)` for the official weights or `tiny(seed)` for tests.
    """

    @classmethod
    def from_pretrained(
        cls,
        path_or_hub_id: str | os.PathLike[str],
        *,
        config: HumanFoVConfig | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> HumanFoV:
        """Load `cam_model_cleaned.ckpt` (a file, or a directory holding it) strictly.

        Raises:
            CheckpointError: a missing, unexpected or mis-shaped key (named in the message).
        """
        config = config or HumanFoVConfig()
        weights = resolve_weights(path_or_hub_id, WEIGHTS_FILENAME)
        model = FLNet(config)
        load_checked(model, read_state_dict(weights))
        return cls(model, config, device=device, dtype=dtype)

    @classmethod
    def tiny(
        cls,
        seed: int = 0,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> HumanFoV:
        """Randomly initialised tiny model (deterministic in `seed`). The FoV output's bias is set
        to 60 degrees so that random-weight outputs land inside `fov_range`."""
        config = HumanFoVConfig.tiny()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = FLNet(config)
        with torch.no_grad():
            model.fc3.bias[1] = math.radians(60.0)
        return cls(model, config, device=device, dtype=dtype)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Raw network output (B,2) float32 on CPU for pre-processed input (B,3,S,S)."""
        with torch.inference_mode(), autocast(self.device, self.dtype):
            out = self.model(pixel_values.to(self.device, torch.float32))
        return out.float().cpu()

    def estimate(self, image: np.ndarray) -> FoVEstimate:
        """Vertical FoV (radians) and K (3,3) of an RGB uint8 (H,W,3) image."""
        return self.estimate_batch([image])[0]

    def estimate_batch(
        self, images: Sequence[np.ndarray], batch_size: int = 16
    ) -> list[FoVEstimate]:
        """`estimate` for several images of any sizes, run `batch_size` at a time."""
        rgbs = [as_rgb_uint8(image) for image in images]
        if not rgbs:
            return []
        pixels = np.stack([preprocess(rgb, self.config.image_size) for rgb in rgbs])
        fov = np.concatenate(
            [
                self.forward(torch.from_numpy(pixels[start : start + batch_size]))[:, 1].numpy()
                for start in range(0, len(pixels), batch_size)
            ]
        )
        fov = clip_fov(fov, self.config.fov_range)
        return [
            FoVEstimate(fov_y=float(v), K=fov_to_K(float(v), *rgb.shape[:2]))
            for v, rgb in zip(fov, rgbs, strict=True)
        ]
