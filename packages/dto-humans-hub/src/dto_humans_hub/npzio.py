"""Reading the released `.npz` files safely and with errors that name the file.

The DTO-Humans annotation files hold one pickled dict (`np.savez(path, annots=dict)`), which
`np.load(..., allow_pickle=True)` would unpickle with arbitrary code execution. Here object arrays
are unpickled by a restricted unpickler that only rebuilds NumPy arrays, dtypes and scalars (plus
the pickle protocol's own dicts, lists, tuples, strings and numbers).
"""

from __future__ import annotations

import gc
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = ["AnnotationFileError", "load_npz"]

_ALLOWED_GLOBALS = {
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.dtypes", "Float32DType"),
    ("numpy.dtypes", "Float64DType"),
    ("numpy.dtypes", "Int64DType"),
    ("numpy.dtypes", "BoolDType"),
    ("numpy.dtypes", "StrDType"),
    ("numpy.dtypes", "BytesDType"),
    ("numpy.dtypes", "ObjectDType"),
    ("collections", "OrderedDict"),
    ("builtins", "bytearray"),
    ("_codecs", "encode"),
}


class AnnotationFileError(ValueError):
    """An input annotation file cannot be read or does not have the expected layout."""


class _ArrayUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, path: Path) -> None:
        super().__init__(file, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise AnnotationFileError(
                f"{self._path}: refusing to unpickle {module}.{name} (only NumPy arrays, dicts and "
                "lists are allowed in annotation files)"
            )
        return super().find_class(module, name)


def _read_member(zf: zipfile.ZipFile, member: str, path: Path) -> np.ndarray:
    with zf.open(member) as f:
        version = np.lib.format.read_magic(f)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(f)
        if dtype.hasobject:
            # millions of small objects: the cyclic GC would rescan them over and over
            enabled = gc.isenabled()
            gc.disable()
            try:
                array = _ArrayUnpickler(f, path).load()
            finally:
                if enabled:
                    gc.enable()
            if not isinstance(array, np.ndarray):
                raise AnnotationFileError(f"{path}: {member} does not hold an array")
            return array
        data = np.frombuffer(f.read(), dtype=dtype)
    count = int(np.prod(shape))
    if data.size != count:
        raise AnnotationFileError(f"{path}: {member} holds {data.size} values, header says {count}")
    order = "F" if fortran else "C"
    return data.reshape(shape, order=order)


def load_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """All arrays of an `.npz` (object arrays through the restricted unpickler).

    Raises AnnotationFileError naming the file for a missing, truncated or corrupt archive.
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationFileError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as zf:
            out = {}
            for member in zf.namelist():
                name = member.removesuffix(".npy")
                out[name] = _read_member(zf, member, path)
            return out
    except AnnotationFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
        raise AnnotationFileError(f"{path}: truncated or corrupt npz ({exc})") from exc
