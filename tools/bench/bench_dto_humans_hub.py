"""Build and read throughput of dto-humans-hub against plain np.load of the same release file,
and per-image reads against slicing flat arrays.

    uv run python tools/bench/bench_dto_humans_hub.py [--images 100000] [--seed 0]
        [--slow-rows 10000] [--json out.json] [--build-only]

Writes a SYNTHETIC `COCO_CHMR_SMPL_OPT.npz` in the exact released layout (not timed), then times,
in one process:
- build: np.load of the npz (pickle, as MA-HMR reads it), and np.load plus touching every person's
  arrays; convert_released_opt (restricted unpickler, validation, struct of arrays); build_dataset
  (sorting, Arrow tables, Parquet shards via datasets, checksums, manifest), without and with the
  figures and card; load_dataset(dir) (Parquet -> Arrow cache, first call). Ratios against np.load.
- per-image reads of the train split's TRAIN_COLUMNS, each image as a dict of its arrays. Baseline:
  slicing flat NumPy arrays already in memory (`arrays[name][offsets[i]:offsets[i + 1]]`). Then
  `reader.ImageRows` (Arrow -> flat arrays once, then `rows[i]`), `reader.iter_images` over the
  Dataset and over a stream of the folder (4096 rows per Arrow batch), `collate_people` batches of
  32, and datasets' `with_format("numpy")` row by row (all columns, and TRAIN_COLUMNS only), the
  slow paths on the first --slow-rows images. Ratios against the flat-array baseline.
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

from dto_humans_hub import build_dataset, convert_released_opt, write_card
from dto_humans_hub.fixtures import synthetic_opt_annots, write_released_opt
from dto_humans_hub.reader import TRAIN_COLUMNS, ImageRows, collate_people, iter_images


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


def _flat_slices(rows: ImageRows) -> int:
    """The baseline: plain NumPy arrays in memory, one dict of slices per image."""
    arrays, offsets, keys = dict(rows.arrays), rows.offsets.tolist(), rows.text["image_key"]
    person = [n for n in arrays if n in ("smpl_pose", "smpl_betas", "transl_cam")]
    image = [n for n in arrays if n not in person]
    people = 0
    for i in range(len(offsets) - 1):
        start, stop = offsets[i], offsets[i + 1]
        item = {name: arrays[name][i] for name in image}
        for name in person:
            item[name] = arrays[name][start:stop]
        item["image_key"] = keys[i]
        people += len(item["smpl_pose"])
    return people


def _people(items) -> int:
    return sum(len(item["smpl_pose"]) for item in items)


def _collated(rows: ImageRows, size: int = 32) -> int:
    people = 0
    for start in range(0, len(rows), size):
        batch = collate_people([rows[i] for i in range(start, min(start + size, len(rows)))])
        people += int(batch["num_people"].sum())
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
    parser.add_argument("--slow-rows", type=int, default=10_000, help="images for per-row paths")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--build-only", action="store_true", help="skip the read measurements")
    args = parser.parse_args()
    datasets.disable_progress_bars()
    work = Path(tempfile.mkdtemp(prefix="bench_dto_humans_hub_"))
    load_start = os.getloadavg()
    try:
        npz = write_released_opt(
            work / "COCO_CHMR_SMPL_OPT.npz", synthetic_opt_annots(args.images, seed=args.seed)
        )
        m = args.images
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
        n, k = len(ds), min(args.slow_rows, len(ds))
        t_rows_from, rows = _timed(lambda: ImageRows.from_dataset(ds))
        people = int(rows.offsets[-1])
        t_flat, flat_people = _timed(lambda: _flat_slices(rows))
        t_rows, rows_people = _timed(lambda: _people(rows))
        t_iter, iter_people = _timed(lambda: _people(iter_images(ds)))
        stream = datasets.load_dataset(str(work / "ds"), split="train", streaming=True)
        t_stream, stream_people = _timed(lambda: _people(iter_images(stream)))
        t_collate, collate_people_count = _timed(lambda: _collated(rows))
        first = ds.select(range(k))
        t_numpy, numpy_people = _timed(lambda: _people(first.with_format("numpy")))
        selected = first.select_columns(list(TRAIN_COLUMNS)).with_format("numpy")
        t_numpy_sel, _ = _timed(lambda: _people(selected))
        counts = {flat_people, rows_people, iter_people, stream_people, collate_people_count}
        assert counts == {people}, f"people lost: {counts} vs {people}"
        assert numpy_people == int(rows.offsets[k]), "rows lost"
        assert values > 0

        build_rows = [
            ("np.load of the npz (baseline)", t_load),
            ("np.load + touch every person's arrays", t_load + t_touch),
            ("convert_released_opt (safe load + validate)", t_convert),
            ("build_dataset: shards + manifest", t_build),
            ("convert + build (the full annotation build)", t_convert + t_build),
            ("statistics + figures + card", t_card),
            ("load_dataset(dir), first call (Parquet -> Arrow)", t_prepare),
        ]
        read_rows = [
            ("flat NumPy arrays, a dict of slices per image (baseline)", t_flat, n),
            ("`ImageRows.from_dataset` (once: Arrow -> flat arrays)", t_rows_from, n),
            ("`rows[i]` for every image (map-style, after from_dataset)", t_rows, n),
            ("`iter_images(ds)` (Arrow batches of 4096 -> per image)", t_iter, n),
            ("`iter_images(stream)` from the folder", t_stream, n),
            ("`collate_people`, batches of 32 (rows[i] + padding)", t_collate, n),
            ("`with_format('numpy')`, row by row, all columns", t_numpy, k),
            ("`with_format('numpy')`, row by row, TRAIN_COLUMNS", t_numpy_sel, k),
        ]
        shard_mb = [s.num_bytes / 1e6 for s in report.shards]
        print(f"{_cpu()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
              f"datasets {datasets.__version__}; SYNTHETIC {m} images, {p} people, "
              f"npz {npz.stat().st_size / 1e6:.0f} MB, {len(shard_mb)} shards "
              f"{', '.join(f'{x:.0f}' for x in shard_mb)} MB; load average "
              f"{load_start[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")  # fmt: skip
        print("| step | s | images/s | vs np.load |")
        print("|---|---|---|---|")
        for name, seconds in build_rows:
            print(f"| {name} | {seconds:.2f} | {m / seconds:,.0f} | {seconds / t_load:.2f}x |")
        base = t_flat / n
        print(f"\nper-image reads, train split ({n} images, {people} people), TRAIN_COLUMNS:")
        print("| read | images | us per image | vs flat arrays |")
        print("|---|---|---|---|")
        for name, seconds, count in read_rows:
            per = seconds / count
            print(f"| {name} | {count:,} | {per * 1e6:,.1f} | {per / base:.2f}x |")
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")
        if args.json:
            args.json.write_text(json.dumps({
                "machine": _cpu(), "cores": os.cpu_count(), "images": m, "people": p,
                "shards_mb": shard_mb, "build_seconds": dict(build_rows),
                "read_us_per_image": {name: s / c * 1e6 for name, s, c in read_rows},
                "load_average": [load_start[0], os.getloadavg()[0]],
            }, indent=1))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
