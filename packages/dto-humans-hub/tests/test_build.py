"""Shard writer and builds: round trip through load_dataset (configs per source, the validation
split, normal and streaming), determinism, sharding, resume after a kill, the atomic switch
(killed at every step), manifest verification."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dto_humans_hub import (
    AnnotationBatch,
    DatasetVerificationError,
    Rejection,
    StagedBuildError,
    build_dataset,
    convert_built_dataset,
    convert_camerahmr_release,
    convert_released_opt,
    merge_conversions,
    validation_mask,
    verify_dataset,
)
from dto_humans_hub import build as build_module
from dto_humans_hub import swap as swap_module
from dto_humans_hub.conventions import SOURCES
from dto_humans_hub.fixtures import (
    synthetic_image_keys,
    synthetic_opt_annots,
    synthetic_release_arrays,
    write_camerahmr_release,
    write_released_opt,
)
from dto_humans_hub.schema import features
from dto_humans_hub.swap import BuildInProgressError, DatasetFolderError, builds_dir
from dto_humans_hub.writer import input_digest, plan_shards, read_manifest, shard_count

SMALL_SHARDS = 60_000  # bytes: several shards from the small fixtures


def _load(root, tmp_path, *args, **kwargs):
    return datasets.load_dataset(str(root), *args, cache_dir=str(tmp_path / "cache"), **kwargs)


def _check_rows(rows, annots, expected_image):
    """rows (numpy-formatted) hold exactly the fixture's images."""
    by_key = {r["image_key"]: r for r in rows}
    assert sorted(by_key) == sorted(annots) and len(by_key) == len(rows)
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


def _contents(root: Path) -> dict[str, str]:
    """Every file under a folder (through a link): relative path -> sha256."""
    root = root.resolve()
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def two_sources(tmp_path, opt_file):
    """COCO from the OPT layout, MPII from the CameraHMR release layout."""
    release = write_camerahmr_release(
        tmp_path / "mpii-release.npz", synthetic_release_arrays(12, source="mpii", seed=5)
    )
    return [convert_released_opt(opt_file), convert_camerahmr_release(release)]


def test_round_trip_configs_splits_and_streaming(tmp_path, two_sources, opt_annots, expected_image):
    root = tmp_path / "ds"
    report = build_dataset(root, two_sources, max_shard_bytes=SMALL_SHARDS,
                           validation_fraction=0.25, figures=False)  # fmt: skip
    assert len(report.shards) > 2 and root.is_symlink()
    assert datasets.get_dataset_config_names(str(root)) == ["all", "coco", "mpii"]
    full = _load(root, tmp_path)
    assert set(full) == {"train", "validation"} and full["train"].features == features()
    coco = [
        r
        for split in ("train", "validation")
        for r in _load(root, tmp_path, "coco", split=split).with_format("numpy")
    ]
    _check_rows(coco, opt_annots, expected_image)  # every image once, values exact
    held_out = _load(root, tmp_path, "coco", split="validation")["image_key"]
    keys = np.array(list(opt_annots))
    expected_held_out = keys[validation_mask(np.zeros(len(keys), int), keys, 0.25)]
    assert sorted(held_out) == sorted(expected_held_out) and 0 < len(held_out) < len(keys)
    train = full["train"].with_format("numpy")
    assert len(train) + len(full["validation"]) == len(opt_annots) + 12
    mpii = train.filter(lambda s: s == SOURCES.index("mpii"), input_columns="source")
    assert mpii[0]["annotation"] == 1 and not np.isnan(mpii[0]["keypoints_2d"]).any()
    empty = next(r for r in coco if r["num_people"] == 0)
    assert empty["smpl_pose"].shape == (0, 24, 3) and empty["keypoints_2d"].shape == (0, 44, 3)

    streamed = list(_load(root, tmp_path, "coco", split="train", streaming=True)
                    .with_format("numpy"))  # fmt: skip
    normal = list(_load(root, tmp_path, "coco", split="train").with_format("numpy"))
    assert [r["image_key"] for r in streamed] == [r["image_key"] for r in normal]
    assert [r["image_key"] for r in normal] == sorted(r["image_key"] for r in normal)
    shard = root / report.shards[0].path
    assert b"huggingface" in pq.read_schema(shard).metadata  # features travel with the file


def test_torch_format_gives_tensors_per_image(tmp_path, opt_file):
    torch = pytest.importorskip("torch")
    root = tmp_path / "ds"
    build_dataset(root, convert_released_opt(opt_file), figures=False)
    ds = _load(root, tmp_path, split="train").with_format("torch")
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
        entry = manifest["families"]["annotations"]
        assert (
            sum(s["num_rows"] for s in entry["splits"]["train"]["shards"])
            + sum(
                s["num_rows"]
                for s in entry.get("splits", {}).get("validation", {"shards": []})["shards"]
            )
            == conv.batch.num_images
        )
        assert entry["inputs"][0]["name"] == opt_file.name
    assert shards[0] == shards[1]
    built = [p.name for p in builds_dir(tmp_path / "a").iterdir()]
    assert len(built) == 1 and (tmp_path / "a").resolve().name == built[0]
    assert not (tmp_path / "a" / ".dto-build").exists()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(1, 5000), min_size=1, max_size=300),
    st.integers(1000, 20000),
    st.integers(1, 20),
)
def test_shard_plan_sizes(row_bytes, max_bytes, min_shards):
    rows = np.array(row_bytes)
    bounds = plan_shards(rows, max_bytes, min_shards)
    assert bounds[0] == 0 and bounds[-1] == len(rows) and np.all(np.diff(bounds) > 0)
    sizes = np.add.reduceat(rows, bounds[:-1])
    # the fewest shards within the bound: filling each shard greedily needs as many
    fewest, acc = 1, 0
    for r in rows:
        if acc and acc + r > max_bytes:
            fewest, acc = fewest + 1, 0
        acc += r
    assert len(sizes) == max(fewest, min(min_shards, len(rows)))
    if rows.max() <= max_bytes:
        assert sizes.max() <= max_bytes
    if rows.max() <= max_bytes // 4 and len(sizes) > 1:  # rows small against shards (real case)
        assert sizes.max() - sizes.min() <= 2 * len(sizes) * rows.max()  # balanced
        if fewest >= min_shards:
            assert sizes.min() >= max_bytes / 2 - len(sizes) * rows.max()


def test_default_shards_hold_250_to_500_mb():
    rows = np.full(2_000_000, 1_000)  # 2 GB
    bounds = plan_shards(rows, min_shards=shard_count(len(rows)))
    sizes = np.diff(bounds) * 1_000
    assert len(sizes) == 16 and sizes.max() <= 500e6  # the row count asks for more shards
    bounds = plan_shards(rows)
    sizes = np.diff(bounds) * 1_000
    assert len(sizes) == 4 and sizes.min() >= 250e6 and sizes.max() <= 500e6


def test_shard_counts_let_dataloader_workers_stream_in_parallel():
    counts = {n: shard_count(n) for n in (0, 999, 1000, 1999, 2000, 3999, 4000, 9000, 16000, 10**6)}
    assert counts == {0: 1, 999: 1, 1000: 1, 1999: 1, 2000: 2, 3999: 2, 4000: 4, 9000: 8,
                      16000: 16, 10**6: 16}  # fmt: skip
    # DTO-Humans' size: 0.56M images over four sources -> at least 16 shards per large source
    assert sum(shard_count(n) for n in (250_000, 200_000, 80_000, 30_000)) >= 16


def test_validation_split_is_a_stable_function_of_the_image():
    keys = synthetic_image_keys("coco", 20_000)
    source = np.zeros(len(keys), int)
    mask = validation_mask(source, keys, 0.05)
    assert abs(mask.mean() - 0.05) < 4 * np.sqrt(0.05 * 0.95 / len(keys))
    subset = np.arange(0, len(keys), 7)  # other images added or removed: same decisions
    np.testing.assert_array_equal(validation_mask(source[subset], [keys[i] for i in subset], 0.05),
                                  mask[subset])  # fmt: skip
    assert not validation_mask(source, keys, 0.0).any()
    insta = synthetic_image_keys("insta", 5000)  # 100 frames per clip
    held = validation_mask(np.full(len(insta), SOURCES.index("insta")), insta, 0.2)
    clips = np.array([k.split("/")[1] for k in insta])
    for clip in np.unique(clips):
        assert len(set(held[clips == clip])) == 1  # a clip never straddles the splits
    assert 0 < held.mean() < 0.5
    with pytest.raises(ValueError, match="fraction"):
        validation_mask(source, keys, 1.0)


KILL_MID_SHARD = textwrap.dedent(
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
                  validation_fraction=0, figures=False)
    """
)


def test_killed_rebuild_leaves_the_old_dataset_and_resumes(tmp_path, opt_file, opt_annots):
    conv = convert_released_opt(opt_file)
    clean = build_dataset(tmp_path / "clean", conv, max_shard_bytes=SMALL_SHARDS,
                          validation_fraction=0, figures=False)  # fmt: skip
    old_annots = dict(list(opt_annots.items())[:10])
    old_file = write_released_opt(tmp_path / "old" / "COCO_CHMR_SMPL_OPT.npz", old_annots)
    root = tmp_path / "ds"
    build_dataset(root, convert_released_opt(old_file), validation_fraction=0, figures=False)
    old = _contents(root)
    # datasets writes one row group per 1000 rows: write_table call k is shard k's only call
    proc = subprocess.run(
        [sys.executable, "-c", KILL_MID_SHARD, str(opt_file), str(root), "3"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    staged = [b for b in builds_dir(root).iterdir() if b != root.resolve() and b.name != "lock"]
    assert len(staged) == 1
    written = sorted(staged[0].rglob("*.parquet"))
    assert len(written) == 2 and any(staged[0].rglob(".*.tmp"))  # the shard being written
    assert _contents(root) == old  # readers still see the whole old dataset
    assert sorted(_load(root, tmp_path, split="train")["image_key"]) == sorted(old_annots)

    mtimes = {p.name: p.stat().st_mtime_ns for p in written}
    resumed = build_dataset(root, conv, max_shard_bytes=SMALL_SHARDS, validation_fraction=0,
                            figures=False)  # fmt: skip
    assert [(s.path, s.sha256) for s in resumed.shards] == [
        (s.path, s.sha256) for s in clean.shards
    ]
    for path in (root / "data" / "annotations" / "coco").iterdir():
        if path.name in mtimes:  # finished shards were not rewritten
            assert path.stat().st_mtime_ns == mtimes[path.name]
    verify_dataset(root)
    assert [p.name for p in builds_dir(root).iterdir()] == [root.resolve().name]
    keys = _load(root, tmp_path, split="train")["image_key"]
    assert len(keys) == len(set(keys)) == clean.num_images


KILL_IN_SWITCH = textwrap.dedent(
    """
    import importlib.util, os, signal, sys
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("swap", sys.argv[1])
    swap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(swap)  # the standard library only: starts in milliseconds
    kill_at, calls = int(sys.argv[2]), 0

    def hook(function):
        def wrapped(*args, **kwargs):
            global calls
            if calls == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            calls += 1
            return function(*args, **kwargs)
        return wrapped

    for name in ("link", "symlink", "replace", "rename", "unlink", "rmdir", "fsync"):
        setattr(os, name, hook(getattr(os, name)))
    swap.switch_to(Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5:])
    print(calls)
    """
)


def test_kill_at_every_step_of_the_switch(tmp_path, monkeypatch, opt_file, opt_annots):
    """Every file-system change of the switch is a kill point: after each kill the dataset is the
    old build or the new one, byte for byte, and the next build finishes the switch cleanly."""
    new_conv = convert_released_opt(opt_file)
    old_file = write_released_opt(tmp_path / "old" / "COCO_CHMR_SMPL_OPT.npz",
                                  dict(list(opt_annots.items())[:10]))  # fmt: skip
    case = tmp_path / "case"
    root = case / "ds"
    build_dataset(root, convert_released_opt(old_file), validation_fraction=0, figures=False)
    (root / "notes.txt").write_text("the user's own file, kept across builds")
    assert len(_load(root, tmp_path, split="train")) == 10
    old = _contents(root)

    calls = []

    def stop(*args, **kwargs):
        calls.append((args, kwargs))
        raise KeyboardInterrupt

    monkeypatch.setattr(build_module, "switch_to", stop)
    with pytest.raises(KeyboardInterrupt):  # the new build is complete, not switched in
        build_dataset(root, new_conv, validation_fraction=0, figures=False)
    monkeypatch.undo()
    (_, target), kwargs = calls[0]
    carry = list(kwargs["carry"])
    assert carry == ["notes.txt"] and _contents(root) == old

    def attempt(k: int) -> tuple[Path, subprocess.CompletedProcess]:
        folder = tmp_path / f"kill{k}"
        shutil.copytree(case, folder, symlinks=True)
        proc = subprocess.run(
            [sys.executable, "-c", KILL_IN_SWITCH, swap_module.__file__, str(k),
             str(folder / "ds"), str(folder / target.relative_to(case)), *carry],
            capture_output=True, text=True,
        )  # fmt: skip
        return folder / "ds", proc

    done, proc = attempt(10**6)
    assert proc.returncode == 0, proc.stderr
    steps, new = int(proc.stdout), _contents(done)
    assert new["notes.txt"] == old["notes.txt"] and new != old
    assert len(_load(done, tmp_path, split="train")) == len(opt_annots)
    assert steps >= 10  # link, symlink, replace, fsync, and every file and folder of the old build
    for k in range(steps):
        ds, proc = attempt(k)
        assert proc.returncode == -9, (k, proc.stderr)
        assert _contents(ds) in (old, new), k
        build_dataset(ds, new_conv, validation_fraction=0, figures=False)  # the next build
        assert _contents(ds) == new, k
        assert [p.name for p in builds_dir(ds).iterdir()] == [target.name], k
        assert not (ds.parent / ".ds.link.tmp").exists()
        shutil.rmtree(ds.parent)


def test_staged_build_of_other_input_needs_restart(tmp_path, opt_file, opt_annots):
    root = tmp_path / "ds"
    staged = builds_dir(root) / "b-0123456789abcdef"
    (staged / ".dto-build").mkdir(parents=True)
    conv = convert_released_opt(opt_file)
    with pytest.raises(
        StagedBuildError, match=r"interrupted build of other input .* \(--restart\)"
    ):
        build_dataset(root, conv, figures=False)
    build_dataset(root, conv, figures=False, restart=True)
    verify_dataset(root)
    assert not staged.exists()


def test_same_input_rebuild_only_rewrites_the_card(tmp_path, opt_file):
    root = tmp_path / "ds"
    conv = convert_released_opt(opt_file)
    build_dataset(root, conv, figures=False, repo_id="acme/one")
    build = root.resolve()
    shard = next(build.rglob("*.parquet"))
    mtime = shard.stat().st_mtime_ns
    build_dataset(root, conv, figures=False, repo_id="acme/two")
    assert root.resolve() == build and shard.stat().st_mtime_ns == mtime
    assert 'load_dataset("acme/two"' in (root / "README.md").read_text()
    assert read_manifest(root)["repo_id"] == "acme/two"


def test_the_dataset_path_must_be_ours(tmp_path, opt_file):
    conv = convert_released_opt(opt_file)
    empty = tmp_path / "empty"
    empty.mkdir()
    build_dataset(empty, conv, figures=False)  # an empty folder becomes the link
    assert empty.is_symlink()
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "README.md").write_text("someone else's")
    with pytest.raises(DatasetFolderError, match=r"taken exists and is not a dataset folder"):
        build_dataset(taken, conv, figures=False)
    assert (taken / "README.md").read_text() == "someone else's"


def test_a_live_builder_holds_the_lock(tmp_path, opt_file):
    root = tmp_path / "ds"
    builds_dir(root).mkdir(parents=True)
    (builds_dir(root) / "lock").write_text(str(os.getppid()))  # a live process
    with pytest.raises(BuildInProgressError, match=str(os.getppid())):
        build_dataset(root, convert_released_opt(opt_file), figures=False)
    (builds_dir(root) / "lock").write_text("999999999")  # dead: taken over
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
    (root / "data" / "annotations" / "coco" / "train-00099-of-00099.parquet").write_bytes(b"x")
    with pytest.raises(DatasetVerificationError) as err:
        verify_dataset(root)
    message = str(err.value)
    assert f"{report.shards[0].path}: sha256 differs" in message
    assert f"{report.shards[1].path}: missing" in message
    assert "train-00099-of-00099.parquet: not listed" in message
    with pytest.raises(DatasetVerificationError, match=r"no manifest\.json .*dto-humans-hub build"):
        verify_dataset(tmp_path)


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
    ds = _load(root, tmp_path, split="train").filter(lambda n: n > 2, input_columns="num_people")
    fast = AnnotationBatch.from_arrow(ds.with_format("arrow")[:])
    for i, row in enumerate(ds.with_format("numpy")):
        sl = slice(fast.offsets[i], fast.offsets[i + 1])
        np.testing.assert_array_equal(fast.smpl_pose[sl], row["smpl_pose"])
        np.testing.assert_array_equal(fast.transl_cam[sl], row["transl_cam"])


def test_manifest_records_every_shard_by_source_and_split(tmp_path, two_sources):
    root = tmp_path / "ds"
    build_dataset(root, two_sources, validation_fraction=0.25, figures=False)
    manifest = json.loads((root / "manifest.json").read_text())
    shards = [s for sp in manifest["families"]["annotations"]["splits"].values()
              for s in sp["shards"]]  # fmt: skip
    assert {(s["source"], s["split"]) for s in shards} == {
        (src, sp) for src in ("coco", "mpii") for sp in ("train", "validation")
    }
    for s in shards:
        assert s["path"] == (f"data/annotations/{s['source']}/{s['split']}-00000-of-00001.parquet")


def test_input_digest_hashes_shapes_dtypes_and_bytes_also_of_empty_arrays():
    from dto_humans_hub.conventions import SCHEMA_VERSION

    arrays = [np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2], np.zeros((0, 11)), None]
    want = hashlib.sha256(f"{SCHEMA_VERSION}\0x".encode())
    for a in arrays[:2]:
        want.update(f"{a.shape}{a.dtype}".encode() + a.tobytes())
    want.update(b"\0none")
    assert input_digest(arrays, extra="x") == want.hexdigest()
    others = [[np.zeros((0, 3))], [np.zeros((0, 11), np.float32)], [np.zeros((1, 11))]]
    digests = {input_digest(a) for a in [[np.zeros((0, 11))], *others]}
    assert len(digests) == 4  # empty arrays of other shapes or dtypes differ


@pytest.mark.parametrize("enabled", [True, False])
def test_builds_draw_no_progress_bars_and_leave_the_setting_alone(tmp_path, capfd, enabled):
    conversion = convert_released_opt(
        write_released_opt(tmp_path / "COCO_x.npz", synthetic_opt_annots(20, seed=0))
    )
    (datasets.enable_progress_bars if enabled else datasets.disable_progress_bars)()
    try:
        capfd.readouterr()
        build_dataset(tmp_path / "ds", conversion, figures=False)
        out, err = capfd.readouterr()
        assert datasets.is_progress_bar_enabled() is enabled
    finally:
        datasets.enable_progress_bars()
    assert "parquet" not in (out + err).lower() and "%|" not in err


def test_built_datasets_convert_back_and_join_to_the_same_shards(tmp_path, two_sources):
    """Datasets built separately (e.g. by several processes), read back and joined, give the
    shards of one build of all their inputs."""
    coco, mpii = two_sources
    coco = dataclasses.replace(coco, rejected=(Rejection("COCO_x.npz", "a.jpg", "why"),))
    kwargs = {"max_shard_bytes": SMALL_SHARDS, "validation_fraction": 0.25, "figures": False}
    build_dataset(tmp_path / "a", coco, **kwargs)
    build_dataset(tmp_path / "b", mpii, **kwargs)
    build_dataset(tmp_path / "both", [coco, mpii], **kwargs)
    back = convert_built_dataset(tmp_path / "a", name="share-0")
    assert back.rejected == coco.rejected and back.synthetic
    (file,) = back.inputs
    manifest = read_manifest(tmp_path / "a")
    entry = manifest["families"]["annotations"]
    assert (file.name, file.num_images) == ("share-0", coco.batch.num_images)
    assert file.sha256 == entry["input_digest"]
    assert file.size == sum(s.stat().st_size for s in (tmp_path / "a" / "data").rglob("*.parquet"))
    joined = merge_conversions([back, convert_built_dataset(tmp_path / "b")])
    assert [f.name for f in joined.inputs] == ["share-0", "b"]
    build_dataset(tmp_path / "joined", joined, **kwargs)

    def shards(root):
        entry = read_manifest(root)["families"]["annotations"]
        return [(s["path"], s["sha256"]) for sp in entry["splits"].values() for s in sp["shards"]]

    assert shards(tmp_path / "joined") == shards(tmp_path / "both")
    assert len(shards(tmp_path / "both")) > 2
    with pytest.raises(FileNotFoundError, match="no 'annotations' config"):
        convert_built_dataset(tmp_path / "nothing")
