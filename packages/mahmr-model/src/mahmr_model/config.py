"""Model configurations: one frozen dataclass, one factory per variant.

- `sat_hmr_stage1`: SAT-HMR and MA-HMR stage 1 (official `default.yaml`): fixed 60 degree
  camera, 10 betas; checkpoints `sat_644.pth`, `mahmr_stage1.bin`; 221,885,956 parameters
  (221,949,700 with the stage-1 denoising encoder, `denoising=True`).
- `mahmr_fov`: MA-HMR stage 2 (`fov.yaml`): FoV head, 10 betas; `mahmr_stage2.bin`;
  223,658,501 parameters.
- `mahmr`: MA-HMR final model (`fov_kid.yaml`): FoV head, 11 betas (kid blend shape);
  `mahmr_stage3.bin` and the benchmark fine-tunes; 223,663,115 parameters.
- `tiny`: the `mahmr` structure at toy size, for tests and examples; 206,743 parameters.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .conventions import DEFAULT_FOV, FOV_MIN, NUM_LEVELS, TOKEN_GRID_MULTIPLE

__all__ = ["VARIANTS", "MAHMRConfig", "get_config", "mahmr", "mahmr_fov", "sat_hmr_stage1", "tiny"]


@dataclass(frozen=True)
class MAHMRConfig:
    """Every architectural choice of SAT-HMR / MA-HMR.

    Args:
        variant: the factory name this config came from (recorded in checkpoints).
        input_size: canvas side S in px; images are resized so that the long side is S.
        patch_size: ViT patch (lvl0 token) side in px.
        embed_dim, depth, num_heads, mlp_ratio: the DINOv2 ViT encoder.
        layer_scale_init: LayerScale init of fresh blocks (overwritten by pretrained weights).
        num_map_blocks: encoder blocks run on 28 px tokens to predict the scale map (copies).
        conf_thresh, scale_thresh: a 28 px cell holds a person if conf > conf_thresh; a small one
            (re-tokenised at 14 px) if also scale < scale_thresh.
        hidden_dim, dec_heads, dec_layers, dim_feedforward, num_queries: the DAB-DETR decoder.
        num_betas: 10 (SMPL) or 11 (SMPL + the kid blend shape).
        fov_head: predict the vertical FoV from the camera token (MA-HMR stages 2 and 3).
        fixed_fov: vertical FoV of the canvas (rad) used when there is no FoV head.
        fov_min: lower clamp of the predicted FoV (rad).
        denoising: build the denoising-query content encoder `dn_enc` (stage-1 training only).
        merge_early_exit: reproduce the official defect that keeps every 28 px token when no
            2x2 group of the whole batch is background (Section "Defects" of the README).
    """

    variant: str = "mahmr"
    input_size: int = 1288
    patch_size: int = 14
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    layer_scale_init: float = 1e-5
    num_map_blocks: int = 3
    conf_thresh: float = 0.3
    scale_thresh: float = 0.5
    hidden_dim: int = 768
    dec_heads: int = 4
    dec_layers: int = 6
    dim_feedforward: int = 2048
    num_queries: int = 50
    num_betas: int = 11
    fov_head: bool = True
    fixed_fov: float = DEFAULT_FOV
    fov_min: float = FOV_MIN
    denoising: bool = False
    merge_early_exit: bool = False

    def __post_init__(self) -> None:
        problems = []
        if self.patch_size <= 0 or self.input_size % (self.patch_size * TOKEN_GRID_MULTIPLE):
            problems.append(
                f"input_size {self.input_size} must be a positive multiple of "
                f"{TOKEN_GRID_MULTIPLE} * patch_size = {TOKEN_GRID_MULTIPLE * self.patch_size}"
            )
        if self.embed_dim % self.num_heads:
            problems.append(f"embed_dim {self.embed_dim} not divisible by num_heads")
        if self.hidden_dim % 4 or self.hidden_dim % self.dec_heads:
            problems.append(f"hidden_dim {self.hidden_dim} must be divisible by 4 and dec_heads")
        if not 0 < self.num_map_blocks <= self.depth:
            problems.append(f"num_map_blocks {self.num_map_blocks} not in [1, depth]")
        if self.num_betas not in (10, 11):
            problems.append(f"num_betas {self.num_betas}: SMPL has 10, SMPL + kid 11")
        if not (0 < self.conf_thresh < 1 and 0 < self.scale_thresh < 1):
            problems.append("conf_thresh and scale_thresh must lie in (0, 1)")
        if not 0 < self.fov_min < self.fixed_fov < math.pi:
            problems.append("need 0 < fov_min < fixed_fov < pi (radians)")
        if min(self.dec_layers, self.num_queries, self.dim_feedforward) <= 0:
            problems.append("dec_layers, num_queries and dim_feedforward must be positive")
        if problems:
            raise ValueError("invalid MAHMRConfig: " + "; ".join(problems))

    @property
    def grid_sizes(self) -> tuple[int, ...]:
        """Token grid side of the full canvas per level: (S/14, S/28, S/56) = (92, 46, 23)."""
        return tuple(self.input_size // (self.patch_size << lvl) for lvl in range(NUM_LEVELS))

    @property
    def fixed_focal(self) -> float:
        """Focal length (px) of models without FoV head: S / (2 tan(fixed_fov / 2))."""
        return self.input_size / (2.0 * math.tan(self.fixed_fov / 2.0))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MAHMRConfig:
        """Build from a dict; unknown keys are an error, missing ones take the defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown MAHMRConfig keys {unknown}; known keys: {sorted(known)}")
        return cls(**data)


def sat_hmr_stage1(**overrides: Any) -> MAHMRConfig:
    """SAT-HMR (and MA-HMR stage 1): fixed 60 degree camera, 10 betas."""
    return MAHMRConfig(
        **{"variant": "sat_hmr_stage1", "num_betas": 10, "fov_head": False, **overrides}
    )


def mahmr_fov(**overrides: Any) -> MAHMRConfig:
    """MA-HMR stage 2: FoV head on the camera token, 10 betas."""
    return MAHMRConfig(**{"variant": "mahmr_fov", "num_betas": 10, "fov_head": True, **overrides})


def mahmr(**overrides: Any) -> MAHMRConfig:
    """MA-HMR final model (stage 3, fine-tunes, demo): FoV head and 11 betas (kid blend shape)."""
    return MAHMRConfig(**{"variant": "mahmr", "num_betas": 11, "fov_head": True, **overrides})


def tiny(**overrides: Any) -> MAHMRConfig:
    """The `mahmr` structure at toy size (224 px canvas, width 32): tests and examples only."""
    values: dict[str, Any] = {
        "variant": "tiny",
        "input_size": 224,
        "embed_dim": 32,
        "depth": 4,
        "num_heads": 2,
        "num_map_blocks": 2,
        "hidden_dim": 32,
        "dec_heads": 2,
        "dec_layers": 2,
        "dim_feedforward": 64,
        "num_queries": 8,
        "num_betas": 11,
        "fov_head": True,
    }
    return MAHMRConfig(**{**values, **overrides})


VARIANTS: dict[str, Callable[..., MAHMRConfig]] = {
    "sat_hmr_stage1": sat_hmr_stage1,
    "mahmr_fov": mahmr_fov,
    "mahmr": mahmr,
    "tiny": tiny,
}


def get_config(variant: str, **overrides: Any) -> MAHMRConfig:
    """The config of a named variant (`VARIANTS`), with optional field overrides."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
    return VARIANTS[variant](**overrides)
