"""Reading the teachers' public weight files and loading them strictly.

Every file is read without executing code: `.safetensors` through safetensors, anything else
through `torch.load(weights_only=True)`. A Lightning checkpoint's `state_dict` is unwrapped.
Loading compares names and shapes first and raises `CheckpointError` naming each missing,
unexpected and mis-shaped key.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file

__all__ = [
    "CheckpointError",
    "check_layout",
    "load_checked",
    "manifest",
    "manifest_mismatches",
    "read_manifest",
    "read_state_dict",
    "resolve_weights",
]

logger = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt", ".json", ".npz", ".pkl")
"""File suffixes that mark a string as a local path, never a Hub id."""


class CheckpointError(ValueError):
    """A weight file does not fit the model it is loaded into."""


def _preview(keys: list[str], limit: int = 10) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def resolve_weights(path_or_hub_id: str | os.PathLike[str], filename: str | None = None) -> Path:
    """A local weight file or directory for `path_or_hub_id`.

    An existing local path is returned as is (a directory joined with `filename` when given).
    Otherwise `path_or_hub_id` must be a Hub repository id (`owner/name`): with `filename` that
    file is downloaded (or taken from the cache), without it the whole snapshot. A string that
    reads as a path (a file name with a weight suffix, a folder that exists here, a leading `.`,
    `/` or `~`) is never sent to the Hub. Nothing is downloaded at import time; set
    `HF_HUB_OFFLINE=1` to use the cache only.

    Raises:
        FileNotFoundError: not a file or directory, and not a Hub id that resolves (the Hub's
            answer is in the message and chained).
    """
    path = Path(path_or_hub_id)
    if path.exists():
        if path.is_dir() and filename is not None:
            path = path / filename
            if not path.exists():
                raise FileNotFoundError(f"{filename} not found in {path.parent}")
        return path
    repo_id = str(path_or_hub_id)
    parts = repo_id.split("/")
    if (
        len(parts) != 2
        or not all(parts)
        or repo_id.startswith((".", "/", "~"))
        or Path(parts[0]).is_dir()
        or Path(parts[1]).suffix in WEIGHT_SUFFIXES
    ):
        raise FileNotFoundError(f"{repo_id}: not a file or directory, nor a Hub id owner/name")
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        if filename is None:
            return Path(snapshot_download(repo_id))
        return Path(hf_hub_download(repo_id, filename))
    except (
        EntryNotFoundError,  # includes LocalEntryNotFoundError: offline and not cached
        HFValidationError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    ) as error:
        reason = str(error).strip().splitlines()[0]
        raise FileNotFoundError(
            f"{repo_id}: not a file or directory, and as a Hub id: {type(error).__name__}: {reason}"
        ) from error


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors of a `.safetensors`, `.pth`, `.pt`, `.bin` or Lightning `.ckpt` file, on CPU.

    Raises:
        FileNotFoundError: the file does not exist.
        CheckpointError: the file holds no dict of tensors (nor one under `state_dict`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weight file not found: {path}")
    if path.suffix == ".safetensors":
        return load_file(path, device="cpu")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path} stores Python objects besides tensors (e.g. training hyper-parameters), "
            "which this package never unpickles. If you trust the file's source, convert it "
            "once in a session of your own (unpickle it in full, save the tensors of its "
            "state_dict with safetensors.torch.save_file) and load the .safetensors file"
        ) from error
    return _tensors(state, path)


def _tensors(state: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # Lightning / training checkpoints
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{path}: expected a state dict of tensors, got {type(state)}")
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if len(tensors) != len(state):
        others = sorted(k for k in state if k not in tensors)
        raise CheckpointError(f"{path}: non-tensor entries in the state dict: {_preview(others)}")
    return tensors


def load_checked(
    model: torch.nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    key_map: Callable[[str], str | None] | None = None,
    ignore_unexpected: Iterable[str] = (),
) -> None:
    """Load `state_dict` into `model` strictly after renaming each key with `key_map`.

    `key_map(name)` returns the model's name for a checkpoint key, or None to drop it on purpose
    (logged). Checkpoint keys starting with a prefix in `ignore_unexpected` are dropped when the
    model has no such key (official loaders that were non-strict); every other difference raises.

    Raises:
        CheckpointError: naming the missing, unexpected and mis-shaped keys.
    """
    renamed: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for key, value in state_dict.items():
        name = key_map(key) if key_map is not None else key
        if name is None:
            dropped.append(key)
        elif name in renamed:
            raise CheckpointError(f"two checkpoint keys map to the model key {name!r}")
        else:
            renamed[name] = value
    expected = manifest(model)
    prefixes = tuple(ignore_unexpected)
    ignored = [k for k in renamed if k not in expected and prefixes and k.startswith(prefixes)]
    for key in ignored:
        del renamed[key]
    dropped += ignored
    check_layout(expected, renamed, type(model).__name__)
    if dropped:
        logger.info("ignored %d checkpoint keys: %s", len(dropped), _preview(sorted(dropped)))
    model.load_state_dict({k: renamed[k] for k in expected}, strict=True)


def check_layout(
    expected: Mapping[str, tuple[int, ...]], state: Mapping[str, torch.Tensor], what: str
) -> None:
    """Raise CheckpointError naming every key of `state` that is missing from, unexpected in or
    mis-shaped against the `expected` name -> shape layout of `what`."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k])}"
        for k in sorted(set(expected) & set(state))
        if tuple(state[k].shape) != tuple(expected[k])
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
        raise CheckpointError(f"weights do not fit {what}; " + "; ".join(problems))


def manifest(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every state-dict entry (works on `meta`-device models)."""
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def read_manifest(path: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """Name -> shape from a layout file of `../shared/fixtures` (`entries`: name, shape)."""
    entries = json.loads(Path(path).read_text())["entries"]
    return {e["name"]: tuple(e["shape"]) for e in entries}


def manifest_mismatches(
    ours: Mapping[str, tuple[int, ...]], official: Mapping[str, tuple[int, ...]]
) -> list[str]:
    """Human-readable differences between two manifests (empty when they agree)."""
    out = [f"missing in ours: {k}" for k in sorted(set(official) - set(ours))]
    out += [f"extra in ours: {k}" for k in sorted(set(ours) - set(official))]
    out += [
        f"{k}: ours {ours[k]} vs official {official[k]}"
        for k in sorted(set(ours) & set(official))
        if tuple(ours[k]) != tuple(official[k])
    ]
    return out
