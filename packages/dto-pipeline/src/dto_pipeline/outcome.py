"""What happened to each image: its DTO solution or why it was dropped, stored in chunks ("parts"),
turned into DTO-Humans rows (`dto_humans_hub.convert_dto_run`) and into the run report.

Every image and every person that does not reach the dataset has a reason code:

images (`IMAGE_REASONS`): unreadable / truncated files; the teacher stage's no_person,
too_few_keypoints, unmatched; invalid_teacher_output (no person with a finite translation in
front of the camera); DTO's single_person, too_few_after_cues, not_optimised,
posterior_residual; update_failed. With `--pgt`, not_in_release (an image without released
people).

persons (`PERSON_REASONS`): invalid_teacher_output, and the cue rules of spec A.7 (dto-core's
`CueStatus`): too_small, too_few_visible_vertices, too_few_after_iqr, degenerate_fit. People of
dropped images count under their image's reason.
"""

from __future__ import annotations

import dataclasses
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dto_core import CrowdResult, CueStatus
from dto_core.atomic import write_atomic
from dto_humans_hub import Conversion, DTORun, Rejection, convert_dto_run

from .solve import ImageSolution, concat_results

__all__ = [
    "IMAGE_REASONS",
    "PERSON_REASONS",
    "ImageOutcome",
    "build_report",
    "format_report",
    "load_part",
    "merge_reports",
    "rejections",
    "save_part",
    "to_conversion",
]

IMAGE_REASONS = {
    "unreadable": "the file is not a readable image",
    "truncated": "the file ends before its pixel data",
    "not_in_release": "no released people for this image (--pgt)",
    "no_person": "the detector found nobody",
    "too_few_keypoints": "no detection with enough visible keypoints",
    "unmatched": "no detection matched a released or CameraHMR person",
    "invalid_teacher_output": "no person with a finite translation in front of the camera",
    "single_person": "one person: DTO needs two",
    "too_few_after_cues": "fewer than two people left after the cue checks (A.7)",
    "not_optimised": "no group optimised >= 2 people (height outliers, degenerate depth)",
    "posterior_residual": "mean standardized height residual above the filter threshold",
    "update_failed": "the shape update could not reach a corrected height",
}
"""Reason codes of dropped images, with their meaning."""

PERSON_REASONS = {
    "invalid_teacher_output": "non-finite parameters or a translation behind the camera",
    **{
        s.name.lower(): f"cue rule of spec A.7: {s.name.lower().replace('_', ' ')}"
        for s in CueStatus
        if s != CueStatus.OK
    },
}
"""Reason codes of people dropped from images that are written."""

NEVER_WRITTEN = frozenset({"update_failed", "invalid_teacher_output"})
"""Solved images never written, even with keep="all": their bodies were not updated, or no
person was usable (the row would claim an image without people)."""


@dataclass(frozen=True)
class ImageOutcome:
    """One image of the run: `path` in the images folder, `key` and `source` (a
    `dto_humans_hub` SOURCES index) in the dataset, the number of people the teachers returned,
    and either a `solution` or the `reason` (code) and `detail` it was dropped before DTO.
    `reason` of a solved image is its `ImageSolution.reason` ("" = kept)."""

    path: str
    key: str
    source: int
    teacher_persons: int
    reason: str
    detail: str
    solution: ImageSolution | None = None


_PERSON_FIELDS = (
    "smpl_pose",
    "betas_in",
    "transl_in",
    "betas",
    "transl",
    "is_released",
    "age",
    "p_male",
    "boxes_xyxy",
    "keypoints_2d",
    "detection_index",
    "cue_status",
)
_SCENE_FIELDS = ("score", "optimised", "kept", "group_scale", "group_shift", "group_outcome")
_RESULT_PERSON_FIELDS = tuple(
    f.name for f in dataclasses.fields(CrowdResult) if f.name not in (*_SCENE_FIELDS, "offsets")
)


def _strings(values: list[str]) -> np.ndarray:
    return np.array(values, dtype=str)


def save_part(path: str | Path, outcomes: list[ImageOutcome]) -> None:
    """Write a chunk of outcomes as one npz, atomically (no pickles)."""
    solved = [o.solution for o in outcomes if o.solution is not None]
    arrays: dict[str, np.ndarray] = {
        "path": _strings([o.path for o in outcomes]),
        "key": _strings([o.key for o in outcomes]),
        "source": np.array([o.source for o in outcomes], np.int64),
        "teacher_persons": np.array([o.teacher_persons for o in outcomes], np.int64),
        "reason": _strings([o.reason for o in outcomes]),
        "detail": _strings([o.detail for o in outcomes]),
        "solved": np.array([o.solution is not None for o in outcomes], bool),
        "image_size": np.array([s.image_size for s in solved], np.int64).reshape(-1, 2),
        "K": np.array([s.K for s in solved], np.float64).reshape(-1, 3, 3),
        "invalid_offsets": np.cumsum([0] + [len(s.invalid) for s in solved]).astype(np.int64),
        "invalid": np.concatenate([s.invalid for s in solved] or [np.zeros(0)]).astype(np.int64),
    }
    if solved:
        for name in _PERSON_FIELDS:
            arrays[name] = np.concatenate([getattr(s, name) for s in solved])
        result = concat_results([s.result for s in solved])
        for f in dataclasses.fields(CrowdResult):
            arrays[f"result.{f.name}"] = getattr(result, f.name)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_atomic(path, lambda f: f.write(buffer.getbuffer()), fsync=True)


def load_part(path: str | Path) -> list[ImageOutcome]:
    """The outcomes of a part written by `save_part`."""
    with np.load(path, allow_pickle=False) as data:
        a = {k: data[k] for k in data.files}
    offsets = a.get("result.offsets", np.zeros(1, np.int64))
    solutions = []
    for i in range(int(a["solved"].sum())):
        p = slice(int(offsets[i]), int(offsets[i + 1]))
        result = CrowdResult(
            offsets=np.array([0, p.stop - p.start], np.int64),
            **{f: a[f"result.{f}"][p] for f in _RESULT_PERSON_FIELDS},
            **{f: a[f"result.{f}"][i : i + 1] for f in _SCENE_FIELDS},
        )
        q = slice(int(a["invalid_offsets"][i]), int(a["invalid_offsets"][i + 1]))
        solutions.append(
            ImageSolution(
                image_size=tuple(int(v) for v in a["image_size"][i]),
                K=a["K"][i],
                result=result,
                reason="",  # set below from the image arrays
                detail="",
                invalid=a["invalid"][q],
                **{name: a[name][p] for name in _PERSON_FIELDS},
            )
        )
    outcomes, solved = [], iter(solutions)
    for i in range(len(a["path"])):
        reason, detail = str(a["reason"][i]), str(a["detail"][i])
        solution = None
        if a["solved"][i]:
            solution = dataclasses.replace(next(solved), reason=reason, detail=detail)
        outcomes.append(
            ImageOutcome(
                path=str(a["path"][i]),
                key=str(a["key"][i]),
                source=int(a["source"][i]),
                teacher_persons=int(a["teacher_persons"][i]),
                reason=reason,
                detail=detail,
                solution=solution,
            )
        )
    return outcomes


def is_written(outcome: ImageOutcome, keep: Literal["kept", "all"]) -> bool:
    """Whether an image becomes a row: kept by the posterior filter, or with keep="all" any
    solved image (except `NEVER_WRITTEN`). Images dropped before DTO never are (official)."""
    if outcome.solution is None:
        return False
    return outcome.reason == "" or (keep == "all" and outcome.reason not in NEVER_WRITTEN)


def _dropped_image(outcome: ImageOutcome) -> dict[str, str]:
    """The report entry of an image that is not written; `kind` as dto-humans-hub's `Rejection`:
    "invalid" (dropped before DTO) or "filtered" (by DTO)."""
    return {
        "path": outcome.path,
        "key": outcome.key,
        "reason": outcome.reason,
        "detail": outcome.detail,
        "kind": "invalid" if outcome.solution is None else "filtered",
    }


def rejections(report: dict[str, Any], name: str) -> tuple[Rejection, ...]:
    """The dropped images of a report as dto-humans-hub `Rejection`s of the input `name`
    (reason `code: detail`), for a dataset's manifest."""
    return tuple(
        Rejection(name, e["key"], f"{e['reason']}: {e['detail']}", e["kind"])
        for e in report["dropped_images"]
    )


def to_conversion(
    outcomes: list[ImageOutcome],
    keep: Literal["kept", "all"],
    name: str,
    *,
    synthetic: bool = False,
) -> Conversion | None:
    """The DTO-Humans rows of the written images (input `name`; `synthetic`: simulated teachers
    or random weights, so the dataset is marked synthetic), every other image as a `Rejection`
    with its reason code; None when no image is written (a dataset needs rows)."""
    written = [o for o in outcomes if is_written(o, keep)]
    if not written:
        return None
    solutions = [o.solution for o in written]
    n = sum(len(s) for s in solutions)

    def stack(field: str, shape: tuple[int, ...]) -> np.ndarray:
        return np.concatenate(
            [np.asarray(getattr(s, field), np.float64) for s in solutions]
        ).reshape(n, *shape)

    keypoints = stack("keypoints_2d", (44, 2))
    run = DTORun(
        source=np.array([o.source for o in written], np.int64),
        image_key=[o.key for o in written],
        image_size=np.array([s.image_size for s in solutions], np.int64).reshape(-1, 2),
        intrinsics=np.array([s.K for s in solutions], np.float64).reshape(-1, 3, 3),
        offsets=np.cumsum([0] + [len(s) for s in solutions]).astype(np.int64),
        smpl_pose=stack("smpl_pose", (72,)),
        smpl_betas=stack("betas", np.shape(solutions[0].betas)[1:]),
        transl_cam=stack("transl", (3,)),
        is_released=np.concatenate([s.is_released for s in solutions]),
        age=stack("age", ()),
        p_male=stack("p_male", ()),
        result=concat_results([s.result for s in solutions]),
        bbox_xyxy=stack("boxes_xyxy", (4,)),
        keypoints_2d=np.concatenate([keypoints, np.full((n, 44, 1), np.nan)], axis=2),
        name=name,
        synthetic=synthetic,
    )
    conversion = convert_dto_run(run, keep="all")
    return dataclasses.replace(conversion, rejected=rejections(build_report(outcomes, keep), name))


def build_report(outcomes: list[ImageOutcome], keep: Literal["kept", "all"]) -> dict[str, Any]:
    """Counts per reason code and the list of every dropped image and person."""
    images: Counter[str] = Counter()
    persons: Counter[str] = Counter()
    dropped_images, dropped_persons = [], []
    written_images = written_persons = teacher_persons = 0
    for o in outcomes:
        teacher_persons += o.teacher_persons
        if not is_written(o, keep):
            images[o.reason] += 1
            persons[o.reason] += o.teacher_persons
            dropped_images.append(_dropped_image(o))
            continue
        s = o.solution
        written_images += 1
        for index in s.invalid:
            persons["invalid_teacher_output"] += 1
            dropped_persons.append(
                {"path": o.path, "person": int(index), "reason": "invalid_teacher_output"}
            )
        record_rows = np.setdiff1d(np.arange(o.teacher_persons), s.invalid)
        for row, status in zip(record_rows, s.cue_status, strict=True):
            if status != CueStatus.OK:
                code = CueStatus(int(status)).name.lower()
                persons[code] += 1
                dropped_persons.append({"path": o.path, "person": int(row), "reason": code})
            else:
                written_persons += 1
    return {
        "keep": keep,
        "images": {
            "listed": len(outcomes),
            "written": written_images,
            "dropped": dict(sorted(images.items())),
        },
        "persons": {
            "from_teachers": teacher_persons,
            "written": written_persons,
            "dropped": dict(sorted(persons.items())),
        },
        "dropped_images": dropped_images,
        "dropped_persons": dropped_persons,
    }


def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report of several processes' reports (counts added, lists joined)."""
    if not reports:
        raise ValueError("no reports to merge")
    merged: dict[str, Any] = {"keep": reports[0]["keep"]}
    for level, count in (("images", "listed"), ("persons", "from_teachers")):
        dropped: Counter[str] = Counter()
        for r in reports:
            dropped.update(r[level]["dropped"])
        merged[level] = {
            count: sum(r[level][count] for r in reports),
            "written": sum(r[level]["written"] for r in reports),
            "dropped": dict(sorted(dropped.items())),
        }
    for name in ("dropped_images", "dropped_persons"):
        merged[name] = sorted(
            (e for r in reports for e in r[name]), key=lambda e: (e["path"], e.get("person", -1))
        )
    return merged


def format_report(report: dict[str, Any]) -> str:
    """The end-of-run summary table: images and people written and dropped, per reason code."""
    im, pe = report["images"], report["persons"]
    lines = [
        f"{'':36s} {'images':>9s} {'people':>9s}",
        f"{'input':36s} {im['listed']:9d} {pe['from_teachers']:9d}",
        f"{'written':36s} {im['written']:9d} {pe['written']:9d}",
    ]
    codes = list(IMAGE_REASONS) + [c for c in PERSON_REASONS if c not in IMAGE_REASONS]
    for code in codes:
        a, b = im["dropped"].get(code, 0), pe["dropped"].get(code, 0)
        if a or b:
            lines.append(f"  {'dropped: ' + code:34s} {a:9d} {b:9d}")
    lines.append(
        "people of dropped images count under the image's reason; people of written images "
        "under their own."
    )
    return "\n".join(lines)
