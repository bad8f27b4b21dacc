"""Relative depth: Depth-Anything-V2 (spec B.6) on transformers `DepthAnythingForDepthEstimation`.

The network is the transformers model; pre- and post-processing follow the ORIGINAL
`DepthAnythingV2.infer_image` (input size 518, "lower bound" resize to multiples of 14 with OpenCV
bicubic, ImageNet normalisation; bilinear align_corners=True up-sampling to the image), not the
HF image processor, whose resize rule and up-sampling differ (spec B.6, "Parity").

Weights load from either layout:
- HF format: a directory with `config.json` + `model.safetensors`, or a Hub id
  `depth-anything/Depth-Anything-V2-{Small,Base,Large}-hf`;
- the official release: `depth_anything_v2_vit{s,b,l}.pth` (plain torch state dict, keys
  `pretrained.*` / `depth_head.*`), a file, a directory holding one, or a Hub id
  `depth-anything/Depth-Anything-V2-{Small,Base,Large}`; renamed with `official_to_hf_names`,
  the fused DINOv2 `attn.qkv` split in thirds along dim 0 into query, key, value.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

from .adapter import TorchAdapter
from .checkpoint import (
    CheckpointError,
    check_layout,
    load_checked,
    manifest,
    read_state_dict,
    resolve_weights,
)
from .image import DEFAULT_MAX_SIDE, IMAGENET_MEAN, IMAGENET_STD, as_rgb_uint8, autocast, limit_size

__all__ = [
    "DepthAnythingV2",
    "DepthAnythingV2Config",
    "build_model",
    "hf_to_official_name",
    "hf_to_official_state_dict",
    "interpolate_pos_encoding",
    "network_input_size",
    "official_layout",
    "official_to_hf_names",
    "official_to_hf_state_dict",
    "preprocess",
    "upsample_disparity",
]

logger = logging.getLogger(__name__)


_OFFICIAL_FILES = {
    384: "depth_anything_v2_vits.pth",
    768: "depth_anything_v2_vitb.pth",
    1024: "depth_anything_v2_vitl.pth",
}
_HUB_SIZES = {"small": 384, "base": 768, "large": 1024}


@dataclass(frozen=True)
class DepthAnythingV2Config:
    """Depth-Anything-V2 architecture (DINOv2 ViT/14 + DPT head) and its input-size rule.

    Defaults are ViT-L, the model DTO uses. `out_indices` count the embedding output as 0 (HF), so
    (5, 12, 18, 24) are the original intermediate layers 4, 11, 17, 23. `input_size` is the lower
    bound of the network input's sides (pixels); `max_input_side` caps its longer side for extreme
    aspect ratios (a deviation, logged); images longer than `max_image_side` are downscaled first.
    """

    encoder: str = "vitl"
    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    mlp_ratio: int = 4
    out_indices: tuple[int, ...] = (5, 12, 18, 24)
    neck_hidden_sizes: tuple[int, ...] = (256, 512, 1024, 1024)
    fusion_hidden_size: int = 256
    head_hidden_size: int = 32
    patch_size: int = 14
    image_size: int = 518
    input_size: int = 518
    max_input_side: int = 4 * 518
    max_image_side: int | None = DEFAULT_MAX_SIDE

    @classmethod
    def small(cls) -> DepthAnythingV2Config:
        """ViT-S: 384 wide, 12 layers, 6 heads (`depth_anything_v2_vits.pth`, Apache-2.0)."""
        return cls(
            encoder="vits",
            hidden_size=384,
            num_hidden_layers=12,
            num_attention_heads=6,
            out_indices=(3, 6, 9, 12),
            neck_hidden_sizes=(48, 96, 192, 384),
            fusion_hidden_size=64,
        )

    @classmethod
    def base(cls) -> DepthAnythingV2Config:
        """ViT-B: 768 wide, 12 layers, 12 heads (`depth_anything_v2_vitb.pth`, CC-BY-NC-4.0)."""
        return cls(
            encoder="vitb",
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            out_indices=(3, 6, 9, 12),
            neck_hidden_sizes=(96, 192, 384, 768),
            fusion_hidden_size=128,
        )

    @classmethod
    def large(cls) -> DepthAnythingV2Config:
        """ViT-L: 1024 wide, 24 layers, 16 heads (`depth_anything_v2_vitl.pth`, CC-BY-NC-4.0)."""
        return cls()

    @classmethod
    def tiny(cls) -> DepthAnythingV2Config:
        """The spec's random test instance (32 wide, 4 layers, input size 56)."""
        return cls(
            encoder="tiny",
            hidden_size=32,
            num_hidden_layers=4,
            num_attention_heads=2,
            mlp_ratio=2,
            out_indices=(1, 2, 3, 4),
            neck_hidden_sizes=(8, 16, 32, 32),
            fusion_hidden_size=16,
            head_hidden_size=8,
            image_size=56,
            input_size=56,
            max_input_side=4 * 56,
        )

    @classmethod
    def for_hidden_size(cls, hidden_size: int) -> DepthAnythingV2Config:
        """The released model (S/B/L) of this embedding width."""
        presets = {384: cls.small, 768: cls.base, 1024: cls.large}
        if hidden_size not in presets:
            raise CheckpointError(
                f"no Depth-Anything-V2 release is {hidden_size} wide (384, 768, 1024); pass config="
            )
        return presets[hidden_size]()

    def hf_config(self) -> DepthAnythingConfig:
        """The transformers configuration of this architecture."""
        backbone = Dinov2Config(
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            mlp_ratio=self.mlp_ratio,
            patch_size=self.patch_size,
            image_size=self.image_size,
            out_indices=list(self.out_indices),
            apply_layernorm=True,
            reshape_hidden_states=False,
        )
        return DepthAnythingConfig(
            backbone_config=backbone,
            patch_size=self.patch_size,
            reassemble_hidden_size=self.hidden_size,
            reassemble_factors=[4, 2, 1, 0.5],
            neck_hidden_sizes=list(self.neck_hidden_sizes),
            fusion_hidden_size=self.fusion_hidden_size,
            head_hidden_size=self.head_hidden_size,
            depth_estimation_type="relative",
        )

    @classmethod
    def from_hf_config(cls, hf: DepthAnythingConfig, **overrides: object) -> DepthAnythingV2Config:
        """Our configuration of a transformers one (e.g. a checkpoint's `config.json`).

        Raises:
            CheckpointError: the configuration is not a relative Depth-Anything-V2 of this design.
        """
        backbone = hf.backbone_config
        fields = {
            "hidden_size": backbone.hidden_size,
            "num_hidden_layers": backbone.num_hidden_layers,
            "num_attention_heads": backbone.num_attention_heads,
            "mlp_ratio": backbone.mlp_ratio,
            "out_indices": tuple(backbone.out_indices),
            "neck_hidden_sizes": tuple(hf.neck_hidden_sizes),
            "fusion_hidden_size": hf.fusion_hidden_size,
            "head_hidden_size": hf.head_hidden_size,
            "patch_size": hf.patch_size,
            "image_size": backbone.image_size,
        }
        known = {384: "vits", 768: "vitb", 1024: "vitl"}
        config = replace(
            cls(encoder=known.get(backbone.hidden_size, "custom"), **fields), **overrides
        )
        checks = {
            "backbone model_type": (backbone.model_type, "dinov2"),
            "reassemble_factors": (list(hf.reassemble_factors), [4, 2, 1, 0.5]),
            "depth_estimation_type": (hf.depth_estimation_type, "relative"),
            "reassemble_hidden_size": (hf.reassemble_hidden_size, backbone.hidden_size),
            "apply_layernorm": (backbone.apply_layernorm, True),
            "reshape_hidden_states": (backbone.reshape_hidden_states, False),
            "use_swiglu_ffn": (backbone.use_swiglu_ffn, False),
            "backbone patch_size": (backbone.patch_size, hf.patch_size),
        }
        bad = [
            f"{k}={got!r} (expected {want!r})" for k, (got, want) in checks.items() if got != want
        ]
        if bad:
            raise CheckpointError("unsupported Depth-Anything configuration: " + ", ".join(bad))
        return config


def interpolate_pos_encoding(
    pos_embed: torch.Tensor, grid_h: int, grid_w: int, offset: float = 0.1
) -> torch.Tensor:
    """Position embeddings (1,1+N,C) of a sqrt(N) x sqrt(N) grid resampled to grid_h x grid_w,
    as the original DINOv2 of Depth-Anything-V2: bicubic with scale factors
    (grid + `offset`)/sqrt(N), which also shifts a side whose patch count is unchanged.
    Returned unchanged for the square grid it was trained on."""
    num_positions = pos_embed.shape[1] - 1
    side = math.isqrt(num_positions)
    if grid_h == grid_w and grid_h * grid_w == num_positions:
        return pos_embed
    dim = pos_embed.shape[-1]
    patch = pos_embed[:, 1:].float().reshape(1, side, side, dim).permute(0, 3, 1, 2)
    patch = F.interpolate(
        patch,
        scale_factor=((grid_h + offset) / side, (grid_w + offset) / side),
        mode="bicubic",
        antialias=False,
    )
    patch = patch.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, dim)
    return torch.cat((pos_embed[:, :1].float(), patch), dim=1).to(pos_embed.dtype)


def build_model(config: DepthAnythingV2Config) -> DepthAnythingForDepthEstimation:
    """The transformers model of `config`, randomly initialised, in eval mode, with the original
    position-embedding interpolation (transformers resamples to the exact grid instead)."""
    model = DepthAnythingForDepthEstimation(config.hf_config()).eval()
    embeddings = model.backbone.embeddings
    patch = config.patch_size

    def original_interpolation(_: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return interpolate_pos_encoding(
            embeddings.position_embeddings, height // patch, width // patch
        )

    embeddings.interpolate_pos_encoding = original_interpolation
    return model


# --- official <-> transformers key names -------------------------------------------------------

_STEM = {
    "pretrained.cls_token": "backbone.embeddings.cls_token",
    "pretrained.mask_token": "backbone.embeddings.mask_token",
    "pretrained.pos_embed": "backbone.embeddings.position_embeddings",
    "pretrained.patch_embed.proj.weight": "backbone.embeddings.patch_embeddings.projection.weight",
    "pretrained.patch_embed.proj.bias": "backbone.embeddings.patch_embeddings.projection.bias",
    "pretrained.norm.weight": "backbone.layernorm.weight",
    "pretrained.norm.bias": "backbone.layernorm.bias",
    "depth_head.scratch.output_conv1.weight": "head.conv1.weight",
    "depth_head.scratch.output_conv1.bias": "head.conv1.bias",
    "depth_head.scratch.output_conv2.0.weight": "head.conv2.weight",
    "depth_head.scratch.output_conv2.0.bias": "head.conv2.bias",
    "depth_head.scratch.output_conv2.2.weight": "head.conv3.weight",
    "depth_head.scratch.output_conv2.2.bias": "head.conv3.bias",
}
# inside one DINOv2 block (`pretrained.blocks.i.` -> `backbone.encoder.layer.i.`)
_BLOCK = {
    **{
        f"{m}.{p}": f"{m}.{p}"
        for m in ("norm1", "norm2", "mlp.fc1", "mlp.fc2")
        for p in ("weight", "bias")
    },
    "attn.proj.weight": "attention.o_proj.weight",
    "attn.proj.bias": "attention.o_proj.bias",
    "ls1.gamma": "layer_scale1.lambda1",
    "ls2.gamma": "layer_scale2.lambda1",
}
_QKV = {p: tuple(f"attention.{q}_proj.{p}" for q in "qkv") for p in ("weight", "bias")}
# inside one fusion block (`depth_head.scratch.refinenet{i}.` -> `neck.fusion_stage.layers.{4-i}.`)
_FUSION = {
    "out_conv.weight": "projection.weight",
    "out_conv.bias": "projection.bias",
    **{
        f"resConfUnit{u}.conv{c}.{p}": f"residual_layer{u}.convolution{c}.{p}"
        for u in (1, 2)
        for c in (1, 2)
        for p in ("weight", "bias")
    },
}


def _inverse(table: Mapping[str, str]) -> dict[str, str]:
    return {v: k for k, v in table.items()}


_STEM_INV, _BLOCK_INV, _FUSION_INV = _inverse(_STEM), _inverse(_BLOCK), _inverse(_FUSION)
_QKV_INV = {hf: f"attn.qkv.{p}" for p, names in _QKV.items() for hf in names}


def official_to_hf_names(name: str) -> tuple[str, ...]:
    """The transformers key(s) of an official Depth-Anything-V2 key; () when it has none.

    Three names (query, key, value) for a fused `attn.qkv.{weight,bias}`, one otherwise. The
    official refinenet1..4 are HF fusion layers 3..0 (the HF neck fuses deepest first).
    """
    if name in _STEM:
        return (_STEM[name],)
    if m := re.fullmatch(r"pretrained\.blocks\.(\d+)\.attn\.qkv\.(weight|bias)", name):
        return tuple(f"backbone.encoder.layer.{m[1]}.{q}" for q in _QKV[m[2]])
    if (m := re.fullmatch(r"pretrained\.blocks\.(\d+)\.(.+)", name)) and m[2] in _BLOCK:
        return (f"backbone.encoder.layer.{m[1]}.{_BLOCK[m[2]]}",)
    if m := re.fullmatch(r"depth_head\.projects\.(\d)\.(weight|bias)", name):
        return (f"neck.reassemble_stage.layers.{m[1]}.projection.{m[2]}",)
    if m := re.fullmatch(r"depth_head\.resize_layers\.(\d)\.(weight|bias)", name):
        return (f"neck.reassemble_stage.layers.{m[1]}.resize.{m[2]}",)
    if m := re.fullmatch(r"depth_head\.scratch\.layer([1-4])_rn\.weight", name):
        return (f"neck.convs.{int(m[1]) - 1}.weight",)
    if (m := re.fullmatch(r"depth_head\.scratch\.refinenet([1-4])\.(.+)", name)) and m[
        2
    ] in _FUSION:
        return (f"neck.fusion_stage.layers.{4 - int(m[1])}.{_FUSION[m[2]]}",)
    return ()


def hf_to_official_name(name: str) -> str | None:
    """The official key of a transformers key (query, key and value share `attn.qkv`); None when
    it has none."""
    if name in _STEM_INV:
        return _STEM_INV[name]
    if m := re.fullmatch(r"backbone\.encoder\.layer\.(\d+)\.(.+)", name):
        part = _QKV_INV.get(m[2]) or _BLOCK_INV.get(m[2])
        return f"pretrained.blocks.{m[1]}.{part}" if part else None
    if m := re.fullmatch(r"neck\.reassemble_stage\.layers\.(\d)\.(projection|resize)\.(.+)", name):
        kind = "projects" if m[2] == "projection" else "resize_layers"
        return f"depth_head.{kind}.{m[1]}.{m[3]}"
    if m := re.fullmatch(r"neck\.convs\.([0-3])\.weight", name):
        return f"depth_head.scratch.layer{int(m[1]) + 1}_rn.weight"
    if (m := re.fullmatch(r"neck\.fusion_stage\.layers\.([0-3])\.(.+)", name)) and (
        m[2] in _FUSION_INV
    ):
        return f"depth_head.scratch.refinenet{4 - int(m[1])}.{_FUSION_INV[m[2]]}"
    return None


def official_to_hf_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official tensors under transformers names, each `attn.qkv` split in thirds along dim 0.

    Keys without a transformers name are kept unchanged (so strict loading reports them).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        names = official_to_hf_names(key) or (key,)
        parts = value.chunk(3, dim=0) if len(names) == 3 else (value,)
        out.update(zip(names, parts, strict=True))
    return out


def hf_to_official_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Transformers tensors under official names, query/key/value fused (concatenated) into
    `attn.qkv`. Keys without an official name are kept unchanged."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        name = hf_to_official_name(key) or key
        if m := re.fullmatch(r"backbone\.encoder\.layer\.\d+\.attention\.([qkv])_proj\.\w+", key):
            qkv.setdefault(name, {})[m[1]] = value
        else:
            out[name] = value
    for name, parts in qkv.items():
        out[name] = torch.cat([parts[q] for q in "qkv"], dim=0)
    return out


def official_layout(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """Name -> shape of the official checkpoint that fits `model` (qkv rows summed)."""
    layout: dict[str, tuple[int, ...]] = {}
    for key, shape in manifest(model).items():
        name = hf_to_official_name(key)
        if name is None:
            raise CheckpointError(f"{key}: model key without an official name")
        if name in layout:
            shape = (layout[name][0] + shape[0], *shape[1:])
        layout[name] = shape
    return layout


_HF_LEGACY = (
    ("attention.attention.query.", "attention.q_proj."),
    ("attention.attention.key.", "attention.k_proj."),
    ("attention.attention.value.", "attention.v_proj."),
    ("attention.output.dense.", "attention.o_proj."),
)


def _hf_current_name(name: str) -> str:
    """Checkpoints converted before transformers 5 (the `-hf` Hub repos) use the older DINOv2
    attention names; the rest is unchanged."""
    for old, new in _HF_LEGACY:
        name = name.replace(old, new)
    return name


# --- pre- and post-processing (pure) -------------------------------------------------------------


def network_input_size(
    height: int,
    width: int,
    input_size: int = 518,
    multiple: int = 14,
    max_side: int | None = None,
) -> tuple[int, int]:
    """Network input (height, width) in pixels for an image of `height` x `width`.

    The original "lower bound" rule: scale = max(input_size/H, input_size/W), so the shorter side
    becomes >= `input_size`; each side rounded (half to even, as `np.round`) to a multiple of
    `multiple`, rounded up instead when that would fall below `input_size`. With `max_side`, a
    longer side above it is scaled down to <= `max_side` (multiples of `multiple`, >= one each;
    not in the original, which has no bound).
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    scale = max(input_size / height, input_size / width)

    def constrain(x: float) -> int:
        y = int(np.round(x / multiple) * multiple)
        return int(np.ceil(x / multiple) * multiple) if y < input_size else y

    size = (constrain(scale * height), constrain(scale * width))
    if max_side is not None and max(size) > max_side:
        shrink = max_side / max(height, width)
        size = tuple(max(multiple, int(s * shrink // multiple) * multiple) for s in (height, width))
        logger.warning(
            "network input for a %dx%d image capped at %dx%d (max_side=%d, aspect %.1f)",
            height,
            width,
            *size,
            max_side,
            max(height, width) / min(height, width),
        )
    return size


def preprocess(
    image_rgb: np.ndarray,
    input_size: int = 518,
    multiple: int = 14,
    max_side: int | None = None,
) -> np.ndarray:
    """Network input (3,h,w) float32 of an RGB uint8 (H,W,3) image.

    /255, bicubic (OpenCV INTER_CUBIC) resize to `network_input_size`, ImageNet mean/std, CHW —
    the original order (resize on the [0,1] float image, so no uint8 rounding or clipping).
    """
    height, width = image_rgb.shape[:2]
    out_h, out_w = network_input_size(height, width, input_size, multiple, max_side)
    # float64 as the original: OpenCV's float32 bicubic differs from it by up to 1e-4
    image = image_rgb.astype(np.float64) / 255.0
    image = cv2.resize(image, (out_w, out_h), interpolation=cv2.INTER_CUBIC)
    image = (image - np.asarray(IMAGENET_MEAN)) / np.asarray(IMAGENET_STD)
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)


def _align_corners_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower source index and fraction per output index for align_corners=True (float32)."""
    if n_in == 1 or n_out == 1:
        return np.zeros(n_out, dtype=np.int64), np.zeros(n_out, dtype=np.float32)
    # integer numerator keeps the end points exact: the last output lands on index n_in - 1
    src = np.arange(n_out, dtype=np.float64) * (n_in - 1) / (n_out - 1)
    lower = np.minimum(np.floor(src).astype(np.int64), n_in - 2)
    return lower, (src - lower).astype(np.float32)


def upsample_disparity(pred: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize (align_corners=True, as the original) of a (h,w) map to `size` = (H,W).

    Returns (H,W) float32; corner values equal `pred`'s corners exactly.
    """
    pred = np.asarray(pred, dtype=np.float32)
    if pred.ndim != 2 or pred.size == 0:
        raise ValueError(f"expected a non-empty (h,w) map, got shape {pred.shape}")
    height, width = size
    rows, fy = _align_corners_weights(pred.shape[0], height)
    cols, fx = _align_corners_weights(pred.shape[1], width)
    rows1 = np.minimum(rows + 1, pred.shape[0] - 1)
    cols1 = np.minimum(cols + 1, pred.shape[1] - 1)
    fy = fy[:, None]
    tall = pred[rows] * (1 - fy) + pred[rows1] * fy
    return tall[:, cols] * (1 - fx) + tall[:, cols1] * fx


# --- adapter -------------------------------------------------------------------------------------


def _randomize(model: torch.nn.Module, seed: int) -> None:
    """Fan-in scaled normal weights and non-zero biases, so a random tiny model's disparity is not
    ~0 everywhere (transformers' own init gives outputs of ~1e-7)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.ndim >= 2:
                std = param[0].numel() ** -0.5
                param.copy_(torch.randn(param.shape, generator=generator) * std)
            elif name.endswith("bias"):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.1)


class DepthAnythingV2(TorchAdapter):
    """Depth-Anything-V2 relative disparity (`DepthEstimator`).

    `estimate(image)` -> (H,W) float32 >= 0, larger = nearer, arbitrary affine scale (NOT metric).
    """

    @classmethod
    def tiny(
        cls,
        seed: int = 0,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> DepthAnythingV2:
        """The spec's tiny random instance (deterministic in `seed`)."""
        config = DepthAnythingV2Config.tiny()
        model = build_model(config)
        _randomize(model, seed)
        return cls(model, config, device=device, dtype=dtype)

    @classmethod
    def from_pretrained(
        cls,
        path_or_hub_id: str | os.PathLike[str],
        config: DepthAnythingV2Config | None = None,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> DepthAnythingV2:
        """Load HF-format or official weights (see the module docstring), strictly.

        `config` defaults to the checkpoint's `config.json` (HF format) or to the release matching
        the embedding width (official `.pth`).

        Raises:
            FileNotFoundError: no weight file at `path_or_hub_id`.
            CheckpointError: naming each missing, unexpected or mis-shaped key.
        """
        weights, config_json = _locate(path_or_hub_id)
        state = read_state_dict(weights)
        if any(k.startswith("pretrained.") for k in state):
            if config is None:
                if "pretrained.cls_token" not in state:
                    raise CheckpointError(f"{weights}: missing pretrained.cls_token")
                config = DepthAnythingV2Config.for_hidden_size(
                    state["pretrained.cls_token"].shape[-1]
                )
            model = build_model(config)
            check_layout(official_layout(model), state, "Depth-Anything-V2 (official layout)")
            load_checked(model, official_to_hf_state_dict(state))
        else:
            if config is None:
                if config_json is None:
                    raise CheckpointError(
                        f"{weights}: HF-layout weights need config.json or config="
                    )
                hf = DepthAnythingConfig.from_json_file(str(config_json))
                config = DepthAnythingV2Config.from_hf_config(hf)
            model = build_model(config)
            load_checked(model, state, key_map=_hf_current_name)
        logger.info("loaded Depth-Anything-V2 %s from %s", config.encoder, weights)
        return cls(model, config, device=device, dtype=dtype)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Disparity (B,h,w) float32 >= 0 of normalised network inputs (B,3,h,w), h and w multiples
        of 14, at the network resolution."""
        with torch.inference_mode(), autocast(self.device, self.dtype):
            out = self.model(pixel_values=pixel_values.to(self.device)).predicted_depth
        return out.float()

    def _prepare(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        rgb = as_rgb_uint8(image)
        size = rgb.shape[:2]
        rgb, _ = limit_size(rgb, self.config.max_image_side)
        c = self.config
        return preprocess(rgb, c.input_size, c.patch_size, c.max_input_side), size

    def estimate(self, image: np.ndarray) -> np.ndarray:
        """Relative disparity (H,W) float32 >= 0 of an RGB uint8 (H,W,3) image."""
        return self.estimate_batch([image], batch_size=1)[0]

    def estimate_batch(self, images: Iterable[np.ndarray], batch_size: int = 8) -> list[np.ndarray]:
        """`estimate` of each image; images with the same network input size run together, at most
        `batch_size` at a time. Output order follows the input."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        prepared = [self._prepare(image) for image in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for index, (x, _) in enumerate(prepared):
            groups.setdefault(x.shape[1:], []).append(index)
        out: list[np.ndarray | None] = [None] * len(prepared)
        for indices in groups.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                batch = torch.from_numpy(np.stack([prepared[i][0] for i in chunk]))
                preds = self.forward(batch).cpu().numpy()
                for i, pred in zip(chunk, preds, strict=True):
                    out[i] = upsample_disparity(pred, prepared[i][1])
        return out  # type: ignore[return-value]


def _locate(path_or_hub_id: str | os.PathLike[str]) -> tuple[Path, Path | None]:
    """(weight file, config.json or None) for a file, a directory or a Hub id."""
    path = Path(path_or_hub_id)
    if path.is_file():
        sibling = path.parent / "config.json"
        return path, sibling if sibling.is_file() else None
    if path.is_dir():
        if (path / "model.safetensors").is_file():
            config_json = path / "config.json"
            return path / "model.safetensors", config_json if config_json.is_file() else None
        official = sorted(path.glob("depth_anything_v2_vit[sbl].pth"))
        if len(official) != 1:
            raise FileNotFoundError(
                f"{path}: expected model.safetensors (+ config.json) or one "
                f"depth_anything_v2_vit{{s,b,l}}.pth, found {[p.name for p in official]}"
            )
        return official[0], None
    repo = str(path_or_hub_id)
    name = repo.rsplit("/", 1)[-1].lower()
    if name.endswith("-hf"):
        return resolve_weights(repo, "model.safetensors"), resolve_weights(repo, "config.json")
    size = next((s for s in _HUB_SIZES if name.endswith(f"-{s}")), None)
    if size is None:
        raise FileNotFoundError(
            f"{repo}: not a file or directory, nor a Hub id "
            "depth-anything/Depth-Anything-V2-{Small,Base,Large}[-hf]"
        )
    return resolve_weights(repo, _OFFICIAL_FILES[_HUB_SIZES[size]]), None
