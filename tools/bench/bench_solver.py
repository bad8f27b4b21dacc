"""Benchmark: batched DTO solve vs. the official per-scene, per-person Python loop.

    uv run python tools/bench/bench_solver.py [--persons 2000000]

Reports persons/s of `fit_affine_depth_batch` (validation included) and of the scene-level
`optimize_scenes` (paper and official variants), the same work done as the official code loops
(sums A..E person by person, one scene at a time) measured in the same process, their ratio, and
the memory-bandwidth bound: measured copy bandwidth / bytes read per person. Single-threaded:
NumPy's element-wise kernels run on one core.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dto_core import DTOConfig, fit_affine_depth_batch, optimize_scenes
from dto_core.synthetic import sample_crowds

BYTES_PER_PERSON = 5 * 8  # h_hat, z_hat, d, mu, sigma as float64 (offsets add 8 B per scene)


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def official_loop(h, z, d, mu, sigma, offsets, x_min):
    """The official solver's arithmetic, looped as the official code loops."""
    out = []
    for i in range(len(offsets) - 1):
        a = b = c = dd = e = 0.0
        for j in range(offsets[i], offsets[i + 1]):
            w, g = 1.0 / sigma[j] ** 2, h[j] / z[j]
            a += w * g * g * d[j] * d[j]
            b += w * g * g * d[j]
            c += w * g * g
            dd += w * g * d[j] * mu[j]
            e += w * g * mu[j]
        det = a * c - b * b
        alpha = (c * dd - b * e) / det if det else x_min
        if alpha < x_min:
            alpha = x_min
        out.append((alpha, (e - b * alpha) / c))
    return out


def copy_bandwidth(nbytes: int = 400 * 2**20) -> float:
    """Bytes/s moved by a large array copy (read + write)."""
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    seconds = median_time(lambda: np.copyto(dst, src), 5)
    return 2 * nbytes / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=2_000_000)
    parser.add_argument("--loop-persons", type=int, default=50_000)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    counts = rng.integers(1, 13, args.persons // 6)
    offsets = np.concatenate(([0], np.cumsum(counts)))
    n = int(offsets[-1])
    h, z = rng.uniform(0.8, 2.0, n), rng.uniform(2, 20, n)
    d, mu, sigma = rng.uniform(0.05, 1.0, n), rng.uniform(0.8, 1.9, n), rng.uniform(0.05, 0.15, n)
    x_min = 20.0

    batch_s = median_time(lambda: fit_affine_depth_batch(h, z, d, mu, sigma, offsets, x_min), 5)
    loop_scenes = int(np.searchsorted(offsets, args.loop_persons))
    loop_n = int(offsets[loop_scenes])
    loop_offsets = offsets[: loop_scenes + 1].tolist()
    # the official code indexes NumPy arrays person by person (NumPy scalars); Python floats
    # are the fastest any per-person loop can be
    arrays = [x[:loop_n] for x in (h, z, d, mu, sigma)]
    lists = [x.tolist() for x in arrays]
    numpy_loop_s = median_time(lambda: official_loop(*arrays, loop_offsets, x_min), 3)
    loop_s = median_time(lambda: official_loop(*lists, loop_offsets, x_min), 3)

    crowds = sample_crowds(max(n // 7, 1000), seed=0)
    crowd_rates = {}
    for variant in ("paper", "official"):
        cfg = DTOConfig.from_variant(variant)
        seconds = median_time(
            lambda cfg=cfg: optimize_scenes(
                crowds.teacher_height,
                crowds.prior_cls,
                crowds.cues,
                crowds.offsets,
                apparent_scale=crowds.apparent_scale,
                config=cfg,
            ),
            3,
        )
        crowd_rates[variant] = crowds.offsets[-1] / seconds

    bandwidth = copy_bandwidth()
    bound = bandwidth / (BYTES_PER_PERSON + 8 / counts.mean())
    batch_rate, loop_rate = n / batch_s, loop_n / loop_s
    rows = [
        ("batched KKT solve (fit_affine_depth_batch)", batch_rate),
        ("per-person loop over NumPy arrays (as official)", loop_n / numpy_loop_s),
        ("per-person loop over Python floats (fastest loop)", loop_rate),
        ("optimize_scenes, paper variant", crowd_rates["paper"]),
        ("optimize_scenes, official variant", crowd_rates["official"]),
        ("memory-bandwidth bound (copy bandwidth / bytes read)", bound),
    ]
    print(f"{n:,} persons in {counts.size:,} scenes (1-12 per scene); loop on {loop_n:,} persons")
    per_person = BYTES_PER_PERSON + 8 / counts.mean()
    print(f"copy bandwidth {bandwidth / 1e9:.1f} GB/s, {per_person:.1f} B read per person\n")
    print(f"{'':55s} {'M persons/s':>12s} {'vs float loop':>14s}")
    for name, rate in rows:
        print(f"{name:55s} {rate / 1e6:12.2f} {rate / loop_rate:13.1f}x")
    print(f"\nbatched solve reaches {100 * batch_rate / bound:.0f}% of the bandwidth bound")


if __name__ == "__main__":
    main()
