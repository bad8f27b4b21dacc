"""Benchmark: dto_core.body.BodyModel.forward (float64) on the synthetic SMPL-format model.

    uv run python tools/bench/bench_body.py [--persons 320]

Prints posed persons per second (median of repeats) of `forward` and of `openpose_joints` on its
output, and of `tpose_height`. Set OPENBLAS_NUM_THREADS=1 (or MKL/OMP) for a one-thread figure.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from dto_core.body import BodyModel, openpose_joints
from dto_core.synthetic_body import write_synthetic_smpl_dir

REPEATS = 5


def median_seconds(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=320)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        write_synthetic_smpl_dir(folder)
        body = BodyModel.from_dir(folder)
    rng = np.random.default_rng(0)
    n = args.persons
    betas, pose = rng.normal(0, 1, (n, body.num_betas)), rng.normal(0, 0.3, (n, 69))
    orient, transl = rng.normal(0, 0.5, (n, 3)), rng.normal(0, 2, (n, 3))
    body.forward(betas[:2], pose[:2], orient[:2], transl[:2])  # warm-up, cached arrays
    output = body.forward(betas, pose, orient, transl)
    rows = [
        ("BodyModel.forward", median_seconds(lambda: body.forward(betas, pose, orient, transl))),
        ("openpose_joints", median_seconds(lambda: openpose_joints(output))),
        ("BodyModel.tpose_height", median_seconds(lambda: body.tpose_height(betas))),
    ]
    print(f"{n} persons, synthetic model ({len(body.v_template)} vertices), float64\n")
    print(f"{'':24s} {'persons/s':>12s}")
    for name, seconds in rows:
        print(f"{name:24s} {n / seconds:12,.0f}")


if __name__ == "__main__":
    main()
