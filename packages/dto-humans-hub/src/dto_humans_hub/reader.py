"""The fast per-image path for training loops: read a few columns as flat arrays, split them into
per-image dicts by slicing, and collate images with different numbers of people.

Row-by-row `with_format("numpy")` formats every column of every row in Python; here each column
of a batch of rows is converted to NumPy once (Arrow -> NumPy, mostly zero-copy) and an image is a
set of slices of those arrays. NumPy only (no torch): `collate_people` returns NumPy arrays plus a
padding mask, which a trainer turns into tensors with `torch.from_numpy`.

    from datasets import load_dataset
    from dto_humans_hub.reader import ImageRows, collate_people

    rows = ImageRows.from_dataset(load_dataset(REPO_ID, split="train"))  # TRAIN_COLUMNS
    image = rows[0]  # {"smpl_pose": (N, 24, 3) float32, ..., "image_key": str}
    batch = collate_people([rows[i] for i in range(8)])  # (8, N_max, 24, 3), person_mask
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, IterableDataset

from dto_humans_hub.batch import IMAGE_ARRAYS, PERSON_ARRAYS, flat_values
from dto_humans_hub.conventions import UNKNOWN_LABEL

__all__ = [
    "TRAIN_COLUMNS",
    "ImageRows",
    "collate_people",
    "iter_images",
    "split_batch",
]

TRAIN_COLUMNS: tuple[str, ...] = (
    "source", "image_key", "width", "height", "intrinsics", "num_people", "dto_status",
    "smpl_pose", "smpl_betas", "transl_cam",
)  # fmt: skip
"""What a 3D-supervised trainer reads per image: where the image is (`source`, `image_key`), its
size and camera, and per person the SMPL pose, shape and camera-frame translation. The unread
columns (keypoints_2d alone is 132 floats per person) are never converted."""

DERIVED_ARRAYS: dict[str, tuple[tuple[int, ...], type]] = {
    "fov_y": ((), np.float32),
    "num_people": ((), np.int16),
}
"""Per-image columns stored in the shards but not held by `AnnotationBatch`."""

TEXT_COLUMNS = ("image_key",)
IMAGE_COLUMN = "image"


def _layout(name: str) -> tuple[bool, tuple[int, ...], type | None]:
    """(per person?, trailing shape, dtype) of a column; dtype None for text and image columns."""
    if name in PERSON_ARRAYS:
        shape, dtype = PERSON_ARRAYS[name]
        return True, shape, dtype
    if name in IMAGE_ARRAYS or name in DERIVED_ARRAYS:
        shape, dtype = {**IMAGE_ARRAYS, **DERIVED_ARRAYS}[name]
        return False, shape, dtype
    if name in (*TEXT_COLUMNS, IMAGE_COLUMN):
        return False, (), None
    raise KeyError(f"unknown column {name!r}; columns: {sorted(_known_columns())}")


def _known_columns() -> set[str]:
    return {*PERSON_ARRAYS, *IMAGE_ARRAYS, *DERIVED_ARRAYS, *TEXT_COLUMNS, IMAGE_COLUMN}


class ImageRows:
    """M images of some columns as flat arrays; `rows[i]` is image i as a dict of slices.

    Per-image columns are (M, ...) arrays and `rows[i][name]` is row i (a NumPy scalar or array);
    per-person columns are (P, ...) arrays and `rows[i][name]` is the (N_i, ...) slice
    `offsets[i]:offsets[i + 1]` (a view, no copy); `image_key` is a str; `image` (images config)
    is `{"bytes": ..., "path": ...}` with the original encoded bytes. Has `len` and
    `__getitem__`, so a torch DataLoader takes it as a map-style dataset.
    """

    def __init__(
        self, arrays: dict[str, np.ndarray], offsets: np.ndarray, text: dict[str, list[Any]]
    ) -> None:
        self.arrays = arrays
        self.offsets = offsets
        self.text = text
        self._person = tuple(n for n in arrays if _layout(n)[0])
        self._image = tuple(n for n in arrays if not _layout(n)[0])

    @classmethod
    def from_arrow(
        cls, table: pa.Table | pa.RecordBatch, columns: Sequence[str] | None = None
    ) -> ImageRows:
        """The rows of an Arrow table of the DTO-Humans schema (all its columns, or `columns`)."""
        names = list(table.schema.names if columns is None else columns)
        missing = [n for n in names if n not in table.schema.names]
        if missing:
            raise KeyError(f"columns {missing} not in the table (has {table.schema.names})")
        arrays: dict[str, np.ndarray] = {}
        text: dict[str, list[Any]] = {}
        offsets = None
        for name in names:
            per_person, shape, dtype = _layout(name)
            column = table.column(name)
            if isinstance(column, pa.ChunkedArray):
                column = column.combine_chunks()
            if dtype is None:
                text[name] = column.to_pylist()
                continue
            if per_person:
                lengths = pc.list_value_length(
                    column.storage if isinstance(column, pa.ExtensionArray) else column
                ).to_numpy(zero_copy_only=False)
                these = np.zeros(len(lengths) + 1, dtype=np.int64)
                np.cumsum(lengths, out=these[1:])
                if offsets is None:
                    offsets = these
                elif not np.array_equal(offsets, these):
                    raise ValueError(f"{name}: people per image differ from the other columns")
            flat = flat_values(column).to_numpy(zero_copy_only=False)
            arrays[name] = flat.astype(dtype, copy=False).reshape(-1, *shape)
        if offsets is None:
            offsets = np.zeros(table.num_rows + 1, dtype=np.int64)
        return cls(arrays, offsets, text)

    @classmethod
    def from_dataset(
        cls, dataset: Dataset, columns: Sequence[str] | None = TRAIN_COLUMNS
    ) -> ImageRows:
        """Every row of a loaded `datasets.Dataset` (any config, split, filter or shuffle), of
        `columns` (None: all). Reads the Arrow data once; memory: those columns' flat arrays."""
        if columns is not None:
            dataset = dataset.select_columns(list(columns))
        return cls.from_arrow(dataset.with_format("arrow")[:], columns)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> dict[str, Any]:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"image {i} out of range for {n} images")
        i %= n
        start, stop = self.offsets[i], self.offsets[i + 1]
        out: dict[str, Any] = {name: self.arrays[name][i] for name in self._image}
        for name in self._person:
            out[name] = self.arrays[name][start:stop]
        for name, values in self.text.items():
            out[name] = values[i]
        return out

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self[i] for i in range(len(self)))


def split_batch(
    batch: pa.Table | pa.RecordBatch | Mapping[str, Sequence[Any]],
    columns: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """A batch of rows as one dict per image. `batch`: an Arrow table (what
    `dataset.with_format("arrow").iter(batch_size)` yields: the fast path, see `ImageRows`), or a
    formatted batch `{column: [value per row]}` (e.g. from `with_format("numpy")`)."""
    if isinstance(batch, pa.Table | pa.RecordBatch):
        return list(ImageRows.from_arrow(batch, columns))
    names = list(batch if columns is None else columns)
    if not names:
        return []
    count = len(batch[names[0]])
    return [{name: batch[name][i] for name in names} for i in range(count)]


def iter_images(
    dataset: Dataset | IterableDataset,
    columns: Sequence[str] | None = TRAIN_COLUMNS,
    batch_size: int = 1024,
) -> Iterator[dict[str, Any]]:
    """Images of a `Dataset` or streaming `IterableDataset` one dict at a time, read `batch_size`
    rows at a time through Arrow (as `ImageRows`). For DataLoader workers on a stream, give each
    worker `dataset.shard(num_shards=workers, index=worker_id)` (datasets' own sharding)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if columns is not None:
        dataset = dataset.select_columns(list(columns))
    for table in dataset.with_format("arrow").iter(batch_size=batch_size):
        yield from ImageRows.from_arrow(table, columns)


def _pad_value(dtype: np.dtype) -> object:
    if dtype == np.bool_:
        return False
    return UNKNOWN_LABEL if np.issubdtype(dtype, np.integer) else 0.0


def collate_people(
    images: Iterable[Mapping[str, Any]], *, max_people: int | None = None
) -> dict[str, Any]:
    """Collate per-image dicts (from `ImageRows`, `split_batch` or `iter_images`) into a batch of B.

    Per-person columns become (B, N_max, ...) arrays, N_max the most people of an image in the
    batch (or `max_people`, for fixed shapes; more people than that is a ValueError naming the
    image), padded with 0 (floats), -1 (labels) or False; `person_mask` (B, N_max) bool is True
    for real people, `num_people` (B,) int64 counts them. Per-image arrays are stacked to (B, ...);
    text and image bytes stay lists. NumPy only: `torch.from_numpy` each array for tensors.
    """
    images = list(images)
    if not images:
        raise ValueError("no images to collate")
    names = list(images[0])
    person = [n for n in names if n in PERSON_ARRAYS]
    counts = np.array(
        [len(im[person[0]]) for im in images] if person else [0] * len(images), dtype=np.int64
    )
    width = int(counts.max()) if max_people is None else max_people
    if counts.max() > width:
        worst = int(np.argmax(counts))
        key = images[worst].get("image_key", f"#{worst}")
        raise ValueError(
            f"image {key} has {counts[worst]} people, more than max_people={max_people}; raise it"
        )
    out: dict[str, Any] = {}
    for name in names:
        values = [im[name] for im in images]
        if name in person:
            first = np.asarray(values[0])
            padded = np.full((len(images), width, *first.shape[1:]), _pad_value(first.dtype),
                             dtype=first.dtype)  # fmt: skip
            for b, value in enumerate(values):
                if len(value) != counts[b]:
                    raise ValueError(
                        f"{name} of image #{b}: {len(value)} rows, expected {counts[b]}"
                    )
                padded[b, : counts[b]] = value
            out[name] = padded
        elif name in TEXT_COLUMNS or name == IMAGE_COLUMN:
            out[name] = values
        else:
            out[name] = np.stack([np.asarray(v) for v in values])
    out["num_people"] = counts
    out["person_mask"] = np.arange(width)[None, :] < counts[:, None]
    return out
