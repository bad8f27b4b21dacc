"""Joining local images to annotation rows loaded with `datasets`."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from datasets import Dataset, Image, IterableDataset

from dto_humans_hub.build import ImageRoot, MissingImagesError, image_path
from dto_humans_hub.conventions import SOURCE_LABELS
from dto_humans_hub.schema import features

__all__ = ["attach_images", "find_missing_images"]

D = TypeVar("D", Dataset, IterableDataset)


def _paths(batch: dict[str, list], image_root: ImageRoot) -> list[str]:
    return [
        str(image_path(image_root, SOURCE_LABELS[s], k))
        for s, k in zip(batch["source"], batch["image_key"], strict=True)
    ]


def find_missing_images(dataset: Dataset, image_root: ImageRoot) -> list[str]:
    """`<source>/<image_key>` of every row whose image is not under `image_root`."""
    rows = dataset.select_columns(["source", "image_key"]).to_dict()
    return [
        f"{SOURCE_LABELS[s]}/{k}"
        for s, k, p in zip(rows["source"], rows["image_key"], _paths(rows, image_root), strict=True)
        if not Path(p).is_file()
    ]


def attach_images(dataset: D, image_root: ImageRoot) -> D:
    """The rows with an `image` column (datasets `Image()`, decoded lazily from the local file
    `image_root/<source>/<image_key>`, or `image_root[source]/<image_key>`).

    For a `Dataset` every image must exist (MissingImagesError lists the missing ones; filter them
    out first with `find_missing_images`). For a streaming `IterableDataset` a missing file raises
    when its row is read.
    """
    if isinstance(dataset, Dataset):
        missing = find_missing_images(dataset, image_root)
        if missing:
            raise MissingImagesError(
                f"{len(missing)} of {len(dataset)} images not found under {image_root} "
                f"(e.g. {', '.join(missing[:5])})"
            )
    joined = dataset.features.copy() if dataset.features is not None else features()
    joined["image"] = Image()

    def add_paths(batch: dict[str, list]) -> dict[str, list]:
        return {"image": [{"path": p, "bytes": None} for p in _paths(batch, image_root)]}

    if isinstance(dataset, IterableDataset):
        # a streaming map only records features it is given; a cast makes rows decode through them
        return dataset.map(add_paths, batched=True).cast(joined)
    return dataset.map(add_paths, batched=True, features=joined)
