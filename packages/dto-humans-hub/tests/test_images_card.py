"""Images config, attach_images, the dataset card and the statistics."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import datasets
import numpy as np
import pytest
from huggingface_hub import DatasetCard
from PIL import Image

from dto_humans_hub import (
    MissingImagesError,
    build_dataset,
    build_images_config,
    compute_statistics,
    convert_released_opt,
    features,
    verify_dataset,
)
from dto_humans_hub.conventions import REPO_ID
from dto_humans_hub.fixtures import write_released_opt
from dto_humans_hub.hub import PublishError, plan_dataset_upload
from dto_humans_hub.images import attach_images, find_missing_images
from dto_humans_hub.schema import FIELDS, field_table_markdown
from dto_humans_hub.stats import population_height_density


def _write_images(batch, root, skip=()):
    """A JPEG of the annotated size for each image, at root/<source>/<key>."""
    for i, key in enumerate(batch.image_key):
        if key in skip:
            continue
        path = root / "coco" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        colour = (i * 37 % 256, 80, 160)
        size = (int(batch.width[i]), int(batch.height[i])) if batch.width[i] > 0 else (64, 48)
        Image.new("RGB", size, colour).save(path, "JPEG")


@pytest.fixture
def built(tmp_path, opt_file, body_model):
    conv = convert_released_opt(opt_file, body_model=body_model)
    root = tmp_path / "ds"
    build_dataset(root, conv, repo_id="acme/dto-humans", validation_fraction=0.2)
    return root, conv.batch


def test_images_config_embeds_the_original_bytes(tmp_path, built):
    root, batch = built
    images = tmp_path / "images"
    _write_images(batch, images)
    report = build_images_config(root, images, max_shard_bytes=200_000)
    assert report.num_images == batch.num_images and len(report.shards) > 2
    assert {(s.source, s.split) for s in report.shards} == {
        ("coco", "train"),
        ("coco", "validation"),
    }
    verify_dataset(root)
    ds = datasets.load_dataset(str(root), "images", cache_dir=str(tmp_path / "c"))
    annotations = datasets.load_dataset(str(root), cache_dir=str(tmp_path / "c"))
    for split in ("train", "validation"):  # the same rows, split as the annotations
        assert ds[split]["image_key"] == annotations[split]["image_key"]
    train = ds["train"]
    assert train.features == features(images=True)
    raw = train.cast_column("image", datasets.Image(decode=False))
    for row in raw.select(range(5)):
        path = images / "coco" / row["image_key"]
        assert row["image"]["bytes"] == path.read_bytes()  # not re-encoded
        assert row["image"]["path"] == f"coco/{row['image_key']}"
    row = train.filter(lambda n: n > 0, input_columns="num_people")[0]
    assert row["image"].size == (row["width"], row["height"])
    card = DatasetCard.load(root / "README.md")
    configs = {c["config_name"]: c for c in card.data.to_dict()["configs"]}
    assert set(configs) == {"all", "coco", "images"} and configs["all"]["default"]
    assert datasets.get_dataset_config_names(str(root)) == ["all", "coco", "images"]
    assert (root / "figures" / "height.png").is_file()  # kept from the annotations build


def test_images_survive_a_rebuild_of_the_same_annotations_only(
    tmp_path, built, opt_file, body_model
):
    root, batch = built
    images = tmp_path / "images"
    _write_images(batch, images)
    build_images_config(root, images)
    conv = convert_released_opt(opt_file, body_model=body_model)
    same = build_dataset(root, conv, repo_id="acme/dto-humans", validation_fraction=0.2)
    assert same.notes == () and "images" in verify_dataset(root)["families"]
    other = build_dataset(root, convert_released_opt(opt_file), validation_fraction=0.3)
    assert "images" not in verify_dataset(root)["families"]
    assert any("images config was built from other annotations" in n for n in other.notes)


def test_missing_and_mismatched_images_are_errors(tmp_path, built):
    root, batch = built
    images = tmp_path / "images"
    missing = list(batch.image_key[:3])
    _write_images(batch, images, skip=missing)
    with pytest.raises(MissingImagesError, match=r"3 of \d+ images not found"):
        build_images_config(root, images)
    report = build_images_config(root, images, on_missing="skip")
    assert report.num_images == batch.num_images - 3
    assert {r.image_key for r in report.rejected} == {f"coco/{k}" for k in missing}
    manifest = verify_dataset(root)
    assert sorted(manifest["families"]["images"]["missing"]) == [f"coco/{k}" for k in missing]

    wrong = images / "coco" / missing[0]
    Image.new("RGB", (7, 5)).save(wrong, "JPEG")
    with pytest.raises(ValueError, match=r"image is 7x5 px but the annotation says"):
        build_images_config(root, images, on_missing="skip")


def test_attach_images_joins_local_files(tmp_path, built):
    root, batch = built
    images = tmp_path / "images"
    ds = datasets.load_dataset(str(root), split="train", cache_dir=str(tmp_path / "c"))
    first = ds[0]["image_key"]
    _write_images(batch, images, skip=[first])
    assert find_missing_images(ds, images) == [f"coco/{first}"]
    with pytest.raises(MissingImagesError, match="1 of"):
        attach_images(ds, images)
    present = ds.select(range(1, len(ds)))
    joined = attach_images(present, {"coco": images / "coco"})
    for row in joined.select(range(10)):
        if row["width"] > 0:
            assert row["image"].size == (row["width"], row["height"])
    stream = datasets.load_dataset(str(root), split="train", streaming=True).skip(1)
    streamed = list(attach_images(stream, images).take(10))
    for row, want in zip(streamed, present.select(range(10)), strict=True):
        assert row["image_key"] == want["image_key"] and row["smpl_pose"] == want["smpl_pose"]
        if row["width"] > 0:
            assert row["image"].size == (row["width"], row["height"])


def test_card_yaml_and_field_table_follow_the_schema(built):
    root, _ = built
    card = DatasetCard.load(root / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "cc-by-nc-4.0"
    info = {entry["config_name"]: entry for entry in data["dataset_info"]}
    assert set(info) == {"all", "coco"}
    assert datasets.Features._from_yaml_list(info["all"]["features"]) == features()
    assert sum(split["num_examples"] for split in info["all"]["splits"]) == 60
    assert 'load_dataset("acme/dto-humans"' in card.text
    table = field_table_markdown()
    assert table in card.text
    names = [line.split("`")[1] for line in table.splitlines()[2:]]
    assert names == [*features(), "image"]
    for spec in FIELDS:
        assert spec.unit and spec.description
    for figure in ("persons_per_image", "fov", "height"):
        png = (root / "figures" / f"{figure}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"figures/{figure}.png" in card.text


def test_synthetic_builds_are_marked_and_never_published_as_the_real_dataset(
    tmp_path, built, opt_annots
):
    root, _ = built  # from a fixture file: synthetic
    card = DatasetCard.load(root / "README.md")
    assert "SYNTHETIC TEST DATA, NOT DTO-Humans" in card.text and "synthetic" in card.data.tags
    assert card.data.pretty_name == "DTO-Humans (SYNTHETIC test data)"
    with pytest.raises(PublishError, match=rf"synthetic inputs \(fixture.* as {REPO_ID}, the real"):
        plan_dataset_upload(root, REPO_ID)
    plan_dataset_upload(root, "acme/dto-humans-synthetic")
    assert "is NaN for every person" not in card.text  # built with a body model

    real = write_released_opt(
        tmp_path / "r" / "COCO_CHMR_SMPL_OPT.npz", opt_annots, synthetic=False
    )
    build_dataset(tmp_path / "real", convert_released_opt(real))  # no SMPL model given
    card = DatasetCard.load(tmp_path / "real" / "README.md")
    assert "SYNTHETIC" not in card.text and "synthetic" not in card.data.tags
    assert f'load_dataset("{REPO_ID}", split="train")' in card.text  # the default home
    assert "`body_height` is NaN for every person" in card.text and "--smpl-model-dir" in card.text
    plan_dataset_upload(tmp_path / "real", REPO_ID)

    (tmp_path / "real" / "README.md").write_text(card.text.replace(REPO_ID, "<org>/dto-humans"))
    with pytest.raises(PublishError, match=r"placeholders <org>.*dto-humans-hub stats"):
        plan_dataset_upload(tmp_path / "real", REPO_ID)


def test_statistics_count_what_is_there(built):
    root, batch = built
    stats = compute_statistics(root)
    counts = batch.num_people
    assert stats.num_images == batch.num_images and stats.num_people == counts.sum()
    s = stats.summary
    assert s["images_without_people"] == np.sum(counts == 0)
    assert s["images_with_10_or_more_people"] == np.sum(counts >= 10)
    assert s["images_per_source"] == {"coco": batch.num_images}
    assert s["minors_fraction"] is None  # the release records no age group
    heights = np.sort(batch.body_height)
    assert s["body_height_m_p5_p50_p95"][1] == pytest.approx(np.median(heights), abs=1e-4)
    fov = np.rad2deg(batch.fov_y())
    assert s["fov_y_deg_p5_p50_p95"][1] == pytest.approx(np.nanmedian(fov), abs=1e-3)


def test_population_height_density_is_the_uniform_age_mixture():
    grid = np.linspace(0.0, 3.0, 30001)
    density = population_height_density(grid)
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-6)
    # Monte Carlo oracle: ages uniform on [0, 80) years, each age group's Gaussian, adults 50/50
    rng = np.random.default_rng(0)
    age = rng.uniform(0, 80, 400_000)
    male = rng.random(age.size) < 0.5
    mean = np.select([age < 3, age < 8, age < 15, male], [0.801, 1.122, 1.477, 1.784], 1.647)
    std = np.select([age < 3, age < 8, age < 15, male], [0.126, 0.120, 0.156, 0.076], 0.071)
    heights = rng.normal(mean, std)
    hist, edges = np.histogram(heights, bins=np.linspace(0.3, 2.1, 37), density=True)
    centres = 0.5 * (edges[1:] + edges[:-1])
    bin_mean = np.array(
        [population_height_density(np.linspace(a, b, 101)).mean() for a, b in pairwise(edges)]
    )
    np.testing.assert_allclose(hist, bin_mean, atol=0.03)
    assert np.mean(age < 15) == pytest.approx(15 / 80, abs=0.005)
    assert 1.6 < centres[hist.argmax()] < 1.8


def test_package_readme_documents_every_field():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert field_table_markdown() in readme


def test_dto_run_statistics_and_the_comparison_figure(tmp_path, built):
    from dto_core import DTOConfig, optimize_scenes
    from dto_core.synthetic import sample_crowds
    from dto_humans_hub import DTORun, convert_dto_run, plot_statistics

    crowds = sample_crowds(60, seed=4)
    result = optimize_scenes(
        crowds.teacher_height,
        crowds.prior_cls,
        crowds.cues,
        crowds.offsets,
        config=DTOConfig.paper(),
    )
    n, s = len(crowds.age), crowds.num_scenes
    h, w = crowds.image_size
    k = np.tile(np.array([[500.0, 0, w / 2], [0, 500.0, h / 2], [0, 0, 1]]), (s, 1, 1))
    run = DTORun(
        source=np.zeros(s, np.int64), image_key=[f"run/{i}.jpg" for i in range(s)],
        image_size=np.tile([h, w], (s, 1)), intrinsics=k, offsets=crowds.offsets,
        smpl_pose=np.zeros((n, 24, 3)), smpl_betas=np.zeros((n, 11)), transl_cam=np.ones((n, 3)),
        is_released=np.ones(n, bool), age=crowds.age_estimate, p_male=crowds.p_male, result=result,
    )  # fmt: skip
    conv = convert_dto_run(run, keep="all")
    root = tmp_path / "run"
    build_dataset(root, conv)
    stats = compute_statistics(root)
    minors = np.mean(conv.batch.age_group < 3)
    assert stats.minors_fraction == pytest.approx(minors) and 0 < minors < 1
    assert stats.summary["minors_fraction"] == pytest.approx(minors, abs=1e-4)
    assert stats.summary["images_per_dto_status"]["kept"] == int(result.kept.sum())
    np.testing.assert_allclose(np.sort(stats.body_height), np.sort(conv.batch.body_height))
    baseline = compute_statistics(built[0], name="release")
    paths = plot_statistics(stats, tmp_path / "figs", compare=baseline)
    assert [p.name for p in paths] == ["persons_per_image.png", "fov.png", "height.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_photos_are_a_source_of_their_own(tmp_path):
    """DTO runs on any folder of photos (no released pGT) get the source `photos`: its own
    config, all_people_annotated false, a note on the card; release files cannot claim it."""
    from dto_core import DTOConfig, optimize_scenes
    from dto_core.synthetic import sample_crowds
    from dto_humans_hub import DTORun, convert_dto_run
    from dto_humans_hub.conventions import SOURCE_LABELS, SOURCES

    assert features()["source"].names == ["coco", "mpii", "aic", "insta", "photos"]  # appended
    assert SOURCE_LABELS[: len(SOURCES)] == SOURCES == ("coco", "mpii", "aic", "insta")
    crowds = sample_crowds(12, seed=5)
    result = optimize_scenes(
        crowds.teacher_height, crowds.prior_cls, crowds.cues, crowds.offsets,
        config=DTOConfig.paper(),
    )  # fmt: skip
    n, s = len(crowds.age), crowds.num_scenes
    h, w = crowds.image_size
    source = np.where(np.arange(s) < 4, SOURCES.index("coco"), SOURCE_LABELS.index("photos"))
    run = DTORun(
        source=source, image_key=[f"holiday/{i}.jpg" for i in range(s)],
        image_size=np.tile([h, w], (s, 1)),
        intrinsics=np.tile(np.array([[500.0, 0, w / 2], [0, 500.0, h / 2], [0, 0, 1]]), (s, 1, 1)),
        offsets=crowds.offsets, smpl_pose=np.zeros((n, 24, 3)), smpl_betas=np.zeros((n, 11)),
        transl_cam=np.ones((n, 3)), is_released=np.zeros(n, bool), age=crowds.age_estimate,
        p_male=crowds.p_male, result=result,
    )  # fmt: skip
    root = tmp_path / "ds"
    build_dataset(root, convert_dto_run(run, keep="all"), figures=False, validation_fraction=0)
    photos = datasets.load_dataset(str(root), "photos", split="train", cache_dir=tmp_path / "c")
    assert sorted(photos["image_key"]) == sorted(f"holiday/{i}.jpg" for i in range(4, s))
    assert set(photos["source"]) == {4} and not any(photos["all_people_annotated"])
    coco = datasets.load_dataset(str(root), "coco", split="train", cache_dir=tmp_path / "c")
    assert len(coco) == 4 and all(coco["all_people_annotated"])
    card = DatasetCard.load(root / "README.md")
    assert "Each source has its own config (`coco`, `photos`)" in card.text
    assert f"The {s - 4} images of source `photos` are not from 4D-Humans" in card.text

    opt = write_released_opt(tmp_path / "COCO_x.npz", {"a.jpg": []})
    with pytest.raises(ValueError, match=r"one of \('coco', 'mpii', 'aic', 'insta'\) \(the coll"):
        convert_released_opt(opt, source="photos")
