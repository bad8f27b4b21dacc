"""Deterministic, resumable shard writer, the dataset manifest and its verification.

Layout of a build (what a dataset link points to; the Hub repository's layout, see `swap`):

    README.md                                          dataset card (YAML configs + dataset_info)
    manifest.json                                      rows, people, bytes and sha256 per shard
    figures/*.png                                      statistics figures
    data/<family>/<source>/<split>-NNNNN-of-MMMMM.parquet
    .dto-build/                                        staging state while the build is written

Rows of each (source, split) are sorted by image key and cut into shards of nearly equal size
(`plan_shards`), so the same input gives the same shards. Each shard is written by
`datasets.Dataset.to_parquet` (the library's row groups, content-defined chunking, page index and
the `huggingface` features metadata) to a temporary file, renamed, checksummed and recorded in
the staging state; an interrupted build re-run with the same input skips the recorded shards and
rewrites the rest. Nobody reads a build before it is complete: `swap.switch_to` makes it the
dataset in one rename.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dto_core import atomic
from dto_humans_hub.conventions import (
    DATASET_NAME,
    FAMILIES,
    IMAGES,
    MAX_SHARD_BYTES,
    MIN_SHARD_ROWS,
    MIN_SHARDS,
    SCHEMA_VERSION,
)
from dto_humans_hub.schema import features

__all__ = [
    "DatasetVerificationError",
    "Part",
    "ShardInfo",
    "file_sha256",
    "input_digest",
    "plan_shards",
    "read_manifest",
    "shard_count",
    "shard_name",
    "verify_dataset",
    "write_atomic",
    "write_family",
]

logger = logging.getLogger(__name__)

STAGING_DIR = ".dto-build"
MANIFEST = "manifest.json"
MANIFEST_VERSION = 2


class DatasetVerificationError(ValueError):
    """A built dataset does not match its manifest."""


@dataclass(frozen=True)
class ShardInfo:
    """One written shard: path relative to the dataset root, source, split, rows, people, file
    bytes, sha256, uncompressed Arrow bytes."""

    path: str
    source: str
    split: str
    num_rows: int
    num_people: int
    num_bytes: int
    sha256: str
    arrow_bytes: int


@dataclass(frozen=True)
class Part:
    """The rows of one (source, split) of a family: row count, uncompressed bytes per row (for
    shard planning), people per row, and make_table(start, stop) giving rows start:stop as Arrow
    (schema of `features(...)`)."""

    source: str
    split: str
    row_bytes: np.ndarray
    people: np.ndarray
    make_table: Callable[[int, int], pa.Table]

    @property
    def num_rows(self) -> int:
        return len(self.row_bytes)


def write_atomic(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """dto-core's atomic writer, flushed to disk before the rename: a resumed build trusts the
    files it finds."""
    atomic.write_atomic(path, write, fsync=True)


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """`datasets`' own progress bars off while a library call runs (`Dataset.to_parquet` draws
    one per shard, which is no business of a caller's output), and back as they were after.
    `HF_DATASETS_DISABLE_PROGRESS_BARS=0` (the user asked for every bar) is respected."""
    if (
        not datasets.is_progress_bar_enabled()
        or datasets.config.HF_DATASETS_DISABLE_PROGRESS_BARS is False
    ):
        yield
        return
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        datasets.enable_progress_bars()


def _write_json(path: Path, value: Any) -> None:
    text = json.dumps(value, indent=1, sort_keys=False) + "\n"
    write_atomic(path, lambda f: f.write(text.encode()))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def shard_name(split: str, index: int, count: int) -> str:
    """`<split>-NNNNN-of-MMMMM.parquet`, the naming `push_to_hub` uses and `datasets` detects."""
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


def _greedy_bounds(cumulative: np.ndarray, cap: int) -> list[int]:
    """Bounds of shards filled in order with rows while a shard stays within `cap` bytes (a row
    larger than `cap` gets a shard of its own). cumulative: (n + 1,) running byte sums from 0."""
    n = len(cumulative) - 1
    bounds = [0]
    while bounds[-1] < n:
        start = bounds[-1]
        stop = int(np.searchsorted(cumulative, cumulative[start] + cap, side="right")) - 1
        bounds.append(min(max(stop, start + 1), n))
    return bounds


def shard_count(num_rows: int) -> int:
    """The fewest shards of a part for parallel streaming: the largest power of two <=
    min(MIN_SHARDS, num_rows / MIN_SHARD_ROWS), at least 1 (the byte bound may ask for more)."""
    wanted = min(MIN_SHARDS, num_rows // MIN_SHARD_ROWS)
    return 1 << (int(wanted).bit_length() - 1) if wanted >= 1 else 1


def plan_shards(
    row_bytes: np.ndarray, max_shard_bytes: int = MAX_SHARD_BYTES, min_shards: int = 1
) -> np.ndarray:
    """Shard boundaries (S + 1,) over rows of the given sizes, cut at row boundaries: the fewest
    shards of at most `max_shard_bytes` (a single larger row gets its own), but at least
    `min_shards` (and at most one per row), balanced by the smallest per-shard cap that keeps that
    count, so shards are of nearly equal size and every shard of a multi-shard split holds about
    half of `max_shard_bytes` or more when the byte bound sets the count. Deterministic."""
    if max_shard_bytes <= 0:
        raise ValueError(f"max_shard_bytes must be > 0, got {max_shard_bytes}")
    row_bytes = np.asarray(row_bytes, dtype=np.int64)
    cumulative = np.concatenate([[0], np.cumsum(row_bytes)])
    if len(row_bytes) == 0:
        return np.array([0, 0], dtype=np.int64)
    fewest = len(_greedy_bounds(cumulative, max_shard_bytes)) - 1
    count = max(fewest, min(min_shards, len(row_bytes)))
    lo = min(-(-int(cumulative[-1]) // count), int(max_shard_bytes))
    hi = int(max_shard_bytes)  # feasible: greedy filling at this cap needs `fewest` <= count
    while lo < hi:  # smallest cap with which the greedy fill still needs at most `count` shards
        mid = (lo + hi) // 2
        if len(_greedy_bounds(cumulative, mid)) - 1 <= count:
            hi = mid
        else:
            lo = mid + 1
    bounds = _greedy_bounds(cumulative, lo)
    while len(bounds) - 1 < count:  # the cap left fewer: halve the largest shard (by bytes)
        sizes = np.diff(cumulative[bounds])
        sizes[np.diff(bounds) < 2] = -1  # a one-row shard cannot be split
        k = int(np.argmax(sizes))
        start, stop = bounds[k], bounds[k + 1]
        half = cumulative[start] + (cumulative[stop] - cumulative[start]) / 2
        cut = int(np.clip(np.searchsorted(cumulative, half), start + 1, stop - 1))
        bounds.insert(k + 1, cut)
    return np.array(bounds, dtype=np.int64)


def empty_manifest() -> dict[str, Any]:
    return {
        "dataset": DATASET_NAME,
        "manifest_version": MANIFEST_VERSION,
        "schema_version": SCHEMA_VERSION,
        "families": {},
    }


def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The dataset's manifest.json (an empty manifest if there is none yet). Raises
    DatasetVerificationError for a manifest of another layout version."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        return empty_manifest()
    manifest = json.loads(path.read_text())
    if manifest.get("manifest_version") != MANIFEST_VERSION:
        version = manifest.get("manifest_version", 1)
        raise DatasetVerificationError(
            f"{path}: written by another dto-humans-hub (layout {version}, this version reads "
            f"{MANIFEST_VERSION}); rebuild the dataset"
        )
    return manifest


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    manifest["schema_version"] = SCHEMA_VERSION
    manifest["generator"] = _generator()
    families = manifest["families"]
    manifest["families"] = {f: families[f] for f in FAMILIES if f in families}
    _write_json(root / MANIFEST, manifest)


def family_shards(manifest: dict[str, Any], family: str) -> list[dict[str, Any]]:
    """Every shard entry of a family, in (split, source, index) order."""
    entry = manifest["families"].get(family)
    if entry is None:
        return []
    return [s for split in entry["splits"].values() for s in split["shards"]]


def write_family(
    build: Path,
    family: str,
    parts: Sequence[Part],
    *,
    input_digest: str,
    max_shard_bytes: int = MAX_SHARD_BYTES,
) -> dict[str, Any]:
    """Write one family's shards into a build folder, resumably; returns its manifest entry
    (without the caller's extra fields): `input_digest` and per split the row, people and byte
    counts and every shard.

    A staging state of the same `input_digest` in the build is resumed (its finished shards are
    kept if their sha256 still matches); one of a different input is discarded.
    """
    staging = build / STAGING_DIR
    info = datasets.DatasetInfo(features=features(images=family == IMAGES))
    plans = [
        (part, plan_shards(part.row_bytes, max_shard_bytes, shard_count(part.num_rows)))
        for part in parts
    ]
    state_path = staging / f"{family}.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else None
    bounds = {f"{p.source}/{p.split}": b.tolist() for p, b in plans}
    if state is None or state["input_digest"] != input_digest or state["bounds"] != bounds:
        state = {"input_digest": input_digest, "bounds": bounds, "done": {}}
    staging.mkdir(parents=True, exist_ok=True)
    for stale in (build / "data" / family).rglob(".*.tmp"):
        stale.unlink()  # partial files of a killed run

    shards: list[ShardInfo] = []
    for part, cuts in plans:
        count = len(cuts) - 1
        for i in range(count):
            rel = f"data/{family}/{part.source}/{shard_name(part.split, i, count)}"
            path = build / rel
            done = state["done"].get(rel)
            if done is not None and path.is_file() and file_sha256(path) == done["sha256"]:
                shards.append(ShardInfo(rel, part.source, part.split, **done))
                continue
            start, stop = int(cuts[i]), int(cuts[i + 1])
            table = part.make_table(start, stop)
            dataset = datasets.Dataset(table, info=info)
            with _no_progress_bars():
                write_atomic(path, lambda f, d=dataset: d.to_parquet(f))
            done = {
                "num_rows": stop - start,
                "num_people": int(part.people[start:stop].sum()),
                "num_bytes": path.stat().st_size,
                "sha256": file_sha256(path),
                "arrow_bytes": table.nbytes,
            }
            state["done"][rel] = done
            _write_json(state_path, state)
            shards.append(ShardInfo(rel, part.source, part.split, **done))
            logger.info("wrote %s (%d rows)", rel, stop - start)

    splits: dict[str, Any] = {}
    for split in sorted({s.split for s in shards}, key=lambda x: (x != "train", x)):
        these = [s for s in shards if s.split == split]
        splits[split] = {
            "num_rows": sum(s.num_rows for s in these),
            "num_people": sum(s.num_people for s in these),
            "num_bytes": sum(s.num_bytes for s in these),
            "arrow_bytes": sum(s.arrow_bytes for s in these),
            "shards": [asdict(s) for s in these],
        }
    state_path.unlink()
    return {"input_digest": input_digest, "splits": splits}


def _generator() -> dict[str, str]:
    from dto_humans_hub import __version__

    return {
        "dto_humans_hub": __version__,
        "datasets": datasets.__version__,
        "pyarrow": pa.__version__,
    }


def verify_dataset(root: str | os.PathLike[str], *, checksums: bool = True) -> dict[str, Any]:
    """Check a built dataset against its manifest: every listed shard present with its size, row
    count and (if `checksums`) sha256, and no unlisted Parquet file under data/. Returns the
    manifest; raises DatasetVerificationError listing every problem."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetVerificationError(f"{root}: no such folder")
    if not (root / MANIFEST).is_file():
        raise DatasetVerificationError(
            f"{root}: no {MANIFEST} (not a built dataset; build one with `dto-humans-hub build`)"
        )
    manifest = read_manifest(root)
    problems = []
    listed = set()
    for family, entry in manifest["families"].items():
        for split, info in entry["splits"].items():
            rows = 0
            for shard in info["shards"]:
                listed.add(shard["path"])
                path = root / shard["path"]
                if not path.is_file():
                    problems.append(f"{shard['path']}: missing")
                    continue
                if path.stat().st_size != shard["num_bytes"]:
                    problems.append(
                        f"{shard['path']}: {path.stat().st_size} bytes, manifest says "
                        f"{shard['num_bytes']}"
                    )
                    continue
                if checksums and file_sha256(path) != shard["sha256"]:
                    problems.append(f"{shard['path']}: sha256 differs from the manifest")
                num = pq.ParquetFile(path).metadata.num_rows
                if num != shard["num_rows"]:
                    problems.append(
                        f"{shard['path']}: {num} rows, manifest says {shard['num_rows']}"
                    )
                rows += num
            if rows != info["num_rows"] and not problems:
                problems.append(f"{family}/{split}: {rows} rows, manifest says {info['num_rows']}")
    for path in sorted((root / "data").rglob("*.parquet")) if (root / "data").is_dir() else []:
        relative = path.relative_to(root).as_posix()
        if relative not in listed:
            problems.append(f"{relative}: not listed in the manifest")
    if problems:
        raise DatasetVerificationError(f"{root}: " + "; ".join(problems))
    return manifest


def input_digest(arrays: Sequence[np.ndarray | None], *, extra: str = "") -> str:
    """sha256 over arrays (shape, dtype and bytes; None as a marker) and a string."""
    digest = hashlib.sha256(f"{SCHEMA_VERSION}\0{extra}".encode())
    for a in arrays:
        if a is None:
            digest.update(b"\0none")
            continue
        a = np.ascontiguousarray(a)
        digest.update(f"{a.shape}{a.dtype}".encode())
        if a.dtype == object:
            digest.update("\0".join(map(str, a.reshape(-1))).encode())
        else:
            digest.update(a)  # the raw bytes (a contiguous buffer; zero-size arrays too)
    return digest.hexdigest()
