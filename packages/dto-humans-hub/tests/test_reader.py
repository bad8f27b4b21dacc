"""The fast per-image path: ImageRows / split_batch / iter_images against datasets' own numpy
formatting (the oracle), and collate_people against hand-made batches."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dto_humans_hub import build_dataset, convert_released_opt
from dto_humans_hub.batch import AnnotationBatch
from dto_humans_hub.fixtures import write_released_opt
from dto_humans_hub.reader import (
    TRAIN_COLUMNS,
    ImageRows,
    collate_people,
    iter_images,
    split_batch,
)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, opt_annots):
    tmp = tmp_path_factory.mktemp("reader")
    npz = write_released_opt(tmp / "COCO_CHMR_SMPL_OPT.npz", opt_annots)
    build_dataset(tmp / "ds", convert_released_opt(npz), max_shard_bytes=60_000, figures=False)
    ds = datasets.load_dataset(str(tmp / "ds"), split="train", cache_dir=str(tmp / "cache"))
    stream = datasets.load_dataset(str(tmp / "ds"), split="train", streaming=True)
    return ds, stream


def _assert_same(got: dict, want: dict, columns) -> None:
    assert set(got) == set(columns)
    for name in columns:
        if name == "image_key":
            assert got[name] == want[name] and isinstance(got[name], str)
            continue
        expected = np.asarray(want[name])
        assert np.asarray(got[name]).dtype == expected.dtype, name
        np.testing.assert_array_equal(got[name], expected, err_msg=name)


def test_image_rows_equal_datasets_numpy_rows(loaded):
    ds, _ = loaded
    oracle = list(ds.with_format("numpy"))
    for columns in (TRAIN_COLUMNS, None):
        rows = ImageRows.from_dataset(ds, columns)
        assert len(rows) == len(ds)
        names = list(ds.column_names) if columns is None else columns
        for got, want in zip(rows, oracle, strict=True):
            _assert_same(got, want, names)
    empty = next(r for r in ImageRows.from_dataset(ds) if r["num_people"] == 0)
    assert empty["smpl_pose"].shape == (0, 24, 3) and empty["smpl_betas"].shape == (0, 11)
    with pytest.raises(IndexError):
        rows[len(rows)]
    assert rows[-1]["image_key"] == oracle[-1]["image_key"]


def test_image_rows_follow_a_shuffled_or_filtered_dataset(loaded):
    ds, _ = loaded
    view = ds.shuffle(seed=3).filter(lambda n: n > 1, input_columns="num_people")
    rows = ImageRows.from_dataset(view, ["image_key", "transl_cam", "num_people"])
    oracle = list(view.with_format("numpy"))
    assert len(rows) == len(oracle) > 0
    for got, want in zip(rows, oracle, strict=True):
        _assert_same(got, want, ["image_key", "transl_cam", "num_people"])


def test_iter_images_on_a_dataset_and_a_stream(loaded):
    ds, stream = loaded
    oracle = list(ds.with_format("numpy"))
    for source in (ds, stream):
        got = list(iter_images(source, batch_size=7))  # 7 does not divide the 60 rows
        assert len(got) == len(oracle)
        for image, want in zip(got, oracle, strict=True):
            _assert_same(image, want, TRAIN_COLUMNS)
    with pytest.raises(ValueError, match="batch_size"):
        next(iter_images(ds, batch_size=0))


def test_split_batch_takes_arrow_and_formatted_batches(loaded):
    ds, _ = loaded
    columns = ["image_key", "smpl_pose", "intrinsics"]
    arrow = next(ds.select_columns(columns).with_format("arrow").iter(batch_size=9))
    formatted = next(ds.select_columns(columns).with_format("numpy").iter(batch_size=9))
    fast, slow = split_batch(arrow), split_batch(formatted)
    assert len(fast) == len(slow) == 9
    for a, b in zip(fast, slow, strict=True):
        _assert_same(a, b, columns)
    with pytest.raises(KeyError, match="not in the table"):
        split_batch(arrow, ["smpl_betas"])


def test_collate_pads_people_and_marks_them():
    def image(key, n, start):
        pose = np.arange(start, start + n * 72, dtype=np.float32).reshape(n, 24, 3)
        return {
            "image_key": key,
            "source": np.int64(1),
            "intrinsics": np.eye(3, dtype=np.float32) * (start + 1),
            "smpl_pose": pose,
            "age_group": np.arange(n, dtype=np.int64),
            "origin": np.zeros(n, dtype=np.int64),
        }

    images = [image("a.jpg", 2, 0), image("b.jpg", 0, 1000), image("c.jpg", 1, 2000)]
    batch = collate_people(images)
    assert batch["image_key"] == ["a.jpg", "b.jpg", "c.jpg"]
    np.testing.assert_array_equal(batch["num_people"], [2, 0, 1])
    np.testing.assert_array_equal(
        batch["person_mask"], [[True, True], [False, False], [True, False]]
    )
    assert batch["smpl_pose"].shape == (3, 2, 24, 3) and batch["smpl_pose"].dtype == np.float32
    np.testing.assert_array_equal(batch["smpl_pose"][0], images[0]["smpl_pose"])
    np.testing.assert_array_equal(batch["smpl_pose"][2, 0], images[2]["smpl_pose"][0])
    assert not batch["smpl_pose"][1].any() and not batch["smpl_pose"][2, 1].any()  # pad: 0
    np.testing.assert_array_equal(batch["age_group"], [[0, 1], [-1, -1], [0, -1]])  # pad: -1
    np.testing.assert_array_equal(batch["intrinsics"][:, 0, 0], [1, 1001, 2001])
    np.testing.assert_array_equal(batch["source"], [1, 1, 1])

    fixed = collate_people(images, max_people=4)
    assert fixed["smpl_pose"].shape == (3, 4, 24, 3) and fixed["person_mask"].sum() == 3
    with pytest.raises(ValueError, match=r"image a\.jpg has 2 people, more than max_people=1"):
        collate_people(images, max_people=1)
    with pytest.raises(ValueError, match="no images"):
        collate_people([])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=12), st.integers(1, 5))
def test_rows_and_collate_invert_each_other(counts, step):
    """Oracle: the flat arrays of an AnnotationBatch sliced by its offsets; collating then
    unpadding with the mask gives every image back."""
    rng = np.random.default_rng(len(counts))
    m, p = len(counts), sum(counts)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    flat = AnnotationBatch.create(
        image_key=[f"{i:03d}.jpg" for i in range(m)], offsets=offsets,
        source=rng.integers(0, 4, m), annotation=0, intrinsics=rng.normal(size=(m, 3, 3)),
        smpl_pose=rng.normal(size=(p, 24, 3)), smpl_betas=rng.normal(size=(p, 11)),
        transl_cam=rng.normal(size=(p, 3)),
    )  # fmt: skip
    table = flat.to_arrow()
    rows = [im for start in range(0, m, step) for im in split_batch(table.slice(start, step))]
    assert len(rows) == m
    for i, image in enumerate(rows):
        sl = slice(offsets[i], offsets[i + 1])
        np.testing.assert_array_equal(image["smpl_pose"], flat.smpl_pose[sl])
        np.testing.assert_array_equal(image["transl_cam"], flat.transl_cam[sl])
        assert image["image_key"] == flat.image_key[i] and image["source"] == flat.source[i]
    batch = collate_people(rows)
    for i, image in enumerate(rows):
        mask = batch["person_mask"][i]
        np.testing.assert_array_equal(batch["smpl_betas"][i][mask], image["smpl_betas"])
        assert mask.sum() == counts[i]
