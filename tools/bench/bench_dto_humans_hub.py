"""Build and read throughput of dto-humans-hub against plain np.load of the same release file.

    uv run python tools/bench/bench_dto_humans_hub.py [--images 100000] [--seed 0] [--json out.json]
                                                      [--build-only]

Writes a SYNTHETIC `COCO_CHMR_SMPL_OPT.npz` in the exact released layout (not timed), then times,
in one process:
- np.load of the npz (pickle, as MA-HMR reads it), and np.load plus touching every person's arrays;
- convert_released_opt (restricted unpickler, validation, struct of arrays);
- build_dataset (sorting, Arrow tables, Parquet shards via datasets, checksums, manifest), without
  and with the figures and card;
- load_dataset(dir) (Parquet -> Arrow cache, first call), then iterating all rows with
  with_format("numpy") one row at a time and in batches of 1000, streaming from the folder, and
  AnnotationBatch.from_arrow (flat arrays, a slice per image).
Ratios are against np.load of the same file in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

import datasets
import numpy as np

from dto_humans_hub import AnnotationBatch, build_dataset, convert_released_opt, write_card
from dto_humans_hub.fixtures import synthetic_opt_annots, write_released_opt


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _touch_all(annots: dict) -> int:
    """Read every person's arrays, as a training loop over the raw dict would."""
    total = 0
    for people in annots.values():
        for p in people:
            smpl, cam = p["smpl_param"], p["cam_param"]
            total += smpl["pose"].size + smpl["shape"].size + smpl["trans"].size
            total += cam["focal"].size + cam["princpt"].size
    return total


def _iterate_rows(ds) -> int:
    people = 0
    for row in ds:
        people += row["smpl_pose"].shape[0]
    return people


def _iterate_batches(ds) -> int:
    people = 0
    for batch in ds.iter(batch_size=1000):
        people += sum(x.shape[0] for x in batch["smpl_pose"])
    return people


def _iterate_fast(ds) -> int:
    """All rows as flat arrays, then one (N, 24, 3) slice per image."""
    batch = AnnotationBatch.from_arrow(ds.with_format("arrow")[:])
    people = 0
    for i in range(batch.num_images):
        people += batch.smpl_pose[batch.offsets[i] : batch.offsets[i + 1]].shape[0]
    return people


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--build-only", action="store_true", help="skip the read measurements")
    args = parser.parse_args()
    datasets.disable_progress_bars()
    work = Path(tempfile.mkdtemp(prefix="bench_dto_humans_hub_"))
    try:
        npz = write_released_opt(
            work / "COCO_CHMR_SMPL_OPT.npz", synthetic_opt_annots(args.images, seed=args.seed)
        )
        m = args.images
        rows: list[tuple[str, float, int, str]] = []  # step, seconds, people, unit

        t_load, raw = _timed(lambda: np.load(npz, allow_pickle=True)["annots"].item())
        t_touch, values = _timed(lambda: _touch_all(raw))
        raw = None
        t_convert, conv = _timed(lambda: convert_released_opt(npz))
        p = int(conv.batch.offsets[-1])
        t_build, report = _timed(lambda: build_dataset(work / "ds", conv, figures=False))
        t_card, _ = _timed(lambda: write_card(work / "ds"))
        conv = None
        if args.build_only:
            full = t_convert + t_build
            print(f"{_cpu()}, {os.cpu_count()} cores; SYNTHETIC {m} images, {p} people: np.load "
                  f"{t_load:.1f} s, convert {t_convert:.1f} s, build {t_build:.1f} s, convert + "
                  f"build {full:.1f} s ({m / full:,.0f} images/s, {full / t_load:.2f}x np.load), "
                  f"{len(report.shards)} shards, card {t_card:.1f} s")  # fmt: skip
            return
        cache = str(work / "cache")
        t_prepare, ds = _timed(lambda: datasets.load_dataset(str(work / "ds"), split="train",
                                                             cache_dir=cache))  # fmt: skip
        numpy_ds = ds.with_format("numpy")
        t_rows, people_rows = _timed(lambda: _iterate_rows(numpy_ds))
        t_batches, people_batches = _timed(lambda: _iterate_batches(numpy_ds))
        t_fast, people_fast = _timed(lambda: _iterate_fast(ds))
        stream = datasets.load_dataset(str(work / "ds"), split="train", streaming=True)
        t_stream, people_stream = _timed(lambda: _iterate_rows(stream.with_format("numpy")))
        assert people_rows == people_batches == people_stream == people_fast == p, "rows lost"
        assert values > 0

        rows = [
            ("np.load of the npz (baseline)", t_load),
            ("np.load + touch every person's arrays", t_load + t_touch),
            ("convert_released_opt (safe load + validate)", t_convert),
            ("build_dataset: shards + manifest", t_build),
            ("convert + build (the full annotation build)", t_convert + t_build),
            ("statistics + figures + card", t_card),
            ("load_dataset(dir), first call (Parquet -> Arrow)", t_prepare),
            ("iterate with_format('numpy'), per row", t_rows),
            ("iterate with_format('numpy'), batches of 1000", t_batches),
            ("streaming from the folder, numpy, per row", t_stream),
            ("AnnotationBatch.from_arrow + a slice per image", t_fast),
        ]
        shard_mb = [s.num_bytes / 1e6 for s in report.shards]
        print(f"{_cpu()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
              f"datasets {datasets.__version__}; SYNTHETIC {m} images, {p} people, "
              f"npz {npz.stat().st_size / 1e6:.0f} MB, {len(shard_mb)} shards "
              f"{', '.join(f'{x:.0f}' for x in shard_mb)} MB")  # fmt: skip
        print("| step | s | images/s | vs np.load |")
        print("|---|---|---|---|")
        for name, seconds in rows:
            print(f"| {name} | {seconds:.2f} | {m / seconds:,.0f} | {seconds / t_load:.2f}x |")
        full = 560_000 / m * (t_convert + t_build)
        print(f"extrapolated full build (0.56M images, linear): {full / 60:.1f} min")
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")
        if args.json:
            args.json.write_text(json.dumps({
                "machine": _cpu(), "cores": os.cpu_count(), "images": m, "people": p,
                "shards_mb": shard_mb, "seconds": dict(rows), "np_load_s": t_load,
            }, indent=1))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
