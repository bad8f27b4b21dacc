"""Start-up of the apps: `--help` and an argument error must answer before any heavy import.

Each command runs in a fresh interpreter (the venv's python, as `uv run` starts it, without
uv's own sync check); wall time is the median of REPEATS runs, peak memory the child's maximum
resident set. Baselines in the same run: an empty interpreter, and `import torch` /
`import mahmr_model` (what `--help` used to wait for).

Run: uv run python tools/bench/bench_apps_startup.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPEATS = 5
COMMANDS = {
    "python (empty)": ["-c", "pass"],
    "apps/infer --help": [str(ROOT / "apps" / "infer"), "--help"],
    "apps/infer missing.jpg --model tiny": [
        str(ROOT / "apps" / "infer"),
        "missing.jpg",
        "--model",
        "tiny",
    ],
    "apps/eval --help": [str(ROOT / "apps" / "eval"), "--help"],
    "import torch": ["-c", "import torch"],
    "import mahmr_model": ["-c", "import mahmr_model"],
}
if (ROOT / "apps" / "demo" / "__main__.py").is_file():
    COMMANDS["apps/demo --help"] = [str(ROOT / "apps" / "demo"), "--help"]


def run_once(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one child interpreter."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, _, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def main() -> None:
    rows = {}
    for _ in range(REPEATS):  # interleaved, so that load changes hit every command alike
        for name, args in COMMANDS.items():
            rows.setdefault(name, []).append(run_once(args))
    base = statistics.median(t for t, _ in rows["python (empty)"])
    print(f"{'command':<38} {'median s':>9} {'vs empty':>9} {'peak MiB':>9}")
    for name, runs in rows.items():
        wall = statistics.median(t for t, _ in runs)
        peak = max(m for _, m in runs)
        print(f"{name:<38} {wall:>9.2f} {wall / base:>8.1f}x {peak:>9.0f}")
    print(f"load average {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs), {REPEATS} runs each")


if __name__ == "__main__":
    main()
