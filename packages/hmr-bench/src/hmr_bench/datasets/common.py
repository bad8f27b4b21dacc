"""File helpers shared by the loaders: MA-HMR's `np.savez(path, annots=dict)` container, atomic
writes, image sizes from headers, restricted unpickling, array conversion with named errors."""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from dto_core.atomic import write_atomic  # re-exported: hmr-bench's writers use it from here

__all__ = [
    "DatasetError",
    "array_field",
    "image_size",
    "load_annots_npz",
    "load_pickle",
    "save_annots_npz",
    "write_atomic",
]


class DatasetError(ValueError):
    """A dataset file is missing, malformed or lacks a required key; the message names it."""


def save_annots_npz(path: str | os.PathLike[str], annots: Mapping[str, Any]) -> Path:
    """`np.savez(path, annots=dict)` as MA-HMR's preprocessing writes it (a 0-d object array)."""
    return write_atomic(path, lambda f: np.savez(f, annots=dict(annots)))


def load_annots_npz(path: str | os.PathLike[str], key: str = "annots") -> dict:
    """The dict stored under `key` in an MA-HMR/RH style .npz (0-d object array).

    Files holding pickled torch tensors need torch importable to be read (numpy unpickles them
    through torch); the error says so.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=True) as data:
            if key not in data.files:
                raise DatasetError(f"{path}: no {key!r} entry (found {sorted(data.files)})")
            value = data[key]
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DatasetError(f"{path}: not a readable .npz file ({exc})") from exc
    except ModuleNotFoundError as exc:
        raise DatasetError(
            f"{path}: holds pickled objects of module {exc.name!r}, which is not installed "
            "(MA-HMR's 3DPW file stores torch tensors: install torch to read it)"
        ) from exc
    if value.dtype != object or value.ndim != 0 or not isinstance(value[()], dict):
        raise DatasetError(f"{path}: {key!r} must be a 0-d object array holding a dict")
    return value[()]


_NUMPY_MODULES = {
    "numpy", "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
    "numpy._core.numeric",
}  # fmt: skip
_NUMPY_NAMES = {"ndarray", "dtype", "_reconstruct", "scalar", "_frombuffer"}
_BUILTINS = {
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"), ("__builtin__", "object"),
    ("builtins", "object"), ("_codecs", "encode"),
}  # fmt: skip


class _DataUnpickler(pickle.Unpickler):
    """Numpy arrays, scalars and plain containers only (the official 3DPW .pkl files)."""

    def __init__(self, file: IO[bytes], path: Path) -> None:
        super().__init__(file, encoding="latin1")  # Python 2 pickles
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module in _NUMPY_MODULES and name in _NUMPY_NAMES) or (module, name) in _BUILTINS:
            return super().find_class(module, name)
        raise DatasetError(f"{self._path}: {module}.{name} is not allowed in a data pickle")


def load_pickle(path: str | os.PathLike[str]) -> Any:
    """Load a data pickle (latin1, restricted to numpy and builtins)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    with path.open("rb") as f:
        try:
            return _DataUnpickler(f, path).load()
        except (pickle.UnpicklingError, EOFError) as exc:
            raise DatasetError(f"{path}: not a readable pickle ({exc})") from exc


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
