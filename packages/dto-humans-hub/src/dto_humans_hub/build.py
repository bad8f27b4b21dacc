"""Building a dataset folder: the annotations from conversions, the images from local files, the
statistics figures and the card, each build written beside the current one and switched in
atomically (`dto_humans_hub.swap`)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datasets.table import table_cast
from PIL import Image as PILImage

from dto_humans_hub.batch import AnnotationBatch, _row_cost
from dto_humans_hub.conventions import (
    ANNOTATIONS,
    IMAGES,
    INSTA_KEY_PREFIX,
    MAX_SHARD_BYTES,
    MIN_SHARD_ROWS,
    MIN_SHARDS,
    SOURCE_LABELS,
    SPLITS,
    VALIDATION_FRACTION,
)
from dto_humans_hub.convert import Conversion, InputFile, Rejection, merge_conversions
from dto_humans_hub.schema import features
from dto_humans_hub.swap import (
    BUILD_PREFIX,
    build_lock,
    builds_dir,
    current_build,
    dataset_path,
    remove_other_builds,
    switch_to,
)
from dto_humans_hub.writer import (
    MANIFEST,
    STAGING_DIR,
    Part,
    ShardInfo,
    empty_manifest,
    family_shards,
    input_digest,
    read_manifest,
    write_family,
    write_manifest,
)

__all__ = [
    "BuildReport",
    "ImageRoot",
    "MissingImagesError",
    "StagedBuildError",
    "build_dataset",
    "build_images_config",
    "convert_built_dataset",
    "image_path",
    "read_family_table",
    "validation_mask",
]

logger = logging.getLogger(__name__)

ImageRoot = str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]]
"""Where source images live: one folder holding `<source>/<image_key>`, or {source: folder}
holding `<image_key>`."""


class MissingImagesError(FileNotFoundError):
    """Images referenced by annotation rows are not under the image root."""


class StagedBuildError(ValueError):
    """An interrupted build of other input is staged next to the dataset."""


@dataclass(frozen=True)
class BuildReport:
    """What a build wrote (`family`: annotations or images), what it did not convert, and notes
    (e.g. an images family dropped because the annotations changed)."""

    family: str
    num_images: int
    num_people: int
    shards: tuple[ShardInfo, ...]
    rejected: tuple[Rejection, ...]
    notes: tuple[str, ...] = ()


def _split_group(source: str, image_key: str) -> str:
    """The unit kept on one side of the train/validation split: the image, or for InstaVariety
    the clip (first folder under `insta-train/`)."""
    if source == "insta":
        return image_key.removeprefix(INSTA_KEY_PREFIX).split("/", 1)[0]
    return image_key


def validation_mask(
    source: np.ndarray, image_key: Sequence[str], fraction: float = VALIDATION_FRACTION
) -> np.ndarray:
    """(M,) True for images held out as `validation`: blake2b-64(`<source>/<group>`) / 2^64 <
    fraction, a function of the image (its clip for InstaVariety) alone."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    threshold = int(fraction * 2**64)
    out = np.zeros(len(image_key), dtype=bool)
    for i, (s, key) in enumerate(zip(source, image_key, strict=True)):
        name = SOURCE_LABELS[s]
        digest = hashlib.blake2b(f"{name}/{_split_group(name, key)}".encode(), digest_size=8)
        out[i] = int.from_bytes(digest.digest(), "big") < threshold
    return out


def _link_or_copy(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        return
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def _user_files(build: Path | None) -> list[str]:
    """Files of a build that no build step writes (the user's own), relative paths."""
    if build is None:
        return []
    ours = ("README.md", MANIFEST)
    return sorted(
        p.relative_to(build).as_posix()
        for p in build.rglob("*")
        if p.is_file()
        and p.relative_to(build).as_posix() not in ours
        and p.relative_to(build).parts[0] not in ("data", "figures", STAGING_DIR)
    )


def _commit(
    root: Path,
    family: str,
    digest: str,
    write: Callable[[Path], dict[str, Any]],
    *,
    keep: Callable[[str, dict[str, Any]], bool],
    restart: bool,
    repo_id: str | None,
    figures: bool,
) -> tuple[dict[str, Any], list[str]]:
    """Write `family` (digest of its input) into a new build next to the current one, keeping the
    current build's families for which keep(name, entry) holds, then the card, then switch.
    Returns the family's manifest entry and notes."""
    from dto_humans_hub.card import write_card

    notes = []
    with build_lock(root):
        current = current_build(root)
        old = read_manifest(current) if current is not None else empty_manifest()
        kept = {f: e for f, e in old["families"].items() if f != family and keep(f, e)}
        for f in old["families"]:
            if f != family and f not in kept:
                notes.append(f"the {f} config was built from other annotations and is dropped; "
                             f"rebuild it (`dto-humans-hub {f} ...`)")  # fmt: skip
        digests = {f: e["input_digest"] for f, e in kept.items()} | {family: digest}
        key = hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()
        target = builds_dir(root) / f"{BUILD_PREFIX}{key[:16]}"
        # a build still holding its staging state was interrupted; a complete one that is not
        # current is left over from a switch (or was never switched in) and is deleted
        partial = [
            b for b in builds_dir(root).iterdir()
            if b.name.startswith(BUILD_PREFIX) and (b / STAGING_DIR).is_dir()
            and b.name != target.name and (current is None or b.name != current.name)
        ]  # fmt: skip
        if current is not None and current.name == target.name:  # same input: card and figures
            remove_other_builds(root, keep=partial)
            if repo_id is not None and old.get("repo_id") != repo_id:
                write_manifest(current, {**old, "repo_id": repo_id})
            write_card(current, figures=figures)
            return old["families"][family], notes
        if partial and not restart:
            raise StagedBuildError(
                f"{root}: an interrupted build of other input is staged in {partial[0]}; pass "
                "restart=True (--restart) to discard it"
            )
        remove_other_builds(root, keep=[target])
        target.mkdir(exist_ok=True)
        manifest = read_manifest(target)  # a killed run of this same build left it
        entry = manifest["families"].get(family)
        if entry is None or entry["input_digest"] != digest:
            manifest = {**empty_manifest(), **{k: v for k, v in old.items() if k != "families"}}
            for f, e in kept.items():
                for shard in family_shards(old, f):
                    _link_or_copy(current / shard["path"], target / shard["path"])
                manifest["families"][f] = e
            if ANNOTATIONS in kept and current is not None:
                for png in (current / "figures").glob("*.png"):
                    _link_or_copy(png, target / "figures" / png.name)
            entry = write(target)
            manifest["families"][family] = entry
            if repo_id is not None:
                manifest["repo_id"] = repo_id
            write_manifest(target, manifest)
        write_card(target, figures=figures)
        shutil.rmtree(target / STAGING_DIR, ignore_errors=True)
        switch_to(root, target, carry=_user_files(current))
    for note in notes:
        logger.warning("%s: %s", root, note)
    return entry, notes


def _report(family: str, entry: dict[str, Any], rejected, notes) -> BuildReport:
    shards = tuple(ShardInfo(**s) for split in entry["splits"].values() for s in split["shards"])
    return BuildReport(
        family,
        sum(s.num_rows for s in shards),
        sum(s.num_people for s in shards),
        shards,
        tuple(rejected),
        tuple(notes),
    )


def build_dataset(
    root: str | os.PathLike[str],
    conversions: Conversion | Sequence[Conversion],
    *,
    max_shard_bytes: int = MAX_SHARD_BYTES,
    validation_fraction: float = VALIDATION_FRACTION,
    restart: bool = False,
    repo_id: str | None = None,
    figures: bool = True,
) -> BuildReport:
    """Build the annotations of `conversions` as the dataset at `root` (a link to the build),
    with figures and card: per source and split `data/annotations/<source>/<split>-*.parquet`,
    rows sorted by image key, `validation_fraction` of the images held out (`validation_mask`).

    Atomic: readers of `root` see the previous dataset until the new one is complete. Resumable:
    re-running after an interruption with the same input finishes the build without rewriting
    finished shards (another input: StagedBuildError unless `restart`). An images config of the
    same annotations is kept. Raises DuplicateImageKeyError if two inputs share an image, and
    ValueError if they hold no image (a dataset without rows cannot be loaded).
    """
    root = dataset_path(root)
    conv = merge_conversions(
        [conversions] if isinstance(conversions, Conversion) else list(conversions)
    )
    batch = conv.batch
    if batch.num_images == 0:
        raise ValueError(
            f"{root}: nothing to build, the input holds no image ({len(conv.rejected)} rejected)"
        )
    keys = batch.image_key.astype(str)
    batch = batch.take(np.lexsort((keys, batch.source)))
    held_out = validation_mask(batch.source, batch.image_key, validation_fraction)
    digest = input_digest(
        [getattr(batch, name) for name in batch.__dataclass_fields__],
        extra=f"{ANNOTATIONS}\0{validation_fraction!r}\0{max_shard_bytes}\0{MIN_SHARDS}"
        f"\0{MIN_SHARD_ROWS}",
    )

    def write(target: Path) -> dict[str, Any]:
        parts = []
        for s in np.unique(batch.source):
            for split in SPLITS:
                index = np.flatnonzero((batch.source == s) & (held_out == (split != "train")))
                if len(index):
                    parts.append(_annotation_part(batch.take(index), SOURCE_LABELS[s], split))
        entry = write_family(
            target, ANNOTATIONS, parts, input_digest=digest, max_shard_bytes=max_shard_bytes
        )
        return {
            **entry,
            "synthetic": conv.synthetic,
            "validation_fraction": validation_fraction,
            "inputs": [asdict(f) for f in conv.inputs],
            "rejected": [asdict(r) for r in conv.rejected],
        }

    def keep(family: str, entry: dict[str, Any]) -> bool:
        return entry.get("annotation_digest") == digest

    entry, notes = _commit(
        root, ANNOTATIONS, digest, write,
        keep=keep, restart=restart, repo_id=repo_id, figures=figures,
    )  # fmt: skip
    return _report(ANNOTATIONS, entry, conv.rejected, notes)


def _annotation_part(batch: AnnotationBatch, source: str, split: str) -> Part:
    return Part(
        source,
        split,
        batch.row_nbytes(),
        batch.num_people,
        lambda start, stop: batch.slice(start, stop).to_arrow(),
    )


def image_path(image_root: ImageRoot, source: str, image_key: str) -> Path:
    """Local path of an image: `root/<source>/<image_key>` or `root[source]/<image_key>`."""
    if isinstance(image_root, Mapping):
        if source not in image_root:
            raise KeyError(f"no image folder given for source {source!r}")
        return Path(image_root[source]) / image_key
    return Path(image_root) / source / image_key


def _read_shards(root: Path, shards: Sequence[dict[str, Any]], family: str) -> pa.Table:
    schema = features(images=family == IMAGES).arrow_schema
    tables = [pq.read_table(root / s["path"], memory_map=True) for s in shards]
    return table_cast(pa.concat_tables(tables) if tables else schema.empty_table(), schema)


def read_family_table(
    root: str | os.PathLike[str], family: str = ANNOTATIONS, split: str | None = None
) -> pa.Table:
    """The rows of a built family (one split, or all) as one Arrow table with the schema's
    extension types, in (split, source, image key) order."""
    root = Path(root)
    manifest = read_manifest(root)
    if family not in manifest["families"]:
        raise FileNotFoundError(f"{root}: no {family!r} config built")
    shards = [s for s in family_shards(manifest, family) if split is None or s["split"] == split]
    return _read_shards(root, shards, family)


def convert_built_dataset(
    root: str | os.PathLike[str], *, name: str | None = None
) -> Conversion:
    """The annotations of a built dataset as a `Conversion`, to build them into another dataset
    (alone, or with others through `merge_conversions`: e.g. joining the datasets that several
    processes wrote). The rows of every split come back exactly as stored, with the images its
    build rejected; one `InputFile` stands for the dataset: `name` (default: the folder's name),
    the bytes of its annotation shards, the sha256 input digest of its annotations, its number
    of images and whether it is synthetic. Check the shards first with `verify_dataset` where
    they may be damaged."""
    root = Path(root)
    manifest = read_manifest(root)
    entry = manifest["families"].get(ANNOTATIONS)
    if entry is None:
        raise FileNotFoundError(f"{root}: no {ANNOTATIONS!r} config built")
    batch = AnnotationBatch.from_arrow(read_family_table(root))
    size = sum(s["num_bytes"] for s in family_shards(manifest, ANNOTATIONS))
    file = InputFile(
        name or root.name, size, entry["input_digest"], batch.num_images, bool(entry["synthetic"])
    )
    rejected = tuple(Rejection(**r) for r in entry["rejected"])
    return Conversion(batch, rejected, (file,), np.zeros(batch.num_images, dtype=np.int64))


def build_images_config(
    root: str | os.PathLike[str],
    image_root: ImageRoot,
    *,
    on_missing: Literal["raise", "skip"] = "raise",
    max_shard_bytes: int = MAX_SHARD_BYTES,
    restart: bool = False,
    repo_id: str | None = None,
) -> BuildReport:
    """Add the images config to a built dataset: its annotation rows (same sources and splits)
    plus the original image bytes from `image_root` (not re-encoded), checked against the stored
    width and height. Switched in atomically like `build_dataset`.

    on_missing: "raise" (MissingImagesError listing them) or "skip" (rows without an image are
    left out and listed in the manifest under `images.missing`).
    """
    root = dataset_path(root)
    if current_build(root) is None:
        raise FileNotFoundError(f"{root}: no dataset built there; run `dto-humans-hub build` first")
    manifest = read_manifest(root)
    if ANNOTATIONS not in manifest["families"]:
        raise FileNotFoundError(f"{root}: no {ANNOTATIONS!r} config built")
    annotation_digest = manifest["families"][ANNOTATIONS]["input_digest"]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for shard in family_shards(manifest, ANNOTATIONS):
        groups.setdefault((shard["source"], shard["split"]), []).append(shard)

    base, per_person = _row_cost()
    schema = features(images=True).arrow_schema
    parts_input = []
    missing: list[str] = []
    total = 0
    for (source, split), shards in groups.items():
        table = _read_shards(root, shards, ANNOTATIONS)
        keys = table.column("image_key").to_pylist()
        paths = [image_path(image_root, source, k) for k in keys]
        total += len(paths)
        stats = np.zeros((len(paths), 2), dtype=np.int64)  # size, mtime
        found = np.ones(len(paths), dtype=bool)
        for i, path in enumerate(paths):
            try:
                st = path.stat()
            except FileNotFoundError:
                found[i] = False
                missing.append(f"{source}/{keys[i]}")
                continue
            stats[i] = st.st_size, st.st_mtime_ns
        parts_input.append((source, split, table, keys, paths, stats, found))
    if missing and on_missing == "raise":
        raise MissingImagesError(
            f"{len(missing)} of {total} images not found under {image_root} (e.g. "
            f"{', '.join(missing[:5])}); pass on_missing='skip' (--skip-missing) to leave them out"
        )
    digest_arrays: list[np.ndarray] = []
    for source, split, _, keys, _, stats, found in parts_input:
        names = np.array([f"{source}/{split}/{k}" for k in keys], dtype=object)
        digest_arrays += [names[found], stats[found]]
    digest = input_digest(digest_arrays, extra=f"{IMAGES}\0{annotation_digest}\0{max_shard_bytes}")

    def image_part(source, split, table, keys, paths, stats, found) -> Part:
        keep_rows = np.flatnonzero(found)
        rows = table.take(pa.array(keep_rows))
        people = rows.column("num_people").to_numpy().astype(np.int64)
        key_bytes = np.array([len(keys[i].encode()) for i in keep_rows], dtype=np.int64)
        width, height = rows.column("width").to_numpy(), rows.column("height").to_numpy()
        kept_paths = [paths[i] for i in keep_rows]
        relative = [f"{source}/{keys[i]}" for i in keep_rows]

        def make_table(start: int, stop: int) -> pa.Table:
            blobs = []
            for i in range(start, stop):
                data = kept_paths[i].read_bytes()
                with PILImage.open(io.BytesIO(data)) as im:
                    w, h = im.size
                if width[i] > 0 and (w, h) != (width[i], height[i]):
                    raise ValueError(
                        f"{kept_paths[i]}: image is {w}x{h} px but the annotation says "
                        f"{width[i]}x{height[i]} (wrong image, or resized?)"
                    )
                blobs.append(data)
            image = pa.StructArray.from_arrays(
                [pa.array(blobs, pa.binary()), pa.array(relative[start:stop], pa.string())],
                names=["bytes", "path"],
            )
            return rows.slice(start, stop - start).append_column("image", image).cast(schema)

        row_bytes = base + per_person * people + key_bytes + stats[keep_rows, 0]
        return Part(source, split, row_bytes, people, make_table)

    def write(target: Path) -> dict[str, Any]:
        parts = [image_part(*p) for p in parts_input]
        entry = write_family(
            target, IMAGES, parts, input_digest=digest, max_shard_bytes=max_shard_bytes
        )
        return {**entry, "annotation_digest": annotation_digest, "missing": missing}

    def keep(family: str, entry: dict[str, Any]) -> bool:
        if family == ANNOTATIONS and entry["input_digest"] != annotation_digest:
            raise StagedBuildError(f"{root}: the annotations were rebuilt meanwhile; run again")
        return family == ANNOTATIONS

    entry, notes = _commit(
        root, IMAGES, digest, write, keep=keep, restart=restart, repo_id=repo_id, figures=False
    )
    rejected = [Rejection("images", m, "image file not found") for m in missing]
    return _report(IMAGES, entry, rejected, notes)
