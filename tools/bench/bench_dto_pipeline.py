"""Per-stage CPU cost of the DTO pixel path (dto_pipeline), and an estimate of the 4D-Humans run.

    uv run python tools/bench/bench_dto_pipeline.py [--photos 8] [--repeats 2] [--no-flops]
        [--json F]

Part 1, measured: DTO's per-image stages (body model, rendering, cues, solve, update) and the
part write, on SYNTHETIC photos with simulated teachers (dto_pipeline.synthetic; 2-8 people,
mean 5, at 2-12 m), official variant, one process, one thread per NumPy call as configured by the
environment. Three settings: photos of 384x512 (long side 512, rendered at full size), and photos
of 960x1280 rendered at the official long side 512 (spec A.6) or at full size (the cues always
run at full size). Each photo is solved `--repeats` times, the best time per stage kept. Baseline
in the same process: decoding the photo's PNG (PIL), which every image pays; the `x decode`
column is each stage's cost in units of it.

Part 2, counted: the teachers' FLOPs per image (torch.utils.flop_counter on the full-size
architectures; Mask R-CNN with 5 detections on a real CPU forward at 480x640, the others on the
meta device), with 5 people per image: ViTPose and CameraHMR per person, MiVOLO 2 samples per
person (original + mirror), Depth-Anything-V2-L at 518x686, HumanFoV once (only without --pgt).

Part 3, estimated: GPU-hours of the 4D-Humans run (about 2M images) from the FLOPs under stated
utilisation assumptions, and CPU core-hours of the DTO stages from part 1; and the cache size.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

from dto_core.synthetic_body import write_synthetic_smpl_dir
from dto_pipeline.cache import PersonsEntry, TeacherCache
from dto_pipeline.job import body_model
from dto_pipeline.outcome import ImageOutcome, save_part
from dto_pipeline.profile import StageTimer
from dto_pipeline.solve import SolveSettings, solve_image
from dto_pipeline.synthetic import SimulatedTeachers, make_photos, pixel_digest, render_photo

DTO_STAGES = ("body_model", "rendering", "cues", "solve", "update")
IMAGES_4D_HUMANS = 2_000_000
PEOPLE_PER_IMAGE = 5
SETTINGS = (
    ("384x512", (384, 512), 512),
    ("960x1280, render 512", (960, 1280), 512),
    ("960x1280, render full", (960, 1280), 1280),
)
GPU_PEAK_TFLOPS = {"A100 (bf16 dense 312)": 312.0, "H100 SXM (bf16 dense 989)": 989.0}
UTILISATION = (0.40, 0.15)
"""Assumed share of peak the teachers reach: 40 % (large batches of ViT crops; an optimistic
bound) and 15 % (batch 1 per image, detector and depth on full images; a pessimistic one)."""


def teacher_records(photos, body, j19) -> list[tuple[PersonsEntry, np.ndarray, np.ndarray]]:
    """(persons, disparity, pixels) of every photo from the simulated teachers."""
    from dto_models import TeacherStage

    teachers = SimulatedTeachers(photos, [], body, j19)
    stage = TeacherStage(teachers.detector, teachers.keypoints, teachers.hmr,
                         teachers.age_gender, None, teachers.fov)  # fmt: skip
    out = []
    for scene in range(len(photos)):
        pixels = render_photo(photos, scene, body)
        teachers.scene_of[pixel_digest(pixels)] = scene
        record = stage.run(pixels)
        entry = PersonsEntry.from_record(record, pixels.shape[:2])
        out.append((entry, teachers.depth.estimate(pixels), pixels))
    return out


def measure(records, body, max_side: int, repeats: int, work: Path) -> dict[str, float]:
    """Best-of-`repeats` ms per stage, summed over photos, divided by the photo count."""
    settings = SolveSettings.from_variant("official", max_side=max_side)
    best: dict[str, list[float]] = {s: [] for s in (*DTO_STAGES, "write", "decode")}
    for entry, disparity, pixels in records:
        png = io.BytesIO()
        from PIL import Image

        Image.fromarray(pixels).save(png, "PNG")
        data = png.getvalue()
        runs = []
        solve_image(entry, disparity, body, settings)  # warm-up (caches of the body model)
        for _ in range(repeats):
            timer = StageTimer()
            with timer.stage("read"):
                Image.open(io.BytesIO(data)).convert("RGB").load()
            solution = solve_image(entry, disparity, body, settings, timer=timer)
            outcome = ImageOutcome("p.png", "p.png", 0, len(entry), solution.reason, "", solution)
            with timer.stage("write"):
                save_part(work / "part.npz", [outcome])
            runs.append(timer)
        for stage in best:
            name = "read" if stage == "decode" else stage
            best[stage].append(min(t.seconds.get(name, 0.0) for t in runs))
    return {stage: 1e3 * float(np.sum(v)) / len(records) for stage, v in best.items()}


def count_flops() -> dict[str, float]:
    """GFLOP per call of each full-size teacher (see the module docstring)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import VitPoseForPoseEstimation

    from dto_models.camerahmr import CameraHMRConfig, CameraHMRModel
    from dto_models.depth import DepthAnythingV2Config, build_model
    from dto_models.detector import DetectorConfig, build_maskrcnn
    from dto_models.humanfov import FLNet, HumanFoVConfig
    from dto_models.keypoints import ViTPoseConfig
    from dto_models.mivolo import MiVOLOConfig, MiVOLOModel

    def flops(model, *inputs) -> float:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(*inputs)
        return counter.get_total_flops() / 1e9

    out = {}
    torch.manual_seed(0)
    detector = build_maskrcnn(DetectorConfig(score_thresh=0.0, detections_per_img=5)).eval()
    out["detector (480x640 -> 800x1066, 5 detections)"] = flops(detector, [torch.rand(3, 480, 640)])
    del detector
    with torch.device("meta"):
        vitpose = VitPoseForPoseEstimation(ViTPoseConfig().to_hf())
        out["ViTPose-B (per person)"] = flops(vitpose, torch.zeros(1, 3, 256, 192))
        hmr = CameraHMRModel(CameraHMRConfig())
        out["CameraHMR (per person)"] = flops(hmr, torch.zeros(1, 3, 256, 192), torch.zeros(1, 3))
        mivolo = MiVOLOModel(MiVOLOConfig())
        out["MiVOLO (per person: 2 samples)"] = flops(mivolo, torch.zeros(2, 6, 384, 384))
        depth = build_model(DepthAnythingV2Config.large())
        out["Depth-Anything-V2-L (518x686)"] = flops(depth, torch.zeros(1, 3, 518, 686))
        fov = FLNet(HumanFoVConfig())
        out["HumanFoV (without --pgt)"] = flops(fov, torch.zeros(1, 3, 256, 256))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-flops", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from dto_models.camerahmr import read_j19_regressor

    result: dict = {"machine": f"{platform.processor() or platform.machine()}, "
                    f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_synthetic_smpl_dir(work / "smpl")
        body = body_model(work / "smpl", None)[0]
        j19 = read_j19_regressor(work / "smpl" / "SMPL_to_J19.pkl")
        table: dict[str, dict[str, float]] = {}
        people = []
        cache_bytes = []
        for name, size, max_side in SETTINGS:
            photos = make_photos(body, args.photos, seed=3, image_size=size,
                                 persons=(2, 8), depth_range=(2.0, 12.0))  # fmt: skip
            records = teacher_records(photos, body, j19)
            people.append(np.mean([len(r[0]) for r in records]))
            table[name] = measure(records, body, max_side, args.repeats, work)
            cache = TeacherCache(work / "cache" / name, {"persons": {}, "depth": {}})
            entry, disparity, _ = records[0]
            cache.put_persons("x", "sha", entry)
            cache.put_depth("x", "sha", disparity)
            cache_bytes.append(
                sum(p.stat().st_size for p in (work / "cache" / name).rglob("*.npz"))
            )
    result["dto_ms_per_image"] = table
    result["people_per_photo"] = [float(p) for p in people]
    result["cache_bytes_first_photo"] = dict(zip([s[0] for s in SETTINGS], cache_bytes,
                                                strict=True))  # fmt: skip

    print(f"DTO stages on SYNTHETIC photos, official variant ({result['machine']}), "
          f"best of {args.repeats}, mean over {args.photos} photos "
          f"({', '.join(f'{p:.1f}' for p in people)} people per photo)\n")  # fmt: skip
    header = f"{'stage':12s}" + "".join(f"{n:>26s}" for n, _, _ in SETTINGS)
    print(header + "\n" + f"{'':12s}" + "".join(f"{'ms/image (x decode)':>26s}" for _ in SETTINGS))
    for stage in ("decode", *DTO_STAGES, "write"):
        cells = "".join(
            f"{table[n][stage]:>15.1f} ({table[n][stage] / table[n]['decode']:6.1f}x)"
            for n, _, _ in SETTINGS
        )
        print(f"{stage:12s}{cells}")
    dto_total = {n: sum(table[n][s] for s in DTO_STAGES) for n, _, _ in SETTINGS}
    print(f"{'DTO total':12s}" + "".join(f"{dto_total[n]:>24.1f}  " for n, _, _ in SETTINGS))
    print(f"{'cache KiB':12s}" + "".join(f"{b / 1024:>24.0f}  " for b in cache_bytes)
          + "  (teacher outputs of the first photo: persons + depth npz)")  # fmt: skip

    if not args.no_flops:
        flops = count_flops()
        per_image = {
            k: v * (PEOPLE_PER_IMAGE if "per person" in k else 1) for k, v in flops.items()
        }
        with_pgt = sum(v for k, v in per_image.items() if "HumanFoV" not in k)
        result["teacher_gflop"] = flops
        result["teacher_gflop_per_image_with_pgt"] = with_pgt
        print(f"\nTeacher FLOPs (full-size architectures; {PEOPLE_PER_IMAGE} people per image)")
        for k, v in flops.items():
            print(f"  {k:48s} {v:9.1f} GFLOP  -> {per_image[k]:9.1f} per image")
        print(f"  {'total per image (with --pgt: no HumanFoV)':48s} {'':19s}{with_pgt:9.1f}")
        total = IMAGES_4D_HUMANS * with_pgt * 1e9
        print(
            f"\nEstimate, 4D-Humans run: {IMAGES_4D_HUMANS:,} images x {with_pgt / 1e3:.2f} TFLOP"
        )
        estimate = {}
        for gpu, peak in GPU_PEAK_TFLOPS.items():
            hours = [total / (peak * 1e12 * u) / 3600 for u in UTILISATION]
            estimate[gpu] = hours
            low, high = UTILISATION
            print(f"  teachers on {gpu}: {hours[0]:.0f} GPU-hours at {low:.0%} of peak, "
                  f"{hours[1]:.0f} at {high:.0%}")  # fmt: skip
        name = SETTINGS[1][0]
        cpu_hours = IMAGES_4D_HUMANS * (dto_total[name] + table[name]["write"]) / 1e3 / 3600
        estimate["dto_cpu_core_hours"] = cpu_hours
        print(f"  DTO stages on CPU ({name}, measured above): {cpu_hours:.0f} core-hours")
        result["estimate"] = estimate
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
