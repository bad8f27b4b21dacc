"""The job of one process: its share of the input images -> teacher outputs (cached per image) ->
DTO -> rows, written in chunks ("parts") and finally as the share's dataset shards.

Output folder of a run (`OUT`):

    run.json, images.json                 settings and input listing (`dto_pipeline.settings`)
    cache/<stage>/<model id>/...          teacher outputs per image (`dto_pipeline.cache`)
    ranks/rank-IIIII-of-NNNNN/
        parts/part-CCCCCC.npz             every image's outcome, a chunk at a time
        dataset -> .dataset.builds/b-...  the share's DTO-Humans shards (dto-humans-hub's build)
        vis/*.png                         `--vis-every` panels
        report.json, profile.json         written last: the share is complete
    dataset -> .dataset.builds/b-...      `merge` of all shares (a dto-humans-hub dataset link)
    report.json, profile.json

Resume: a part is written (atomically) only when its whole chunk is solved, every teacher output
is cached as soon as it exists, and the share's shards are written by dto-humans-hub's resumable
writer from all parts. A process killed at any point and started again with the same arguments
reloads the finished parts, reuses the cached teacher outputs of the interrupted chunk, and
writes the same shards as an uninterrupted run (the solve is deterministic).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dto_core.body import BodyModel
from dto_humans_hub import build_dataset

from .cache import PersonsEntry, TeacherCache
from .errors import MissingCacheError
from .images import ImageReadError, Shard, decode_image
from .outcome import ImageOutcome, build_report, load_part, save_part, to_conversion
from .profile import StageTimer
from .settings import write_json
from .solve import SolveSettings, solve_image

__all__ = ["InputImage", "TeacherOutputs", "run_share"]

logger = logging.getLogger(__name__)

Outputs = tuple[PersonsEntry, np.ndarray | None, np.ndarray | None]
"""(persons, disparity (H, W) or None for skipped images, pixels (H, W, 3) or None if not read)."""


NOT_IN_RELEASE = -2
"""`InputImage.release` of a folder image that the --pgt release does not hold."""


@dataclass(frozen=True)
class InputImage:
    """One input: `path` relative to the images folder, `key` and `source` (SOURCES index) of its
    dataset row, `index` in the whole run's listing, `release` its image number in the --pgt
    release (-1: no --pgt; `NOT_IN_RELEASE`: the release does not hold it, so it is dropped)."""

    path: str
    key: str
    source: int
    index: int
    release: int = -1

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class TeacherOutputs:
    """Teacher outputs of an image: from the cache, else from the teachers (then cached).

    `teachers`: `dto_pipeline.teachers.Teachers`; `released(item)` gives the image's
    `dto_models.ReleasedPersons` or None (no --pgt).
    """

    teachers: Any
    cache: TeacherCache
    images_root: Path
    released: Callable[[InputImage], Any]
    timer: StageTimer

    def __call__(self, item: InputImage) -> Outputs:
        path = self.images_root / item.path
        with self.timer.stage("read"):
            try:
                data = path.read_bytes()
            except OSError as exc:
                return PersonsEntry.skipped("unreadable", f"{path}: {exc}", (0, 0)), None, None
            sha = hashlib.sha256(data).hexdigest()
        with self.timer.stage("cache"):
            entry = self.cache.get_persons(item.key, sha)
            disparity = None
            if entry is not None and not entry.skip:
                disparity = self.cache.get_depth(item.key, sha)
        if entry is not None and (entry.skip or disparity is not None):
            return entry, disparity, None
        with self.timer.stage("read", images=0):  # the same image as the read above
            try:
                pixels = decode_image(data, str(path))
            except ImageReadError as exc:
                entry = PersonsEntry.skipped(exc.reason, str(exc), (0, 0))
                self.cache.put_persons(item.key, sha, entry)
                return entry, None, None
        if entry is None:
            released = self.released(item)
            inner = ("detection", "keypoints", "hmr", "fov", "age_gender")
            before = sum(self.timer.seconds.get(s, 0.0) for s in inner)
            start = time.perf_counter()
            record = self.teachers.stage.run(pixels, released)
            total = time.perf_counter() - start
            spent = sum(self.timer.seconds.get(s, 0.0) for s in inner) - before
            self.timer.add("matching", total - spent)  # NMS, filters, matching, bookkeeping
            entry = PersonsEntry.from_record(record, pixels.shape[:2])
            with self.timer.stage("cache", images=0):
                self.cache.put_persons(item.key, sha, entry)
        if not entry.skip and disparity is None:
            disparity = self.teachers.depth.estimate(pixels)
            with self.timer.stage("cache", images=0):
                self.cache.put_depth(item.key, sha, disparity)
        return entry, disparity, pixels


@dataclass
class CachedOutputs:
    """Teacher outputs read from the cache only (`apps/dto solve`); images are not needed."""

    cache: TeacherCache
    timer: StageTimer

    def __call__(self, item: InputImage) -> Outputs:
        with self.timer.stage("cache"):
            entry = self.cache.get_persons(item.key)
            if entry is None:
                raise MissingCacheError(
                    f"{item.path}: no cached teacher output in {self.cache.root} for these "
                    "teachers; run `apps/dto run` on it first"
                )
            disparity = None if entry.skip else self.cache.get_depth(item.key)
        if not entry.skip and disparity is None:
            raise MissingCacheError(
                f"{item.path}: no cached depth map in {self.cache.root} for this depth model; run "
                "`apps/dto run` with this --depth-model on it first"
            )
        return entry, disparity, None


def run_share(
    out: Path,
    shard: Shard,
    items: list[InputImage],
    outputs: Callable[[InputImage], Outputs],
    body: BodyModel,
    settings: SolveSettings,
    *,
    keep: Literal["kept", "all"],
    chunk: int,
    timer: StageTimer,
    vis_every: int = 0,
    vis: Callable[[InputImage, ImageOutcome, np.ndarray | None], None] | None = None,
    progress: Callable[[int], None] = lambda n: None,
    extra_report: dict[str, Any] | None = None,
    synthetic: bool = False,
) -> dict[str, Any]:
    """Process this share's `items` (in order) into `out/ranks/<shard>/`; returns its report.
    `synthetic`: the rows come from simulated teachers or random weights (the share's dataset
    is marked synthetic, and so is every dataset merged from it).

    `outputs(item)`: the teacher outputs (`TeacherOutputs` or `CachedOutputs`), timing into
    `timer` (the process's live timer). `vis(item, outcome, pixels)` draws the panel of every
    `vis_every`-th image of the listing. The share's profile (`profile.json`) sums the profiles
    of all its parts, including parts finished by an earlier, interrupted process.
    """
    rank_dir = out / "ranks" / shard.name
    parts_dir = rank_dir / "parts"
    report_path = rank_dir / "report.json"
    report_path.unlink(missing_ok=True)  # this share is (again) in progress
    for stale in parts_dir.glob(".*.tmp"):
        stale.unlink()  # a write of a killed process of this share
    outcomes: list[ImageOutcome] = []
    total = StageTimer()
    for number, start in enumerate(range(0, len(items), chunk)):
        batch = items[start : start + chunk]
        part = parts_dir / f"part-{number:06d}.npz"
        profile_file = parts_dir / f"part-{number:06d}.profile.json"
        if part.is_file():
            done = load_part(part)
            if [o.path for o in done] != [i.path for i in batch]:
                raise RuntimeError(
                    f"{part} holds other images than this share's chunk {number}: the folder "
                    "was written by another listing; use a new --out"
                )
            outcomes += done
            if profile_file.is_file():
                total.merge(StageTimer.from_json(json.loads(profile_file.read_text())))
            progress(len(batch))
            continue
        before = timer.copy()
        done = []
        for item in batch:
            done.append(_process(item, outputs, body, settings, timer, vis_every, vis))
            progress(1)
        with timer.stage("write", images=len(batch)):
            save_part(part, done)
        spent = timer.minus(before)
        write_json(profile_file, spent.to_json())
        total.merge(spent)
        outcomes += done

    conversion = to_conversion(outcomes, keep, shard.name, synthetic=synthetic)
    start = time.perf_counter()
    if conversion is not None:  # None: no image written, no dataset (its report says why)
        build_dataset(rank_dir / "dataset", conversion, figures=False)
    total.add("write", time.perf_counter() - start, images=0)
    report = {
        "shard": {"index": shard.index, "count": shard.count},
        **(extra_report or {}),
        **build_report(outcomes, keep),
    }
    write_json(rank_dir / "profile.json", total.to_json())
    write_json(report_path, report)  # last: marks the share complete
    return report


def _process(
    item: InputImage,
    outputs: Callable[[InputImage], Outputs],
    body: BodyModel,
    settings: SolveSettings,
    timer: StageTimer,
    vis_every: int,
    vis: Callable[[InputImage, ImageOutcome, np.ndarray | None], None] | None,
) -> ImageOutcome:
    if item.release == NOT_IN_RELEASE:
        return ImageOutcome(
            item.path, item.key, item.source, 0, "not_in_release", "no released people"
        )
    entry, disparity, pixels = outputs(item)
    if entry.skip:
        return ImageOutcome(item.path, item.key, item.source, 0, entry.skip, entry.skip_detail)
    show = vis is not None and vis_every > 0 and item.index % vis_every == 0
    solution = solve_image(entry, disparity, body, settings, timer=timer, keep_views=show)
    outcome = ImageOutcome(
        item.path,
        item.key,
        item.source,
        len(entry),
        solution.reason,
        solution.detail,
        solution,
    )
    if show:
        with timer.stage("vis"):
            vis(item, outcome, pixels)
    return dataclasses.replace(outcome, solution=dataclasses.replace(solution, views=None))

