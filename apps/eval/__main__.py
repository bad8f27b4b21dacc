"""apps/eval: evaluate predictions on a benchmark and print the paper's table beside them.

    uv run apps/eval <benchmark> --data DIR (--pred FILE | --model DIR_OR_HUB_ID)
                     [--mode paper|clean] [--model-dir DIR]
                     [--pred-format hmr-bench|mahmr-rh|bev-rh|dto] [--set FLAG=VALUE ...]
                     [--out DIR] [--label NAME]

benchmark: rh, 3dpw, hi4d, panoptic or mupots. DIR holds the benchmark's official release layout
or MA-HMR's processed files (detected). FILE is an hmr-bench prediction file (hmr_bench.predictions)
or, with --pred-format, an MA-HMR / BEV / DTO-Humans result file. --mode paper reproduces the
official evaluators (quirks included) so numbers compare with the paper; clean fixes the quirks.
--model (or --official) runs MA-HMR over the benchmark's images first (batched, resumable:
<out>/<benchmark>_predictions.cache/) and writes <out>/<benchmark>_predictions.npz, exactly what
`apps/infer --predictions` writes for the same images.
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
import json
import platform
import sys
import time
from pathlib import Path

from tqdm import tqdm

import hmr_bench
from hmr_bench import DatasetError, PredictionError, ProtocolError, adapters
from hmr_bench.datasets import BENCHMARKS, load_ground_truth
from hmr_bench.matching import DegenerateBoxError
from hmr_bench.predictions import read_predictions, write_predictions
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


# --- --model: predictions made here, by MA-HMR over the benchmark's images -------------------


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("predicting with MA-HMR instead of --pred")
    group.add_argument("--model", help="save_pretrained folder, Hub repo id, or 'tiny'")
    group.add_argument("--official", help="official SAT-HMR .pth / MA-HMR .bin")
    group.add_argument(
        "--camera", choices=("predicted", "known"), default="predicted",
        help="the model's camera (the paper's protocols) or the ground truth's (3dpw, hi4d)",
    )  # fmt: skip
    group.add_argument(
        "--conf", type=float, default=None,
        help="keep people above this confidence (default: the protocol's 0.3; for panoptic "
        "0.3 / 16, so that its threshold halving sees four halvings)",
    )  # fmt: skip
    group.add_argument("--batch-size", type=int, default=4, help="images per forward pass")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")


def predictions_from_model(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Path:
    """--pred as given, or run the model over the benchmark's images (or reuse the finished
    prediction file of the same settings) and return <out>/<benchmark>_predictions.npz."""
    sources = [f for f in ("pred", "model", "official") if getattr(args, f) is not None]
    if len(sources) != 1:
        parser.error("give one of --pred FILE, --model DIR_OR_HUB_ID, --official FILE")
    if args.pred is not None:
        return args.pred
    try:
        from mahmr_infer import inputs
    except ModuleNotFoundError as missing:  # the light `uv run` install
        raise SystemExit(
            f"apps/eval: --model needs the whole workspace ({missing.name} is not installed): "
            "run `uv run --all-packages apps/eval ...` once (later a plain `uv run` keeps it)"
        ) from None

    try:
        source = inputs.check_model_source(args.model, args.official)
        inputs.check_positive("--batch-size", args.batch_size)
        inputs.parse_device(args.device)
        config = ProtocolConfig.for_mode(args.mode, **parse_flags(args.flags))
        halvings = 16 if args.benchmark == "panoptic" else 1
        conf = inputs.check_conf(config.conf_thresh / halvings if args.conf is None else args.conf)
        smpl_dir = None
        if source.kind != inputs.TINY:
            smpl_dir = inputs.check_smpl_dir(args.model_dir, source.num_betas, "--model-dir")
        args.out.mkdir(parents=True, exist_ok=True)
        ground_truth = load_ground_truth(args.benchmark, args.data, args.layout)
    except (inputs.InputError, DatasetError, OSError) as exc:
        raise SystemExit(f"apps/eval: error: {exc}") from None

    from mahmr_infer import benchmarks
    from mahmr_infer.loading import SYNTHETIC_BANNER, load_model, resolve_device

    keys = list(ground_truth.image_keys)
    out = args.out / f"{args.benchmark}_predictions.npz"
    try:
        paths = benchmarks.image_paths(args.benchmark, args.data, keys)
        ks = None
        if args.camera == "known":
            ks = benchmarks.known_intrinsics(args.benchmark, ground_truth)
        loaded = load_model(source, smpl_dir, resolve_device(args.device))
        settings = benchmarks.run_settings(loaded, args.benchmark, args.data, conf, args.camera)
        if out.is_file():
            if read_predictions(out).meta.get("settings") == json.loads(json.dumps(settings)):
                print(f"apps/eval: reusing {out} (same model, data and settings)", file=sys.stderr)
                return out
            raise inputs.InputError(
                f"{out} holds other predictions: remove it or use another --out"
            )
        cache = benchmarks.PredictionCache(
            args.out / f"{args.benchmark}_predictions.cache", settings
        )
    except (inputs.InputError, PredictionError) as exc:
        raise SystemExit(f"apps/eval: error: {exc}") from None
    if loaded.synthetic:
        print(f"*** {SYNTHETIC_BANNER} ***", file=sys.stderr)
    name = f"MA-HMR {loaded.model.config.variant}" + (" (random)" if loaded.synthetic else "")
    meta = {"method": name, "settings": settings}
    with tqdm(
        total=len(keys), unit="img", desc=f"{args.benchmark} predict", file=sys.stderr
    ) as bar:
        try:
            predictions = benchmarks.predict_benchmark(
                loaded, keys, paths, cache, conf_thresh=conf, intrinsics=ks,
                batch_size=args.batch_size, progress=bar.update, meta=meta,
            )  # fmt: skip
        except inputs.InputError as exc:
            raise SystemExit(f"apps/eval: error: {exc}") from None
    write_predictions(out, predictions)
    cache.remove()
    print(f"predictions -> {out}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="apps/eval",
        description=__doc__.split("\n\n")[0],
        epilog=TRY_IT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("benchmark", choices=BENCHMARKS)
    parser.add_argument("--data", type=Path, required=True, help="benchmark folder")
    parser.add_argument("--pred", type=Path, default=None, help="prediction file")
    add_model_arguments(parser)
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
    check_out_dir(args.out)
    args.pred = predictions_from_model(parser, args)

    config = ProtocolConfig.for_mode(args.mode, **parse_flags(args.flags))
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
