"""Loaders of the five benchmarks, official release layouts and MA-HMR's processed files."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from hmr_bench.datasets import hi4d, mupots, panoptic, pw3d, rh
from hmr_bench.datasets.common import DatasetError
from hmr_bench.datasets.mupots import MuPoTSGroundTruth
from hmr_bench.datasets.panoptic import PanopticGroundTruth
from hmr_bench.datasets.rh import RHGroundTruth
from hmr_bench.datasets.smpl_gt import SMPLGroundTruth

__all__ = [
    "BENCHMARKS",
    "DatasetError",
    "MuPoTSGroundTruth",
    "PanopticGroundTruth",
    "RHGroundTruth",
    "SMPLGroundTruth",
    "detect_layout",
    "guess_benchmark",
    "load_ground_truth",
]

BENCHMARKS = ("rh", "3dpw", "hi4d", "panoptic", "mupots")
Layout = Literal["auto", "processed", "official"]
IMAGE_KEY_PATTERNS = {
    "3dpw": re.compile(r"imageFiles/[^/]+/image_\d+\.jpg"),
    "hi4d": re.compile(r"pair\d+/[^/]+/images/[^/]+/\d+\.jpg"),
    "mupots": re.compile(r"TS\d+/img_\d+\.jpg"),
    "panoptic": re.compile(rf"[^/]*({'|'.join(panoptic.ACTIVITIES)})[^/]*"),
    "rh": re.compile(r"[^/]+"),
}
"""Each loader's image-key form (checked in this order: a Panoptic name is also a basename)."""


def guess_benchmark(image_keys: Sequence[str]) -> str | None:
    """The benchmark whose image-key form all of `image_keys` have (None if none or no keys)."""
    for benchmark, pattern in IMAGE_KEY_PATTERNS.items():
        if image_keys and all(pattern.fullmatch(k) for k in image_keys):
            return benchmark
    return None


def _markers(benchmark: str, data_dir: Path) -> dict[str, tuple[str, bool]]:
    """layout -> (the file that identifies it, present in data_dir?)."""
    if benchmark == "rh":
        return {"official": ("test_annots.npz", (data_dir / "test_annots.npz").is_file())}
    if benchmark == "3dpw":
        processed = pw3d.PROCESSED_NAME.format(split="test")
        official = ("sequenceFiles/test/*.pkl", any(data_dir.glob("sequenceFiles/test/*.pkl")))
    elif benchmark == "hi4d":
        processed = hi4d.PROCESSED_NAME.format(split="test")
        official = (hi4d.SPLIT_FILE, (data_dir / hi4d.SPLIT_FILE).is_file())
    elif benchmark == "mupots":
        processed = mupots.PROCESSED_NAME
        found = any(data_dir.glob("TS*/annot.mat")) or any(
            data_dir.glob(f"{mupots.OFFICIAL_FOLDER}/TS*/annot.mat")
        )
        official = ("[MultiPersonTestSet/]TS<k>/annot.mat", found)
    elif benchmark == "panoptic":
        processed = panoptic.PROCESSED_NAME
        found = any(
            (data_dir / s / "hdPose3d_stage1_coco19").is_dir() for s in panoptic.TEST_SEQUENCES
        )
        official = ("<sequence>/hdPose3d_stage1_coco19/", found)
    else:
        raise ValueError(f"unknown benchmark {benchmark!r}; known: {BENCHMARKS}")
    return {"processed": (processed, (data_dir / processed).is_file()), "official": official}


def detect_layout(benchmark: str, data_dir: str | os.PathLike[str]) -> str:
    """'processed' or 'official', whichever data_dir holds (processed wins if both)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DatasetError(f"{data_dir}: data folder not found")
    markers = _markers(benchmark, data_dir)
    for layout in ("processed", "official"):
        if layout in markers and markers[layout][1]:
            return layout
    expected = "; ".join(f"{k}: {v[0]}" for k, v in markers.items())
    raise DatasetError(f"{data_dir}: no {benchmark} data found (expected {expected})")


def load_ground_truth(
    benchmark: str, data_dir: str | os.PathLike[str], layout: Layout = "auto", **kwargs: Any
) -> RHGroundTruth | SMPLGroundTruth | PanopticGroundTruth | MuPoTSGroundTruth:
    """The test-split ground truth of a benchmark from data_dir (layout detected by default)."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; known: {BENCHMARKS}")
    if layout == "auto":
        layout = detect_layout(benchmark, data_dir)  # type: ignore[assignment]
    if benchmark == "rh":
        return rh.load_rh(data_dir, **kwargs)
    module = {"3dpw": pw3d, "hi4d": hi4d, "panoptic": panoptic, "mupots": mupots}[benchmark]
    loader = module.load_processed if layout == "processed" else module.load_official
    return loader(data_dir, **kwargs)
