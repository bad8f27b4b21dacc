"""Batched runs over image files that skip unreadable images, and per-stage timings."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mahmr_model import MAHMR, ImagePrediction, predict

from .images import ImageReadError, read_image

__all__ = ["STAGES", "ImageResult", "StageTimes", "run_images"]

STAGES = (
    "load / pre-process",
    "encoder",
    "decoder + heads",
    "body model (SMPL)",
    "rendering",
    "writing",
)
"""Stages of `StageTimes`; "load / pre-process" also holds the conversion of the outputs."""


class StageTimes:
    """Wall-clock seconds per stage, summed over a run (CUDA synchronised at stage edges)."""

    def __init__(self, device: torch.device | None = None) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.images = 0
        self._sync = device is not None and device.type == "cuda"

    def now(self) -> float:
        if self._sync:
            torch.cuda.synchronize()
        return time.perf_counter()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = self.now()
        try:
            yield
        finally:
            self.seconds[name] += self.now() - start

    @contextlib.contextmanager
    def model_hooks(self, model: MAHMR) -> Iterator[None]:
        """Time the encoder, the body model and the rest of each forward pass (decoder and
        heads) through forward hooks; the caller times the whole `predict` call as
        "load / pre-process" and this moves the forward pass out of it."""
        starts: dict[str, float] = {}
        spent: dict[str, float] = {}

        def pre(name: str):
            def hook(*_: object) -> None:
                starts[name] = self.now()

            return hook

        def post(name: str):
            def hook(*_: object) -> None:
                spent[name] = spent.get(name, 0.0) + self.now() - starts[name]

            return hook

        handles = []
        for name, module in (("forward", model), ("encoder", model.encoder), ("body", model.body)):
            if module is None:
                continue
            handles.append(module.register_forward_pre_hook(pre(name)))
            handles.append(module.register_forward_hook(post(name)))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
            forward = spent.get("forward", 0.0)
            encoder, body = spent.get("encoder", 0.0), spent.get("body", 0.0)
            self.seconds["encoder"] += encoder
            self.seconds["body model (SMPL)"] += body
            self.seconds["decoder + heads"] += forward - encoder - body
            self.seconds["load / pre-process"] -= forward

    def table(self, title: str) -> str:
        """Mean ms per image and share of each stage, laid out as Table 7 of the HAMSt3R
        supplementary (method line, indented stages, total)."""
        n = max(self.images, 1)
        total = sum(self.seconds.values())
        rows = [f"{title}", f"  {'stage':<24} {'ms / image':>11} {'share':>7}"]
        for name in STAGES:
            share = 100.0 * self.seconds[name] / total if total > 0 else 0.0
            rows.append(f"  {name:<24} {1000.0 * self.seconds[name] / n:>11.1f} {share:>6.1f}%")
        rows.append(f"  {'total':<24} {1000.0 * total / n:>11.1f} {100.0:>6.1f}%")
        return "\n".join(rows)


@dataclass(frozen=True)
class ImageResult:
    """One input image: its position in the inputs, and either the prediction (with the RGB
    pixels when asked for) or the reason it was skipped."""

    index: int
    path: Path
    prediction: ImagePrediction | None = None
    pixels: np.ndarray | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def run_images(
    model: MAHMR,
    paths: Sequence[Path],
    *,
    conf_thresh: float = 0.3,
    fov: float | None = None,
    intrinsics: Sequence[np.ndarray] | None = None,
    batch_size: int = 4,
    return_vertices: bool = False,
    keep_pixels: bool = False,
    times: StageTimes | None = None,
) -> Iterator[ImageResult]:
    """Predict every readable image, `batch_size` at a time; yield each image as soon as its
    batch finishes, and an unreadable one (with the reason) as soon as it is read.

    fov: one known vertical FoV (rad) for all images; intrinsics: one known K (3, 3) per
    image (original px); neither: the model's camera.
    """
    times = times or StageTimes()
    batch: list[tuple[int, Path, np.ndarray]] = []

    def flush() -> Iterator[ImageResult]:
        pixels = [b[2] for b in batch]
        ks = None if intrinsics is None else [intrinsics[b[0]] for b in batch]
        with times.stage("load / pre-process"), times.model_hooks(model):
            results = predict(
                model, pixels, conf_thresh=conf_thresh, fov=fov, intrinsics=ks,
                batch_size=len(batch), return_vertices=return_vertices,
            )  # fmt: skip
        times.images += len(batch)
        for (index, path, image), result in zip(batch, results, strict=True):
            yield ImageResult(index, path, result, image if keep_pixels else None)
        batch.clear()

    for index, path in enumerate(paths):
        try:
            with times.stage("load / pre-process"):
                image = read_image(path)
        except ImageReadError as exc:
            yield ImageResult(index, Path(path), error=exc.reason)
            continue
        batch.append((index, Path(path), image))
        if len(batch) == batch_size:
            yield from flush()
    if batch:
        yield from flush()
