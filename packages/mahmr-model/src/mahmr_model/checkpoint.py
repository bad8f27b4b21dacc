"""Checkpoints: strict loading with reports, the official SAT-HMR / MA-HMR layouts, DINOv2
initialisation, and our safetensors format.

Nothing loads partially without saying so: every loader compares names and shapes first and
raises `CheckpointError` listing missing, unexpected and mis-shaped keys; keys that are dropped
on purpose (derivable buffers, SMPL data, training-only modules) are listed in the returned
`LoadReport` with the reason, and logged.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from dto_core.atomic import write_atomic

from .config import MAHMRConfig
from .tokens import z_order_table

if TYPE_CHECKING:
    from .body import SMPLBody
    from .model import MAHMR

__all__ = [
    "CheckpointError",
    "LoadReport",
    "detect_official_variant",
    "from_official_names",
    "init_from_dinov2",
    "load_checkpoint_file",
    "load_official_state_dict",
    "load_state_dict_checked",
    "read_state_dict",
    "save_safetensors",
    "to_official_name",
    "to_official_state_dict",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = "1"
ARCHITECTURE = "MAHMR"

# official name prefix -> ours, first match wins (specific before general)
OFFICIAL_PREFIXES = (
    ("encoder.additional_blocks.", "encoder.map_blocks."),
    ("enc_inter_norm.", "encoder.map_norm."),
    ("scale_head.", "encoder.scale_head."),
    ("encoder_patch_proj.0.", "encoder.patch_embed_fine."),
    ("encoder_patch_proj.1.", "encoder.patch_embed_coarse."),
    ("encoder_pos_embeds", "encoder.pos_embed"),
    ("encoder_cr_token", "encoder.camera_token"),
    ("decoder.decoder.bbox_embed.", "decoder.box_heads."),
    ("decoder.decoder.", "decoder."),
    ("pose_head.", "pose_heads."),
    ("shape_head.", "shape_heads."),
)
ALIAS_PREFIX = ("bbox_embed.", "decoder.decoder.bbox_embed.")  # the same modules registered twice
SMPL_PREFIX = "human_model."
SMPL_BUFFERS = {  # official `human_model.layer_n.<name>` -> our `SMPLBody` buffer
    "shapedirs": "shapedirs",
    "faces_tensor": "faces",
    "v_template": "v_template",
    "J_regressor": "j_regressor",
    "posedirs": "posedirs",
    "parents": "parents",
    "lbs_weights": "lbs_weights",
    "vertex_joint_selector.extra_joints_idxs": "extra_joint_ids",
}
DERIVED_BUFFERS = ("cam_intrinsics", "z_order_map", "y_coords", "x_coords")
DENOISING_PREFIX = "dn_enc."


class CheckpointError(ValueError):
    """A checkpoint does not fit the model (names, shapes or variant)."""


@dataclass
class LoadReport:
    """What a loader did: `loaded` model keys, `dropped` source keys with the reason."""

    loaded: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)

    def drop(self, keys: list[str], reason: str) -> None:
        for key in keys:
            self.dropped[key] = reason
        if keys:
            logger.info("dropped %d checkpoint keys (%s): %s", len(keys), reason, _preview(keys))


def _preview(keys: list[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def load_state_dict_checked(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], assign: bool = False
) -> LoadReport:
    """`load_state_dict(strict=True)` after an explicit name / shape comparison.

    Raises:
        CheckpointError: naming every missing, unexpected and mis-shaped key.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(state_dict))
        if tuple(state_dict[k].shape) != tuple(expected[k].shape)
    ]
    problems = [
        f"{label} ({len(keys)}): {_preview(keys)}"
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("shape mismatch", mismatched),
        )
        if keys
    ]
    if problems:
        raise CheckpointError("checkpoint does not match the model; " + "; ".join(problems))
    model.load_state_dict(dict(state_dict), strict=True, assign=assign)
    return LoadReport(loaded=sorted(expected))


def read_state_dict(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """A state dict from `.safetensors` or a torch pickle (`.pth` / `.bin`, `weights_only=True`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file not found")
    if path.suffix == ".safetensors":
        try:
            return load_file(path, device=str(map_location))
        except SafetensorError as exc:
            raise CheckpointError(_unreadable(path, "safetensors", exc)) from exc
    try:
        try:
            state = torch.load(path, map_location=map_location, weights_only=True, mmap=True)
        except RuntimeError:  # legacy (non-zip) serialisation cannot be memory-mapped
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):  # not an object refusal: broken pickle data
            raise CheckpointError(_unreadable(path, "PyTorch", exc)) from exc
        raise CheckpointError(
            f"{path}: holds Python objects besides tensors, which are never unpickled here; "
            "give a plain state dict of tensors (the official .pth / .bin release files are)"
        ) from exc
    except (RuntimeError, EOFError, OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(_unreadable(path, "PyTorch", exc)) from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"{path}: not a plain state dict of tensors (extract the model's state dict first)"
        )
    return state


def _unreadable(path: Path, kind: str, exc: BaseException) -> str:
    """One line: the file, what it should be, the reader's first line (never torch's advice to
    unpickle with weights_only=False)."""
    lines = str(exc).strip().splitlines()
    reason = lines[0][:120] if lines and "weights_only" not in lines[0] else type(exc).__name__
    return (
        f"{path}: not a readable {kind} checkpoint ({reason}); the file is truncated, corrupt "
        "or of another format: download or export it again"
    )


# ------------------------------------------------------------------------------------------
# official SAT-HMR / MA-HMR checkpoints


def detect_official_variant(state_dict: Mapping[str, torch.Tensor]) -> str:
    """The config variant of an official state dict: FoV head present? 10 or 11 betas?"""
    if "mean_shape" not in state_dict or "encoder_pos_embeds" not in state_dict:
        raise CheckpointError(
            "not an official SAT-HMR / MA-HMR state dict (no mean_shape / encoder_pos_embeds)"
        )
    num_betas = int(state_dict["mean_shape"].shape[0])
    has_fov = any(k.startswith("fov_head.") for k in state_dict)
    variants = {(False, 10): "sat_hmr_stage1", (True, 10): "mahmr_fov", (True, 11): "mahmr"}
    if (has_fov, num_betas) not in variants:
        raise CheckpointError(f"unknown official variant: FoV head {has_fov}, {num_betas} betas")
    return variants[(has_fov, num_betas)]


def from_official_names(key: str) -> str:
    """Our name of an official network key."""
    for official, ours in OFFICIAL_PREFIXES:
        if key.startswith(official):
            return ours + key[len(official) :]
    return key


def to_official_name(key: str) -> str:
    """The official name of one of our network keys (inverse of `from_official_names`)."""
    for official, ours in OFFICIAL_PREFIXES:
        if key.startswith(ours) and from_official_names(official + key[len(ours) :]) == key:
            return official + key[len(ours) :]
    return key


def official_derived_buffers(config: MAHMRConfig) -> dict[str, torch.Tensor]:
    """The official fixed-camera and z-order buffers implied by a config."""
    focal, half = config.fixed_focal, config.input_size / 2
    cam = torch.tensor(
        [[focal, 0.0, half], [0.0, focal, half], [0.0, 0.0, 1.0]], dtype=torch.float32
    )
    depth = math.ceil(math.log2(config.grid_sizes[1]))
    z_map, ys, xs = z_order_table(depth)
    return {"cam_intrinsics": cam, "z_order_map": z_map, "y_coords": ys, "x_coords": xs}


def load_official_state_dict(
    model: MAHMR, state_dict: Mapping[str, torch.Tensor], assign: bool = False
) -> LoadReport:
    """Load an official SAT-HMR `.pth` / MA-HMR `.bin` state dict strictly.

    Checked and dropped: the aliases `bbox_embed.*` (must equal `decoder.decoder.bbox_embed.*`),
    the derivable buffers (fixed camera, z-order tables: must equal this config's), the SMPL
    buffers `human_model.*` (licensed model data; the body layer comes from SMPL files), and
    `dn_enc.*` when the model is built without the denoising encoder. Everything else must
    match name by name and shape by shape.

    Raises:
        CheckpointError: another variant, another canvas / camera, or any key mismatch.
    """
    cfg = model.config
    variant = detect_official_variant(state_dict)
    official_fov, official_betas = (
        variant != "sat_hmr_stage1",
        int(state_dict["mean_shape"].shape[0]),
    )
    if (official_fov, official_betas) != (cfg.fov_head, cfg.num_betas):
        raise CheckpointError(
            f"checkpoint is an official {variant!r} model (FoV head {official_fov}, "
            f"{official_betas} betas) but the model is {cfg.variant!r} (FoV head "
            f"{cfg.fov_head}, {cfg.num_betas} betas); "
            f"build it with MAHMR.from_official(path) or get_config({variant!r})"
        )
    report = LoadReport()
    for name, value in official_derived_buffers(cfg).items():
        if name in state_dict and not torch.equal(state_dict[name].cpu().to(value.dtype), value):
            raise CheckpointError(
                f"official buffer {name} differs from this config's (input_size {cfg.input_size})"
            )
    report.drop(
        [k for k in DERIVED_BUFFERS if k in state_dict], "derived from the config and checked equal"
    )
    aliases = [k for k in state_dict if k.startswith(ALIAS_PREFIX[0])]
    ours: dict[str, torch.Tensor] = {}
    for key in aliases:
        target = ALIAS_PREFIX[1] + key[len(ALIAS_PREFIX[0]) :]
        if target in state_dict and not torch.equal(state_dict[target], state_dict[key]):
            raise CheckpointError(f"{key} differs from its alias {target}")
        if target not in state_dict:
            ours[from_official_names(target)] = state_dict[key]
    report.drop(aliases, "alias of decoder.decoder.bbox_embed (same tensors)")
    report.drop(
        sorted(k for k in state_dict if k.startswith(SMPL_PREFIX)),
        "SMPL model buffers (licensed data)",
    )
    if cfg.denoising is False:
        report.drop(
            sorted(k for k in state_dict if k.startswith(DENOISING_PREFIX)),
            "denoising encoder (training only)",
        )
    for key, value in state_dict.items():
        if key not in report.dropped:
            ours[from_official_names(key)] = value
    report.loaded = load_state_dict_checked(model, ours, assign=assign).loaded
    return report


def to_official_state_dict(model: MAHMR, body: SMPLBody | None = None) -> dict[str, torch.Tensor]:
    """Our state dict under the official names, with aliases and derived buffers restored, and
    the SMPL buffers (`human_model.layer_n.*`) when a body layer is given."""
    out = {to_official_name(k): v for k, v in model.state_dict().items()}
    for key in [k for k in out if k.startswith(ALIAS_PREFIX[1])]:
        out[ALIAS_PREFIX[0] + key[len(ALIAS_PREFIX[1]) :]] = out[key]
    out.update(official_derived_buffers(model.config))
    if body is not None:
        for official, ours in SMPL_BUFFERS.items():
            out[f"{SMPL_PREFIX}layer_n.{official}"] = getattr(body, ours)
    return out


# ------------------------------------------------------------------------------------------
# DINOv2 initialisation


def init_from_dinov2(model: MAHMR, state_dict: Mapping[str, torch.Tensor]) -> LoadReport:
    """Initialise the encoder from DINOv2 ViT weights (official `dinov2_vitb14_pretrain.pth` or
    timm's `vit_base_patch14_dinov2.lvd142m`; the layouts differ only by `mask_token`).

    Blocks and the final norm are copied, the first blocks also into the coarse-pass copies; the
    patch conv into both patch embeddings; the final norm also into the scale-map norm; the
    37 x 37 position table is resized to the 14 px grid (bicubic, scale factor (G + 0.1) / 37,
    no antialiasing, as DINOv2); the camera token is the CLS token plus its position embedding.
    Decoder and heads keep their initialisation.
    """
    enc = model.encoder
    src = dict(state_dict)
    report = LoadReport()
    report.drop(
        [k for k in ("mask_token",) if k in src], "DINOv2 mask token (masked-image training only)"
    )
    src.pop("mask_token", None)
    table = src.pop("pos_embed", None)
    cls_token = src.pop("cls_token", None)
    if table is None or cls_token is None:
        raise CheckpointError("DINOv2 state dict needs pos_embed and cls_token")
    side = math.isqrt(table.shape[1] - 1)
    if table.shape[1] != side * side + 1 or table.shape[-1] != model.config.embed_dim:
        raise CheckpointError(
            f"DINOv2 pos_embed {tuple(table.shape)}: "
            f"expected (1, 1 + M^2, {model.config.embed_dim})"
        )
    grid = model.config.grid_sizes[0]
    patch_table = table[0, 1:].float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
    resized = F.interpolate(
        patch_table, scale_factor=(grid + 0.1) / side, mode="bicubic", antialias=False
    )
    if tuple(resized.shape[-2:]) != (grid, grid):
        raise CheckpointError(
            f"resized position table {tuple(resized.shape[-2:])} != ({grid}, {grid})"
        )
    mapped = {
        "pos_embed": resized[0].permute(1, 2, 0),
        "camera_token": (cls_token.reshape(1, -1) + table[0, :1]).float(),
    }
    for key, value in src.items():
        if key.startswith("patch_embed.proj."):
            name = key[len("patch_embed.proj.") :]
            mapped[f"patch_embed_fine.{name}"] = mapped[f"patch_embed_coarse.{name}"] = value
        elif key.startswith("norm."):
            mapped[key] = mapped["map_norm." + key[len("norm.") :]] = value
        elif key.startswith("blocks."):
            mapped[key] = value
            index, rest = key[len("blocks.") :].split(".", 1)
            if int(index) < model.config.num_map_blocks:
                mapped[f"map_blocks.{index}.{rest}"] = value
        else:
            mapped[key] = value  # unexpected (e.g. a classifier head): reported below
    targets = {k: v for k, v in enc.state_dict().items() if not k.startswith("scale_head.")}
    missing = sorted(set(targets) - set(mapped))
    unexpected = sorted(set(mapped) - set(targets))
    mismatched = sorted(
        k for k in set(mapped) & set(targets) if mapped[k].shape != targets[k].shape
    )
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"DINOv2 weights do not fit the encoder: missing {_preview(missing)}; "
            f"unexpected {_preview(unexpected)}; shape mismatch {_preview(mismatched)}"
        )
    with torch.no_grad():
        for key, value in mapped.items():
            targets[key].copy_(value)
    report.loaded = sorted(f"encoder.{k}" for k in mapped)
    return report


# ------------------------------------------------------------------------------------------
# our format: model.safetensors (+ config.json written by the hub mixin wrapper)


def save_safetensors(model: MAHMR, path: str | os.PathLike[str]) -> None:
    """Weights as safetensors with metadata (variant, config JSON, format version), written
    atomically with the usual file permissions."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    metadata = {
        "format": "pt",
        "architecture": ARCHITECTURE,
        "format_version": FORMAT_VERSION,
        "variant": model.config.variant,
        "config": json.dumps(model.config.to_dict(), sort_keys=True),
    }
    write_atomic(path, lambda f: f.write(save(tensors, metadata=metadata)))


def load_checkpoint_file(
    model: MAHMR,
    path: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    assign: bool = False,
) -> LoadReport:
    """Load our safetensors file (config in its metadata must equal the model's) or an official
    `.pth` / `.bin` (by key layout) into `model`, strictly."""
    path = Path(path)
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
        except SafetensorError as exc:
            raise CheckpointError(_unreadable(path, "safetensors", exc)) from exc
        if "config" in metadata:
            saved = MAHMRConfig.from_dict(json.loads(metadata["config"]))
            if saved != model.config:
                diff = {
                    k: (v, getattr(model.config, k))
                    for k, v in saved.to_dict().items()
                    if getattr(model.config, k) != v
                }
                raise CheckpointError(
                    f"{path} holds a {saved.variant!r} model whose config differs from the "
                    f"model's: {diff} (saved, model)"
                )
    state = read_state_dict(path, map_location)
    if "encoder_pos_embeds" in state:
        return load_official_state_dict(model, state, assign=assign)
    return load_state_dict_checked(model, state, assign=assign)
