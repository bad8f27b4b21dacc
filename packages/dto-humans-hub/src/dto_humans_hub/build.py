"""Building a dataset directory: the annotations config from conversions, the images config from
local images, then the statistics figures and the dataset card."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datasets.table import table_cast
from PIL import Image as PILImage

from dto_humans_hub.batch import _row_cost
from dto_humans_hub.conventions import (
    ANNOTATIONS_CONFIG,
    IMAGES_CONFIG,
    MAX_SHARD_BYTES,
    SOURCES,
)
from dto_humans_hub.convert import Conversion, Rejection, merge_conversions
from dto_humans_hub.schema import features
from dto_humans_hub.writer import (
    ShardInfo,
    input_digest,
    read_manifest,
    write_config,
)

__all__ = [
    "BuildReport",
    "ImageRoot",
    "MissingImagesError",
    "build_dataset",
    "build_images_config",
    "image_path",
    "read_config_table",
]

ImageRoot = str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]]
"""Where source images live: one folder holding `<source>/<image_key>`, or {source: folder}
holding `<image_key>`."""


class MissingImagesError(FileNotFoundError):
    """Images referenced by annotation rows are not under the image root."""


@dataclass(frozen=True)
class BuildReport:
    """What a build wrote and what it did not convert."""

    config: str
    num_images: int
    num_people: int
    shards: tuple[ShardInfo, ...]
    rejected: tuple[Rejection, ...]


def build_dataset(
    root: str | os.PathLike[str],
    conversions: Conversion | Sequence[Conversion],
    *,
    max_shard_bytes: int = MAX_SHARD_BYTES,
    restart: bool = False,
    repo_id: str | None = None,
    figures: bool = True,
) -> BuildReport:
    """Write the annotations config of `conversions` into `root`, then figures and the card.

    Resumable: re-running after an interruption with the same input finishes the build without
    rewriting finished shards. Raises DuplicateImageKeyError if two inputs share an image.
    """
    from dto_humans_hub.card import write_card

    root = Path(root)
    conv = merge_conversions(
        [conversions] if isinstance(conversions, Conversion) else list(conversions)
    )
    batch = conv.batch
    keys = batch.image_key.astype(str)
    batch = batch.take(np.lexsort((keys, batch.source)))
    digest = input_digest(
        [getattr(batch, name) for name in batch.__dataclass_fields__], extra=ANNOTATIONS_CONFIG
    )
    shards = write_config(
        root,
        ANNOTATIONS_CONFIG,
        batch.num_images,
        batch.row_nbytes(),
        lambda start, stop: batch.slice(start, stop).to_arrow(),
        batch.num_people,
        input_digest=digest,
        extra={
            "inputs": [asdict(f) for f in conv.inputs],
            "rejected": [asdict(r) for r in conv.rejected],
        },
        max_shard_bytes=max_shard_bytes,
        restart=restart,
    )
    write_card(root, repo_id=repo_id, figures=figures)
    return BuildReport(
        ANNOTATIONS_CONFIG,
        batch.num_images,
        int(batch.offsets[-1]),
        tuple(shards),
        conv.rejected,
    )


def image_path(image_root: ImageRoot, source: str, image_key: str) -> Path:
    """Local path of an image: `root/<source>/<image_key>` or `root[source]/<image_key>`."""
    if isinstance(image_root, Mapping):
        if source not in image_root:
            raise KeyError(f"no image folder given for source {source!r}")
        return Path(image_root[source]) / image_key
    return Path(image_root) / source / image_key


def read_config_table(root: str | os.PathLike[str], config: str = ANNOTATIONS_CONFIG) -> pa.Table:
    """All rows of a built config as one Arrow table with the schema's extension types."""
    root = Path(root)
    manifest = read_manifest(root)
    if config not in manifest["configs"]:
        raise FileNotFoundError(f"{root}: no {config!r} config built")
    paths = [root / s["path"] for s in manifest["configs"][config]["splits"]["train"]["shards"]]
    table = pa.concat_tables([pq.read_table(p, memory_map=True) for p in paths])
    return table_cast(table, features(images=config == IMAGES_CONFIG).arrow_schema)


def build_images_config(
    root: str | os.PathLike[str],
    image_root: ImageRoot,
    *,
    on_missing: Literal["raise", "skip"] = "raise",
    max_shard_bytes: int = MAX_SHARD_BYTES,
    restart: bool = False,
    repo_id: str | None = None,
) -> BuildReport:
    """Write the images config of a built dataset: its annotation rows plus the original image
    bytes from `image_root` (not re-encoded), checked against the stored width and height.

    on_missing: "raise" (MissingImagesError listing them) or "skip" (rows without an image are
    left out and listed in the manifest under `images.missing`).
    """
    from dto_humans_hub.card import write_card

    root = Path(root)
    table = read_config_table(root)
    sources = [SOURCES[s] for s in table.column("source").to_numpy()]
    keys = table.column("image_key").to_pylist()
    paths = [image_path(image_root, s, k) for s, k in zip(sources, keys, strict=True)]
    sizes = np.zeros(len(paths), dtype=np.int64)
    mtimes = np.zeros(len(paths), dtype=np.int64)
    missing = []
    for i, path in enumerate(paths):
        try:
            st = path.stat()
        except FileNotFoundError:
            missing.append(i)
            continue
        sizes[i], mtimes[i] = st.st_size, st.st_mtime_ns
    if missing and on_missing == "raise":
        shown = ", ".join(f"{sources[i]}/{keys[i]}" for i in missing[:5])
        raise MissingImagesError(
            f"{len(missing)} of {len(paths)} images not found under {image_root} (e.g. {shown}); "
            "pass on_missing='skip' to leave them out"
        )
    keep = np.setdiff1d(np.arange(len(paths)), missing)
    table = table.take(pa.array(keep))
    paths = [paths[i] for i in keep]
    sizes, mtimes = sizes[keep], mtimes[keep]
    people = table.column("num_people").to_numpy().astype(np.int64)
    key_bytes = np.array([len(keys[i].encode()) for i in keep], dtype=np.int64)
    base, per_person = _row_cost()
    row_bytes = base + per_person * people + key_bytes + sizes
    schema = features(images=True).arrow_schema
    annotation_digest = read_manifest(root)["configs"][ANNOTATIONS_CONFIG]["input_digest"]
    relative = np.array([f"{sources[i]}/{keys[i]}" for i in keep], dtype=object)
    digest = input_digest([relative, sizes, mtimes], extra=f"{IMAGES_CONFIG}\0{annotation_digest}")
    width = table.column("width").to_numpy()
    height = table.column("height").to_numpy()

    def make_table(start: int, stop: int) -> pa.Table:
        blobs = []
        for i in range(start, stop):
            data = paths[i].read_bytes()
            with PILImage.open(io.BytesIO(data)) as im:
                w, h = im.size
            if width[i] > 0 and (w, h) != (width[i], height[i]):
                raise ValueError(
                    f"{paths[i]}: image is {w}x{h} px but the annotation says "
                    f"{width[i]}x{height[i]} (wrong image, or resized?)"
                )
            blobs.append(data)
        image = pa.StructArray.from_arrays(
            [pa.array(blobs, pa.binary()), pa.array(list(relative[start:stop]), pa.string())],
            names=["bytes", "path"],
        )
        rows = table.slice(start, stop - start).append_column("image", image)
        return rows.cast(schema)

    shards = write_config(
        root,
        IMAGES_CONFIG,
        len(keep),
        row_bytes,
        make_table,
        people,
        input_digest=digest,
        extra={"missing": [f"{sources[i]}/{keys[i]}" for i in missing]},
        max_shard_bytes=max_shard_bytes,
        restart=restart,
    )
    write_card(root, repo_id=repo_id, figures=False)
    rejected = tuple(
        Rejection("images", f"{sources[i]}/{keys[i]}", "image file not found") for i in missing
    )
    return BuildReport(IMAGES_CONFIG, len(keep), int(people.sum()), tuple(shards), rejected)
