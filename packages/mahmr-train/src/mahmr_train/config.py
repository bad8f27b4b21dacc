"""Training configuration: frozen dataclasses, TOML stage files, `--set key=value` overrides.

A stage file (`mahmr_train/configs/<name>.toml`, or any path) holds the tables of `TrainConfig`;
`extends = "<name>"` starts from another file. `load_config(name, ["optim.lr=2e-5",
"data.datasets.0.weight=2"])` applies overrides (values parsed as TOML, else taken as strings).
Unknown keys and wrong types are errors naming the key.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "AugmentConfig",
    "CompatConfig",
    "ConfigError",
    "DataConfig",
    "DatasetSpec",
    "DenoisingConfig",
    "LossConfig",
    "LossWeights",
    "MatcherConfig",
    "ModelSpec",
    "OptimConfig",
    "TrainConfig",
    "ValidationConfig",
    "apply_overrides",
    "available_configs",
    "config_from_dict",
    "config_to_dict",
    "load_config",
]


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key."""


@dataclass(frozen=True)
class ModelSpec:
    """The network to train (a `mahmr_model` variant) and where its weights come from.

    Args:
        variant: `mahmr_model.VARIANTS` name (`sat_hmr_stage1`, `mahmr_fov`, `mahmr`, `tiny`).
        denoising: build the denoising-query encoder and train with DN queries (stage 1).
        init: weights to start from: a `save_pretrained` folder, our `model.safetensors`, or an
            official SAT-HMR `.pth` / MA-HMR `.bin` (stage transfer rules of spec 11.2 apply).
        dinov2: DINOv2 ViT-B/14 weights for the encoder when there is no `init`.
        mean_params: SPIN's `smpl_mean_params.npz` (default: `smpl_dir/smpl_mean_params.npz`
            if present).
        smpl_dir: SMPL model folder (default `$SMPL_MODEL_DIR`).
        compile: `torch.compile` the encoder blocks.
        grad_checkpointing: activation checkpointing in the encoder.
    """

    variant: str = "mahmr"
    denoising: bool = False
    init: str | None = None
    dinov2: str | None = None
    mean_params: str | None = None
    smpl_dir: str | None = None
    compile: bool = False
    grad_checkpointing: bool = False


@dataclass(frozen=True)
class DatasetSpec:
    """One training or validation dataset.

    Args:
        name: `agora`, `bedlam`, `coco`, `mpii`, `insta`, `aic` (CameraHMR's 4D-Humans pGT),
            `dto_humans`, `3dpw`, `hi4d`, `rh` or `synthetic`.
        split: the dataset's split (`train`, `train_6fps`, `train_opt`, `validation`, ...).
        weight: sampling weight in the mixture; None = proportional to the dataset's size (the
            official plain concatenation).
        downsample: keep every n-th image (official `downsample`).
        path: the dataset folder; default `<data root>/<official folder>`.
        num_images, seed, max_people: `synthetic` only.
    """

    name: str
    split: str = "train"
    weight: float | None = None
    downsample: int = 1
    path: str | None = None
    num_images: int = 8
    seed: int = 0
    max_people: int = 3


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation (spec 10.2); `enabled=False` gives the evaluation pipeline."""

    enabled: bool = True
    rot_deg: tuple[float, float] = (-15.0, 15.0)
    scale: tuple[float, float] = (0.8, 1.8)
    flip: float = 0.5
    crop: float = 0.8
    occlusion: float = 0.6
    color_jitter: float = 0.2


@dataclass(frozen=True)
class DataConfig:
    """Datasets, batching and the per-sample pipeline.

    Args:
        datasets: the training mixture.
        root: data root (`--data-root`); each dataset's official folder lies below it.
        batch_size: images per process and micro-batch.
        num_workers: DataLoader worker processes (0 = load in the training process).
        pin_memory: pinned host memory (used only with CUDA).
        epoch_size: samples per epoch; None = the sum of the datasets' sizes.
        min_visible_joints: people with fewer visible joints (of 45) are dropped (official 4).
        box_enlarge: GT boxes = joint boxes enlarged by this factor (official 1.2).
        max_redraws: augmentation redraws before falling back to no rotation / scale.
    """

    datasets: tuple[DatasetSpec, ...] = ()
    root: str | None = None
    batch_size: int = 2
    num_workers: int = 0
    pin_memory: bool = True
    epoch_size: int | None = None
    augment: AugmentConfig = AugmentConfig()
    min_visible_joints: int = 4
    box_enlarge: float = 1.2
    max_redraws: int = 10


@dataclass(frozen=True)
class LossWeights:
    """Weight of each loss term (spec 9.5); 0 switches a term off."""

    confs: float = 4.0
    boxes: float = 2.0
    giou: float = 2.0
    poses: float = 5.0
    betas: float = 3.0
    j3ds: float = 8.0
    j2ds: float = 40.0
    depths: float = 0.0
    depths_mt: float = 0.0
    depths_re: float = 0.0
    map_confs: float = 4.0
    map_scales: float = 4.0
    fov: float = 0.0

    def active(self) -> dict[str, float]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v != 0.0}


@dataclass(frozen=True)
class LossConfig:
    """Loss weights and constants (spec 9, 14.5).

    Args:
        aux: also supervise every earlier decoder layer (own matching, same weights).
        focal_alpha, focal_gamma: focal loss (detection and scale map).
        rm_tau: relative metric loss on pairs whose GT depth gap is at most tau (m).
        fov_overestimate: FoV loss weight of over-estimated FoVs (under-estimation: 1).
        fov_reference_batch: the FoV loss is a mean over images times this number, the official
            per-GPU batch of stages 2-3, so that its strength matches the official sum at that
            batch without depending on the batch size (`compat.fov_sum` restores the sum).
        ordinal_gap: depth-layer gap (m) of the ordinal loss when layers come from GT depths.
        betas_weights: per-coefficient betas weights (10 SMPL, then the kid coefficient).
    """

    weights: LossWeights = LossWeights()
    aux: bool = True
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    rm_tau: float = 1.0
    fov_overestimate: float = 3.0
    fov_reference_batch: int = 32
    ordinal_gap: float = 0.3
    betas_weights: tuple[float, ...] = (2.56, 1.28, 0.64, 0.64) + (0.32,) * 6 + (10.0,)


@dataclass(frozen=True)
class MatcherConfig:
    """Hungarian matching costs (spec 8)."""

    cost_conf: float = 1.0
    cost_box: float = 1.0
    cost_giou: float = 1.0
    cost_kpts: float = 20.0
    num_joints: int = 22


@dataclass(frozen=True)
class DenoisingConfig:
    """Denoising queries (spec 7), used when `model.denoising` is on."""

    groups: int = 10
    box_noise: float = 0.4
    content_noise: float = 0.2


@dataclass(frozen=True)
class CompatConfig:
    """Reproduce a defect of the official code (spec 14.1) instead of its fix. All off by default.

    Args:
        j2d_mask_all: supervise every 2D joint and count all 22 in the matcher (#2); fixed:
            only joints inside the image and on valid pixels.
        rm_pairs_batch_mean: relative metric loss averaged over all pairs of the batch (#4);
            fixed: averaged per image, then over images (crowds do not dominate).
        fov_sum: FoV loss summed over the batch with GT focal = first person's fx (#5); fixed:
            mean over images (see `LossConfig.fov_reference_batch`), GT = the image's fy.
        depth_transl: predicted depth = SMPL translation z (#7); fixed: predicted pelvis z, the
            quantity of the GT.
        pose_axis_angle: pose loss on axis-angle vectors (#8); fixed: on rotation matrices.
        crop_half_pixel: bottom-crop principal point `r c + 0.5 (r - 1)` (#13); fixed: `r c`.
        scale_map_clamp: off-image vertices painted into border cells (#14); fixed: ignored.
        flip_negate_transl: flip maps `transl.x -> -transl.x` (#15); fixed: the root is
            mirrored exactly.
        dn_pgt_content: DN content from pseudo-GT pose / shape of 2D-only images (#17); fixed:
            zero pose / shape there (only the boxes carry GT).
    """

    j2d_mask_all: bool = False
    rm_pairs_batch_mean: bool = False
    fov_sum: bool = False
    depth_transl: bool = False
    pose_axis_angle: bool = False
    crop_half_pixel: bool = False
    scale_map_clamp: bool = False
    flip_negate_transl: bool = False
    dn_pgt_content: bool = False

    @classmethod
    def official(cls) -> CompatConfig:
        return cls(**{f.name: True for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and schedule (spec 11.1).

    Args:
        lr, lr_encoder: AdamW learning rates of the decoder / heads and of the encoder.
        epochs: cosine decay to 0 over `epochs * steps_per_epoch` optimiser steps.
        max_steps: stop (and end the schedule) after this many optimiser steps instead.
        warmup_steps: linear warm-up from 0.
        grad_clip: global gradient-norm clip (0 = none).
        accumulation: micro-batches per optimiser step.
        precision: "auto" (bf16 autocast on CUDA, fp32 on CPU), "bf16" or "fp32".
    """

    lr: float = 1e-5
    lr_encoder: float = 1e-5
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    epochs: int = 6
    max_steps: int | None = None
    warmup_steps: int = 0
    grad_clip: float = 1.0
    accumulation: int = 1
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    seed: int = 42


@dataclass(frozen=True)
class ValidationConfig:
    """Periodic validation with hmr-bench metrics.

    Args:
        datasets: validation sets (no augmentation).
        every: validate every n optimiser steps (0 = only at the end).
        conf_thresh: detection threshold (official 0.3).
        max_images: cap per dataset (None = all).
    """

    datasets: tuple[DatasetSpec, ...] = ()
    every: int = 0
    conf_thresh: float = 0.3
    max_images: int | None = None


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; `name` is the stage (for logs and checkpoints)."""

    name: str = "run"
    model: ModelSpec = ModelSpec()
    data: DataConfig = DataConfig()
    loss: LossConfig = LossConfig()
    matcher: MatcherConfig = MatcherConfig()
    denoising: DenoisingConfig = DenoisingConfig()
    compat: CompatConfig = CompatConfig()
    optim: OptimConfig = OptimConfig()
    validation: ValidationConfig = ValidationConfig()
    log_every: int = 10
    tensorboard: bool = False  # also write the logs as TensorBoard scalars (<out>/tensorboard)
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2


# ----------------------------------------------------------------------------------------------
# dict <-> dataclass


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config as plain TOML-compatible data (tuples as lists, None values left out)."""

    def convert(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {
                f.name: convert(getattr(value, f.name))
                for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None
            }
        if isinstance(value, (tuple, list)):
            return [convert(v) for v in value]
        return value

    return convert(config)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """`value` checked / converted to the type `annotation` (dataclasses, tuples, unions)."""
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return _build(annotation, value, where)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is Literal:
        if value not in typing.get_args(annotation):
            raise ConfigError(f"{where}: {value!r} is not one of {typing.get_args(annotation)}")
        return value
    if origin is tuple:
        args = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        pairs = enumerate(zip(value, args, strict=True))
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in pairs)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {annotation}")


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"unknown key(s) {[prefix + k for k in unknown]}; known: {sorted(names)}")
    values = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        values[name] = _coerce(value, hints[name], key)
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where or 'config'}: {exc}") from exc


def config_from_dict(data: Mapping[str, Any]) -> TrainConfig:
    """Build a `TrainConfig` from nested plain data (strict: unknown keys are errors)."""
    config = _build(TrainConfig, data, "")
    _validate(config)
    return config


def _validate(config: TrainConfig) -> None:
    problems = []
    if config.data.batch_size < 1:
        problems.append("data.batch_size must be >= 1")
    if config.optim.accumulation < 1:
        problems.append("optim.accumulation must be >= 1")
    if config.data.num_workers < 0:
        problems.append("data.num_workers must be >= 0")
    for i, spec in enumerate(config.data.datasets):
        if spec.weight is not None and spec.weight <= 0:
            problems.append(f"data.datasets.{i}.weight must be positive")
        if spec.downsample < 1:
            problems.append(f"data.datasets.{i}.downsample must be >= 1")
    weighted = {spec.weight is None for spec in config.data.datasets}
    if len(weighted) > 1:
        problems.append("give a weight to every dataset of data.datasets or to none")
    if len(config.loss.betas_weights) != 11:
        problems.append("loss.betas_weights needs 11 values (10 SMPL + kid)")
    if problems:
        raise ConfigError("invalid config: " + "; ".join(problems))


# ----------------------------------------------------------------------------------------------
# files and overrides


def available_configs() -> list[str]:
    """Names of the stage files shipped with the package."""
    folder = resources.files("mahmr_train") / "configs"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def _read_toml(name_or_path: str | Path, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """A stage file as data with `extends` resolved (deep merge, the extending file wins)."""
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        text, label = path.read_text(), str(path)
    else:
        resource = resources.files("mahmr_train") / "configs" / f"{name_or_path}.toml"
        if not resource.is_file():
            raise ConfigError(
                f"unknown config {name_or_path!r}: not a .toml file and not one of "
                f"{available_configs()}"
            )
        text, label = resource.read_text(), str(name_or_path)
    if label in seen:
        raise ConfigError(f"config {label!r} extends itself ({' -> '.join((*seen, label))})")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: invalid TOML ({exc})") from exc
    base = data.pop("extends", None)
    if base is None:
        return data
    return _merge(_read_toml(base, (*seen, label)), data)


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _parse_value(text: str) -> Any:
    """A TOML value (`2e-5`, `true`, `[1, 2]`, `"x"`), else the text itself as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply `key.path=value` overrides to nested data (list items by index: `a.0.b=1`)."""
    out = _merge({}, data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        node: Any = out
        for depth, part in enumerate(parts[:-1]):
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"override {key!r}: no item {part} in {where}")
                node[int(part)] = dict(node[int(part)])
                node = node[int(part)]
            else:
                child = node.get(part, {})
                child = list(child) if isinstance(child, list) else dict(child)
                node[part] = child
                node = child
        last = parts[-1]
        if isinstance(node, list):
            if not last.isdigit() or int(last) >= len(node):
                raise ConfigError(f"override {key!r}: no item {last}")
            node[int(last)] = _parse_value(text.strip())
        else:
            node[last] = _parse_value(text.strip())
    return out


def load_config(name_or_path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """A stage file (shipped name or .toml path) with overrides applied, validated."""
    return config_from_dict(apply_overrides(_read_toml(name_or_path), overrides))
