"""The `run`, `solve` and `merge` subcommands of `apps/dto` (parsers and entry points).

Importing this module is cheap (argparse only): the jobs import NumPy, dto-humans-hub and, for
`run` only, torch and the teachers when they start.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_commands"]

EPILOG_RUN = """\
Output folder: run.json and images.json (settings and input listing), cache/ (teacher outputs
per image and model id), ranks/rank-I-of-N/ (each process's parts, shards, report, profile,
panels) and, after `merge` (automatic for one process), the dataset `dataset` (a link to its
build in .dataset.builds/) for datasets.load_dataset: configs all and one per source, splits
train and validation.
A rerun with the same arguments resumes; other settings are refused.
"""


def _dto_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    parser.add_argument(
        "--variant",
        choices=("official", "paper"),
        default="official" if defaults else None,
        help="DTO variant (default: official%s)" % ("" if defaults else "; solve: the run's"),
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=None,
        metavar="NAME=VALUE",
        help="a DTOConfig field for ablations, e.g. --set intra_scale=false, "
        "--set use_age_prior=false, --set cues.refit_on_inliers=true (repeatable)",
    )
    parser.add_argument(
        "--depth-model",
        choices=("S", "B", "L"),
        default="L" if defaults else None,
        help="Depth-Anything-V2 size (default L%s)" % ("" if defaults else "; solve: the run's"),
    )
    parser.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="this process's share of the images (combined with torchrun's RANK/WORLD_SIZE)",
    )
    parser.add_argument(
        "--keep",
        choices=("kept", "all"),
        default="kept" if defaults else None,
        help="rows for images DTO's posterior filter keeps (default), or every solved image",
    )
    parser.add_argument(
        "--vis-every",
        type=int,
        default=0,
        metavar="N",
        help="write a picture panel for every N-th image of the listing (0: none)",
    )
    parser.add_argument(
        "--smpl-model-dir", default=None, help="SMPL folder (default: $SMPL_MODEL_DIR)"
    )
    parser.add_argument(
        "--kid-template",
        default=None,
        help="smpl_kid_template.npy for SMPL-A's 11th coefficient (default: beside the model)",
    )


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add `run`, `solve` and `merge` to an argparse subparsers object; each sets `func`."""
    run = sub.add_parser(
        "run",
        help="images -> teachers -> DTO -> DTO-Humans shards (resumable, sharded)",
        epilog=EPILOG_RUN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--images", required=True, help="folder of images (searched recursively)")
    run.add_argument("--out", required=True, help="output folder of the run")
    run.add_argument(
        "--pgt", default=None, help="CameraHMR release file (*-release.npz) of the images"
    )
    run.add_argument(
        "--source",
        default=None,
        help="source label of the rows: photos (default: any folder of photos), or coco, mpii, "
        "aic, insta (with --pgt: from the release file's name)",
    )
    run.add_argument("--teachers", default=None, help="teachers.toml (weights and options)")
    run.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1")
    run.add_argument("--dtype", default="auto", help="auto (bfloat16 on CUDA), float32, bfloat16")
    run.add_argument("--cache", default=None, help="teacher-output cache (default: OUT/cache)")
    run.add_argument("--chunk", type=int, default=256, help="images per resumable part")
    run.add_argument(
        "--teachers-only",
        action="store_true",
        help="only fill the teacher cache (GPU workers); then `solve --cache OUT` runs DTO",
    )
    _dto_options(run, defaults=True)
    run.set_defaults(func=_run)

    solve = sub.add_parser(
        "solve", help="DTO again from a run's cached teacher outputs (no teachers, seconds)"
    )
    solve.add_argument("--cache", required=True, help="the output folder of an `apps/dto run`")
    solve.add_argument("--out", required=True, help="output folder of this solve")
    _dto_options(solve, defaults=False)
    solve.set_defaults(func=_solve)

    merge = sub.add_parser("merge", help="join the shards of every process into one dataset")
    merge.add_argument("runs", nargs="+", help="run folder(s) holding ranks/rank-I-of-N")
    merge.add_argument("--to", default=None, help="dataset folder (default: RUN/dataset)")
    merge.set_defaults(func=_merge)


def _progress(total: int, description: str) -> tuple[Any, Any]:
    from tqdm import tqdm

    bar = tqdm(total=total, desc=description, unit="img", dynamic_ncols=True)
    return bar.update, bar.close


def _finish(report: dict[str, Any], out: Path) -> int:
    from .outcome import format_report
    from .profile import format_profile

    print()
    print(format_report(report))
    profile_path = out / "profile.json"
    if (out / "report.json").is_file() and profile_path.is_file():
        print()
        print(format_profile(json.loads(profile_path.read_text())))
    elif "shard" in report:
        rank = out / "ranks"
        print(f"\nshare {report['shard']['index']} of {report['shard']['count']} done in {rank}")
        print(f"when every share is done: uv run apps/dto merge {out}")
    if report.get("random_weights"):
        print("\nRANDOM TEACHER WEIGHTS (tiny test models): these rows are meaningless.")
    if report.get("simulated"):
        print("\nSYNTHETIC photos and simulated teachers: these rows describe the simulator.")
    if "dataset" in report:
        print(f"\ndataset: {report['dataset']}  (datasets.load_dataset({report['dataset']!r}))")
    return 0


def _errors() -> tuple[type[BaseException], ...]:
    from dto_humans_hub import AnnotationFileError, StagedBuildError
    from dto_humans_hub.swap import BuildInProgressError, DatasetFolderError

    from .errors import (
        CacheError,
        MissingCacheError,
        MissingWeightsError,
        OutputMismatchError,
        TeachersFileError,
        UsageError,
    )

    return (
        UsageError,
        OutputMismatchError,
        MissingWeightsError,
        TeachersFileError,
        AnnotationFileError,
        DatasetFolderError,
        StagedBuildError,
        BuildInProgressError,
        CacheError,
        MissingCacheError,
        FileNotFoundError,
        NotADirectoryError,
    )


def _guard(job: Any) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import datasets

    datasets.disable_progress_bars()  # one progress bar: the run's
    errors = _errors()
    try:
        return job()
    except errors as exc:
        print(f"apps/dto: error: {exc}", file=sys.stderr)
        return 2


def _overrides(args: argparse.Namespace) -> dict[str, Any] | None:
    from .settings import parse_overrides

    return None if args.overrides is None else parse_overrides(args.overrides)


def _run(args: argparse.Namespace) -> int:
    def job() -> int:
        from .job import run_job

        report = run_job(
            images=args.images,
            out=args.out,
            pgt=args.pgt,
            source=args.source,
            teachers=args.teachers,
            variant=args.variant,
            overrides=_overrides(args) or {},
            depth_model=args.depth_model,
            shard=args.shard,
            device=args.device,
            dtype=args.dtype,
            vis_every=args.vis_every,
            keep=args.keep,
            chunk=args.chunk,
            cache=args.cache,
            smpl_dir=args.smpl_model_dir,
            kid_template=args.kid_template,
            teachers_only=args.teachers_only,
            progress=_progress,
        )
        if args.teachers_only:
            from .profile import format_profile

            print(format_profile(report["profile"], "Teacher runtime per image"))
            print(f"\nteacher outputs of {report['images']} images cached; DTO: uv run apps/dto "
                  f"solve --cache {args.out} --out DIR [--shard i/N]")  # fmt: skip
            return 0
        return _finish(report, Path(args.out))

    return _guard(job)


def _solve(args: argparse.Namespace) -> int:
    def job() -> int:
        from .job import solve_job

        report = solve_job(
            cache=args.cache,
            out=args.out,
            variant=args.variant,
            overrides=_overrides(args),
            depth_model=args.depth_model,
            shard=args.shard,
            keep=args.keep,
            vis_every=args.vis_every,
            smpl_dir=args.smpl_model_dir,
            kid_template=args.kid_template,
            progress=_progress,
        )
        return _finish(report, Path(args.out))

    return _guard(job)


def _merge(args: argparse.Namespace) -> int:
    def job() -> int:
        from .job import merge_job

        report = merge_job(args.runs, args.to)
        return _finish(report, Path(args.runs[0]))

    return _guard(job)
