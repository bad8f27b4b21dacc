"""Initial weights (stage transfer rules) and resumable training checkpoints.

A checkpoint is a folder `<out>/checkpoints/step_<n>/` holding the model in the `mahmr-model`
format (`model.safetensors` + `config.json`: `MAHMR.from_pretrained` loads it and `apps/publish
checkpoint` uploads it), `trainer_state.pt` (optimiser, scheduler, RNG states, data position,
step; tensors and plain containers only, loaded with `weights_only=True`) and `train_config.json`.
It is written into a hidden temporary folder and renamed into place, then `latest` (a text file
naming it) is replaced atomically: a killed run never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from mahmr_model import MAHMR, CheckpointError, MAHMRConfig

__all__ = [
    "TRANSFERS",
    "find_checkpoint",
    "load_init",
    "read_state",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "transfer_state",
]

TRANSFERS = {
    ("sat_hmr_stage1", "mahmr_fov"): "stage 1 -> 2: the FoV head starts fresh",
    ("mahmr_fov", "mahmr"): "stage 2 -> 3: the kid coefficient joins the shape heads (zero rows)",
    ("sat_hmr_stage1", "mahmr"): "stage 1 -> 3: fresh FoV head, zero kid rows",
}
"""Allowed (checkpoint variant, model variant) pairs besides equal variants (spec 11.2)."""

LATEST = "latest"
STATE_FILE = "trainer_state.pt"
CONFIG_FILE = "train_config.json"


def read_state(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], MAHMRConfig]:
    """Weights and architecture of a checkpoint: a `save_pretrained` folder (or a trainer
    checkpoint folder), our `model.safetensors`, or an official SAT-HMR `.pth` / MA-HMR `.bin`."""
    path = Path(path)
    if path.is_dir():
        if not (path / "model.safetensors").is_file():
            raise CheckpointError(f"{path}: no model.safetensors (not a checkpoint folder)")
        model = MAHMR.from_pretrained(path)
        return model.state_dict(), model.config
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        if "config" not in metadata:
            raise CheckpointError(f"{path}: safetensors without a MAHMR config in its metadata")
        return load_file(path), MAHMRConfig.from_dict(json.loads(metadata["config"]))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a state dict")
    denoising = any(k.startswith("dn_enc.") for k in state)
    model, _ = MAHMR.from_official(state, denoising=denoising)
    return model.state_dict(), model.config


def transfer_state(
    model: MAHMR, state: dict[str, torch.Tensor], source: MAHMRConfig
) -> dict[str, str]:
    """Load `state` (of architecture `source`) into `model` by the stage transfer rules.

    Same variant: strict. Allowed transfers (`TRANSFERS`): the FoV head keeps its fresh
    initialisation when the source has none; with 10 -> 11 betas every shape head's last layer
    gets a zero row (and bias) for the kid coefficient and `mean_shape` a 0; the denoising encoder
    is dropped when the model has none, kept fresh when the source has none. Anything else
    missing or mis-shaped is an error. Returns the keys not taken from the checkpoint, with why.
    """
    target = model.config
    pair = (source.variant, target.variant)
    compared = ("input_size", "embed_dim", "depth", "hidden_dim", "dec_layers", "num_queries")
    if pair[0] != pair[1] and pair not in TRANSFERS:
        raise CheckpointError(
            f"the checkpoint is a {source.variant!r} model but this stage trains a "
            f"{target.variant!r} model; allowed: the same variant or "
            + ", ".join(f"{a} -> {b}" for a, b in TRANSFERS)
        )
    differing = [k for k in compared if getattr(source, k) != getattr(target, k)]
    if differing:
        raise CheckpointError(f"checkpoint architecture differs from the model's in {differing}")
    own = model.state_dict()
    loaded, notes = {}, {}
    for key, value in own.items():
        if key not in state:
            if key.startswith("fov_head.") and not source.fov_head:
                notes[key] = "fresh FoV head (the checkpoint has none)"
                continue
            if key.startswith("dn_enc.") and not source.denoising:
                notes[key] = "fresh denoising encoder (the checkpoint has none)"
                continue
            raise CheckpointError(f"checkpoint lacks {key}")
        src = state[key]
        if src.shape != value.shape:
            kid = source.num_betas == 10 and target.num_betas == 11
            if (
                kid
                and (key == "mean_shape" or key.startswith("shape_heads."))
                and src.shape[0] == 10
            ):
                src = torch.cat([src, src.new_zeros(1, *src.shape[1:])])
                notes[key] = "kid coefficient appended as zeros"
            else:
                raise CheckpointError(
                    f"{key}: checkpoint {tuple(src.shape)} vs model {tuple(value.shape)}"
                )
        loaded[key] = src
    unexpected = sorted(set(state) - set(own) - {k for k in state if k.startswith("dn_enc.")})
    if unexpected:
        raise CheckpointError(f"checkpoint keys the model does not have: {unexpected[:8]}")
    model.load_state_dict({**own, **loaded}, strict=True)
    return notes


def load_init(model: MAHMR, path: str | os.PathLike[str]) -> dict[str, str]:
    """`transfer_state` from a checkpoint file or folder (see `read_state`)."""
    state, source = read_state(path)
    return transfer_state(model, state, source)


# ----------------------------------------------------------------------------------------------
# RNG states as tensors / plain data (weights_only-loadable)


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()  # noqa: NPY002  (third-party code may use it)
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------------------------
# training checkpoints


def save_checkpoint(
    out_dir: str | os.PathLike[str],
    step: int,
    model: MAHMR,
    trainer_state: dict[str, Any],
    config: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write `<out>/checkpoints/step_<step>/` atomically, point `latest` at it, keep the newest
    `keep` checkpoints."""
    root = Path(out_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{final.name}."))
    try:
        model.save_pretrained(tmp)
        torch.save(trainer_state, tmp / STATE_FILE)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        mask = _umask()
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp and some writers use 0700 / 0600
        for file in tmp.iterdir():
            os.chmod(file, 0o666 & ~mask)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pointer = root / f".{LATEST}.tmp"
    pointer.write_text(final.name + "\n")
    os.replace(pointer, root / LATEST)
    for old in sorted(p for p in root.glob("step_*") if p.is_dir())[:-keep]:
        shutil.rmtree(old)
    return final


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def find_checkpoint(run_dir: str | os.PathLike[str]) -> Path:
    """The latest complete checkpoint of a run folder (or the checkpoint folder itself)."""
    run_dir = Path(run_dir)
    if (run_dir / STATE_FILE).is_file():
        return run_dir
    root = run_dir / "checkpoints"
    pointer = root / LATEST
    if pointer.is_file():
        candidate = root / pointer.read_text().strip()
        if (candidate / STATE_FILE).is_file():
            return candidate
    found = sorted(p for p in root.glob("step_*") if (p / STATE_FILE).is_file())
    if not found:
        raise FileNotFoundError(f"{run_dir}: no checkpoint to resume from (expected {root}/step_*)")
    return found[-1]
