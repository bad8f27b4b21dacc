"""Converters: exact values from the released layouts, validation, rejection reports."""

from __future__ import annotations

import dataclasses
import pickle
import zipfile

import numpy as np
import pytest

from dto_core import CrowdResult, DTOConfig, PersonStatus, optimize_scenes
from dto_core.synthetic import sample_crowds
from dto_humans_hub import (
    AnnotationFileError,
    DTORun,
    DuplicateImageKeyError,
    body_heights,
    build_dataset,
    convert_camerahmr_release,
    convert_dto_run,
    convert_released_opt,
    merge_conversions,
)
from dto_humans_hub.conventions import ANNOTATION_SOURCES, DTO_STATUSES, SOURCES
from dto_humans_hub.fixtures import (
    synthetic_dto_output,
    synthetic_opt_annots,
    synthetic_release_arrays,
    write_camerahmr_release,
    write_dto_output,
    write_released_opt,
)


def _image(batch, i):
    sl = slice(batch.offsets[i], batch.offsets[i + 1])
    return {name: getattr(batch, name)[sl] for name in ("smpl_pose", "smpl_betas", "transl_cam")}


def test_released_opt_values_are_exact(opt_file, opt_annots, expected_image):
    conv = convert_released_opt(opt_file)
    batch = conv.batch
    assert conv.rejected == ()
    assert list(batch.image_key) == list(opt_annots)  # file order, every image
    assert np.all(batch.source == SOURCES.index("coco"))
    assert np.all(batch.annotation == ANNOTATION_SOURCES.index("dto_humans_release"))
    assert np.all(batch.dto_status == DTO_STATUSES.index("kept"))
    for i, people in enumerate(opt_annots.values()):
        want = expected_image(people)
        got = _image(batch, i)
        for name in ("smpl_pose", "smpl_betas", "transl_cam"):
            assert got[name].dtype == np.float32
            np.testing.assert_array_equal(got[name], want[name])
        if people:
            np.testing.assert_array_equal(batch.intrinsics[i], want["intrinsics"])
            assert (batch.width[i], batch.height[i]) == (want["width"], want["height"])
    assert np.sum(batch.num_people == 0) == sum(not p for p in opt_annots.values()) > 0
    assert batch.bbox_xyxy is None and batch.keypoints_2d is None  # not recorded: NaN at write
    assert np.isnan(batch.p_male).all() and np.all(batch.age_group == -1)
    assert conv.inputs[0].name == opt_file.name and len(conv.inputs[0].sha256) == 64


def test_ten_beta_layout_is_camerahmrs_pgt_padded_with_a_zero_kid_coefficient(
    tmp_path, expected_image
):
    annots = synthetic_opt_annots(5, source="mpii", seed=1, num_betas=10)
    path = write_released_opt(tmp_path / "MPII_CHMR_SMPL.npz", annots)
    batch = convert_released_opt(path).batch
    assert np.all(batch.source == SOURCES.index("mpii"))
    for i, people in enumerate(annots.values()):
        np.testing.assert_array_equal(
            _image(batch, i)["smpl_betas"], expected_image(people)["smpl_betas"]
        )
    assert np.all(batch.smpl_betas[:, 10] == 0)
    # provenance: CameraHMR's 4D-Humans pGT, not DTO's, every person a released one
    assert np.all(batch.annotation == ANNOTATION_SOURCES.index("camerahmr_release"))
    assert np.all(batch.dto_status == DTO_STATUSES.index("not_run"))
    assert np.all(batch.origin == 0)


def test_provenance_from_betas_and_name_or_explicit(tmp_path, opt_annots):
    ten = synthetic_opt_annots(4, source="coco", seed=2, num_betas=10)
    renamed = write_released_opt(tmp_path / "baseline.npz", ten)  # the name tells nothing
    batch = convert_released_opt(renamed, source="coco").batch
    assert np.all(batch.annotation == ANNOTATION_SOURCES.index("camerahmr_release"))
    dto = write_released_opt(tmp_path / "dto.npz", opt_annots)
    batch = convert_released_opt(dto, source="coco").batch
    assert np.all(batch.annotation == ANNOTATION_SOURCES.index("dto_humans_release"))
    assert np.all(batch.dto_status == DTO_STATUSES.index("kept")) and np.all(batch.origin == -1)
    liar = write_released_opt(tmp_path / "COCO_CHMR_SMPL_OPT.npz", ten)  # OPT name, 10 betas
    with pytest.raises(AnnotationFileError, match=r"name says dto_humans_release .* \(--annot"):
        convert_released_opt(liar)
    batch = convert_released_opt(liar, annotation="dto_humans_release").batch
    assert np.all(batch.annotation == ANNOTATION_SOURCES.index("dto_humans_release"))


def test_official_dto_output_values_and_statuses(tmp_path):
    entries = synthetic_dto_output(12, source="insta", seed=4, optimised_fraction=0.6)
    path = write_dto_output(tmp_path / "insta1-release_opt.npz", entries)
    conv = convert_released_opt(path)
    batch = conv.batch
    assert conv.rejected == () and conv.synthetic
    assert list(batch.image_key) == [f"insta-train/{k}" for k in entries]  # MA-HMR's key prefix
    assert np.all(batch.annotation == ANNOTATION_SOURCES.index("dto_official_run"))
    for i, entry in enumerate(entries.values()):
        sl = slice(batch.offsets[i], batch.offsets[i + 1])
        n = len(entry["trans_cam"])
        np.testing.assert_array_equal(batch.smpl_pose[sl], entry["pose_cam"].reshape(n, 24, 3))
        np.testing.assert_array_equal(batch.smpl_betas[sl], entry["shape"])
        np.testing.assert_array_equal(batch.transl_cam[sl], entry["trans_cam"])
        np.testing.assert_array_equal(batch.intrinsics[i], entry["cam_int"][0])
        np.testing.assert_array_equal(batch.origin[sl], np.where(entry["is_released"], 0, 1))
        want = "optimised" if entry["is_optimize"] else "not_optimised"
        assert batch.dto_status[i] == DTO_STATUSES.index(want)
    assert 0 < np.mean(batch.origin) < 1
    with pytest.raises(AnnotationFileError, match=r"is_optimize False.*--kept-only"):
        convert_released_opt(path, kept_only=True)
    kept = {k: v for k, v in entries.items() if v["is_optimize"]}
    path = write_dto_output(tmp_path / "coco-release_opt.npz", kept)
    batch = convert_released_opt(path, kept_only=True, source="coco").batch
    assert np.all(batch.dto_status == DTO_STATUSES.index("kept"))


def test_error_messages_name_a_few_keys_not_all(tmp_path):
    path = tmp_path / "COCO_many.npz"
    np.savez(path, **{f"image_{i:05d}.jpg": np.zeros(2) for i in range(2000)})
    with pytest.raises(AnnotationFileError) as err:
        convert_released_opt(path)
    message = str(err.value)
    assert "'image_00000.jpg'" in message and "and 1995 more" in message and len(message) < 500


def test_synthetic_files_are_marked_and_otherwise_the_exact_layout(tmp_path, opt_annots):
    marked = convert_released_opt(write_released_opt(tmp_path / "a" / "COCO.npz", opt_annots))
    plain = write_released_opt(tmp_path / "b" / "COCO.npz", opt_annots, synthetic=False)
    with np.load(plain, allow_pickle=True) as raw:  # test-made file: the layout np.load reads
        assert raw.files == ["annots"]
    unmarked = convert_released_opt(plain)
    assert marked.synthetic and marked.inputs[0].synthetic and not unmarked.synthetic
    for name in ("smpl_pose", "smpl_betas", "transl_cam", "intrinsics", "offsets"):
        np.testing.assert_array_equal(getattr(marked.batch, name), getattr(unmarked.batch, name))
    release = write_camerahmr_release(
        tmp_path / "mpii-release.npz", synthetic_release_arrays(3, source="mpii")
    )
    assert convert_camerahmr_release(release).synthetic


def test_body_heights_equal_the_body_models_tpose_height(body_model):
    betas = np.random.default_rng(0).normal(0, 1, (50, 11))
    betas[:, 10] = np.abs(betas[:, 10]) * 0.3
    np.testing.assert_allclose(
        body_heights(body_model, betas), body_model.tpose_height(betas), rtol=0, atol=2e-6
    )


def test_heights_filled_when_a_body_model_is_given(opt_file, body_model):
    batch = convert_released_opt(opt_file, body_model=body_model).batch
    np.testing.assert_allclose(
        batch.body_height, body_model.tpose_height(batch.smpl_betas.astype(np.float64)), atol=2e-6
    )


def test_bad_images_are_reported_not_dropped_silently(tmp_path, opt_annots):
    annots = {k: list(v) for k, v in list(opt_annots.items())[:6]}
    keys = list(annots)
    person = annots[keys[0]][0]
    annots[keys[0]] = [
        person,
        {**person, "smpl_param": {**person["smpl_param"], "pose": np.zeros(69)}},
    ]
    annots[keys[1]] = [{"smpl_param": person["smpl_param"]}]  # no cam_param
    bad_trans = person["smpl_param"]["trans"].copy()
    bad_trans[2] = np.nan
    annots[keys[2]] = [{**person, "smpl_param": {**person["smpl_param"], "trans": bad_trans}}]
    annots[keys[3]] = "not a list"
    path = write_released_opt(tmp_path / "COCO_CHMR_SMPL_OPT.npz", annots)
    conv = convert_released_opt(path)
    reasons = {r.image_key: r.reason for r in conv.rejected}
    assert set(reasons) == set(keys[:4])
    assert "person 1: smpl_param.pose has shape (69,), expected (72,)" in reasons[keys[0]]
    assert "person 0: missing 'cam_param'" in reasons[keys[1]]
    assert "non-finite" in reasons[keys[2]]
    assert "expected a list" in reasons[keys[3]]
    assert all(r.file == path.name and r.kind == "invalid" for r in conv.rejected)
    assert list(conv.batch.image_key) == keys[4:]


def test_truncated_and_corrupt_files_raise_naming_the_file(tmp_path, opt_file):
    data = opt_file.read_bytes()
    truncated = tmp_path / "COCO_truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(AnnotationFileError, match=r"COCO_truncated.npz: truncated or corrupt"):
        convert_released_opt(truncated)
    garbage = tmp_path / "COCO_garbage.npz"
    garbage.write_bytes(b"not a zip at all")
    with pytest.raises(AnnotationFileError, match=r"COCO_garbage.npz"):
        convert_released_opt(garbage)
    with pytest.raises(AnnotationFileError, match=r"no such file"):
        convert_released_opt(tmp_path / "COCO_missing.npz")
    other = tmp_path / "COCO_other.npz"
    np.savez(other, something=np.zeros(3))
    with pytest.raises(AnnotationFileError, match=r"neither .* \(an 'annots' entry\)"):
        convert_released_opt(other)
    with pytest.raises(AnnotationFileError, match=r"cannot tell the source"):
        convert_released_opt(opt_file.rename(tmp_path / "release.npz"))


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "COCO_evil.npz"
    with zipfile.ZipFile(path, "w") as zf, zf.open("annots.npy", "w") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "|O", "fortran_order": False, "shape": ()}
        )
        pickle.dump(np.array({"k": _Exploit()}, dtype=object), f, protocol=3)
    with pytest.raises(AnnotationFileError, match=r"refusing to unpickle builtins.print"):
        convert_released_opt(path)


def test_camerahmr_release_groups_rows_into_images(tmp_path):
    arrays = synthetic_release_arrays(20, source="insta", seed=2)
    second = synthetic_release_arrays(10, source="insta", seed=3, start=20)
    second["pose"] = second.pop("pose_cam")  # an accepted alias
    p1 = write_camerahmr_release(tmp_path / "insta1-release.npz", arrays)
    p2 = write_camerahmr_release(tmp_path / "insta2-release.npz", second)
    conv = convert_camerahmr_release([p1, p2])
    batch = conv.batch
    assert conv.rejected == () and batch.num_images == 30
    assert [f.name for f in conv.inputs] == ["insta1-release.npz", "insta2-release.npz"]
    names = np.concatenate([arrays["imgname"], second["imgname"]])
    rows = {name: np.flatnonzero(names == name) for name in dict.fromkeys(names)}
    pose = np.concatenate([arrays["pose_cam"], second["pose"]])
    kps = np.concatenate([arrays["gtkps"], second["gtkps"]])
    cam = np.concatenate([arrays["cam_int"], second["cam_int"]])
    center = np.concatenate([arrays["center"], second["center"]])
    scale = np.concatenate([arrays["scale"], second["scale"]])
    for i, (name, idx) in enumerate(rows.items()):
        parts = name.split("/")
        assert batch.image_key[i] == "insta-train/" + "/".join(parts[-3:])
        sl = slice(batch.offsets[i], batch.offsets[i + 1])
        np.testing.assert_array_equal(batch.smpl_pose[sl], pose[idx].reshape(-1, 24, 3))
        np.testing.assert_array_equal(batch.keypoints_2d[sl], kps[idx, :44])
        np.testing.assert_array_equal(batch.intrinsics[i], cam[idx[0]])
        half = 100.0 * scale[idx][:, None].astype(np.float64)
        box = np.hstack([center[idx] - half, center[idx] + half])
        np.testing.assert_allclose(batch.bbox_xyxy[sl], box, rtol=0, atol=1e-4)
    assert np.all(batch.smpl_betas[:, 10] == 0) and np.all(batch.origin == 0)
    assert np.all(batch.dto_status == DTO_STATUSES.index("not_run"))


def test_camerahmr_release_shape_errors_name_file_and_field(tmp_path):
    arrays = synthetic_release_arrays(4, source="coco", seed=1)
    arrays["trans_cam"] = arrays["trans_cam"][:, :2]
    path = write_camerahmr_release(tmp_path / "coco-release.npz", arrays)
    with pytest.raises(
        AnnotationFileError, match=r"coco-release.npz: trans_cam has shape \(\d+, 2\)"
    ):
        convert_camerahmr_release(path)
    arrays = synthetic_release_arrays(4, source="coco", seed=1)
    del arrays["cam_int"]
    path = write_camerahmr_release(tmp_path / "coco-release.npz", arrays)
    with pytest.raises(AnnotationFileError, match=r"no 'cam_int' field"):
        convert_camerahmr_release(path)


def test_duplicate_image_keys_across_files_are_an_error(tmp_path, opt_annots):
    a = write_released_opt(tmp_path / "COCO_a.npz", opt_annots)
    b = write_released_opt(tmp_path / "COCO_b.npz", dict(list(opt_annots.items())[5:7]))
    with pytest.raises(
        DuplicateImageKeyError, match=r"coco/COCO_train2014_0+5\.jpg in COCO_a.npz and COCO_b.npz"
    ):
        merge_conversions([convert_released_opt(a), convert_released_opt(b)])


def _dto_run(num_scenes: int = 40, seed: int = 0):
    crowds = sample_crowds(num_scenes, seed=seed)
    result = optimize_scenes(
        crowds.teacher_height, crowds.prior_cls, crowds.cues, crowds.offsets,
        apparent_scale=crowds.apparent_scale, config=DTOConfig.official(),
    )  # fmt: skip
    n, s = len(crowds.age), crowds.num_scenes
    rng = np.random.default_rng(seed)
    h, w = crowds.image_size
    k = np.zeros((s, 3, 3))
    k[:, 0, 0] = k[:, 1, 1] = crowds.focal
    k[:, 0, 2], k[:, 1, 2], k[:, 2, 2] = w / 2, h / 2, 1
    run = DTORun(
        source=np.full(s, SOURCES.index("aic")), image_key=[f"{i:06d}.jpg" for i in range(s)],
        image_size=np.tile([h, w], (s, 1)), intrinsics=k, offsets=crowds.offsets,
        smpl_pose=rng.normal(size=(n, 72)), smpl_betas=rng.normal(size=(n, 11)),
        transl_cam=rng.normal(size=(n, 3)), is_released=rng.random(n) < 0.7,
        age=crowds.age_estimate, p_male=crowds.p_male, result=result,
    )  # fmt: skip
    return run


def test_dto_run_fields_come_from_the_crowd_result():
    run = _dto_run()
    res = run.result
    conv = convert_dto_run(run, keep="all")
    batch = conv.batch
    kept_people = res.status != PersonStatus.REMOVED
    assert batch.num_images == len(run.image_key) and conv.rejected == ()
    assert int(batch.offsets[-1]) == int(kept_people.sum())
    np.testing.assert_array_equal(batch.body_height, res.height[kept_people].astype(np.float32))
    np.testing.assert_array_equal(
        batch.height_residual, res.residual[kept_people].astype(np.float32)
    )
    np.testing.assert_array_equal(
        batch.height_prior_mean, res.prior_mean[kept_people].astype(np.float32)
    )
    np.testing.assert_array_equal(batch.person_status, res.status[kept_people])
    np.testing.assert_array_equal(batch.depth_group, res.is_far[kept_people])
    np.testing.assert_array_equal(batch.origin, np.where(run.is_released[kept_people], 0, 1))
    np.testing.assert_array_equal(batch.dto_score, res.score.astype(np.float32))
    np.testing.assert_array_equal(batch.depth_scale, res.group_scale.astype(np.float32))
    assert np.all(batch.annotation == ANNOTATION_SOURCES.index("dto_run"))
    age = run.age[kept_people]
    want_group = np.select([age < 3, age < 8, age < 15], [0, 1, 2], 3)
    np.testing.assert_array_equal(batch.age_group, want_group)
    status = np.where(res.kept, 1, np.where(res.optimised, 2, 3))
    np.testing.assert_array_equal(batch.dto_status, status)


def test_dto_run_reports_filtered_images():
    run = _dto_run()
    conv = convert_dto_run(run)
    assert conv.batch.num_images == int(run.result.kept.sum()) < len(run.image_key)
    filtered = {r.image_key for r in conv.rejected if r.kind == "filtered"}
    assert filtered == {
        k for k, kept in zip(run.image_key, run.result.kept, strict=True) if not kept
    }
    assert all("posterior filter" in r.reason or "not optimised" in r.reason for r in conv.rejected)


def test_dto_run_duplicate_keys_are_an_error():
    run = _dto_run(5)
    object.__setattr__(run, "image_key", ["a.jpg"] * 5)
    with pytest.raises(DuplicateImageKeyError, match=r"aic/a.jpg"):
        convert_dto_run(run)


def test_a_dto_run_without_images_converts_and_merges_with_others(tmp_path):
    """A process of a sharded run may end with no image written: zero people must convert."""
    run = _dto_run(5)
    res = run.result
    empty_result = CrowdResult(**{
        f.name: np.zeros(1, np.int64) if f.name == "offsets" else getattr(res, f.name)[:0]
        for f in dataclasses.fields(CrowdResult)
    })  # fmt: skip
    empty = dataclasses.replace(
        run, source=run.source[:0], image_key=[], image_size=run.image_size[:0],
        intrinsics=run.intrinsics[:0], offsets=np.zeros(1, np.int64), smpl_pose=np.zeros((0, 72)),
        smpl_betas=np.zeros((0, 11)), transl_cam=np.zeros((0, 3)), is_released=np.zeros(0, bool),
        age=np.zeros(0), p_male=np.zeros(0), result=empty_result, name="empty",
    )  # fmt: skip
    conv = convert_dto_run(empty)
    assert conv.batch.num_images == 0 and conv.rejected == ()
    assert conv.batch.smpl_betas.shape == (0, 11) and conv.batch.smpl_pose.shape == (0, 24, 3)
    assert conv.inputs[0].num_images == 0
    alone = convert_dto_run(run, keep="all")
    merged = merge_conversions([conv, alone])
    assert [f.name for f in merged.inputs] == ["empty", "dto-run"]
    for f in dataclasses.fields(merged.batch):
        np.testing.assert_array_equal(getattr(merged.batch, f.name), getattr(alone.batch, f.name))
    report = build_dataset(tmp_path / "merged", merged, figures=False)
    assert report.num_images == 5
    with pytest.raises(ValueError, match="nothing to build, the input holds no image"):
        build_dataset(tmp_path / "nothing", conv, figures=False)
    assert not (tmp_path / "nothing").exists()
