"""The teacher-output cache, the parts of a run, the report and the profile, on fabricated
records (no teachers, no rendering)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from dto_core import CueStatus, DTOConfig, optimize_scene
from dto_core.synthetic import sample_crowds
from dto_humans_hub import Rejection
from dto_pipeline.cache import PersonsEntry, TeacherCache, model_id, skip_code
from dto_pipeline.errors import CacheError
from dto_pipeline.outcome import (
    ImageOutcome,
    build_report,
    format_report,
    load_part,
    merge_reports,
    rejections,
    save_part,
    to_conversion,
)
from dto_pipeline.profile import StageTimer, format_profile
from dto_pipeline.solve import ImageSolution


def entry(n: int = 3, h: int = 24, w: int = 32, seed: int = 0) -> PersonsEntry:
    rng = np.random.default_rng(seed)
    f32 = np.float32
    return PersonsEntry(
        image_size=(h, w),
        K=np.array([[50, 0, w / 2], [0, 50, h / 2], [0, 0, 1]], f32),
        scores=rng.random(n).astype(f32),
        boxes_xyxy=rng.random((n, 4)).astype(f32),
        masks=rng.random((n, h, w)) < 0.3,
        global_orient=rng.normal(size=(n, 3)).astype(f32),
        body_pose=rng.normal(size=(n, 69)).astype(f32),
        betas=rng.normal(size=(n, 10)).astype(f32),
        transl=rng.normal(size=(n, 3)).astype(f32),
        keypoints_2d=rng.random((n, 44, 2)).astype(f32),
        is_released=np.arange(n) < 1,
        detection_index=np.arange(n),
        released_index=np.array([0] + [-1] * (n - 1)),
        age=rng.uniform(1, 60, n).astype(f32),
        p_male=rng.random(n).astype(f32),
    )


def assert_entries_equal(a: PersonsEntry, b: PersonsEntry) -> None:
    for f in dataclasses.fields(PersonsEntry):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == np.asarray(y).dtype, f.name
            np.testing.assert_array_equal(x, y, err_msg=f.name)
        else:
            assert x == y, f.name


def test_cache_round_trip_is_exact_and_keyed_by_content(tmp_path):
    cache = TeacherCache(tmp_path, {"persons": {"a": 1}, "depth": {"b": 2}})
    cache.register()
    assert json.loads((tmp_path / "persons" / cache.ids["persons"] / "model.json").read_text())
    e = entry(n=4, h=37, w=29)  # H W not a multiple of 8: bit packing must not pad
    cache.put_persons("coco/x.jpg", "sha-1", e)
    assert_entries_equal(cache.get_persons("coco/x.jpg", "sha-1"), e)
    assert_entries_equal(cache.get_persons("coco/x.jpg"), e)  # solve: any content
    assert cache.get_persons("coco/x.jpg", "sha-2") is None  # the file changed
    assert cache.get_persons("coco/y.jpg", "sha-1") is None
    disparity = np.random.default_rng(1).random((37, 29)).astype(np.float32)
    cache.put_depth("coco/x.jpg", "sha-1", disparity)
    np.testing.assert_array_equal(cache.get_depth("coco/x.jpg", "sha-1"), disparity)
    # another model id is another folder
    other = TeacherCache(tmp_path, {"persons": {"a": 2}, "depth": {"b": 2}})
    assert other.get_persons("coco/x.jpg") is None and other.get_depth("coco/x.jpg") is not None
    assert model_id({"a": 1, "b": [1, 2]}) == model_id({"b": [1, 2], "a": 1})

    skipped = PersonsEntry.skipped("truncated", "x.jpg: image file is truncated", (0, 0))
    cache.put_persons("bad.jpg", "sha-3", skipped)
    back = cache.get_persons("bad.jpg", "sha-3")
    assert (back.skip, back.skip_detail, len(back)) == ("truncated", skipped.skip_detail, 0)

    path = cache.path("persons", "coco/x.jpg")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CacheError, match=r"damaged cache entry of coco/x\.jpg"):
        cache.get_persons("coco/x.jpg")
    assert not list(tmp_path.rglob("*.tmp"))


def test_skip_codes_of_the_teacher_stage():
    assert skip_code("no person detected") == "no_person"
    assert skip_code("no detection with >= 5 visible keypoints") == "too_few_keypoints"
    assert skip_code("no detection matched") == "unmatched"
    with pytest.raises(ValueError, match="unknown teacher-stage skip reason"):
        skip_code("cosmic rays")


def solution(seed: int, n: int, config: DTOConfig, removed: tuple[int, ...] = ()) -> ImageSolution:
    """An ImageSolution of a synthetic scene solved at cue level."""
    crowds = sample_crowds(1, seed=seed, persons=(n, n))
    cues = crowds.cues
    status = cues.status.copy()
    status[list(removed)] = CueStatus.TOO_SMALL
    cues = dataclasses.replace(cues, status=status)
    result = optimize_scene(
        crowds.teacher_height, crowds.prior_cls, cues,
        apparent_scale=crowds.apparent_scale, config=config,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    betas = np.pad(rng.normal(size=(n, 10)), ((0, 0), (0, 1)))
    transl = np.stack([rng.normal(size=n), rng.normal(size=n), crowds.teacher_depth], 1)
    moved = result.updated
    return ImageSolution(
        image_size=crowds.image_size,
        K=np.diag([500.0, 500.0, 1.0]),
        smpl_pose=rng.normal(size=(n, 72)),
        betas_in=betas,
        transl_in=transl,
        betas=betas + moved[:, None] * 0.1,
        transl=transl * np.where(moved, result.scale_factor, 1.0)[:, None],
        is_released=rng.random(n) < 0.5,
        age=crowds.age_estimate,
        p_male=crowds.p_male,
        boxes_xyxy=rng.random((n, 4)) * 100,
        keypoints_2d=rng.random((n, 44, 2)) * 100,
        detection_index=np.arange(n),
        cue_status=status.astype(np.int64),
        result=result,
        reason="" if result.kept[0] else "posterior_residual",
        detail="",
        invalid=np.array([n], np.int64),  # one more teacher person had no usable translation
    )


def outcomes(config: DTOConfig) -> list[ImageOutcome]:
    out = [
        ImageOutcome("a/1.jpg", "1.jpg", 0, 0, "truncated", "a/1.jpg: truncated"),
        ImageOutcome("a/2.jpg", "2.jpg", 0, 0, "no_person", "no person detected"),
    ]
    for i, (seed, n, removed) in enumerate([(0, 5, (1,)), (1, 3, ()), (2, 6, (0, 2)), (3, 1, ())]):
        s = solution(seed, n, config, removed)
        out.append(ImageOutcome(f"b/{i}.jpg", f"b{i}.jpg", 0, n + 1, s.reason, s.detail, s))
    return out


def test_part_round_trip_and_conversion(tmp_path):
    config = DTOConfig.official()
    items = outcomes(config)
    save_part(tmp_path / "part.npz", items)
    back = load_part(tmp_path / "part.npz")
    assert [(o.path, o.key, o.reason, o.teacher_persons) for o in back] == [
        (o.path, o.key, o.reason, o.teacher_persons) for o in items
    ]
    for a, b in zip(items, back, strict=True):
        assert (a.solution is None) == (b.solution is None)
        if a.solution is None:
            continue
        for f in dataclasses.fields(ImageSolution):
            x, y = getattr(a.solution, f.name), getattr(b.solution, f.name)
            if f.name == "result":
                for g in dataclasses.fields(x):
                    np.testing.assert_array_equal(getattr(x, g.name), getattr(y, g.name))
            elif f.name != "views":
                np.testing.assert_array_equal(x, y, err_msg=f.name)

    for keep in ("kept", "all"):
        conversion = to_conversion(back, keep, "rank-00000-of-00001")
        written = [o for o in items if o.solution is not None and (keep == "all" or not o.reason)]
        assert list(conversion.batch.image_key) == [o.key for o in written]
        people = [int(np.sum(o.solution.cue_status == CueStatus.OK)) for o in written]
        np.testing.assert_array_equal(conversion.batch.num_people, people)
        assert len(conversion.rejected) == len(items) - len(written)
        assert {r.image_key: r.reason.split(":")[0] for r in conversion.rejected}[
            "1.jpg"
        ] == "truncated"
        report = build_report(back, keep)
        assert report["images"]["listed"] == 6 and report["images"]["written"] == len(written)
        assert report["images"]["dropped"]["truncated"] == 1
        assert report["persons"]["written"] == sum(people)
        # every teacher person is written or dropped with a reason
        dropped = sum(report["persons"]["dropped"].values())
        assert report["persons"]["written"] + dropped == report["persons"]["from_teachers"]
        assert report["persons"]["dropped"]["invalid_teacher_output"] == len(written)
        assert len(report["dropped_images"]) == sum(report["images"]["dropped"].values())
        table = format_report(report)
        assert "dropped: truncated" in table and "written" in table


def test_images_without_a_usable_person_are_never_rows(tmp_path):
    """keep="all" writes every solved image, except those whose teacher people were all unusable
    (and those whose update failed); their drops reach a dataset manifest with key and kind."""
    config = DTOConfig.official()
    good = solution(1, 3, config)
    unusable = dataclasses.replace(solution(2, 3, config), reason="invalid_teacher_output",
                                   detail="no person with a finite translation")  # fmt: skip
    items = [
        ImageOutcome("c/0.jpg", "c0.jpg", 4, 3, good.reason, "", good),
        ImageOutcome("c/1.jpg", "c1.jpg", 4, 3, unusable.reason, unusable.detail, unusable),
    ]
    conversion = to_conversion(items, "all", "share", synthetic=True)
    assert list(conversion.batch.image_key) == ["c0.jpg"] and conversion.synthetic
    report = build_report(items, "all")
    assert report["images"]["dropped"] == {"invalid_teacher_output": 1}
    assert report["dropped_images"] == [{
        "path": "c/1.jpg", "key": "c1.jpg", "reason": "invalid_teacher_output",
        "detail": "no person with a finite translation", "kind": "filtered",
    }]  # fmt: skip
    assert rejections(report, "share") == conversion.rejected == (
        Rejection("share", "c1.jpg", "invalid_teacher_output: no person with a finite "
                  "translation", "filtered"),
    )  # fmt: skip
    nothing = [ImageOutcome("d/0.jpg", "d0.jpg", 4, 0, "no_person", "nobody")]
    assert to_conversion(nothing, "all", "share") is None  # no row: no dataset


def test_merged_reports_add_up():
    config = DTOConfig.paper()
    items = outcomes(config)
    a, b = build_report(items[:3], "kept"), build_report(items[3:], "kept")
    merged, whole = merge_reports([a, b]), build_report(items, "kept")
    for level in ("images", "persons"):
        assert merged[level] == whole[level]
    key = lambda e: (e["path"], e.get("person", -1))  # noqa: E731
    assert merged["dropped_persons"] == sorted(whole["dropped_persons"], key=key)


def test_stage_timer_means_shares_and_table():
    timer = StageTimer()
    timer.add("detection", 0.3, 3)  # 100 ms per image
    timer.add("solve", 0.2, 4)  # 50 ms per image
    snapshot = timer.copy()
    timer.add("solve", 0.1, 1)
    spent = timer.minus(snapshot)
    assert spent.seconds == {"solve": pytest.approx(0.1)} and spent.images == {"solve": 1}
    profile = timer.to_json()
    stages = profile["stages"]
    assert stages["detection"]["mean_ms_per_image"] == pytest.approx(100.0)
    assert stages["solve"]["mean_ms_per_image"] == pytest.approx(60.0)
    assert stages["detection"]["share"] == pytest.approx(100 / 160)
    assert profile["total_ms_per_image"] == pytest.approx(160.0)
    assert StageTimer.from_json(profile).to_json() == profile
    table = format_profile(profile)
    assert "teachers (GPU)" in table and "DTO (CPU)" in table and "total" in table
    assert "62.5%" in table
    with pytest.raises(ValueError, match="unknown stage"):
        timer.add("lunch", 1.0)
