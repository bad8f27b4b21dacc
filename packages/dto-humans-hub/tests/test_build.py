"""Shard writer: round trip through load_dataset (normal and streaming), determinism, sharding,
atomicity and resume after a kill, manifest verification."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dto_humans_hub import (
    AnnotationBatch,
    DatasetVerificationError,
    build_dataset,
    convert_camerahmr_release,
    convert_released_opt,
    verify_dataset,
)
from dto_humans_hub.fixtures import synthetic_release_arrays, write_camerahmr_release
from dto_humans_hub.schema import features
from dto_humans_hub.writer import BuildInProgressError, plan_shards, read_manifest

SMALL_SHARDS = 60_000  # bytes: several shards from the small fixtures


def _load(root, tmp_path, **kwargs):
    return datasets.load_dataset(
        str(root), split="train", cache_dir=str(tmp_path / "cache"), **kwargs
    )


def _check_rows(rows, annots, expected_image):
    """rows (numpy-formatted, in dataset order) hold exactly the fixture's images."""
    by_key = {r["image_key"]: r for r in rows}
    assert sorted(by_key) == sorted(annots)
    for key, people in annots.items():
        row, want = by_key[key], expected_image(people)
        n = len(people)
        assert row["num_people"] == n
        for name in ("smpl_pose", "smpl_betas", "transl_cam"):
            assert row[name].dtype == np.float32
            np.testing.assert_array_equal(row[name], want[name])
        assert row["keypoints_2d"].shape == (n, 44, 3) and np.isnan(row["keypoints_2d"]).all()
        assert row["bbox_xyxy"].shape == (n, 4)
        for name in ("p_male", "body_height", "height_residual"):
            assert row[name].shape == (n,) and row[name].dtype == np.float32
        assert row["age_group"].shape == (n,) and np.all(row["age_group"] == -1)
        if n:
            np.testing.assert_array_equal(row["intrinsics"], want["intrinsics"])
            assert (row["width"], row["height"]) == (want["width"], want["height"])
            fov = 2 * np.arctan(want["height"] / (2 * float(want["intrinsics"][1, 1])))
            assert row["fov_y"] == pytest.approx(fov, rel=1e-6)


def test_round_trip_normal_and_streaming(tmp_path, opt_file, opt_annots, expected_image):
    root = tmp_path / "ds"
    report = build_dataset(root, convert_released_opt(opt_file), max_shard_bytes=SMALL_SHARDS)
    assert len(report.shards) > 2
    ds = _load(root, tmp_path)
    assert ds.features == features()
    rows = list(ds.with_format("numpy"))
    _check_rows(rows, opt_annots, expected_image)
    keys = [r["image_key"] for r in rows]
    assert keys == sorted(keys)  # deterministic order: (source, image_key)
    empty = next(r for r in rows if r["num_people"] == 0)
    assert empty["smpl_pose"].shape == (0, 24, 3) and empty["smpl_betas"].shape == (0, 11)
    assert empty["keypoints_2d"].shape == (0, 44, 3) and empty["age_group"].shape == (0,)

    stream = _load(root, tmp_path, streaming=True).with_format("numpy")
    streamed = list(stream)
    _check_rows(streamed, opt_annots, expected_image)
    assert [r["image_key"] for r in streamed] == keys


def test_torch_format_gives_tensors_per_image(tmp_path, opt_file):
    torch = pytest.importorskip("torch")
    root = tmp_path / "ds"
    build_dataset(root, convert_released_opt(opt_file), figures=False)
    ds = _load(root, tmp_path).with_format("torch")
    for row in ds:
        n = int(row["num_people"])
        assert row["smpl_pose"].shape == (n, 24, 3) and row["smpl_pose"].dtype == torch.float32
        assert row["transl_cam"].shape == (n, 3)


def test_builds_are_deterministic_and_verified(tmp_path, opt_file):
    conv = convert_released_opt(opt_file)
    shards = []
    for name in ("a", "b"):
        report = build_dataset(tmp_path / name, conv, max_shard_bytes=SMALL_SHARDS, figures=False)
        shards.append([(s.path, s.sha256, s.num_rows) for s in report.shards])
        manifest = verify_dataset(tmp_path / name)
        split = manifest["configs"]["annotations"]["splits"]["train"]
        assert split["num_rows"] == conv.batch.num_images
        assert split["num_people"] == int(conv.batch.offsets[-1])
        assert manifest["configs"]["annotations"]["inputs"][0]["name"] == opt_file.name
    assert shards[0] == shards[1]
    assert not (tmp_path / "a" / ".dto-build").exists()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(1, 5000), min_size=1, max_size=300),
    st.integers(1000, 20000),
)
def test_shard_plan_sizes(row_bytes, max_bytes):
    rows = np.array(row_bytes)
    bounds = plan_shards(rows, max_bytes)
    assert bounds[0] == 0 and bounds[-1] == len(rows) and np.all(np.diff(bounds) > 0)
    sizes = np.add.reduceat(rows, bounds[:-1])
    # the fewest shards within the bound: filling each shard greedily needs as many
    fewest, acc = 1, 0
    for r in rows:
        if acc and acc + r > max_bytes:
            fewest, acc = fewest + 1, 0
        acc += r
    assert len(sizes) == fewest
    if rows.max() <= max_bytes:
        assert sizes.max() <= max_bytes
    if rows.max() <= max_bytes // 4 and len(sizes) > 1:  # rows small against shards (real case)
        assert sizes.max() - sizes.min() <= len(sizes) * rows.max()  # balanced
        assert sizes.min() >= max_bytes / 2 - len(sizes) * rows.max()


def test_default_shards_hold_250_to_500_mb():
    rows = np.full(2_000_000, 1_000)  # 2 GB
    bounds = plan_shards(rows)
    sizes = np.diff(bounds) * 1_000
    assert len(sizes) == 4 and sizes.min() >= 250e6 and sizes.max() <= 500e6


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import pyarrow.parquet as pq
    from dto_humans_hub import build_dataset, convert_released_opt

    calls = 0
    original = pq.ParquetWriter.write_table

    def write_table(self, table, *args, **kwargs):
        global calls
        calls += 1
        original(self, table, *args, **kwargs)
        if calls == int(sys.argv[3]):  # die in the middle of a shard: rows out, no footer
            os.kill(os.getpid(), signal.SIGKILL)

    pq.ParquetWriter.write_table = write_table
    build_dataset(sys.argv[2], convert_released_opt(sys.argv[1]), max_shard_bytes=60_000,
                  figures=False)
    """
)


def test_killed_build_resumes_without_duplicates_or_losses(tmp_path, opt_file):
    clean = build_dataset(tmp_path / "clean", convert_released_opt(opt_file),
                          max_shard_bytes=SMALL_SHARDS, figures=False)  # fmt: skip
    root = tmp_path / "ds"
    # datasets writes one row group per 1000 rows: write_table call k is shard k's only call
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(opt_file), str(root), "3"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    staged = sorted(p.name for p in (root / ".dto-build" / "annotations" / "train").iterdir())
    assert "state.json" in staged and sum(n.endswith(".parquet") for n in staged) == 2
    assert any(n.endswith(".tmp") for n in staged)  # the shard being written when killed
    assert not (root / "data").exists() and not (root / "README.md").exists()
    with pytest.raises(Exception, match=r"(?i)no .*data files|doesn't contain any data files"):
        _load(root, tmp_path)  # readers see nothing of a half-done build

    mtimes = {
        p.name: p.stat().st_mtime_ns
        for p in (root / ".dto-build/annotations/train").glob("*.parquet")
    }
    resumed = build_dataset(root, convert_released_opt(opt_file), max_shard_bytes=SMALL_SHARDS,
                            figures=False)  # fmt: skip
    assert [(s.path, s.sha256) for s in resumed.shards] == [
        (s.path, s.sha256) for s in clean.shards
    ]
    for name, mtime in mtimes.items():  # finished shards were not rewritten
        assert (root / "data" / "annotations" / name).stat().st_mtime_ns == mtime
    verify_dataset(root)
    assert not (root / ".dto-build").exists()
    ds = _load(root, tmp_path)
    keys = ds["image_key"]
    assert len(keys) == len(set(keys)) == clean.num_images


def test_staged_build_of_other_input_needs_restart(tmp_path, opt_file):
    root = tmp_path / "ds"
    staging = root / ".dto-build" / "annotations" / "train"
    staging.mkdir(parents=True)
    (staging / "state.json").write_text(
        json.dumps({"input_digest": "x", "bounds": [0, 1], "done": {}})
    )
    conv = convert_released_opt(opt_file)
    with pytest.raises(ValueError, match=r"interrupted build of different input"):
        build_dataset(root, conv, figures=False)
    build_dataset(root, conv, figures=False, restart=True)
    verify_dataset(root)


def test_a_live_builder_holds_the_lock(tmp_path, opt_file):
    root = tmp_path / "ds"
    (root / ".dto-build").mkdir(parents=True)
    (root / ".dto-build" / "lock").write_text(str(os.getppid()))  # a live process
    with pytest.raises(BuildInProgressError, match=str(os.getppid())):
        build_dataset(root, convert_released_opt(opt_file), figures=False)
    (root / ".dto-build" / "lock").write_text("999999999")  # dead: taken over
    build_dataset(root, convert_released_opt(opt_file), figures=False)


def test_verify_names_every_problem(tmp_path, opt_file):
    root = tmp_path / "ds"
    report = build_dataset(root, convert_released_opt(opt_file), max_shard_bytes=SMALL_SHARDS,
                           figures=False)  # fmt: skip
    first, second = (root / s.path for s in report.shards[:2])
    data = bytearray(first.read_bytes())
    data[len(data) // 2] ^= 0xFF
    first.write_bytes(bytes(data))
    second.unlink()
    (root / "data" / "annotations" / "train-00099-of-00099.parquet").write_bytes(b"x")
    with pytest.raises(DatasetVerificationError) as err:
        verify_dataset(root)
    message = str(err.value)
    assert f"{report.shards[0].path}: sha256 differs" in message
    assert f"{report.shards[1].path}: missing" in message
    assert "train-00099-of-00099.parquet: not listed" in message


def test_release_and_opt_sources_build_together(tmp_path, opt_file):
    arrays = synthetic_release_arrays(8, source="mpii", seed=5)
    release = write_camerahmr_release(tmp_path / "mpii-release.npz", arrays)
    root = tmp_path / "ds"
    build_dataset(root, [convert_released_opt(opt_file), convert_camerahmr_release(release)],
                  figures=False)  # fmt: skip
    ds = _load(root, tmp_path).with_format("numpy")
    mpii = ds.filter(lambda s: s == 1, input_columns="source")
    assert len(mpii) == 8
    row = mpii[0]
    assert row["annotation"] == 1 and not np.isnan(row["keypoints_2d"]).any()
    table = pq.read_table(
        root / read_manifest(root)["configs"]["annotations"]["splits"]["train"]["shards"][0]["path"]
    )
    assert b"huggingface" in table.schema.metadata  # features travel with the file


def test_from_arrow_inverts_to_arrow_and_reads_a_loaded_dataset(tmp_path, opt_file):
    batch = convert_released_opt(opt_file).batch
    back = AnnotationBatch.from_arrow(batch.slice(3, 40).to_arrow())
    part = batch.slice(3, 40)
    np.testing.assert_array_equal(back.offsets, part.offsets)
    assert list(back.image_key) == list(part.image_key)
    for name in ("smpl_pose", "smpl_betas", "intrinsics", "width", "dto_status", "age_group"):
        np.testing.assert_array_equal(getattr(back, name), getattr(part, name))
    assert back.keypoints_2d.shape == (int(part.offsets[-1]), 44, 3)
    root = tmp_path / "ds"
    build_dataset(root, convert_released_opt(opt_file), figures=False)
    ds = _load(root, tmp_path).filter(lambda n: n > 2, input_columns="num_people")
    fast = AnnotationBatch.from_arrow(ds.with_format("arrow")[:])
    for i, row in enumerate(ds.with_format("numpy")):
        sl = slice(fast.offsets[i], fast.offsets[i + 1])
        np.testing.assert_array_equal(fast.smpl_pose[sl], row["smpl_pose"])
        np.testing.assert_array_equal(fast.transl_cam[sl], row["transl_cam"])
