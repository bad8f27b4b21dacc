"""Forward latency and peak memory of MA-HMR: scale-adaptive tokens vs every token at 14 px.

    uv run python tools/bench/bench_mahmr_model.py [--models tiny mahmr] [--sizes 644 1288]
        [--repeats 3] [--threads N] [--json F]

Weights are random (timings do not depend on their values), so token selection is driven by
explicit scale maps (the same override the trainer uses for ground-truth maps); each scenario
is a layout of people on the image, and the table reports how many tokens SAT keeps per level:

- `background`: nobody; every 2x2 group of 28 px cells is pooled into one 56 px token.
- `crowd`: 3 near people (boxes 30 x 75 % of the image) and 24 far ones (6 x 15 %), as cells of
  presence 1 with the person's scale `|(w, h)| / S` (S = 1288); on the 644 px input every person
  is small relative to the canvas, so more of them are re-tokenised at 14 px.
- `all small`: every cell holds a small person (SAT's worst case: all 14 px tokens plus the
  coarse pass).
- `all 14 px`: the baseline, every 14 px token through all 12 blocks (no coarse pass).

Latency: the best of `--repeats` forward passes in wall-clock ms and in process CPU seconds
(all threads; less sensitive than wall time to other load on a shared machine), with
torch.inference_mode, float32, one image, the SMPL layer run for the queries of the last decoder
layer; scenarios interleaved in one process, ratios against `all 14 px` of the same run; the
tiny config gets 10x the repeats. Peak memory: a fresh
subprocess per case, growth of the resident set during one forward pass (VmHWM after resetting
it, minus VmRSS before). The synthetic SMPL-format body model stands in for the licensed one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from dto_core.synthetic_body import write_synthetic_smpl_dir
from mahmr_model import MAHMR, ImageBatch, MAHMRConfig, SMPLBody, mahmr, tiny

SCENARIOS = ("background", "crowd", "all small", "all 14 px")
NEAR = [(0.2 + 0.3 * i, 0.55, 0.3, 0.75) for i in range(3)]  # (cx, cy, w, h), image fractions
FAR = [(0.06 + 0.125 * (i % 8), 0.12 + 0.13 * (i // 8), 0.06, 0.15) for i in range(24)]


def scale_map(scenario: str, side: int, config: MAHMRConfig) -> torch.Tensor | None:
    """(1, H1, W1, 2) presence / scale probabilities for a square image of `side` px."""
    cell = 2 * config.patch_size
    rows = cols = 2 * -(-side // (2 * cell))  # own padded 28 px grid
    probs = torch.zeros(1, rows, cols, 2)
    if scenario == "all small":
        probs[..., 0], probs[..., 1] = 1.0, 0.1
    elif scenario == "crowd":
        for cx, cy, w, h in FAR + NEAR:  # near people painted last, as the ground-truth maps
            x0, x1 = int((cx - w / 2) * side // cell), int((cx + w / 2) * side // cell)
            y0, y1 = int((cy - h / 2) * side // cell), int((cy + h / 2) * side // cell)
            scale = (w * w + h * h) ** 0.5 * side / config.input_size
            probs[0, y0 : y1 + 1, x0 : x1 + 1] = torch.tensor([1.0, min(scale, 1.0)])
    return None if scenario == "all 14 px" else probs


def build(config: MAHMRConfig, body_dir: Path) -> MAHMR:
    torch.manual_seed(0)
    return MAHMR(config).set_body(SMPLBody.from_dir(body_dir, kid=config.num_betas == 11)).eval()


def run_case(model: MAHMR, batch: ImageBatch, scenario: str) -> tuple[float, float, list[int]]:
    """One forward pass: (wall seconds, process CPU seconds, tokens per level)."""
    probs = scale_map(scenario, int(batch.image_sizes[0, 0]), model.config)
    start, cpu_start = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        out = model(batch, scale_map=probs, full_resolution=probs is None)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return wall, cpu, [int((out.tokens.level == lvl).sum()) for lvl in range(3)]


def image(side: int) -> ImageBatch:
    pixels = torch.rand(3, side, side, generator=torch.Generator().manual_seed(side))
    return ImageBatch.from_tensors([pixels], canvas=1288 if side > 224 else 224)


def memory_case(variant: str, side: int, scenario: str, body_dir: Path) -> None:
    """Subprocess entry: print the resident-set growth (bytes) of one forward pass as JSON."""
    model = build(mahmr() if variant == "mahmr" else tiny(), body_dir)
    batch = image(side)
    run_case(model, image(112 if variant == "tiny" else 224), "crowd")  # warm up kernels
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _status("VmRSS")
    run_case(model, batch, scenario)
    print(json.dumps({"peak_bytes": _status("VmHWM") - before}))


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_memory(variant: str, side: int, scenario: str, body_dir: Path) -> float:
    command = [
        sys.executable,
        __file__,
        "--memory-case",
        variant,
        str(side),
        scenario,
        str(body_dir),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_bytes"] / 2**20


def bench(variant: str, sides: list[int], repeats: int, body_dir: Path) -> list[dict]:
    model = build(mahmr() if variant == "mahmr" else tiny(), body_dir)
    rows = []
    for side in sides:
        batch = image(side)
        for scenario in SCENARIOS:  # warm-up
            run_case(model, batch, scenario)
        wall: dict[str, list[float]] = {s: [] for s in SCENARIOS}
        cpu: dict[str, list[float]] = {s: [] for s in SCENARIOS}
        tokens: dict[str, list[int]] = {}
        for _ in range(repeats):
            for scenario in SCENARIOS:
                elapsed, cpu_seconds, tokens[scenario] = run_case(model, batch, scenario)
                wall[scenario].append(elapsed)
                cpu[scenario].append(cpu_seconds)
        for scenario in SCENARIOS:
            rows.append(
                {
                    "model": variant,
                    "input": side,
                    "scenario": scenario,
                    "tokens": tokens[scenario],
                    "ms": 1000 * min(wall[scenario]),
                    "median_ms": 1000 * statistics.median(wall[scenario]),
                    "speedup": min(wall["all 14 px"]) / min(wall[scenario]),
                    "cpu_s": min(cpu[scenario]),
                    "cpu_speedup": min(cpu["all 14 px"]) / min(cpu[scenario]),
                    "peak_mib": peak_memory(variant, side, scenario, body_dir),
                }
            )
            print(_format(rows[-1]), flush=True)
    return rows


def _format(row: dict) -> str:
    lvl0, lvl1, lvl2 = row["tokens"]
    return (
        f"| {row['model']} | {row['input']} | {row['scenario']} | {lvl0} / {lvl1} / {lvl2} = "
        f"{lvl0 + lvl1 + lvl2} | {row['ms']:.0f} | {row['speedup']:.2f}x | {row['cpu_s']:.2f} | "
        f"{row['cpu_speedup']:.2f}x | {row['peak_mib']:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=["tiny", "mahmr"], default=["tiny", "mahmr"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[644, 1288])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--memory-case", nargs=4, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_case:
        variant, side, scenario, body_dir = args.memory_case
        memory_case(variant, int(side), scenario, Path(body_dir))
        return
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "")
    threads = torch.get_num_threads()
    print(f"{cpu or platform.processor()}, {os.cpu_count()} cores, torch {torch.__version__}, ")
    print(f"{threads} threads, load average at start {os.getloadavg()[0]:.1f}", flush=True)
    header = "| model | input px | scenario | tokens 14/28/56 px = total | ms | vs all 14 px"
    print(header + " | CPU s | vs all 14 px | peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic_smpl_dir(tmp)
        rows = []
        if "tiny" in args.models:
            rows += bench("tiny", [224], 10 * args.repeats, Path(tmp))
        if "mahmr" in args.models:
            rows += bench("mahmr", args.sizes, args.repeats, Path(tmp))
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    if args.json:
        meta = {
            "cpu": cpu,
            "cores": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        }
        args.json.write_text(json.dumps({"machine": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
