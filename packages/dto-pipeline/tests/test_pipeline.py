"""End to end on synthetic photos with simulated teachers: the run writes a dataset that
`load_dataset` reads with every image and person accounted for; the cached re-solve gives the same
bytes; shares partition the input and merge into the same rows; an interrupted run resumes to the
same shards; other settings are refused; the --pgt path; the pictures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from datasets import concatenate_datasets

from dto_humans_hub import AnnotationFileError, verify_dataset
from dto_humans_hub.build import read_family_table
from dto_humans_hub.conventions import SOURCE_LABELS, SOURCES
from dto_humans_hub.fixtures import write_camerahmr_release
from dto_humans_hub.writer import read_manifest
from dto_pipeline import runner
from dto_pipeline.errors import MissingWeightsError, OutputMismatchError
from dto_pipeline.images import resolve_shard
from dto_pipeline.job import merge_job, run_job, solve_job
from dto_pipeline.outcome import IMAGE_REASONS, load_part
from dto_pipeline.release import read_release


def shard_digests(dataset: Path) -> list[tuple[str, str]]:
    """(path, sha256) of every annotation shard of a dataset, all splits."""
    splits = read_manifest(dataset)["families"]["annotations"]["splits"]
    return [(s["path"], s["sha256"]) for split in splits.values() for s in split["shards"]]


def rows(dataset: Path) -> bytes:
    """A dataset's rows as Arrow IPC bytes: equal iff every value is bit-identical (NaN too)."""
    table = read_family_table(dataset).combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def rejected_keys(dataset: Path) -> dict[str, str]:
    """image key -> reason of every image the dataset's manifest lists as not written."""
    manifest = read_manifest(dataset)["families"]["annotations"]
    return {r["image_key"]: r["reason"] for r in manifest["rejected"]}


def run_args(photos_dir: Path, smpl_dir: Path, **kwargs) -> dict:
    return {
        "images": photos_dir / "images",
        "teachers": photos_dir / "simulated.toml",
        "device": "cpu",
        "chunk": 2,
        "smpl_dir": smpl_dir,
        "figures": False,
        **kwargs,
    }


def test_run_accounts_for_every_image_and_person(reference_run, photos_dir):
    from datasets import load_dataset

    report = json.loads((reference_run / "report.json").read_text())
    images, people = report["images"], report["persons"]
    assert images["listed"] == 7  # five photos, a truncated file and a file that is no image
    assert images["dropped"]["truncated"] == 1 and images["dropped"]["unreadable"] == 1
    assert images["written"] + sum(images["dropped"].values()) == images["listed"]
    assert people["written"] + sum(people["dropped"].values()) == people["from_teachers"]
    assert images["written"] >= 2 and report["simulated"] and not report["random_weights"]
    listed = {e["path"] for e in json.loads((reference_run / "images.json").read_text())}
    dropped = {e["path"] for e in report["dropped_images"]}
    assert {"broken/truncated.png", "broken/notes.jpg"} <= dropped

    dataset = reference_run / "dataset"  # a dto-humans-hub dataset: a link to its build
    assert dataset.is_symlink() and (reference_run / ".dataset.builds").is_dir()
    verify_dataset(dataset)
    splits = load_dataset(str(dataset), cache_dir=str(reference_run.parent / "hf"))
    assert set(splits) <= {"train", "validation"} and "train" in splits
    ds = concatenate_datasets(list(splits.values())).with_format("numpy")
    keys = list(ds["image_key"])
    assert len(keys) == len(set(keys)) == images["written"]
    assert set(keys) == listed - dropped
    assert int(np.sum(ds["num_people"])) == people["written"]
    photos = load_dataset(str(dataset), "photos", cache_dir=str(reference_run.parent / "hf"))
    assert sum(len(s) for s in photos.values()) == len(keys)  # a folder of photos: `photos`
    assert set(ds["source"]) == {SOURCE_LABELS.index("photos")}
    assert not np.any(ds["all_people_annotated"])  # detections only: not every person
    row = ds[0]
    assert row["smpl_betas"].shape[1] == 11 and row["dto_status"] == 1  # kept by the filter
    assert np.all(row["transl_cam"][:, 2] > 0)
    manifest = read_manifest(dataset)["families"]["annotations"]
    rejected = {r["image_key"]: r["reason"] for r in manifest["rejected"]}
    assert rejected["broken/truncated.png"].startswith("truncated:")
    assert set(rejected) == dropped
    kinds = {e["key"]: e["kind"] for e in report["dropped_images"]}
    assert kinds["broken/notes.jpg"] == "invalid"
    # simulated teachers: marked synthetic, so it can never be published as DTO-Humans
    assert manifest["synthetic"] and [f["synthetic"] for f in manifest["inputs"]] == [True]
    card = (dataset / "README.md").read_text()
    assert "SYNTHETIC TEST DATA" in card and "images of source `photos`" in card
    assert (dataset / "figures" / "height.png").is_file() and "figures/height.png" in card

    profile = json.loads((reference_run / "profile.json").read_text())["stages"]
    for stage in ("detection", "hmr", "depth", "rendering", "cues", "solve", "write"):
        assert profile[stage]["images"] > 0 and profile[stage]["mean_ms_per_image"] > 0


def test_source_labels(photos_dir, smpl_dir, tmp_path):
    from dto_pipeline.errors import UsageError
    from dto_pipeline.job import list_inputs

    items, _ = list_inputs(photos_dir / "images", "coco", None)
    assert {i.source for i in items} == {SOURCES.index("coco")}  # photos of a 4D-Humans source
    with pytest.raises(UsageError, match="--source 'flickr': one of coco, mpii, aic, insta, pho"):
        list_inputs(photos_dir / "images", "flickr", None)
    with pytest.raises(UsageError, match="release files exist for coco, mpii, aic, insta only"):
        run_job(**run_args(photos_dir, smpl_dir, out=tmp_path / "x", pgt="x.npz", source="photos"))


def test_cached_solve_gives_identical_rows_then_other_settings(reference_run, tmp_path):
    same = solve_job(cache=reference_run, out=tmp_path / "same", figures=False)
    assert same["images"] == json.loads((reference_run / "report.json").read_text())["images"]
    reference = reference_run / "dataset"
    assert shard_digests(tmp_path / "same" / "dataset") == shard_digests(reference)
    assert rows(tmp_path / "same" / "dataset") == rows(reference)

    paper = solve_job(
        cache=reference_run, out=tmp_path / "paper", variant="paper",
        overrides={"intra_scale": False}, figures=False,
    )  # fmt: skip
    settings = json.loads((tmp_path / "paper" / "run.json").read_text())
    assert settings["dto"]["variant"] == "paper"
    assert settings["dto"]["overrides"] == {"intra_scale": False}
    assert settings["dto"]["update_method"] == "newton"
    assert paper["images"]["listed"] == 7
    if paper["images"]["written"]:
        assert rows(tmp_path / "paper" / "dataset") != rows(reference)
    with pytest.raises(FileNotFoundError, match="no cached depth maps for --depth-model S"):
        solve_job(cache=reference_run, out=tmp_path / "s", depth_model="S")


def test_shares_partition_the_input_and_merge_to_the_same_rows(
    reference_run, photos_dir, smpl_dir, tmp_path
):
    out = tmp_path / "sharded"
    shutil.copytree(reference_run / "cache", out / "cache")  # the teachers ran already
    first = run_job(**run_args(photos_dir, smpl_dir, out=out, shard="0/2"))
    with pytest.raises(OutputMismatchError, match="share 1 of 2: missing"):
        merge_job([out])
    second = run_job(
        **run_args(photos_dir, smpl_dir, out=out), environ={"RANK": "1", "WORLD_SIZE": "2"}
    )
    assert first["images"]["listed"] + second["images"]["listed"] == 7
    shares = [
        {o.path for part in sorted(folder.glob("parts/part-*.npz")) for o in load_part(part)}
        for folder in sorted((out / "ranks").iterdir())
    ]
    listing = {e["path"] for e in json.loads((out / "images.json").read_text())}
    assert len(shares) == 2 and not shares[0] & shares[1] and shares[0] | shares[1] == listing
    merged = merge_job([out], figures=False)
    assert merged["images"] == json.loads((reference_run / "report.json").read_text())["images"]
    assert rows(out / "dataset") == rows(reference_run / "dataset")
    assert shard_digests(out / "dataset") == shard_digests(reference_run / "dataset")
    assert rejected_keys(out / "dataset") == rejected_keys(reference_run / "dataset")
    with pytest.raises(OutputMismatchError, match="holds another dataset"):
        merge_job([out], to=reference_run / "dataset", figures=False)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("not a dataset")
    with pytest.raises(OutputMismatchError, match="is not a dataset folder"):
        merge_job([out], to=tmp_path / "notes", figures=False)
    with pytest.raises(OutputMismatchError, match="other settings"):
        run_job(**run_args(photos_dir, smpl_dir, out=out, shard="0/3"))


def test_teachers_only_then_solve_on_other_workers(reference_run, photos_dir, smpl_dir, tmp_path):
    out = tmp_path / "gpu"
    out.mkdir()
    shutil.copytree(reference_run / "cache", out / "cache")
    summary = run_job(**run_args(photos_dir, smpl_dir, out=out, teachers_only=True))
    assert summary["images"] == 7 and not (out / "dataset").exists()
    assert (out / "ranks" / "rank-00000-of-00001" / "teachers.json").is_file()
    # N CPU workers, N such that a share drops all its images (it has no dataset, a report only)
    written = set(read_family_table(reference_run / "dataset")["image_key"].to_pylist())
    paths = [e["path"] for e in json.loads((out / "images.json").read_text())]
    shares = {n: [set(resolve_shard(f"{i}/{n}", {}).select(paths)) for i in range(n)]
              for n in range(2, 9)}  # fmt: skip
    count = next(n for n, s in shares.items() if any(p and not p & written for p in s))
    for index in range(count):
        solve_job(cache=out, out=tmp_path / "cpu", shard=f"{index}/{count}")
    assert any(not (f / "dataset").exists() for f in (tmp_path / "cpu" / "ranks").iterdir())
    merge_job([tmp_path / "cpu"], figures=False)
    assert rows(tmp_path / "cpu" / "dataset") == rows(reference_run / "dataset")
    assert rejected_keys(tmp_path / "cpu" / "dataset") == rejected_keys(reference_run / "dataset")


def test_an_interrupted_run_resumes_to_the_same_shards(
    reference_run, photos_dir, smpl_dir, tmp_path, monkeypatch
):
    out = tmp_path / "resumed"
    shutil.copytree(reference_run / "cache", out / "cache")  # the teachers ran already
    real = runner.solve_image
    for stop_after in (1, 3):  # inside the first chunk, then inside the second
        calls = []

        def interrupted(*args, stop_after=stop_after, calls=calls, **kwargs):
            calls.append(1)
            if len(calls) > stop_after:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(runner, "solve_image", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_job(**run_args(photos_dir, smpl_dir, out=out))
    monkeypatch.setattr(runner, "solve_image", real)
    run_job(**run_args(photos_dir, smpl_dir, out=out))
    assert shard_digests(out / "dataset") == shard_digests(reference_run / "dataset")
    assert not list(out.rglob("*.tmp"))


def test_an_output_folder_of_other_settings_is_refused(reference_run, photos_dir, smpl_dir):
    with pytest.raises(OutputMismatchError) as exc:
        run_job(**run_args(photos_dir, smpl_dir, out=reference_run, variant="paper"))
    assert "dto.variant: folder 'official', this run 'paper'" in str(exc.value)
    with pytest.raises(OutputMismatchError, match="keep: folder 'kept', this run 'all'"):
        run_job(**run_args(photos_dir, smpl_dir, out=reference_run, keep="all"))


def test_release_path_and_a_release_missing_a_key(body, photos_dir, smpl_dir, tmp_path):
    from dto_models.camerahmr import read_j19_regressor
    from dto_pipeline.synthetic import load_photos, release_arrays

    photos, _ = load_photos(photos_dir / "images", body)
    arrays = release_arrays(photos, body, read_j19_regressor(smpl_dir / "SMPL_to_J19.pkl"))
    keep = arrays["imgname"] != f"train2014/{photos.names[-1]}"  # one photo not released
    release = write_camerahmr_release(
        tmp_path / "coco-release.npz", {k: v[keep] for k, v in arrays.items()}
    )
    out = tmp_path / "pgt"
    report = run_job(**run_args(photos_dir, smpl_dir, out=out, pgt=release, source=None))
    assert report["images"]["dropped"]["not_in_release"] == 3  # 2 bad files + 1 photo
    assert report["release_images_not_in_folder"] == []
    table = read_family_table(out / "dataset").to_pydict()
    origin = [o for image in table["origin"] for o in image]
    assert origin and set(origin) == {0}  # every person is a released one (stage A)
    assert all(key.endswith(".png") and "/" not in key for key in table["image_key"])

    broken = dict(arrays)
    del broken["trans_cam"]
    path = write_camerahmr_release(tmp_path / "broken" / "coco-release.npz", broken)
    with pytest.raises(AnnotationFileError, match="trans_cam"):
        read_release(path)


def test_panels_show_meshes_where_their_vertices_project(reference_run, body, tmp_path):
    from dto_core.camera import project
    from dto_pipeline.cache import TeacherCache
    from dto_pipeline.images import read_image
    from dto_pipeline.job import _solve_settings
    from dto_pipeline.outcome import ImageOutcome
    from dto_pipeline.settings import read_json
    from dto_pipeline.solve import solve_image
    from dto_pipeline.vis import panel_tiles
    from hmr_render import render_composite

    solve_job(cache=reference_run, out=tmp_path / "vis", vis_every=3, figures=False)
    panels = sorted((tmp_path / "vis" / "ranks").rglob("vis/*.png"))
    listing = read_json(reference_run / "images.json")
    drawn = [e for e in listing if e["index"] % 3 == 0 and not e["path"].startswith("broken")]
    assert len(panels) == len(drawn) > 0

    settings = read_json(reference_run / "run.json")
    models = {
        stage: read_json(reference_run / "cache" / stage / ident / "model.json")
        for stage, ident in settings["models"].items()
    }
    cache = TeacherCache(reference_run / "cache", models)
    item = next(e for e in listing if not e["path"].startswith("broken"))
    entry = cache.get_persons(item["key"])
    solution = solve_image(
        entry, cache.get_depth(item["key"]), body, _solve_settings(settings["dto"]),
        keep_views=True,
    )  # fmt: skip
    pixels = read_image(Path(settings["images"]) / item["path"])
    outcome = ImageOutcome(item["path"], item["key"], 0, len(entry), solution.reason, "", solution)
    tiles = panel_tiles(pixels, outcome, body, "official")
    titles = [t for t, _ in tiles]
    assert titles[:2] == [f"input {item['path']}", "teacher (before DTO)"]
    assert titles[2].startswith(f"DTO official: {solution.reason or 'kept'}")
    vertices = solution.views["vertices_after"]
    silhouette = render_composite(vertices, body.faces, solution.K, pixels.shape[:2]).person >= 0
    changed = np.any(tiles[2][1] != pixels, axis=2)
    assert silhouette.sum() > 100 and changed[silhouette].mean() > 0.99  # meshes are drawn there
    # and there: the silhouette's centroid is the projected vertices' (area-weighted) centroid
    uv = project(vertices.reshape(-1, 3), solution.K)
    rows_, cols = np.nonzero(silhouette)
    assert abs(cols.mean() - np.median(uv[:, 0])) < 0.1 * pixels.shape[1]
    assert abs(rows_.mean() - np.median(uv[:, 1])) < 0.15 * pixels.shape[0]


TINY = """
[detector]
weights = "tiny"
detections_per_img = 4
[keypoints]
weights = "tiny"
[hmr]
weights = "tiny"
[fov]
weights = "tiny"
[age_gender]
weights = "tiny"
[depth]
L = "tiny"
[stage]
min_visible = 0
visible_thresh = 0.0
"""


def test_tiny_random_teachers_end_to_end(photos_dir, smpl_dir, tmp_path):
    """The real adapters (tiny random instances): every image is accounted for; nothing about
    their rows is meaningful, so only the bookkeeping is checked."""
    images = tmp_path / "images"
    images.mkdir()
    for name in ("synthetic_00000.png", "synthetic_00001.png"):
        shutil.copy(photos_dir / "images" / name, images / name)
    (tmp_path / "tiny.toml").write_text(TINY)
    report = run_job(
        images=images, out=tmp_path / "out", teachers=tmp_path / "tiny.toml", device="cpu",
        smpl_dir=smpl_dir, figures=False,
    )  # fmt: skip
    assert report["random_weights"] and report["images"]["listed"] == 2
    assert report["images"]["written"] + sum(report["images"]["dropped"].values()) == 2
    people = report["persons"]
    assert people["written"] + sum(people["dropped"].values()) == people["from_teachers"]
    assert set(report["images"]["dropped"]) <= set(IMAGE_REASONS)
    models = json.loads((tmp_path / "out" / "run.json").read_text())["models"]
    described = json.loads(
        (tmp_path / "out" / "cache" / "persons" / models["persons"] / "model.json").read_text()
    )
    assert described["detector"]["weights"] == {"tiny_seed": 0}
    assert described["detector"]["options"] == {"detections_per_img": 4}


def test_a_missing_checkpoint_fails_before_any_image(photos_dir, smpl_dir, tmp_path):
    (tmp_path / "teachers.toml").write_text(
        TINY.replace(
            '[hmr]\nweights = "tiny"', '[hmr]\nweights = "ckpt/camerahmr_checkpoint_cleaned.ckpt"'
        )
    )
    with pytest.raises(MissingWeightsError) as exc:
        run_job(**run_args(photos_dir, smpl_dir, out=tmp_path / "out",
                           teachers=tmp_path / "teachers.toml"))  # fmt: skip
    message = str(exc.value)
    assert "ckpt/camerahmr_checkpoint_cleaned.ckpt: no such file" in message
    assert "CameraHMR site" in message and "[hmr] weights" in message
    assert not (tmp_path / "out").exists()
