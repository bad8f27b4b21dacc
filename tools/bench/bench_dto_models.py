"""Per-teacher CPU latency of dto_models: tiny instances and full configs at official input sizes.

    uv run python tools/bench/bench_dto_models.py [--teachers detector vitpose ...]
        [--sizes tiny full] [--batches 1 8] [--repeats N] [--threads N]
        [--skip-full-batch8-over SECONDS] [--no-e2e] [--json F]

Weights are random (the timings do not depend on their values; nothing is downloaded). Every
number is the best of `--repeats` wall-clock runs (default 3 for tiny models, 1 for full ones),
torch.inference_mode, float32, in one process; inputs are random tensors built before the clock
starts. Warm-up: an untimed run before every tiny row; one per full model, before its first row
(batch 1), so later rows of a full model are not warmed separately.

Rows per teacher and size:
- `forward`, batch B: the network alone on B samples at the official input size (tiny: the tiny
  config's own size), through the adapter's batched forward:
  detector `MaskRCNNDetector.forward` on B images 480x640 in [0,1] (torchvision resizes them
  to 800x1066; tiny: 72x96, resized to 64x85); the full model is built with `score_thresh=0.0`
  so that the mask head always gets the maximum of 100 detections per image, whatever the random
  weights score (with seed 0, all 100 also pass the official 0.5);
  ViTPose-B `forward` (B,3,256,192); CameraHMR `CameraHMRModel(crops (B,3,256,192),
  bbox_info (B,3))`; HumanFoV `forward` (B,3,256,256); Depth-Anything-V2 S/B/L `forward`
  (B,3,518,518); MiVOLO `head_outputs(faces, bodies)`, B samples of (6,384,384) (a face crop and a
  body crop concatenated: one person is 2 samples in `estimate`, original + mirror).
- `e2e, N people`: the public method on one 480x640 RGB uint8 image, pre- and post-processing
  included: `detect(image)`, `estimate(image, detections)` (N boxes with masks),
  `estimate(image, detections, K)` (with the synthetic SMPL body model, 44 keypoints
  projected), `estimate(image)` (HumanFoV; Depth-Anything at 518x686), `estimate(image, boxes,
  keypoints_44)` (MiVOLO: 2N network samples).

A full model whose batch-1 forward took longer than `--skip-full-batch8-over` seconds runs no
batch > 1 (and no multi-person e2e); the table says so. Full models are built one at a time and
freed before the next. Memory: `RSS MiB` is the process's resident set after building the model,
`peak MiB` the resident-set high-water mark during the row (VmHWM, reset before each row).
The machine line gives CPU model, torch threads and version; the load average is printed per row
(other processes on a shared machine make wall times noisy).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import VitPoseForPoseEstimation

from dto_core.synthetic_body import write_synthetic_smpl_dir
from dto_models.camerahmr import CameraHMR, CameraHMRConfig, CameraHMRModel, load_body
from dto_models.depth import DepthAnythingV2, DepthAnythingV2Config, build_model
from dto_models.detector import DetectorConfig, MaskRCNNDetector, build_maskrcnn
from dto_models.humanfov import FLNet, HumanFoV, HumanFoVConfig
from dto_models.keypoints import ViTPoseConfig, ViTPoseEstimator
from dto_models.mivolo import MiVOLO, MiVOLOConfig, MiVOLOModel
from dto_models.types import Detections

TEACHERS = ("detector", "vitpose", "camerahmr", "humanfov", "depth", "mivolo")
IMAGE_HW = (480, 640)
K = np.array([[600.0, 0.0, 320.0], [0.0, 600.0, 240.0], [0.0, 0.0, 1.0]])
Thunk = Callable[[], object]


@dataclass
class Model:
    """One model to time: how to build its adapter, its batched forward and its e2e call."""

    teacher: str
    size: str
    build: Callable[[], Any]
    input_desc: str
    forward: Callable[[Any, int], Thunk]  # (adapter, batch) -> a call of the network
    e2e: Callable[[Any, int], Thunk] | None  # (adapter, people) -> a call of the public method
    e2e_people: tuple[int, ...] = (1, 8)


def randn(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (*IMAGE_HW, 3), dtype=np.uint8)


def people_boxes(n: int) -> np.ndarray:
    """(n,4) float32 xyxy boxes of standing people (~90 x 260 px), side by side in the image."""
    step = IMAGE_HW[1] / n
    x0 = np.arange(n) * step + 0.5 * step - 45.0
    return np.stack([x0, np.full(n, 150.0), x0 + 90.0, np.full(n, 410.0)], 1).astype(np.float32)


def detections(n: int) -> Detections:
    boxes = people_boxes(n)
    masks = np.zeros((n, *IMAGE_HW), dtype=bool)
    for mask, (x0, y0, x1, y1) in zip(masks, boxes.astype(int), strict=True):
        mask[y0:y1, max(x0, 0) : x1] = True
    return Detections(boxes_xyxy=boxes, scores=np.ones(n, np.float32), masks=masks)


def keypoints_44(boxes: np.ndarray) -> np.ndarray:
    """(n,44,2) keypoints spread over each box, the face joints (nose, eyes, ears) at its top,
    facing the camera, so MiVOLO gets a face crop for every person."""
    n = len(boxes)
    rng = np.random.default_rng(0)
    lo, hi = boxes[:, None, :2], boxes[:, None, 2:]
    kp = lo + rng.uniform(0.0, 1.0, (n, 44, 2)) * (hi - lo)
    cx, top = (boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 1]
    for joint, dx, dy in ((0, 0, 20), (15, -8, 14), (16, 8, 14), (17, -16, 16), (18, 16, 16)):
        kp[:, joint] = np.stack([cx + dx, top + dy], 1)
    return kp


def inference(fn: Callable[[], object]) -> Thunk:
    def run() -> object:
        with torch.inference_mode():
            return fn()

    return run


# --- the six teachers ----------------------------------------------------------------------------


def detector_models(size: str) -> Iterator[Model]:
    if size == "tiny":
        build, hw, desc = MaskRCNNDetector.tiny, (72, 96), "72x96 -> 64x85"
    else:
        config = replace(DetectorConfig(), score_thresh=0.0)
        hw, desc = IMAGE_HW, "480x640 -> 800x1066"

        def build() -> MaskRCNNDetector:
            torch.manual_seed(0)
            return MaskRCNNDetector(build_maskrcnn(config), config)

    def forward(det: MaskRCNNDetector, batch: int) -> Thunk:
        images = [
            torch.rand(3, *hw, generator=torch.Generator().manual_seed(i)) for i in range(batch)
        ]
        return lambda: det.forward(images)

    def e2e(det: MaskRCNNDetector, _: int) -> Thunk:
        rgb = image()
        return lambda: det.detect(rgb)

    name = "Mask R-CNN R50-FPN v2" if size == "full" else "Mask R-CNN (tiny)"
    yield Model(name, size, build, desc, forward, e2e, e2e_people=(0,))


def vitpose_models(size: str) -> Iterator[Model]:
    config = ViTPoseConfig.base() if size == "full" else ViTPoseConfig.tiny()

    def build() -> ViTPoseEstimator:
        if size == "tiny":
            return ViTPoseEstimator.tiny(seed=0)
        torch.manual_seed(0)
        return ViTPoseEstimator(VitPoseForPoseEstimation(config.to_hf()), config)

    def forward(est: ViTPoseEstimator, batch: int) -> Thunk:
        x = randn(batch, 3, *config.input_size)
        return lambda: est.forward(x)

    def e2e(est: ViTPoseEstimator, people: int) -> Thunk:
        rgb, dets = image(), detections(people)
        return lambda: est.estimate(rgb, dets)

    h, w = config.input_size
    yield Model(
        "ViTPose-B" if size == "full" else "ViTPose (tiny)", size, build, f"{h}x{w}", forward, e2e
    )


def camerahmr_models(size: str, smpl_dir: Path) -> Iterator[Model]:
    config = CameraHMRConfig() if size == "full" else CameraHMRConfig.tiny()

    def build() -> CameraHMR:
        if size == "tiny":
            return CameraHMR.tiny(seed=0, smpl_dir=smpl_dir)
        torch.manual_seed(0)
        body, j19 = load_body(smpl_dir)
        return CameraHMR(CameraHMRModel(config).eval(), config, body_model=body, j19=j19)

    def forward(hmr: CameraHMR, batch: int) -> Thunk:
        crops, info = randn(batch, 3, *config.image_size), randn(batch, 3)
        return inference(lambda: hmr.model(crops, info))

    def e2e(hmr: CameraHMR, people: int) -> Thunk:
        rgb, dets = image(), detections(people)
        return lambda: hmr.estimate(rgb, dets, K)

    h, w = config.image_size
    name = "CameraHMR (ViT-H)" if size == "full" else "CameraHMR (tiny)"
    yield Model(name, size, build, f"{h}x{w} + bbox_info", forward, e2e)


def humanfov_models(size: str) -> Iterator[Model]:
    config = HumanFoVConfig.w48() if size == "full" else HumanFoVConfig.tiny()

    def build() -> HumanFoV:
        if size == "tiny":
            return HumanFoV.tiny(seed=0)
        torch.manual_seed(0)
        return HumanFoV(FLNet(config), config)

    def forward(fov: HumanFoV, batch: int) -> Thunk:
        x = randn(batch, 3, config.image_size, config.image_size)
        return lambda: fov.forward(x)

    def e2e(fov: HumanFoV, _: int) -> Thunk:
        rgb = image()
        return lambda: fov.estimate(rgb)

    s = config.image_size
    name = "HumanFoV (HRNet-W48)" if size == "full" else "HumanFoV (tiny)"
    yield Model(name, size, build, f"{s}x{s}", forward, e2e, e2e_people=(0,))


def depth_models(size: str) -> Iterator[Model]:
    if size == "tiny":
        configs = {"Depth-Anything-V2 (tiny)": DepthAnythingV2Config.tiny()}
    else:
        configs = {
            f"Depth-Anything-V2-{name[0].upper()}": getattr(DepthAnythingV2Config, name)()
            for name in ("small", "base", "large")
        }
    for name, config in configs.items():

        def build(config: DepthAnythingV2Config = config) -> DepthAnythingV2:
            if size == "tiny":
                return DepthAnythingV2.tiny(seed=0)
            torch.manual_seed(0)
            return DepthAnythingV2(build_model(config), config)

        s = config.input_size
        hw = (s, s) if size == "full" else (s, 70)  # the tiny model's input for a 4:5 image

        def forward(da: DepthAnythingV2, batch: int, hw: tuple[int, int] = hw) -> Thunk:
            x = randn(batch, 3, *hw)
            return lambda: da.forward(x)

        def e2e(da: DepthAnythingV2, _: int) -> Thunk:
            rgb = image()
            return lambda: da.estimate(rgb)

        yield Model(name, size, build, f"{hw[0]}x{hw[1]}", forward, e2e, e2e_people=(0,))


def mivolo_models(size: str) -> Iterator[Model]:
    config = MiVOLOConfig() if size == "full" else MiVOLOConfig.tiny()

    def build() -> MiVOLO:
        if size == "tiny":
            return MiVOLO.tiny(seed=0)
        torch.manual_seed(0)
        return MiVOLO(MiVOLOModel(config), config)

    def forward(m: MiVOLO, batch: int) -> Thunk:
        faces, bodies = (
            randn(batch, 3, config.img_size, config.img_size),
            randn(batch, 3, config.img_size, config.img_size),
        )
        return lambda: m.head_outputs(faces, bodies)

    def e2e(m: MiVOLO, people: int) -> Thunk:
        rgb, boxes = image(), people_boxes(people)
        kp = keypoints_44(boxes)
        return lambda: m.estimate(rgb, boxes, kp)

    s = config.img_size
    name = "MiVOLO d1_384" if size == "full" else "MiVOLO (tiny)"
    yield Model(name, size, build, f"face+body 6x{s}x{s}", forward, e2e)


def models(teacher: str, size: str, smpl_dir: Path) -> Iterator[Model]:
    if teacher == "camerahmr":
        return camerahmr_models(size, smpl_dir)
    return {
        "detector": detector_models,
        "vitpose": vitpose_models,
        "humanfov": humanfov_models,
        "depth": depth_models,
        "mivolo": mivolo_models,
    }[teacher](size)


# --- timing and memory ---------------------------------------------------------------------------


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current VmRSS


def _free() -> None:
    gc.collect()
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # give freed weights back, so RSS is per model


def best_seconds(thunk: Thunk, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        thunk()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_model(
    model: Model, batches: list[int], repeats: int, skip_over: float, e2e: bool
) -> Iterator[dict]:
    """Rows of one model: forward at each batch, then e2e at each people count."""
    start = time.perf_counter()
    adapter = model.build()
    base = {
        "teacher": model.teacher,
        "size": model.size,
        "params_m": sum(p.numel() for p in adapter.model.parameters()) / 1e6,
        "build_s": time.perf_counter() - start,
        "rss_mib": _status_mib("VmRSS"),
    }
    cases = [("forward", b, b, model.input_desc) for b in sorted(batches)]  # (case, batch, n, in)
    if e2e and model.e2e is not None:
        for people in model.e2e_people:
            label = (
                "e2e" if people == 0 else f"e2e, {people} {'person' if people == 1 else 'people'}"
            )
            cases.append((label, 1, max(people, 1), "480x640 RGB uint8"))
    batch1_s: float | None = None
    warmed = False
    for case, batch, n, desc in cases:
        row = dict(base, case=case, batch=batch, input=desc)
        if model.size == "full" and n > 1 and batch1_s is not None and batch1_s > skip_over:
            row["skipped"] = f"skipped (batch 1 took {batch1_s:.1f} s)"
        else:
            thunk = model.forward(adapter, batch) if case == "forward" else model.e2e(adapter, n)
            if model.size == "tiny" or not warmed:  # full: one warm-up per model
                thunk()
                warmed = True
            _reset_peak()
            seconds = best_seconds(thunk, repeats)
            row["ms"] = 1e3 * seconds
            row["ms_per_sample"] = 1e3 * seconds / batch if case == "forward" else None
            row["peak_mib"] = _status_mib("VmHWM")
            if case == "forward" and batch == 1:
                batch1_s = seconds
        row["load"] = os.getloadavg()[0]
        print(format_row(row), flush=True)
        yield row


def format_row(row: dict) -> str:
    head = (
        f"| {row['teacher']} | {row['size']} | {row['params_m']:.3g} | {row['case']} | "
        f"{row['batch']} | {row['input']} | "
    )
    if "skipped" in row:
        timing = f"{row['skipped']} | | |"
    else:
        per = "" if row["ms_per_sample"] is None else f"{row['ms_per_sample']:.1f}"
        timing = f"{row['ms']:.1f} | {per} | {row['peak_mib']:.0f} |"
    return head + timing + f" {row['rss_mib']:.0f} | {row['load']:.1f} |"


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "")
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "memory_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teachers", nargs="+", choices=TEACHERS, default=list(TEACHERS))
    parser.add_argument("--sizes", nargs="+", choices=["tiny", "full"], default=["tiny", "full"])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=None, help="default 3 tiny, 1 full")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-full-batch8-over", type=float, default=20.0, metavar="SECONDS")
    parser.add_argument("--no-e2e", action="store_true", help="forward rows only")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # random weights put e.g. HumanFoV's output outside its range: the clipping warning is noise
    logging.getLogger("dto_models").setLevel(logging.ERROR)
    meta = machine()
    print(
        f"{meta['cpu']}, {meta['cores']} cores, {meta['memory_gib']:.0f} GiB, torch "
        f"{meta['torch']}, {meta['threads']} threads, load average at start "
        f"{os.getloadavg()[0]:.1f}",
        flush=True,
    )
    print(
        "| teacher | size | params M | case | batch | input | best ms | ms/sample | peak MiB "
        "| RSS MiB | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as smpl_dir:
        write_synthetic_smpl_dir(smpl_dir)
        for size in ("tiny", "full"):
            if size not in args.sizes:
                continue
            repeats = args.repeats or (3 if size == "tiny" else 1)
            for teacher in args.teachers:
                for model in models(teacher, size, Path(smpl_dir)):
                    rows += bench_model(
                        model, args.batches, repeats, args.skip_full_batch8_over, not args.no_e2e
                    )
                    _free()  # the generator's frame, and with it the adapter, is gone by now
    print(
        f"load average at end {os.getloadavg()[0]:.1f}, total {time.perf_counter() - start:.0f} s"
    )
    if args.json:
        args.json.write_text(json.dumps({"machine": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
