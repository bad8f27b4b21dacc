"""Benchmark images to predictions: image files of each layout, a cache that resumes an
interrupted run to the same result and refuses other settings, the known camera."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hmr_bench.datasets import load_ground_truth
from hmr_bench.fixtures import make_panoptic_fixture, make_pw3d_fixture, make_rh_fixture
from mahmr_infer.benchmarks import (
    PredictionCache,
    image_paths,
    known_intrinsics,
    predict_benchmark,
    run_settings,
)
from mahmr_infer.inputs import InputError, ModelSource
from mahmr_infer.loading import load_model


@pytest.fixture(scope="module")
def loaded():
    return load_model(ModelSource("tiny", "tiny"), None, torch.device("cpu"))


def test_image_paths_of_the_official_panoptic_layout(tmp_path: Path) -> None:
    data = make_panoptic_fixture(tmp_path / "panoptic", variant="official")
    keys = load_ground_truth("panoptic", data).image_keys
    paths = image_paths("panoptic", data, keys)
    assert paths[0].relative_to(data).parts[1:3] == ("hdImgs", keys[0].split("-")[1][:5])
    with pytest.raises(InputError, match="1 of the 8 panoptic images are missing"):
        paths[3].unlink()
        image_paths("panoptic", data, keys)


def test_known_camera_is_the_ground_truth_one(tmp_path: Path) -> None:
    data = make_pw3d_fixture(tmp_path / "pw", variant="processed")
    ground_truth = load_ground_truth("3dpw", data)
    ks = known_intrinsics("3dpw", ground_truth)
    assert len(ks) == ground_truth.num_images
    np.testing.assert_array_equal(ks[-1], ground_truth.K[ground_truth.offsets[-2]])
    with pytest.raises(InputError, match="rh annotations hold no camera intrinsics"):
        known_intrinsics("rh", load_ground_truth("rh", make_rh_fixture(tmp_path / "rh")))


def test_an_interrupted_run_resumes_to_the_same_predictions(loaded, tmp_path: Path) -> None:
    data = make_rh_fixture(tmp_path / "rh")
    keys = list(load_ground_truth("rh", data).image_keys)
    paths = image_paths("rh", data, keys)
    settings = run_settings(loaded, "rh", data, 0.0, "predicted")
    reference = predict_benchmark(
        loaded, keys, paths, PredictionCache(tmp_path / "ref", settings), conf_thresh=0.0,
        batch_size=1,
    )  # fmt: skip

    good = paths[2].read_bytes()
    paths[2].write_text("not an image")
    cache = PredictionCache(tmp_path / "cache", settings)
    with pytest.raises(InputError, match=f"{paths[2].name}: not an image file"):
        predict_benchmark(loaded, keys, paths, cache, conf_thresh=0.0, batch_size=1)
    assert sorted(cache.done()) == sorted(keys[:2])  # the images before it are kept
    paths[2].write_bytes(good)
    counted: list[int] = []
    resumed = predict_benchmark(
        loaded, keys, paths, PredictionCache(tmp_path / "cache", settings), conf_thresh=0.0,
        batch_size=1, progress=counted.append,
    )  # fmt: skip
    assert counted == [2, 1, 1]  # two from the cache, then the two others
    assert resumed.image_keys == reference.image_keys == tuple(keys)
    for name, value in reference.fields.items():
        np.testing.assert_array_equal(resumed.fields[name], value, err_msg=name)

    other = run_settings(loaded, "rh", data, 0.3, "predicted")
    with pytest.raises(InputError, match="a prediction cache made with other settings"):
        PredictionCache(tmp_path / "cache", other)
