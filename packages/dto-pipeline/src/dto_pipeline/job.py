"""The three jobs behind `apps/dto run | solve | merge`.

`run_job`: images -> teachers (cached) -> DTO -> this process's shards (a share of the input by
`--shard i/N` and/or torchrun's RANK / WORLD_SIZE); a single-process run also merges.
`solve_job`: DTO again from a run's cached teacher outputs, with other DTO settings or another
cached depth model; no teacher runs, no torch.
`merge_job`: check that every share of a run finished with the same settings, verify their
shards' checksums, and join them into one dataset (manifest, checksums, card) for `load_dataset`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from dto_core.body import BodyModel

from .cache import TeacherCache, model_id
from .errors import OutputMismatchError, UsageError
from .images import Shard, list_images, resolve_shard
from .outcome import merge_reports, rejections
from .profile import StageTimer
from .runner import NOT_IN_RELEASE, CachedOutputs, InputImage, TeacherOutputs, run_share
from .settings import (
    IMAGES_FILE,
    RUN_FILE,
    claim_output,
    differences,
    read_json,
    write_json,
)
from .solve import SolveSettings
from .teachers import files_digest

__all__ = ["body_model", "list_inputs", "merge_job", "run_job", "solve_job"]

logger = logging.getLogger(__name__)

Progress = Callable[[int, str], tuple[Callable[[int], None], Callable[[], None]]]
"""progress(total, description) -> (advance(n), close()): the app's progress bar."""


def _no_progress(total: int, description: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    return (lambda n: None), (lambda: None)


def body_model(
    smpl_dir: str | os.PathLike[str] | None, kid_template: str | os.PathLike[str] | None
) -> tuple[BodyModel, dict[str, str | None], dict[str, str | None]]:
    """DTO's body model (SMPL neutral; SMPL-A's 11th kid coefficient when a kid template is
    given or `smpl_kid_template.npy` lies beside the model) and its fingerprint (file digests,
    and the folder and template paths, which `settings.LOCATIONS` keeps out of comparisons)."""
    smpl_dir = smpl_dir or os.environ.get("SMPL_MODEL_DIR")
    if smpl_dir is None:
        raise FileNotFoundError(
            "no SMPL model folder: pass --smpl-model-dir or set $SMPL_MODEL_DIR (SMPL_NEUTRAL.pkl "
            "from smpl.is.tue.mpg.de; `python -m dto_core.body make-synthetic DIR` for a stand-in)"
        )
    root = Path(smpl_dir)
    if kid_template is None:
        found = [p for p in (root, root / "smpl") if (p / "smpl_kid_template.npy").is_file()]
        kid_template = found[0] / "smpl_kid_template.npy" if found else None
    body = BodyModel.from_dir(root, "neutral", kid_template=kid_template)
    model_files = [
        f
        for folder in (root, root / "smpl")
        for f in (folder / "SMPL_NEUTRAL.pkl", folder / "SMPL_NEUTRAL.npz")
        if f.is_file()
    ]
    fingerprint = {
        "model": files_digest(model_files[0]),
        "kid_template": None if kid_template is None else files_digest(Path(kid_template)),
    }
    locations = {
        "smpl_dir": str(root.resolve()),
        "kid_template": kid_template and str(kid_template),
    }
    if kid_template is None:
        logger.warning("no kid template: 10-beta SMPL, the kid coefficient is never refitted")
    return body, fingerprint, locations


def list_inputs(
    images: Path, source: str, release: Any | None
) -> tuple[list[InputImage], list[str]]:
    """The run's inputs (every image of the folder, in listing order; `source` a dto-humans-hub
    source label) and, with a release, the release images absent from the folder.

    Raises:
        UsageError: an unknown source, or two folder images map to one release key.
    """
    from dto_humans_hub.conventions import SOURCE_LABELS, SOURCES

    paths = list_images(images)
    if release is None:
        if source not in SOURCE_LABELS:
            raise UsageError(f"--source {source!r}: one of {', '.join(SOURCE_LABELS)}")
        src = SOURCE_LABELS.index(source)
        return [InputImage(p, p, src, i) for i, p in enumerate(paths)], []
    index, seen = release.index, {}
    items = []
    for i, path in enumerate(paths):
        key = release.key_of(path)
        if key in seen and key in index:
            raise UsageError(
                f"{seen[key]} and {path} both have the release key {key!r}; keep one of them"
            )
        seen[key] = path
        number = index.get(key, NOT_IN_RELEASE)
        items.append(InputImage(path, key, SOURCES.index(release.source), i, number))
    missing = sorted(set(index) - set(seen))
    return items, missing


def _dto_settings(variant: str, overrides: dict[str, Any], max_side: int) -> dict[str, Any]:
    solve = SolveSettings.from_variant(variant, overrides, max_side=max_side)
    return {
        "variant": variant,
        "overrides": overrides,
        "update_method": solve.update_method,
        "recenter": solve.recenter,
        "max_side": max_side,
    }


def _solve_settings(dto: dict[str, Any]) -> SolveSettings:
    return SolveSettings.from_variant(
        dto["variant"],
        dto["overrides"],
        update_method=dto["update_method"],
        recenter=dto["recenter"],
        max_side=dto["max_side"],
    )


def run_job(
    *,
    images: str | os.PathLike[str],
    out: str | os.PathLike[str],
    pgt: str | os.PathLike[str] | None = None,
    source: str | None = None,
    teachers: str | os.PathLike[str] | None = None,
    variant: str = "official",
    overrides: dict[str, Any] | None = None,
    depth_model: str = "L",
    shard: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    vis_every: int = 0,
    keep: Literal["kept", "all"] = "kept",
    chunk: int = 256,
    cache: str | os.PathLike[str] | None = None,
    smpl_dir: str | os.PathLike[str] | None = None,
    kid_template: str | os.PathLike[str] | None = None,
    max_side: int = 512,
    teachers_only: bool = False,
    progress: Progress = _no_progress,
    environ: Mapping[str, str] = os.environ,
    figures: bool = True,
) -> dict[str, Any]:
    """`apps/dto run`: see the module docstring. Returns this share's report (or the merged
    report of a single-process run). `source`: the rows' source label; default: the release's
    with `pgt`, else `photos` (any folder of photos). `teachers_only`: fill the teacher cache of
    this share and stop (GPU workers; `solve_job` then runs DTO from the cache on CPU workers).
    `figures`: as `merge_job`'s."""
    from dto_humans_hub.conventions import PHOTOS, SOURCES

    from .release import read_release
    from .teachers import build_teachers, load_teachers_config, resolve_device

    out, images = Path(out), Path(images)
    share = resolve_shard(shard, environ)
    overrides = dict(overrides or {})
    if pgt is not None and source is not None and source not in SOURCES:
        raise UsageError(
            f"--source {source!r} with --pgt: release files exist for "
            f"{', '.join(SOURCES)} only"
        )
    release = None if pgt is None else read_release(pgt, source)
    items, missing = list_inputs(images, source or PHOTOS, release)
    config = load_teachers_config(teachers)
    device, dtype = resolve_device(device, dtype)
    if device.startswith("cuda") and "LOCAL_RANK" in environ and ":" not in device:
        device = f"cuda:{environ['LOCAL_RANK']}"
    timer = StageTimer()
    body, body_print, body_files = body_model(smpl_dir or config.smpl_dir, kid_template)
    extra = (
        None if release is None else {"release": {"name": release.name, "sha256": release.sha256}}
    )
    built = build_teachers(
        config,
        depth_model=depth_model,
        with_fov=release is None,
        device=device,
        dtype=dtype,
        timer=timer,
        extra_persons=extra,
        body=body,
        smpl_dir=smpl_dir,
    )
    settings = {
        "images": str(images.resolve()),
        "body_files": body_files,
        "source": release.source if release else source or PHOTOS,
        "pgt": None if release is None else {"name": release.name, "sha256": release.sha256},
        "models": {stage: model_id(desc) for stage, desc in built.models.items()},
        "depth_model": depth_model,
        "random_weights": built.random_weights,
        "simulated": built.simulated,
        "body": body_print,
        "dto": _dto_settings(variant, overrides, max_side),
        "keep": keep,
        "chunk": chunk,
        "shards": share.count,
    }
    claim_output(out, settings, [i.to_json() for i in items])
    teacher_cache = TeacherCache(Path(cache) if cache else out / "cache", built.models)
    teacher_cache.register()

    def released(item: InputImage) -> Any:
        if release is None:
            return None
        from dto_models import ReleasedPersons

        return ReleasedPersons(**release.persons(item.release))

    outputs = TeacherOutputs(built, teacher_cache, images, released, timer)
    if teachers_only:
        return _teachers_only(out, share, items, outputs, timer, progress)
    extra = {"release_images_not_in_folder": missing} if release is not None else {}
    report = _run(
        out, share, items, outputs, body, settings, timer, vis_every, progress, images, extra
    )
    if share.count == 1:
        return merge_job([out], figures=figures)
    return report


def _teachers_only(
    out: Path,
    share: Shard,
    items: list[InputImage],
    outputs: TeacherOutputs,
    timer: StageTimer,
    progress: Progress,
) -> dict[str, Any]:
    """Cache the teacher outputs of this share's images; write ranks/<share>/teachers.json."""
    chosen = set(share.select([i.path for i in items]))
    todo = [i for i in items if i.path in chosen and i.release != NOT_IN_RELEASE]
    advance, close = progress(len(todo), f"{share.name} teachers")
    try:
        for item in todo:
            outputs(item)
            advance(1)
    finally:
        close()
    summary = {"shard": {"index": share.index, "count": share.count}, "images": len(todo),
               "profile": timer.to_json()}  # fmt: skip
    write_json(out / "ranks" / share.name / "teachers.json", summary)
    return summary


def _run(
    out: Path,
    share: Shard,
    items: list[InputImage],
    outputs: Callable[[InputImage], Any],
    body: BodyModel,
    settings: dict[str, Any],
    timer: StageTimer,
    vis_every: int,
    progress: Progress,
    images: Path | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from .images import read_image
    from .vis import panel_path, write_panel

    mine = share.select([i.path for i in items])
    chosen = set(mine)
    todo = [i for i in items if i.path in chosen]
    solve = _solve_settings(settings["dto"])
    vis_dir = out / "ranks" / share.name / "vis"

    def vis(item: InputImage, outcome: Any, pixels: Any) -> None:
        if pixels is None:
            if images is None or not (images / item.path).is_file():
                logger.warning("%s: image not available, no panel", item.path)
                return
            pixels = read_image(images / item.path)
        write_panel(
            panel_path(vis_dir, item.path), pixels, outcome, body, settings["dto"]["variant"]
        )

    advance, close = progress(len(todo), share.name)
    try:
        return run_share(
            out,
            share,
            todo,
            outputs,
            body,
            solve,
            keep=settings["keep"],
            chunk=settings["chunk"],
            timer=timer,
            vis_every=vis_every,
            vis=vis,
            progress=advance,
            extra_report={
                "random_weights": settings["random_weights"],
                "simulated": settings.get("simulated", False),
                **(extra or {}),
            },
            synthetic=settings["random_weights"] or settings.get("simulated", False),
        )
    finally:
        close()


def _find_depth_id(cache_root: Path, depth_model: str) -> str:
    found = []
    for path in sorted((cache_root / "depth").glob("*/model.json")):
        if f"depth.{depth_model}" in read_json(path):
            found.append(path.parent.name)
    if len(found) != 1:
        what = "no cached depth maps" if not found else f"several cached depth models {found}"
        raise FileNotFoundError(
            f"{cache_root}: {what} for --depth-model {depth_model}; run `apps/dto run "
            f"--depth-model {depth_model}` with this cache first"
        )
    return found[0]


def solve_job(
    *,
    cache: str | os.PathLike[str],
    out: str | os.PathLike[str],
    variant: str | None = None,
    overrides: dict[str, Any] | None = None,
    depth_model: str | None = None,
    shard: str | None = None,
    keep: Literal["kept", "all"] | None = None,
    vis_every: int = 0,
    smpl_dir: str | os.PathLike[str] | None = None,
    kid_template: str | os.PathLike[str] | None = None,
    progress: Progress = _no_progress,
    environ: Mapping[str, str] = os.environ,
    figures: bool = True,
) -> dict[str, Any]:
    """`apps/dto solve`: DTO from the cached teacher outputs of the run in `cache` (a run's
    output folder) into a new run folder `out`. Settings not given are the run's; with the
    run's own settings the rows are identical to the run's. `figures`: as `merge_job`'s."""
    run_dir = Path(cache)
    if not (run_dir / RUN_FILE).is_file():
        raise FileNotFoundError(f"--cache {run_dir}: no {RUN_FILE}; pass an `apps/dto run` --out")
    old = read_json(run_dir / RUN_FILE)
    items = [InputImage(**e) for e in read_json(run_dir / IMAGES_FILE)]
    share = resolve_shard(shard, environ)
    cache_root = run_dir / "cache"
    models = dict(old["models"])
    if depth_model is not None and depth_model != old["depth_model"]:
        models["depth"] = _find_depth_id(cache_root, depth_model)
    descriptions = {}
    for stage, ident in models.items():
        path = cache_root / stage / ident / "model.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the cache of {stage} model {ident} is missing")
        descriptions[stage] = read_json(path)
    dto = old["dto"]
    if variant is not None or overrides is not None:
        dto = _dto_settings(variant or dto["variant"], dict(overrides or {}), dto["max_side"])
    files = old.get("body_files", {})
    body, body_print, body_files = body_model(
        smpl_dir or files.get("smpl_dir"), kid_template or files.get("kid_template")
    )
    settings = {
        **{k: v for k, v in old.items() if k != "input_digest"},
        "models": models,
        "depth_model": depth_model or old["depth_model"],
        "body": body_print,
        "body_files": body_files,
        "dto": dto,
        "keep": keep or old["keep"],
        "shards": share.count,
    }
    claim_output(Path(out), settings, [i.to_json() for i in items])
    timer = StageTimer()
    teacher_cache = TeacherCache(cache_root, descriptions)
    if teacher_cache.ids != models:
        raise OutputMismatchError(f"{cache_root}: model.json files do not match their ids")
    images = Path(old["images"])
    outputs = CachedOutputs(teacher_cache, timer)
    report = _run(Path(out), share, items, outputs, body, settings, timer, vis_every, progress,
                  images if images.is_dir() else None)  # fmt: skip
    if share.count == 1:
        return merge_job([Path(out)], figures=figures)
    return report


def merge_job(
    runs: list[str | os.PathLike[str]],
    to: str | os.PathLike[str] | None = None,
    *,
    figures: bool = True,
) -> dict[str, Any]:
    """`apps/dto merge`: join every share of a run (the run folders of all its processes;
    usually one folder) into one dto-humans-hub dataset at `to` (default: the first run folder's
    `dataset`): the rows of every share's dataset (checksums verified), the images every share
    dropped (from its report) in the manifest, the reports and profiles added up. `figures`:
    draw the statistics figures of the dataset card (matplotlib, about a second).

    Raises:
        OutputMismatchError: shares of different settings, missing or unfinished shares,
            shards failing their checksums, or a `to` holding another dataset.
    """
    from dto_humans_hub import (
        DatasetVerificationError,
        build_dataset,
        convert_built_dataset,
        merge_conversions,
        verify_dataset,
    )

    runs = [Path(r) for r in runs]
    settings = []
    for run in runs:
        if not (run / RUN_FILE).is_file():
            raise OutputMismatchError(f"{run}: no {RUN_FILE}: not a DTO run folder")
        settings.append({k: v for k, v in read_json(run / RUN_FILE).items() if k != "images"})
    for run, other in zip(runs[1:], settings[1:], strict=True):
        diffs = differences(settings[0], other)
        if diffs:
            raise OutputMismatchError(
                f"{runs[0]} and {run} hold runs of different settings; they cannot be merged:\n  "
                + "\n  ".join(diffs)
            )
    count = settings[0]["shards"]
    shares: dict[int, Path] = {}
    for run in runs:
        for folder in sorted((run / "ranks").glob(f"rank-*-of-{count:05d}")):
            index = int(folder.name.split("-")[1])
            if index in shares:
                raise OutputMismatchError(f"share {index} twice: {shares[index]} and {folder}")
            shares[index] = folder
    problems = [f"share {i} of {count}: missing" for i in range(count) if i not in shares]
    problems += [
        f"{folder}: not finished (no report.json); run that process again with the same arguments"
        for i, folder in sorted(shares.items())
        if not (folder / "report.json").is_file()
    ]
    if problems:
        raise OutputMismatchError("cannot merge:\n  " + "\n  ".join(problems))

    conversions, rejected, reports, profile = [], [], [], StageTimer()
    for index in range(count):
        folder = shares[index]
        reports.append(read_json(folder / "report.json"))
        profile.merge(StageTimer.from_json(read_json(folder / "profile.json")))
        rejected += rejections(reports[-1], folder.name)
        if reports[-1]["images"]["written"] == 0:
            continue  # no row, so no dataset: its report accounts for every image
        try:
            verify_dataset(folder / "dataset")
        except DatasetVerificationError as exc:
            raise OutputMismatchError(f"share {index}: {exc}") from exc
        conversions.append(convert_built_dataset(folder / "dataset", name=folder.name))

    report = merge_reports(reports)
    if conversions:
        merged = dataclasses.replace(merge_conversions(conversions), rejected=tuple(rejected))
        target = Path(to) if to is not None else runs[0] / "dataset"
        _check_merge_target(target, merged.inputs)
        build_dataset(target, merged, figures=figures)
        report["dataset"] = str(target)
    report["random_weights"] = any(r.get("random_weights") for r in reports)
    report["simulated"] = any(r.get("simulated") for r in reports)
    if "release_images_not_in_folder" in reports[0]:  # the same list in every share
        report["release_images_not_in_folder"] = reports[0]["release_images_not_in_folder"]
    write_json(runs[0] / "report.json", report)
    write_json(runs[0] / "profile.json", profile.to_json())
    return report


def _check_merge_target(target: Path, inputs: tuple[Any, ...]) -> None:
    """Refuse to replace a dataset that is not an earlier merge of these same shares."""
    from dto_humans_hub.swap import DatasetFolderError, current_build, dataset_path
    from dto_humans_hub.writer import read_manifest

    try:
        build = current_build(dataset_path(target))
    except DatasetFolderError as exc:
        raise OutputMismatchError(f"--to: {exc}") from exc
    old = None if build is None else read_manifest(build)["families"].get("annotations")
    if old is not None and old["inputs"] != [dataclasses.asdict(f) for f in inputs]:
        raise OutputMismatchError(
            f"{target} holds another dataset (other inputs); pass another --to or delete it"
        )
