"""A benchmark's images through the model into hmr-bench's prediction file, batched, with a
resumable cache: what `apps/eval <benchmark> --model` runs before it evaluates."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hmr_bench.datasets import SMPLGroundTruth
from hmr_bench.datasets.common import write_atomic
from hmr_bench.datasets.mupots import OFFICIAL_FOLDER as MUPOTS_FOLDER
from hmr_bench.predictions import Predictions, read_predictions, write_predictions

from .inputs import InputError
from .loading import LoadedModel
from .records import benchmark_fields
from .runner import run_images

__all__ = [
    "CAMERAS",
    "PredictionCache",
    "image_paths",
    "known_intrinsics",
    "predict_benchmark",
    "run_settings",
]

CAMERAS = ("predicted", "known")
"""predicted: the model's own camera, as every protocol of the paper (hmr-bench's spec, section
5: the ground-truth intrinsics are not given to the model); known: the ground-truth intrinsics
(3DPW and Hi4D, whose annotations hold them)."""
CHUNK_IMAGES = 64  # images per cache file: what an interrupted run loses at most
_PANOPTIC_KEY = re.compile(r"^(?P<seq>.+)-(?P<cam>\d\d_\d\d)_(?P<frame>\d{8})\.jpg$")


def image_paths(
    benchmark: str, data_dir: str | os.PathLike[str], keys: Sequence[str]
) -> list[Path]:
    """The image file of each ground-truth image key, in the benchmark's layout; every missing
    file is counted and the first named."""
    root = Path(data_dir)
    if benchmark == "rh":
        paths = [root / "images" / key for key in keys]
    elif benchmark in ("3dpw", "hi4d"):
        paths = [root / key for key in keys]
    elif benchmark == "mupots":
        base = root / MUPOTS_FOLDER if (root / MUPOTS_FOLDER).is_dir() else root
        paths = [base / key for key in keys]
    elif benchmark == "panoptic":
        paths = [_panoptic_image(root, key) for key in keys]
    else:
        raise InputError(f"unknown benchmark {benchmark!r}")
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise InputError(
            f"--data {data_dir}: {len(missing)} of the {len(paths)} {benchmark} images are "
            f"missing, e.g. {missing[0]}; --model needs the benchmark's images (the "
            "annotations alone are enough only for --pred)"
        )
    return paths


def _panoptic_image(root: Path, key: str) -> Path:
    """images/<key> (processed layout), else <seq>/hdImgs/<cam>/<cam>_<frame>.jpg (official)."""
    flat = root / "images" / key
    match = _PANOPTIC_KEY.match(key)
    if flat.is_file() or match is None:
        return flat
    cam = match["cam"]
    return root / match["seq"] / "hdImgs" / cam / f"{cam}_{match['frame']}.jpg"


def known_intrinsics(benchmark: str, ground_truth: object) -> list[np.ndarray]:
    """Per image the ground-truth K (3, 3) in original pixels (3DPW and Hi4D: their people's)."""
    if not isinstance(ground_truth, SMPLGroundTruth):
        raise InputError(
            f"--camera known: the {benchmark} annotations hold no camera intrinsics (only 3DPW "
            "and Hi4D do); use --camera predicted, which is the paper's protocol"
        )
    ks = []
    for i, key in enumerate(ground_truth.image_keys):
        start, stop = ground_truth.offsets[i], ground_truth.offsets[i + 1]
        if stop == start:
            raise InputError(f"--camera known: {benchmark} image {key!r} has no annotated person")
        ks.append(np.asarray(ground_truth.K[start], np.float64))
    return ks


def run_settings(
    loaded: LoadedModel, benchmark: str, data_dir: str | os.PathLike[str], conf: float, camera: str
) -> dict[str, Any]:
    """What the predictions depend on (not the batch size: images never see each other)."""
    source = loaded.source
    weights = Path(source.value)
    if source.kind == "folder":
        weights = weights / "model.safetensors"
    stamp = None
    if weights.is_file():
        stat = weights.stat()
        stamp = [stat.st_size, stat.st_mtime_ns]
    return {
        "benchmark": benchmark,
        "data": str(Path(data_dir).resolve()),
        "model": {**loaded.description, "weights_stamp": stamp},
        "conf_thresh": conf,
        "camera": camera,
    }


class PredictionCache:
    """A folder of hmr-bench prediction files, one per finished chunk of images, and
    `settings.json`, the settings they were made with; a cache made with other settings is
    refused rather than mixed."""

    def __init__(self, folder: str | os.PathLike[str], settings: Mapping[str, Any]) -> None:
        self.folder = Path(folder)
        self.settings = json.loads(json.dumps(settings))  # as stored
        stored = self.folder / "settings.json"
        if stored.is_file():
            previous = json.loads(stored.read_text())
            if previous != self.settings:
                raise InputError(
                    f"{self.folder}: a prediction cache made with other settings ({previous}); "
                    "remove it or choose another --out"
                )
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            text = json.dumps(self.settings, indent=1).encode()
            write_atomic(stored, lambda f: f.write(text))

    def chunks(self) -> list[Path]:
        return sorted(self.folder.glob("chunk_*.npz"))

    def done(self) -> dict[str, tuple[dict[str, np.ndarray], np.ndarray]]:
        """image key -> (its per-person prediction fields, its (3, 3) intrinsics), over every
        chunk written so far."""
        out: dict[str, tuple[dict[str, np.ndarray], np.ndarray]] = {}
        for path in self.chunks():
            chunk = read_predictions(path)
            for i, key in enumerate(chunk.image_keys):
                rows = chunk.rows(key)
                fields = {name: value[rows] for name, value in chunk.fields.items()}
                out[key] = (fields, chunk.image_fields["K"][i])
        return out

    def add(self, per_image: Mapping[str, tuple[Mapping[str, np.ndarray], np.ndarray]]) -> Path:
        """Write one chunk (atomically): image key -> (per-person fields, intrinsics)."""
        path = self.folder / f"chunk_{len(self.chunks()):06d}.npz"
        return write_predictions(path, _predictions(per_image))

    def remove(self) -> None:
        shutil.rmtree(self.folder)


def _predictions(
    per_image: Mapping[str, tuple[Mapping[str, np.ndarray], np.ndarray]],
    meta: Mapping[str, Any] | None = None,
) -> Predictions:
    return Predictions.from_images(
        {key: fields for key, (fields, _) in per_image.items()},
        meta,
        image_fields={"K": np.array([K for _, K in per_image.values()]).reshape(-1, 3, 3)},
    )


def predict_benchmark(
    loaded: LoadedModel,
    keys: Sequence[str],
    paths: Sequence[Path],
    cache: PredictionCache,
    *,
    conf_thresh: float,
    intrinsics: Sequence[np.ndarray] | None = None,
    batch_size: int = 4,
    progress: Callable[[int], object] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Predictions:
    """Every image's prediction, from the cache where it has them and from the model for the
    rest (saved to the cache every CHUNK_IMAGES images); in `keys` order.

    An unreadable benchmark image raises InputError (skipping it would count its people as
    missed); the images done before it stay in the cache."""
    done = cache.done()
    todo = [i for i, key in enumerate(keys) if key not in done]
    if progress is not None and len(keys) > len(todo):
        progress(len(keys) - len(todo))
    pending: dict[str, tuple[dict[str, np.ndarray], np.ndarray]] = {}
    results = run_images(
        loaded.model,
        [paths[i] for i in todo],
        conf_thresh=conf_thresh,
        intrinsics=None if intrinsics is None else [intrinsics[i] for i in todo],
        batch_size=batch_size,
        return_vertices=True,
    )
    for result in results:
        key = keys[todo[result.index]]
        if not result.ok:
            if pending:
                cache.add(pending)
            raise InputError(f"{result.path}: {result.error} (a benchmark image: fix the data)")
        pending[key] = (benchmark_fields(result.prediction), result.prediction.intrinsics)
        done[key] = pending[key]
        if progress is not None:
            progress(1)
        if len(pending) >= CHUNK_IMAGES:
            cache.add(pending)
            pending = {}
    if pending:
        cache.add(pending)
    return _predictions({key: done[key] for key in keys}, meta)
