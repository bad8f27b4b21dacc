"""Pickled data files without arbitrary code and without torch: the readers and writer of the
`.npz` / `.pkl` containers MA-HMR, Relative Human and 3DPW use.

Reading: every object array of an `.npz` (and every `.pkl`) is unpickled by `DataUnpickler`,
which builds numpy arrays and scalars, plain containers and torch tensors, and nothing else. A
torch tensor pickled by torch (`torch._utils._rebuild_tensor_v2` over a storage serialised with
torch's legacy format by `torch.storage._load_from_bytes`) is decoded from its bytes into a numpy
array, as is one written here as `torch.from_numpy(array)`: torch is never imported.

Writing: `save_object_npz` writes `np.savez(path, key=obj)` files whose `TorchTensor` values are
pickled as `torch.from_numpy(array)`, so MA-HMR's readers (which `torch.cat` the 3DPW SMPL
parameters) get torch tensors where torch is installed, while this module needs no torch.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "DataUnpickler",
    "PickleError",
    "TorchTensor",
    "load_pickle",
    "read_npz",
    "save_object_npz",
]

TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
"""First object of torch's legacy (non-zip) serialisation, which pickled storages use."""
TORCH_LEGACY_VERSION = 1001
TORCH_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}  # fmt: skip
_NUMPY_MODULES = {
    "numpy", "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
    "numpy._core.numeric",
}  # fmt: skip
_NUMPY_NAMES = {"ndarray", "dtype", "_reconstruct", "scalar", "_frombuffer"}
_BUILTINS = {
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"), ("__builtin__", "object"),
    ("builtins", "object"), ("_codecs", "encode"),
}  # fmt: skip


class PickleError(ValueError):
    """A pickled data file holds something other than data, or is damaged."""


@dataclass(frozen=True, eq=False)
class TorchTensor:
    """An array that `save_object_npz` pickles as `torch.from_numpy(array)`."""

    array: np.ndarray


def _from_numpy(array: Any) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise PickleError(f"torch.from_numpy of a {type(array).__name__}, not an array")
    return array


class _Storage:
    """A torch storage being decoded: dtype and element count, then its data."""

    def __init__(self, dtype: np.dtype, numel: int) -> None:
        self.dtype, self.numel = dtype, numel
        self.data: np.ndarray | None = None


class _LegacyUnpickler(pickle.Unpickler):
    """The object pickles of torch's legacy format: storage types and persistent storages."""

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in TORCH_STORAGE_DTYPES:
            return np.dtype(TORCH_STORAGE_DTYPES[name])
        raise PickleError(f"{module}.{name} is not allowed in a pickled torch storage")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise PickleError(f"unsupported torch storage reference {pid!r}")
        _, dtype, key, _location, numel, view = pid
        if view is not None or not isinstance(dtype, np.dtype):
            raise PickleError("torch storage views are not supported")
        return self.storages.setdefault(str(key), _Storage(dtype, int(numel)))


def _storage_from_bytes(data: bytes) -> _Storage:
    """`torch.storage._load_from_bytes`: a storage in torch's legacy serialisation (three
    header pickles, the storage pickle, the list of storage keys, then per key an int64 element
    count and the raw little-endian elements)."""
    f = io.BytesIO(data)
    header = [_LegacyUnpickler(f).load() for _ in range(3)]
    if header[0] != TORCH_LEGACY_MAGIC or header[1] != TORCH_LEGACY_VERSION:
        raise PickleError("not a torch legacy storage")
    if not header[2].get("little_endian", True):
        raise PickleError("big-endian torch storages are not supported")
    unpickler = _LegacyUnpickler(f)
    root = unpickler.load()
    for key in _LegacyUnpickler(f).load():
        storage = unpickler.storages[str(key)]
        numel = int.from_bytes(f.read(8), "little")
        raw = f.read(numel * storage.dtype.itemsize)
        if numel != storage.numel or len(raw) != numel * storage.dtype.itemsize:
            raise PickleError("truncated torch storage")
        storage.data = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))
    if not isinstance(root, _Storage) or root.data is None:
        raise PickleError("a pickled torch storage without data")
    return root


def _rebuild_tensor(storage: _Storage, offset: int, size: Any, stride: Any, *_: Any) -> np.ndarray:
    """`torch._utils._rebuild_tensor(_v2)`: the strided view of a storage, copied."""
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if not isinstance(storage, _Storage) or storage.data is None or len(size) != len(stride):
        raise PickleError("malformed pickled torch tensor")
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True) if n > 0)
    if min(size, default=1) > 0 and not (offset >= 0 and last < len(storage.data)):
        raise PickleError("a pickled torch tensor reaches outside its storage")
    item = storage.data.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage.data[offset:], shape=size, strides=tuple(s * item for s in stride)
    )
    return view.astype(view.dtype.newbyteorder("="), copy=True)


_TORCH_GLOBALS: dict[tuple[str, str], Callable[..., Any]] = {
    ("torch", "from_numpy"): _from_numpy,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("collections", "OrderedDict"): OrderedDict,  # a tensor's (empty) backward hooks
}


class DataUnpickler(pickle.Unpickler):
    """Numpy arrays and scalars, plain containers and torch tensors (as numpy arrays) only;
    latin1 strings, as the Python 2 era release files need."""

    def __init__(self, file: IO[bytes], where: str) -> None:
        super().__init__(file, encoding="latin1")
        self._where = where

    def find_class(self, module: str, name: str) -> Any:
        if (module in _NUMPY_MODULES and name in _NUMPY_NAMES) or (module, name) in _BUILTINS:
            return super().find_class(module, name)
        if (module, name) in _TORCH_GLOBALS:
            return _TORCH_GLOBALS[module, name]
        raise PickleError(f"{self._where}: {module}.{name} is not allowed in a data pickle")


def load_pickle(path: str | os.PathLike[str]) -> Any:
    """Load a data pickle with DataUnpickler."""
    path = Path(path)
    with path.open("rb") as f:
        try:
            return DataUnpickler(f, str(path)).load()
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            if isinstance(exc, PickleError):
                raise
            raise PickleError(f"{path}: not a readable pickle ({exc})") from exc


def _read_member(f: IO[bytes], where: str) -> Any:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    if dtype.hasobject:
        try:
            array = DataUnpickler(f, where).load()
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            if isinstance(exc, PickleError):
                raise
            raise PickleError(f"{where}: damaged pickled data ({exc})") from exc
        if not isinstance(array, np.ndarray) or array.shape != shape:
            raise PickleError(f"{where}: the pickled array does not match its header")
        return array
    data = f.read()
    count = int(np.prod(shape))
    if len(data) != count * dtype.itemsize:
        raise PickleError(f"{where}: truncated array data")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


def read_npz(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Every entry of an .npz as an array (object arrays through DataUnpickler)."""
    path = Path(path)
    entries = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            key = info.filename.removesuffix(".npy")
            with archive.open(info) as member:
                entries[key] = _read_member(member, f"{path}: entry {key!r}")
    return entries


class _TensorPickler(pickle._Pickler):  # the Python pickler: its dispatch table is extensible
    """Pickles TorchTensor as the call torch.from_numpy(array), without importing torch."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_torch_tensor(self, obj: TorchTensor) -> None:
        self.write(pickle.GLOBAL + b"torch\nfrom_numpy\n")
        self.save(np.ascontiguousarray(obj.array))
        self.write(pickle.TUPLE1 + pickle.REDUCE)
        self.memoize(obj)

    dispatch[TorchTensor] = _save_torch_tensor


def save_object_npz(file: IO[bytes], **objects: Any) -> None:
    """`np.savez(file, **objects)` for objects stored as 0-d object arrays (MA-HMR's `annots`
    container), TorchTensor values pickled as torch tensors."""
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, value in objects.items():
            array = np.empty((), dtype=object)
            array[()] = value
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array_header_1_0(
                    member, np.lib.format.header_data_from_array_1_0(array)
                )
                _TensorPickler(member, protocol=4).dump(array)
