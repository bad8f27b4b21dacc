"""File helpers shared by the loaders: MA-HMR's `np.savez(path, annots=dict)` container, atomic
writes, image sizes from headers, restricted unpickling (hmr_bench.datasets.pickles), array
conversion with named errors."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dto_core.atomic import write_atomic  # re-exported: hmr-bench's writers use it from here
from hmr_bench.datasets import pickles
from hmr_bench.datasets.pickles import PickleError, TorchTensor, read_npz, save_object_npz

__all__ = [
    "DatasetError",
    "annots_entry",
    "array_field",
    "image_size",
    "load_annots_npz",
    "load_npz_entries",
    "load_pickle",
    "save_annots_npz",
    "write_atomic",
]


class DatasetError(ValueError):
    """A dataset file is missing, malformed or lacks a required key; the message names it."""


def save_annots_npz(path: str | os.PathLike[str], annots: Mapping[str, Any]) -> Path:
    """`np.savez(path, annots=dict)` as MA-HMR's preprocessing writes it (a 0-d object array);
    TorchTensor values become torch tensors for MA-HMR's readers (hmr_bench.datasets.pickles)."""
    return write_atomic(path, lambda f: save_object_npz(f, annots=dict(annots)))


def load_npz_entries(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every entry of an .npz, object arrays unpickled without running code; torch tensors
    (pickled by torch or written here) become numpy arrays without importing torch
    (hmr_bench.datasets.pickles)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        return read_npz(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DatasetError(f"{path}: not a readable .npz file ({exc})") from exc
    except PickleError as exc:
        raise DatasetError(str(exc)) from exc


def annots_entry(entries: Mapping[str, np.ndarray], key: str, path: str | os.PathLike[str]) -> dict:
    """The dict held by the 0-d object array entries[key] (MA-HMR's container)."""
    if key not in entries:
        raise DatasetError(f"{path}: no {key!r} entry (found {sorted(entries)})")
    value = entries[key]
    if value.dtype != object or value.ndim != 0 or not isinstance(value[()], dict):
        raise DatasetError(f"{path}: {key!r} must be a 0-d object array holding a dict")
    return value[()]


def load_annots_npz(path: str | os.PathLike[str], key: str = "annots") -> dict:
    """The dict stored under `key` in an MA-HMR/RH style .npz (see load_npz_entries)."""
    return annots_entry(load_npz_entries(path), key, path)


def load_pickle(path: str | os.PathLike[str]) -> Any:
    """Load a data pickle (latin1; numpy arrays, containers and torch tensors only)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        return pickles.load_pickle(path)
    except PickleError as exc:
        raise DatasetError(str(exc)) from exc


def array_field(
    record: Mapping[str, Any],
    key: str,
    where: str,
    shape: tuple[int | None, ...] | None = None,
    dtype: type = np.float64,
) -> np.ndarray:
    """record[key] as an array of `dtype` (torch tensors included, duck-typed: hmr-bench never
    imports torch) checked against `shape` (None = any size); errors name `where` and `key`."""
    if key not in record:
        raise DatasetError(f"{where}: missing key {key!r} (has {sorted(record)})")
    value = record[key]
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, TorchTensor):  # one about to be written
        value = value.array
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{where}: {key!r} is not numeric ({exc})") from exc
    if shape is not None and (
        array.ndim != len(shape)
        or any(s is not None and s != a for s, a in zip(shape, array.shape, strict=True))
    ):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise DatasetError(f"{where}: {key!r} has shape {array.shape}, expected {want}")
    return array


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) px read from the image header."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: image not found (its size is needed)")
    try:
        with Image.open(path) as im:
            return im.size
    except OSError as exc:
        raise DatasetError(f"{path}: not a readable image ({exc})") from exc
