"""Deterministic, atomic, resumable shard writer and the dataset manifest.

Layout of a built dataset directory (the Hub repository's layout):

    README.md                                  dataset card (YAML configs + dataset_info), last
    manifest.json                              row counts, people, bytes and sha256 per shard
    figures/*.png                              statistics figures
    data/<config>/<split>-NNNNN-of-MMMMM.parquet
    .dto-build/                                staging while building (hidden: never loaded, never
                                               uploaded)

Rows are sorted by (source, image_key) and cut into the fewest shards of at most
`max_shard_bytes` (uncompressed Arrow bytes) of equal size, so the same input gives the same
shards. Each shard is written by `datasets.Dataset.to_parquet` (the library's row groups, content-
defined chunking, page index and the `huggingface` features metadata) to a temporary file in the
staging folder, renamed, checksummed and recorded in the staging state; an interrupted build
re-run with the same input skips the recorded shards and rewrites the rest. Only when every shard
exists are they moved into `data/`, then `manifest.json` and `README.md` are written, each
atomically: a reader never sees a partial file, and sees no data at all before the build ends.
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
    ANNOTATIONS_CONFIG,
    DATASET_NAME,
    IMAGES_CONFIG,
    MAX_SHARD_BYTES,
    SCHEMA_VERSION,
)
from dto_humans_hub.schema import features

__all__ = [
    "BuildInProgressError",
    "DatasetVerificationError",
    "ShardInfo",
    "file_sha256",
    "input_digest",
    "plan_shards",
    "read_manifest",
    "shard_name",
    "verify_dataset",
    "write_atomic",
    "write_config",
]

logger = logging.getLogger(__name__)

STAGING_DIR = ".dto-build"
MANIFEST = "manifest.json"
SPLIT = "train"


class BuildInProgressError(RuntimeError):
    """Another live process is building into the same directory."""


class DatasetVerificationError(ValueError):
    """A built dataset does not match its manifest."""


@dataclass(frozen=True)
class ShardInfo:
    """One written shard: path relative to the dataset root, rows, people, file bytes, sha256,
    uncompressed Arrow bytes."""

    path: str
    num_rows: int
    num_people: int
    num_bytes: int
    sha256: str
    arrow_bytes: int


def write_atomic(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """dto-core's atomic writer, flushed to disk before the rename: a resumed build trusts the
    files it finds."""
    atomic.write_atomic(path, write, fsync=True)


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


def plan_shards(row_bytes: np.ndarray, max_shard_bytes: int = MAX_SHARD_BYTES) -> np.ndarray:
    """Shard boundaries (S + 1,) over rows of the given sizes, cut at row boundaries: the fewest
    shards of at most `max_shard_bytes` (a single larger row gets its own), balanced by the
    smallest per-shard cap that keeps that count, so shards are of nearly equal size and every
    shard of a multi-shard split holds about half of `max_shard_bytes` or more. Deterministic."""
    if max_shard_bytes <= 0:
        raise ValueError(f"max_shard_bytes must be > 0, got {max_shard_bytes}")
    row_bytes = np.asarray(row_bytes, dtype=np.int64)
    cumulative = np.concatenate([[0], np.cumsum(row_bytes)])
    if len(row_bytes) == 0:
        return np.array([0, 0], dtype=np.int64)
    count = len(_greedy_bounds(cumulative, max_shard_bytes)) - 1  # the fewest shards
    lo = min(-(-int(cumulative[-1]) // count), int(max_shard_bytes))
    hi = int(max_shard_bytes)  # feasible: that is how `count` was found
    while lo < hi:  # smallest cap with which the greedy fill still needs only `count` shards
        mid = (lo + hi) // 2
        if len(_greedy_bounds(cumulative, mid)) - 1 <= count:
            hi = mid
        else:
            lo = mid + 1
    return np.array(_greedy_bounds(cumulative, lo), dtype=np.int64)


@contextlib.contextmanager
def _build_lock(staging: Path) -> Iterator[None]:
    """An exclusive lock file holding the builder's pid; a stale lock (dead pid) is taken over."""
    staging.mkdir(parents=True, exist_ok=True)
    lock = staging / "lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text() or "0")
                os.kill(pid, 0)
            except (ValueError, ProcessLookupError, FileNotFoundError):
                lock.unlink(missing_ok=True)  # stale: its builder died
                continue
            except PermissionError:
                pass
            raise BuildInProgressError(f"{staging.parent}: process {pid} is building it") from None
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        break
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            staging.rmdir()  # only if empty


def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The dataset's manifest.json (an empty manifest if there is none yet)."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        return {"dataset": DATASET_NAME, "schema_version": SCHEMA_VERSION, "configs": {}}
    return json.loads(path.read_text())


def write_config(
    root: str | os.PathLike[str],
    config: str,
    num_rows: int,
    row_bytes: np.ndarray,
    make_table: Callable[[int, int], pa.Table],
    people: np.ndarray,
    *,
    input_digest: str,
    extra: dict[str, Any],
    max_shard_bytes: int = MAX_SHARD_BYTES,
    restart: bool = False,
    split: str = SPLIT,
) -> list[ShardInfo]:
    """Write one config's split as shards, resumably; update manifest.json. Returns the shards.

    make_table(start, stop): the Arrow table of rows start:stop (schema of `features(...)`).
    people (num_rows,): people per row. input_digest identifies the input: a staging state of a
    different input is an error unless restart=True. extra: manifest entries of this config.
    """
    if config not in (ANNOTATIONS_CONFIG, IMAGES_CONFIG):
        raise ValueError(f"config must be {ANNOTATIONS_CONFIG!r} or {IMAGES_CONFIG!r}")
    root = Path(root)
    staging = root / STAGING_DIR / config / split
    info = datasets.DatasetInfo(features=features(images=config == IMAGES_CONFIG))
    with _build_lock(root / STAGING_DIR):
        bounds = plan_shards(row_bytes, max_shard_bytes)
        count = len(bounds) - 1
        state_path = staging / "state.json"
        state = json.loads(state_path.read_text()) if state_path.is_file() else None
        if state is not None and state["input_digest"] != input_digest:
            if not restart:
                raise ValueError(
                    f"{root}: an interrupted build of different input is staged in {staging}; "
                    "pass restart=True (--restart) to discard it"
                )
            state = None
        if state is None or state["bounds"] != bounds.tolist():
            state = {"input_digest": input_digest, "bounds": bounds.tolist(), "done": {}}
        staging.mkdir(parents=True, exist_ok=True)
        for stale in staging.glob(".*.tmp"):
            stale.unlink()  # partial files of a killed run

        final_dir = root / "data" / config
        shards = []
        for i in range(count):
            name = shard_name(split, i, count)
            staged, final = staging / name, final_dir / name
            done = state["done"].get(name)
            if done is not None and any(
                p.is_file() and file_sha256(p) == done["sha256"] for p in (staged, final)
            ):
                shards.append(ShardInfo(f"data/{config}/{name}", **done))
                continue
            start, stop = int(bounds[i]), int(bounds[i + 1])
            table = make_table(start, stop)
            dataset = datasets.Dataset(table, info=info)
            write_atomic(staged, lambda f, d=dataset: d.to_parquet(f))
            done = {
                "num_rows": stop - start,
                "num_people": int(people[start:stop].sum()),
                "num_bytes": staged.stat().st_size,
                "sha256": file_sha256(staged),
                "arrow_bytes": table.nbytes,
            }
            state["done"][name] = done
            _write_json(state_path, state)
            shards.append(ShardInfo(f"data/{config}/{name}", **done))
            logger.info("wrote %s (%d rows)", name, stop - start)

        # publish: drop this config's shards of an older plan, move the new ones in, then manifest
        final_dir.mkdir(parents=True, exist_ok=True)
        wanted = {Path(s.path).name for s in shards}
        for old in final_dir.glob(f"{split}-*.parquet"):
            if old.name not in wanted:
                old.unlink()
        for shard in shards:
            staged = staging / Path(shard.path).name
            if staged.is_file():
                os.replace(staged, root / shard.path)
        manifest = read_manifest(root)
        manifest["schema_version"] = SCHEMA_VERSION
        manifest["generator"] = _generator()
        entry = manifest["configs"].setdefault(config, {})
        entry.update(extra)
        entry["input_digest"] = input_digest
        entry.setdefault("splits", {})[split] = {
            "num_rows": int(num_rows),
            "num_people": int(people.sum()),
            "num_bytes": sum(s.num_bytes for s in shards),
            "arrow_bytes": sum(s.arrow_bytes for s in shards),
            "shards": [asdict(s) for s in shards],
        }
        manifest["configs"] = dict(sorted(manifest["configs"].items()))
        _write_json(root / MANIFEST, manifest)
        state_path.unlink()
        with contextlib.suppress(OSError):
            staging.rmdir()
            staging.parent.rmdir()
    return shards


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
    if not (root / MANIFEST).is_file():
        raise DatasetVerificationError(f"{root}: no {MANIFEST} (not a built dataset)")
    manifest = read_manifest(root)
    problems = []
    listed = set()
    for config, entry in manifest["configs"].items():
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
                problems.append(f"{config}/{split}: {rows} rows, manifest says {info['num_rows']}")
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
            digest.update(memoryview(a).cast("B"))
    return digest.hexdigest()
