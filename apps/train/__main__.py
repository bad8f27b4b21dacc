"""apps/train: train MA-HMR (a stage, a benchmark fine-tune, or the `tiny` model on synthetic data).

    uv run apps/train --config tiny --out runs/tiny          # CPU, synthetic data, minutes
    uv run apps/train --config stage3 --data-root DATA --init mahmr_stage2.bin --out runs/s3
    uv run apps/train --config stage3 --resume runs/s3        # continue exactly where it stopped
    torchrun --nproc-per-node 8 apps/train --config stage3 ... # DDP (see the README for the env)

`--config` is a shipped stage (`stage1`, `stage2`, `stage3`, `ft_3dpw`, `ft_hi4d`, `ft_panoptic`,
`ft_rh`, `tiny`) or a .toml file; `--set key=value` overrides any field (`--set optim.lr=2e-5`,
`--set data.datasets.0.weight=2`). `--compat` reproduces every official defect the trainer fixes.
Writes `<out>/train_log.csv`, `val_log.csv`, `checkpoints/step_*/` (model in the mahmr-model
format plus optimiser, scheduler, RNG and data position) and `final/` (`MAHMR.from_pretrained`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from tqdm import tqdm

try:
    from mahmr_model import CheckpointError
    from mahmr_train import ConfigError, available_configs, load_config
    from mahmr_train.checkpoint import CONFIG_FILE, find_checkpoint
    from mahmr_train.config import CompatConfig, apply_overrides, config_from_dict, config_to_dict
    from mahmr_train.data.records import DataError
    from mahmr_train.trainer import Distributed, Trainer
except ModuleNotFoundError as missing:  # the light `uv run` install
    raise SystemExit(
        f"apps/train: {missing.name} is not installed: this app needs the whole workspace; "
        "run `uv run --all-packages apps/train ...` once (later a plain `uv run` keeps it)"
    ) from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="apps/train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help=f"stage name ({', '.join(available_configs())}) or .toml")
    parser.add_argument("--out", type=Path, help="run folder (default: runs/<config name>)")
    parser.add_argument("--resume", type=Path, help="continue the run in this folder")
    parser.add_argument("--data-root", help="folder holding the datasets (MA-HMR layout)")
    parser.add_argument(
        "--init", help="initial weights: checkpoint folder, .safetensors, .pth/.bin"
    )
    parser.add_argument("--smpl-dir", help="SMPL model folder (default $SMPL_MODEL_DIR)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides")
    parser.add_argument("--compat", action="store_true", help="reproduce the official defects")
    parser.add_argument("--stop-after", type=int, help="stop after this many optimiser steps")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.config is None and args.resume is None:
        raise SystemExit("error: give --config (and --out), or --resume RUN_DIR")
    out = args.resume or args.out or Path("runs") / Path(args.config).stem
    overrides = list(args.overrides)
    if args.data_root:
        overrides.append(f"data.root={json.dumps(args.data_root)}")
    if args.smpl_dir:
        overrides.append(f"model.smpl_dir={json.dumps(args.smpl_dir)}")
    if args.compat:
        overrides += [f"compat.{name}=true" for name in config_to_dict(CompatConfig.official())]
    try:
        if args.config is None:  # resume with the saved config
            saved = json.loads((find_checkpoint(out) / CONFIG_FILE).read_text())
            config = config_from_dict(apply_overrides(saved, overrides))
        else:
            config = load_config(args.config, overrides)
        dist = Distributed.from_env(args.device)
        trainer = Trainer(
            config, out, resume=args.resume is not None, init=args.init, distributed=dist
        )
    except (ConfigError, DataError, CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bar = None
    if dist.main and not args.no_progress:
        bar = tqdm(total=trainer.total_steps, initial=trainer.step, unit="step", dynamic_ncols=True)

    per_step = config.data.batch_size * dist.world * config.optim.accumulation
    clock = [time.perf_counter()]

    def progress(values: dict[str, float]) -> None:
        if bar is not None:
            now = time.perf_counter()
            rate = per_step / max(now - clock[0], 1e-9)
            clock[0] = now
            bar.update(1)
            bar.set_postfix(
                loss=f"{values['loss']:.4g}", lr=f"{values['lr']:.2e}", samples_s=f"{rate:.1f}"
            )

    summary = trainer.fit(stop_after=args.stop_after, progress=progress)
    if bar is not None:
        bar.close()
    if dist.main:
        loss = summary["last"].get("loss", float("nan"))
        print(f"step {summary['step']} / {trainer.total_steps}: loss {loss:.4g}")
        for name, metrics in summary.get("validation", {}).items():
            shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            print(f"validation {name}: {shown}")
        print(f"run folder: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
