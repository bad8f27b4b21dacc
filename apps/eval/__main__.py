"""apps/eval: evaluate predictions on a benchmark and print the paper's table beside them.

    uv run apps/eval <benchmark> --data DIR --pred FILE [--mode paper|clean] [--model-dir DIR]
                     [--pred-format hmr-bench|mahmr-rh|bev-rh|dto] [--set FLAG=VALUE ...]
                     [--out DIR] [--label NAME]

benchmark: rh, 3dpw, hi4d, panoptic or mupots. DIR holds the benchmark's official release layout
or MA-HMR's processed files (detected). FILE is an hmr-bench prediction file (hmr_bench.predictions)
or, with --pred-format, an MA-HMR / BEV / DTO-Humans result file. --mode paper reproduces the
official evaluators (quirks included) so numbers compare with the paper; clean fixes the quirks.
--set overrides one protocol switch (hmr_bench.ProtocolConfig), e.g. --set rh_depth_source=transl.
The SMPL files and regressors come from --model-dir or $SMPL_MODEL_DIR (3DPW, Hi4D, and whenever
joints must be derived from meshes). 3DPW and Hi4D pose their ground truth once and keep it in
--cache-dir (default $HMR_BENCH_CACHE or ~/.cache/hmr-bench; ~84 kB per person), so later runs
skip the posing. Results: <out>/<benchmark>_<mode>.json, _table.csv, _persons.csv.
"""

from __future__ import annotations

import os

# Single-threaded BLAS unless the user says otherwise: the SMPL forward passes are many small
# matrix products, which OpenBLAS's threads slow down (5x measured on a 2-core VM).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import dataclasses
import platform
import sys
import time
from pathlib import Path

from tqdm import tqdm

import hmr_bench
from hmr_bench import DatasetError, PredictionError, ProtocolError, adapters
from hmr_bench.datasets import BENCHMARKS, load_ground_truth
from hmr_bench.matching import DegenerateBoxError
from hmr_bench.predictions import read_predictions
from hmr_bench.protocols import MODES, ProtocolConfig, evaluate_ground_truth
from hmr_bench.protocols.posed_gt import default_cache_dir
from hmr_bench.regressors import RegressorOrientationError
from hmr_bench.tables import format_table, write_results

READERS = {
    "hmr-bench": read_predictions,
    "mahmr-rh": adapters.from_mahmr_rh_npz,
    "bev-rh": adapters.from_bev_rh_npz,
    "dto": adapters.from_dto_npz,
}
TRY_IT = """\
to try it on a fixture (a tiny benchmark in its exact on-disk format, a SYNTHETIC SMPL model and
noisy predictions; the command prints the matching apps/eval line):
  uv run python -m hmr_bench.fixtures 3dpw /tmp/pw --layout official
  uv run apps/eval 3dpw --data /tmp/pw/data --pred /tmp/pw/predictions.npz --model-dir /tmp/pw/smpl
"""
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
USER_ERRORS = (
    DatasetError, PredictionError, ProtocolError, DegenerateBoxError, RegressorOrientationError,
    FileNotFoundError,
)  # fmt: skip


def parse_flags(items: list[str]) -> dict[str, object]:
    """FLAG=VALUE strings -> ProtocolConfig overrides, typed like the flag's default."""
    defaults = {f.name: f.default for f in dataclasses.fields(ProtocolConfig)}
    out: dict[str, object] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or name not in defaults or name == "mode":
            raise SystemExit(
                f"--set {item!r}: expected FLAG=VALUE with FLAG one of {sorted(defaults)}"
            )
        default = defaults[name]
        if isinstance(default, bool):
            if raw.lower() not in TRUE + FALSE:
                raise SystemExit(f"--set {name}: expected true or false, got {raw!r}")
            out[name] = raw.lower() in TRUE
        elif isinstance(default, int | float):
            try:
                out[name] = type(default)(raw)
            except ValueError:
                raise SystemExit(f"--set {name}: expected a number, got {raw!r}") from None
        else:
            out[name] = raw
    return out


def check_out_dir(out: Path) -> None:
    """Fail before the work if the results folder cannot be created or written."""
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not existing.is_dir():
        what = "is an existing file" if existing == out else f"is under the file {existing}"
        raise SystemExit(f"apps/eval: --out {out} {what}; give a folder")
    if not os.access(existing, os.W_OK):
        raise SystemExit(f"apps/eval: --out {out}: {existing} is not writable")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="apps/eval",
        description=__doc__.split("\n\n")[0],
        epilog=TRY_IT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("benchmark", choices=BENCHMARKS)
    parser.add_argument("--data", type=Path, required=True, help="benchmark folder")
    parser.add_argument("--pred", type=Path, required=True, help="prediction file")
    parser.add_argument("--mode", choices=MODES, default="paper")
    parser.add_argument("--pred-format", choices=sorted(READERS), default="hmr-bench")
    parser.add_argument("--model-dir", type=Path, default=None, help="SMPL files + regressors")
    parser.add_argument("--layout", choices=("auto", "processed", "official"), default="auto")
    parser.add_argument("--set", dest="flags", action="append", default=[], metavar="FLAG=VALUE")
    parser.add_argument("--out", type=Path, default=Path("eval_results"), help="results folder")
    parser.add_argument("--label", default=None, help="name of our row in the table")
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="posed ground-truth cache (3DPW, Hi4D)"
    )
    parser.add_argument("--no-cache", action="store_true", help="pose the ground truth anew")
    args = parser.parse_args(argv)

    config = ProtocolConfig.for_mode(args.mode, **parse_flags(args.flags))
    check_out_dir(args.out)
    cache_dir = None if args.no_cache else args.cache_dir or default_cache_dir()
    try:
        predictions = READERS[args.pred_format](args.pred)
        ground_truth = load_ground_truth(args.benchmark, args.data, args.layout)
        start = time.perf_counter()
        bar = tqdm(total=ground_truth.num_images, unit="img", desc=args.benchmark, file=sys.stderr)
        with bar:
            result = evaluate_ground_truth(
                args.benchmark, ground_truth, predictions, config,
                model_dir=args.model_dir, progress=bar.update, cache_dir=cache_dir,
            )  # fmt: skip
    except USER_ERRORS as exc:
        raise SystemExit(f"apps/eval: {exc}") from None
    seconds = time.perf_counter() - start
    label = args.label or predictions.meta.get("method") or f"{args.pred.name} ({args.mode} mode)"
    print(format_table(result, label))
    provenance = {
        "predictions": str(args.pred),
        "prediction_meta": dict(predictions.meta),
        "data": str(args.data),
        "model_dir": str(args.model_dir) if args.model_dir else None,
        "ground_truth_cache": str(cache_dir) if cache_dir else None,
        "hmr_bench": hmr_bench.__version__,
        "machine": platform.platform(),
        "seconds": seconds,
    }
    paths = write_results(result, args.out, label, provenance)
    print("\nwrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
