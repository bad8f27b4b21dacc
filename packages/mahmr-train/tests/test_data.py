"""Readers on fixtures in the exact formats, named errors, mixing and deterministic batches."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mahmr_train.config import AugmentConfig, CompatConfig, DatasetSpec
from mahmr_train.data.bodies import BodyModels
from mahmr_train.data.loader import EpochBatches, EpochPlan, MixtureDataset, collate
from mahmr_train.data.pipeline import SamplePipeline
from mahmr_train.data.readers import build_source
from mahmr_train.data.records import DataError

CANVAS = 224
SPECS = [
    ("agora", "train", True, True),
    ("bedlam", "train_6fps", True, True),
    ("coco", "train", False, True),
    ("mpii", "train", False, False),
    ("coco", "train_opt", True, True),
    ("dto_humans", "train", True, True),
    ("3dpw", "train", True, False),
    ("hi4d", "train", True, True),
    ("rh", "train", False, True),
]


@pytest.fixture(scope="module")
def bodies(smpl_dir: Path) -> BodyModels:
    return BodyModels(smpl_dir, 11)


@pytest.mark.parametrize(("name", "split", "has_3d", "detect_all"), SPECS)
def test_every_reader_gives_samples(
    data_root: Path, bodies: BodyModels, name: str, split: str, has_3d: bool, detect_all: bool
) -> None:
    source = build_source(DatasetSpec(name, split=split), data_root, bodies)
    pipeline = SamplePipeline(CANVAS, bodies, AugmentConfig(), CompatConfig())
    sample = pipeline(source[0], np.random.default_rng(0), train=True)
    assert sample is not None and sample.num_people >= 1
    assert (sample.has_3d, sample.detect_all) == (has_3d, detect_all)
    assert sample.has_camera == (name != "rh")
    assert max(sample.image.shape[1:]) == CANVAS
    assert np.isfinite(sample.joints_2d[sample.joints_2d_mask]).all()


def test_dto_humans_rows_keep_their_3d_people(data_root: Path, bodies: BodyModels) -> None:
    source = build_source(DatasetSpec("dto_humans"), data_root, bodies)
    coco = build_source(DatasetSpec("coco", split="train_opt"), data_root, bodies)
    assert len(source) == 12  # 3 images of each of the 4 sources
    by_key = {source[i].key: source[i] for i in range(len(source))}
    record = coco[1]
    np.testing.assert_allclose(by_key[record.key].transl, record.transl, rtol=1e-6)
    np.testing.assert_allclose(by_key[record.key].intrinsics, record.intrinsics, rtol=1e-6)
    # MA-HMR's flags from the dataset's columns: every released row is 3D (kept); MPII does not
    # annotate every person (all_people_annotated), the other sources do
    mpii = build_source(DatasetSpec("mpii", split="train_opt"), data_root, bodies)
    mpii_keys = {mpii[i].key for i in range(len(mpii))}
    assert all(r.has_3d for r in by_key.values())
    assert {k for k, r in by_key.items() if not r.detect_all} == mpii_keys and len(mpii_keys) == 3


def test_missing_folder_file_and_image_are_named(
    data_root: Path, tmp_path: Path, bodies: BodyModels
) -> None:
    with pytest.raises(DataError, match="bedlam dataset folder not found"):
        build_source(DatasetSpec("bedlam"), tmp_path, bodies)
    with pytest.raises(DataError, match=r"annots_smpl_valid\.npz: annotation file not found"):
        build_source(DatasetSpec("agora", split="valid"), data_root, bodies)
    with pytest.raises(DataError, match="needs a data root"):
        build_source(DatasetSpec("agora"), None, bodies)
    copy = tmp_path / "root"
    shutil.copytree(data_root / "agora", copy / "agora")
    missing = sorted((copy / "agora" / "train").iterdir())[1]
    missing.unlink()
    with pytest.raises(DataError, match=f"1 AGORA train images .*not found: {missing}"):
        build_source(DatasetSpec("agora"), copy, bodies)
    shutil.copytree(data_root / "mpii", copy / "mpii")
    (copy / "mpii" / "MPII_CHMR_SMPL.npz").unlink()
    with pytest.raises(DataError, match=r"MPII_CHMR_SMPL\.npz: annotation file not found"):
        build_source(DatasetSpec("mpii"), copy, bodies)
    with pytest.raises(DataError, match="unknown dataset 'h36m'"):
        build_source(DatasetSpec("h36m"), copy, bodies)


def test_an_image_deleted_after_loading_is_named(
    data_root: Path, tmp_path: Path, bodies: BodyModels
) -> None:
    shutil.copytree(data_root / "bedlam", tmp_path / "bedlam")
    source = build_source(DatasetSpec("bedlam", split="train_6fps"), tmp_path, bodies)
    path = tmp_path / "bedlam" / "train" / source[0].key
    path.unlink()
    pipeline = SamplePipeline(CANVAS, bodies, AugmentConfig(), CompatConfig())
    with pytest.raises(DataError, match=f"{path}: image of annotation"):
        pipeline(source[0], np.random.default_rng(0), train=True)


def test_epoch_plans_mix_and_split_over_processes() -> None:
    plan = EpochPlan([3, 5], None, None, seed=1)
    items = plan.items(0)
    assert sorted(map(tuple, items[:, :2].tolist())) == sorted(
        [(0, i) for i in range(3)] + [(1, i) for i in range(5)]
    )
    assert not np.array_equal(items, plan.items(1)) and np.array_equal(items, plan.items(0))
    # two processes of batch 2 see the single process's batch of 4, split in order
    single = list(EpochBatches(plan, 0, 4, 0, 1))
    r0, r1 = list(EpochBatches(plan, 0, 2, 0, 2)), list(EpochBatches(plan, 0, 2, 1, 2))
    assert [a + b for a, b in zip(r0, r1, strict=True)] == single
    assert list(EpochBatches(plan, 0, 2, 0, 2, start=1)) == r0[1:]
    weighted = EpochPlan([10, 1000], [3.0, 1.0], 4000, seed=0).items(0)
    share = (weighted[:, 0] == 0).mean()
    assert abs(share - 0.75) < 0.03  # weights, not sizes, set the mixture
    assert set(weighted[weighted[:, 0] == 0, 1]) == set(range(10))


def test_samples_depend_only_on_their_seed(data_root: Path, bodies: BodyModels) -> None:
    sources = [build_source(DatasetSpec("agora"), data_root, bodies)]
    dataset = MixtureDataset(
        sources, SamplePipeline(CANVAS, bodies, AugmentConfig(), CompatConfig()), True
    )
    a, b, c = dataset[(0, 1, 7)], dataset[(0, 1, 7)], dataset[(0, 1, 8)]
    assert torch.equal(a.image, b.image) and np.array_equal(a.joints_2d, b.joints_2d)
    assert not torch.equal(a.image, c.image) or not np.array_equal(a.joints_2d, c.joints_2d)
    batch = collate([a, c, dataset[(0, 2, 3)]], CANVAS)
    t = batch.targets
    assert t.mask.shape[0] == 3 and t.scale_map.shape[1:3] == tuple(
        s // 28 for s in batch.images.pixels.shape[2:]
    )
    assert int(t.mask.sum()) == a.num_people + c.num_people + dataset[(0, 2, 3)].num_people
