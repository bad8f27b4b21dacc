"""Time dto_core.cues.extract_cues on synthetic crowds; prints ms per call (median of repeats).

Run: uv run python tools/bench/bench_cues.py
"""

from __future__ import annotations

import time

import numpy as np

from dto_core.cues import extract_cues

CASES = ((512, 512, 10), (1024, 1024, 30))  # (H, W, persons)
TARGET_COVERAGE = 0.4  # fraction of the image covered by persons
REPEATS = 50
SEED = 0


def crowd_scene(
    height: int, width: int, persons: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rel_depth, person_ids, mesh_depth) of upright elliptic persons composited by z-buffer."""
    yy, xx = np.mgrid[0:height, 0:width]
    # Upright ellipses, ry = 2.5 rx; area pi rx ry, a bit more than the target to allow for overlap.
    rx = np.sqrt(1.3 * TARGET_COVERAGE * height * width / (persons * np.pi * 2.5))
    zmin = np.full((height, width), np.inf)
    ids = np.zeros((height, width), dtype=np.int32)
    for i in range(persons):
        cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.05, 0.95) * width
        inside = ((yy - cy) / (2.5 * rx)) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        z = rng.uniform(2.0, 10.0) + 0.1 * np.cos((xx - cx) / rx) + rng.normal(0, 0.02, zmin.shape)
        nearer = inside & (z < zmin)
        zmin[nearer] = z[nearer]
        ids[nearer] = i + 1
    mesh = np.where(ids > 0, zmin, 0.0)
    rel = 0.1 * mesh + 1e-3 * yy + rng.normal(0, 0.01, mesh.shape)
    return rel, ids, mesh


def median_ms(fn, repeats: int = REPEATS) -> float:
    """Median wall time of fn() in milliseconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main() -> None:
    rng = np.random.default_rng(SEED)
    print(f"{'image':>11} {'persons':>7} {'coverage':>8} {'kept':>5} {'ms/call':>8}")
    for height, width, persons in CASES:
        rel, ids, mesh = crowd_scene(height, width, persons, rng)
        visible = np.full(persons, 1000)
        cues, _ = extract_cues(rel, ids, mesh, persons, visible)  # warm-up
        ms = median_ms(lambda: extract_cues(rel, ids, mesh, persons, visible))  # noqa: B023
        coverage = np.count_nonzero(ids) / ids.size
        kept = int(np.sum(cues.ok))
        print(f"{height:>5}x{width:<5} {persons:>7} {coverage:>8.2f} {kept:>5} {ms:>8.2f}")


if __name__ == "__main__":
    main()
