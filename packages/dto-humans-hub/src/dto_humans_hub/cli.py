"""Command line: build, verify and describe DTO-Humans dataset folders.

    dto-humans-hub build OUT --opt COCO_CHMR_SMPL_OPT.npz ... [--release coco-release.npz ...]
                            [--source SOURCE] [--annotation LABEL] [--kept-only]
                            [--smpl-model-dir DIR] [--kid-template FILE] [--repo ORG/NAME]
                            [--validation-fraction 0.01] [--max-shard-mb 500] [--restart]
    dto-humans-hub images OUT IMAGE_ROOT [--skip-missing]
    dto-humans-hub verify OUT
    dto-humans-hub stats OUT [--compare OTHER_BUILT_DIR] [--repo ORG/NAME]
    dto-humans-hub make-fixtures DIR [--images 1000] [--seed 0]   (SYNTHETIC files, exact formats)

(`python -m dto_humans_hub ...` works too.) A bad input ends with one line naming the file or
argument and what to do (`-v` adds the traceback). Publishing is `uv run apps/publish`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from dto_core.body import BodyModel
from dto_humans_hub.build import build_dataset, build_images_config
from dto_humans_hub.card import write_card
from dto_humans_hub.conventions import (
    ANNOTATION_SOURCES,
    MAX_SHARD_BYTES,
    SOURCES,
    VALIDATION_FRACTION,
)
from dto_humans_hub.convert import (
    Conversion,
    convert_camerahmr_release,
    convert_released_opt,
    source_from_filename,
)
from dto_humans_hub.fixtures import (
    synthetic_opt_annots,
    synthetic_release_arrays,
    write_camerahmr_release,
    write_released_opt,
)
from dto_humans_hub.stats import compute_statistics, plot_statistics
from dto_humans_hub.swap import BuildInProgressError, build_lock
from dto_humans_hub.writer import verify_dataset

USER_ERRORS = (ValueError, OSError, BuildInProgressError)
"""What bad input raises (the package's own errors derive from ValueError or OSError): reported
in one line, without a traceback."""

MB = 1_000_000


def _report(report) -> None:
    print(f"{report.family}: {report.num_images} images, {report.num_people} people, "
          f"{len(report.shards)} shards")  # fmt: skip
    for shard in report.shards:
        print(f"  {shard.path}  {shard.num_rows} rows  {shard.num_bytes} bytes")
    if report.rejected:
        print(f"not converted: {len(report.rejected)} images (listed in manifest.json), e.g.")
        for r in report.rejected[:10]:
            print(f"  {r.file}: {r.image_key}: {r.reason}")
    for note in report.notes:
        print(f"note: {note}")


def _body_model(args: argparse.Namespace) -> BodyModel | None:
    if not (args.smpl_model_dir or args.kid_template):
        return None
    try:
        return BodyModel.from_dir(args.smpl_model_dir, kid_template=args.kid_template)
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"--smpl-model-dir {args.smpl_model_dir} / --kid-template {args.kid_template}: {exc}; "
            "give the folder holding SMPL_NEUTRAL.pkl and AGORA's smpl_kid_template.npy"
        ) from exc


def _build(args: argparse.Namespace) -> int:
    if not (args.opt or args.release):
        raise ValueError("nothing to build: give --opt and/or --release files")
    body = _body_model(args)
    conversions: list[Conversion] = [
        convert_released_opt(p, source=args.source, annotation=args.annotation, body_model=body,
                             kept_only=args.kept_only)
        for p in args.opt
    ]  # fmt: skip
    by_source: dict[str, list[Path]] = {}
    for path in args.release:
        by_source.setdefault(args.source or source_from_filename(path), []).append(path)
    conversions += [
        convert_camerahmr_release(paths, source=source, body_model=body)
        for source, paths in by_source.items()
    ]
    report = build_dataset(
        args.out,
        conversions,
        max_shard_bytes=int(args.max_shard_mb * MB),
        validation_fraction=args.validation_fraction,
        restart=args.restart,
        repo_id=args.repo,
    )
    _report(report)
    return 0


def _images(args: argparse.Namespace) -> int:
    report = build_images_config(
        args.out,
        args.image_root,
        on_missing="skip" if args.skip_missing else "raise",
        max_shard_bytes=int(args.max_shard_mb * MB),
        restart=args.restart,
        repo_id=args.repo,
    )
    _report(report)
    return 0


def _verify(args: argparse.Namespace) -> int:
    manifest = verify_dataset(args.out)
    for name, entry in manifest["families"].items():
        for split, info in entry["splits"].items():
            print(f"{name}/{split}: {info['num_rows']} rows in {len(info['shards'])} shards: OK")
    return 0


def _stats(args: argparse.Namespace) -> int:
    verify_dataset(args.out, checksums=False)
    stats = compute_statistics(args.out)
    compare = compute_statistics(args.compare) if args.compare else None
    with build_lock(args.out):
        for path in plot_statistics(stats, args.out, compare=compare):
            print(f"wrote {path}")
        write_card(args.out, repo_id=args.repo, figures=False)
    print(json.dumps(stats.summary, indent=1))
    return 0


def _fixtures(args: argparse.Namespace) -> int:
    out = Path(args.dir)
    for i, source in enumerate(SOURCES):
        name = f"{source.upper()}_CHMR_SMPL_OPT.npz"
        annots = synthetic_opt_annots(args.images, source=source, seed=args.seed + i)
        print(f"wrote {write_released_opt(out / name, annots)} (SYNTHETIC)")
        arrays = synthetic_release_arrays(args.images, source=source, seed=args.seed + 10 + i)
        print(f"wrote {write_camerahmr_release(out / f'{source}-release.npz', arrays)} (SYNTHETIC)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dto-humans-hub",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("out", type=Path, help="dataset folder")
        p.add_argument("--repo", help="ORG/NAME used in the card's snippets")
        p.add_argument("--max-shard-mb", type=float, default=MAX_SHARD_BYTES / MB)
        p.add_argument(
            "--restart", action="store_true", help="discard a staged build of other input"
        )

    p = sub.add_parser("build", help="convert release files and write the annotations config")
    common(p)
    p.add_argument(
        "--opt", type=Path, nargs="*", default=[],
        help="*_CHMR_SMPL_OPT.npz (DTO-Humans), *_CHMR_SMPL.npz (CameraHMR's pGT, 10 betas) or "
        "official DTO *_opt.npz files",
    )  # fmt: skip
    p.add_argument("--release", type=Path, nargs="*", default=[], help="CameraHMR *-release.npz")
    p.add_argument(
        "--source", choices=SOURCES,
        help="source of every input file, for files renamed so that their name does not start "
        "with it (files of several sources: keep their names)",
    )  # fmt: skip
    p.add_argument(
        "--annotation", choices=ANNOTATION_SOURCES[:2],
        help="what the --opt files are (default: told from the betas and the name)",
    )  # fmt: skip
    p.add_argument(
        "--kept-only", action="store_true",
        help="the *_opt.npz files were written with --save_all_annots False: optimised = kept",
    )  # fmt: skip
    p.add_argument("--smpl-model-dir", help="SMPL model folder (fills body_height)")
    p.add_argument("--kid-template", help="smpl_kid_template.npy (the 11th shape direction)")
    p.add_argument(
        "--validation-fraction", type=float, default=VALIDATION_FRACTION,
        help="share of images held out as the validation split (default %(default)s)",
    )  # fmt: skip
    p.set_defaults(run=_build)

    p = sub.add_parser("images", help="write the images config from local images")
    common(p)
    p.add_argument("image_root", type=Path, help="folder holding <source>/<image_key>")
    p.add_argument(
        "--skip-missing", action="store_true", help="leave out (and list) missing images"
    )
    p.set_defaults(run=_images)

    p = sub.add_parser("verify", help="check shards against manifest.json")
    p.add_argument("out", type=Path)
    p.set_defaults(run=_verify)

    p = sub.add_parser("stats", help="statistics, figures and card of a built dataset")
    p.add_argument("out", type=Path)
    p.add_argument("--compare", type=Path, help="another built dataset for the height figure")
    p.add_argument("--repo")
    p.set_defaults(run=_stats)

    p = sub.add_parser("make-fixtures", help="write SYNTHETIC release files in the exact formats")
    p.add_argument("dir", type=Path)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_fixtures)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        return args.run(args)
    except USER_ERRORS as exc:
        if args.verbose:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"dto-humans-hub {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
