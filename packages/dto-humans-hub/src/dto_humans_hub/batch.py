"""`AnnotationBatch`: M images with P people in total as flat arrays (struct of arrays).

Image i owns people `offsets[i]:offsets[i + 1]`. This is what the converters produce and the shard
writer consumes: a shard's Arrow table is built from array slices without per-row Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from functools import cache

import numpy as np
import pyarrow as pa

from dto_core.camera import fov_from_focal
from dto_humans_hub.conventions import (
    ALL_PEOPLE_ANNOTATED,
    NUM_BETAS,
    NUM_BODY_JOINTS,
    NUM_KEYPOINTS,
    SOURCE_LABELS,
    UNKNOWN_LABEL,
    UNKNOWN_SIZE,
)
from dto_humans_hub.schema import features

__all__ = ["IMAGE_ARRAYS", "PERSON_ARRAYS", "AnnotationBatch", "concat_batches", "flat_values"]

IMAGE_ARRAYS: dict[str, tuple[tuple[int, ...], type]] = {
    "source": ((), np.int64),
    "annotation": ((), np.int64),
    "width": ((), np.int32),
    "height": ((), np.int32),
    "intrinsics": ((3, 3), np.float32),
    "dto_status": ((), np.int64),
    "dto_score": ((), np.float32),
    "depth_scale": ((2,), np.float32),
    "depth_shift": ((2,), np.float32),
}
"""Per-image numeric arrays: trailing shape and dtype (`image_key` is a string array)."""

PERSON_ARRAYS: dict[str, tuple[tuple[int, ...], type]] = {
    "smpl_pose": ((NUM_BODY_JOINTS, 3), np.float32),
    "smpl_betas": ((NUM_BETAS,), np.float32),
    "transl_cam": ((3,), np.float32),
    "bbox_xyxy": ((4,), np.float32),
    "keypoints_2d": ((NUM_KEYPOINTS, 3), np.float32),
    "age_group": ((), np.int64),
    "p_male": ((), np.float32),
    "height_prior_mean": ((), np.float32),
    "height_prior_std": ((), np.float32),
    "body_height": ((), np.float32),
    "origin": ((), np.int64),
    "height_residual": ((), np.float32),
    "person_status": ((), np.int64),
    "depth_group": ((), np.int64),
}
"""Per-person arrays: trailing shape and dtype. `bbox_xyxy` and `keypoints_2d` may be None
("not recorded"), filled with NaN only when a shard is written (keeps 2.7M x 44 x 3 NaNs out of
memory)."""

OPTIONAL_PERSON_ARRAYS = ("bbox_xyxy", "keypoints_2d")

_UNKNOWN = {np.dtype(np.float32): np.nan, np.dtype(np.int64): UNKNOWN_LABEL}


@dataclass(frozen=True, eq=False)
class AnnotationBatch:
    """M images, P people. Image arrays (M, ...), person arrays (P, ...), offsets (M + 1,) int64.

    Units and meanings are those of `dto_humans_hub.schema.FIELDS`; unknown values are NaN or -1.
    """

    image_key: np.ndarray
    offsets: np.ndarray
    source: np.ndarray
    annotation: np.ndarray
    width: np.ndarray
    height: np.ndarray
    intrinsics: np.ndarray
    dto_status: np.ndarray
    dto_score: np.ndarray
    depth_scale: np.ndarray
    depth_shift: np.ndarray
    smpl_pose: np.ndarray
    smpl_betas: np.ndarray
    transl_cam: np.ndarray
    bbox_xyxy: np.ndarray | None
    keypoints_2d: np.ndarray | None
    age_group: np.ndarray
    p_male: np.ndarray
    height_prior_mean: np.ndarray
    height_prior_std: np.ndarray
    body_height: np.ndarray
    origin: np.ndarray
    height_residual: np.ndarray
    person_status: np.ndarray
    depth_group: np.ndarray

    def __post_init__(self) -> None:
        m = len(self.image_key)
        offsets = np.asarray(self.offsets, dtype=np.int64)
        if offsets.shape != (m + 1,) or offsets[0] != 0 or np.any(np.diff(offsets) < 0):
            raise ValueError(f"offsets must be (M + 1,) = ({m + 1},) non-decreasing from 0")
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "image_key", np.asarray(self.image_key, dtype=object))
        p = int(offsets[-1])
        for table, n in ((IMAGE_ARRAYS, m), (PERSON_ARRAYS, p)):
            for name, (shape, dtype) in table.items():
                value = getattr(self, name)
                if value is None and name in OPTIONAL_PERSON_ARRAYS:
                    continue
                value = np.asarray(value)
                if value.shape != (n, *shape):
                    raise ValueError(f"{name} has shape {value.shape}, expected {(n, *shape)}")
                object.__setattr__(self, name, value.astype(dtype, copy=False))
        bad = np.flatnonzero((self.source < 0) | (self.source >= len(SOURCE_LABELS)))
        if bad.size:
            raise ValueError(
                f"source[{bad[0]}] = {self.source[bad[0]]} is not in 0..{len(SOURCE_LABELS)}"
            )

    @classmethod
    def create(
        cls,
        *,
        image_key: Sequence[str] | np.ndarray,
        offsets: np.ndarray,
        source: np.ndarray,
        annotation: int | np.ndarray,
        intrinsics: np.ndarray,
        smpl_pose: np.ndarray,
        smpl_betas: np.ndarray,
        transl_cam: np.ndarray,
        **optional: np.ndarray | None,
    ) -> AnnotationBatch:
        """A batch with every optional array defaulting to "unknown" (NaN / -1 / None)."""
        m, p = len(image_key), int(np.asarray(offsets)[-1])
        values: dict[str, object] = {}
        for table, n in ((IMAGE_ARRAYS, m), (PERSON_ARRAYS, p)):
            for name, (shape, dtype) in table.items():
                if name in optional:
                    values[name] = optional.pop(name)
                elif name in OPTIONAL_PERSON_ARRAYS:
                    values[name] = None
                elif name in ("width", "height"):
                    values[name] = np.full(n, UNKNOWN_SIZE, dtype)
                elif name == "dto_status":
                    values[name] = np.zeros(n, dtype)  # not_run
                else:
                    values[name] = np.full((n, *shape), _UNKNOWN.get(np.dtype(dtype), 0), dtype)
        if optional:
            raise TypeError(f"unknown arrays: {sorted(optional)}")
        values.update(
            source=np.broadcast_to(source, (m,)),
            annotation=np.broadcast_to(annotation, (m,)),
            intrinsics=intrinsics,
            smpl_pose=smpl_pose,
            smpl_betas=smpl_betas,
            transl_cam=transl_cam,
        )
        return cls(image_key=np.asarray(list(image_key), dtype=object), offsets=offsets, **values)

    @property
    def num_images(self) -> int:
        return len(self.image_key)

    @property
    def num_people(self) -> np.ndarray:
        """(M,) people per image."""
        return np.diff(self.offsets)

    def take(self, index: np.ndarray) -> AnnotationBatch:
        """The images `index` (M',) in that order, with their people."""
        index = np.asarray(index, dtype=np.int64)
        counts = self.num_people[index]
        offsets = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        # person rows: offsets[index[k]] + 0..counts[k]-1, concatenated
        starts = np.repeat(self.offsets[:-1][index] - offsets[:-1], counts)
        rows = starts + np.arange(offsets[-1])
        return self._select(index, rows, offsets)

    def slice(self, start: int, stop: int) -> AnnotationBatch:
        """Images start:stop (views, no copy of the person arrays)."""
        p0, p1 = int(self.offsets[start]), int(self.offsets[stop])
        return self._select(slice(start, stop), slice(p0, p1), self.offsets[start : stop + 1] - p0)

    def _select(self, images, persons, offsets: np.ndarray) -> AnnotationBatch:
        values = {name: getattr(self, name)[images] for name in IMAGE_ARRAYS}
        for name in PERSON_ARRAYS:
            value = getattr(self, name)
            values[name] = None if value is None else value[persons]
        return replace(self, image_key=self.image_key[images], offsets=offsets, **values)

    def fov_y(self) -> np.ndarray:
        """(M,) vertical field of view 2 atan(height / (2 f_y)) rad; NaN where height is unknown."""
        h = np.where(self.height > 0, self.height, np.nan).astype(np.float64)
        return fov_from_focal(self.intrinsics[:, 1, 1], h).astype(np.float32)

    def all_people_annotated(self) -> np.ndarray:
        """(M,) bool: every person of the image is annotated (by source, ALL_PEOPLE_ANNOTATED)."""
        return np.array([ALL_PEOPLE_ANNOTATED[name] for name in SOURCE_LABELS])[self.source]

    def to_arrow(self, image_bytes: Sequence[bytes] | None = None) -> pa.Table:
        """The rows as an Arrow table with the schema of `features(images=...)` (storage types of
        the `datasets` extension arrays built directly from the flat arrays)."""
        feats = features(images=image_bytes is not None)
        schema = feats.arrow_schema
        offsets = self.offsets.astype(np.int32)
        p = int(self.offsets[-1])
        columns: dict[str, pa.Array] = {
            "image_key": pa.array(self.image_key.tolist(), pa.string()),
            "fov_y": pa.array(self.fov_y()),
            "num_people": pa.array(self.num_people.astype(np.int16)),
            "all_people_annotated": pa.array(self.all_people_annotated()),
        }
        for name in IMAGE_ARRAYS:
            columns[name] = _nest(getattr(self, name), schema.field(name).type, None)
        for name, (shape, dtype) in PERSON_ARRAYS.items():
            value = getattr(self, name)
            if value is None:
                value = np.full((p, *shape), np.nan, dtype)
            columns[name] = _nest(value, schema.field(name).type, offsets)
        if image_bytes is not None:
            paths = [
                f"{SOURCE_LABELS[s]}/{k}"
                for s, k in zip(self.source, self.image_key, strict=True)
            ]
            columns["image"] = pa.StructArray.from_arrays(
                [pa.array(list(image_bytes), pa.binary()), pa.array(paths, pa.string())],
                names=["bytes", "path"],
            )
        return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)

    @classmethod
    def from_arrow(cls, table: pa.Table) -> AnnotationBatch:
        """The rows of an Arrow table of this schema (e.g. `dataset.with_format("arrow")[:]`)
        as flat arrays: the fast path for per-image access (a row is a slice, no per-row
        formatting). Inverse of `to_arrow` (the `image` column, if any, is not kept)."""
        people = table.column("smpl_pose").combine_chunks()
        if isinstance(people, pa.ExtensionArray):
            people = people.storage
        offsets = people.offsets.to_numpy().astype(np.int64)
        values: dict[str, object] = {}
        for name, (shape, dtype) in {**IMAGE_ARRAYS, **PERSON_ARRAYS}.items():
            flat = flat_values(table.column(name)).to_numpy(zero_copy_only=False)
            values[name] = flat.astype(dtype, copy=False).reshape(-1, *shape)
        keys = np.array(table.column("image_key").to_pylist(), dtype=object)
        return cls(image_key=keys, offsets=offsets - offsets[0], **values)

    def row_nbytes(self) -> np.ndarray:
        """(M,) uncompressed Arrow bytes of each row (annotations only), for shard planning."""
        base, per_person = _row_cost()
        keys = np.fromiter((len(k.encode()) for k in self.image_key), np.int64, self.num_images)
        return base + per_person * self.num_people + keys


def flat_values(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The leaf values of a column (every list level and extension type unwrapped), in row
    order: (rows x people x trailing elements,) for a per-person column."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if isinstance(array, pa.ExtensionArray):
        array = array.storage
    while pa.types.is_list(array.type) or pa.types.is_fixed_size_list(array.type):
        array = array.flatten()
    return array


def _nest(values: np.ndarray, arrow_type: pa.DataType, offsets: np.ndarray | None) -> pa.Array:
    """Arrow array of `arrow_type` from a (n, *shape) array: regular nested lists for the trailing
    dimensions, then (if `offsets` are given) one variable list level grouping rows into images."""
    storage = arrow_type.storage_type if isinstance(arrow_type, pa.ExtensionType) else arrow_type
    list_types = []
    leaf_type = storage
    while pa.types.is_list(leaf_type) or pa.types.is_fixed_size_list(leaf_type):
        list_types.append(leaf_type)
        leaf_type = leaf_type.value_type
    regular = list_types[1:] if offsets is not None else list_types
    dims = values.shape[1:]
    if len(dims) != len(regular):
        raise ValueError(f"array of shape {values.shape} does not fit {arrow_type}")
    array: pa.Array = pa.array(np.ascontiguousarray(values).reshape(-1), type=leaf_type)
    count = values.size
    for size, list_type in zip(reversed(dims), reversed(regular), strict=True):
        count //= size
        if pa.types.is_fixed_size_list(list_type):
            array = pa.FixedSizeListArray.from_arrays(array, size)
        else:
            regular_offsets = pa.array(np.arange(0, (count + 1) * size, size, dtype=np.int32))
            array = pa.ListArray.from_arrays(regular_offsets, array, type=list_type)
    if offsets is not None:
        array = pa.ListArray.from_arrays(pa.array(offsets), array, type=list_types[0])
    if isinstance(arrow_type, pa.ExtensionType):
        array = pa.ExtensionArray.from_storage(arrow_type, array)
    return array


@cache
def _row_cost() -> tuple[int, int]:
    """(bytes of a row with no people and an empty key, bytes per person), measured on Arrow."""
    num = 1000

    def nbytes(people: int) -> int:
        offsets = np.array([0, people])
        batch = AnnotationBatch.create(
            image_key=[""], offsets=offsets, source=np.zeros(1, np.int64), annotation=0,
            intrinsics=np.eye(3)[None], smpl_pose=np.zeros((people, NUM_BODY_JOINTS, 3)),
            smpl_betas=np.zeros((people, NUM_BETAS)), transl_cam=np.zeros((people, 3)),
        )  # fmt: skip
        return batch.to_arrow().nbytes

    empty = nbytes(0)
    return empty, -(-(nbytes(num) - empty) // num)


def concat_batches(batches: Sequence[AnnotationBatch]) -> AnnotationBatch:
    """One batch holding the images of `batches` in order."""
    if len(batches) == 1:
        return batches[0]
    counts = np.concatenate([b.num_people for b in batches])
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    values: dict[str, object] = {}
    for f in fields(AnnotationBatch):
        if f.name == "offsets":
            continue
        parts = [getattr(b, f.name) for b in batches]
        if f.name in OPTIONAL_PERSON_ARRAYS and any(x is None for x in parts):
            if all(x is None for x in parts):
                values[f.name] = None
                continue
            shape, dtype = PERSON_ARRAYS[f.name]
            parts = [
                np.full((int(b.offsets[-1]), *shape), np.nan, dtype) if x is None else x
                for b, x in zip(batches, parts, strict=True)
            ]
        values[f.name] = np.concatenate(parts)
    return AnnotationBatch(offsets=offsets, **values)
