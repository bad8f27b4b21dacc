"""Runs over files: the same predictions as mahmr_model.predict on the readable images,
unreadable ones reported in place, stage times that add up, records that round-trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hmr_bench.predictions import read_predictions, write_predictions
from mahmr_infer.images import ImageReadError, read_image
from mahmr_infer.inputs import ModelSource
from mahmr_infer.loading import load_model
from mahmr_infer.records import benchmark_predictions, write_obj
from mahmr_infer.runner import STAGES, StageTimes, run_images
from mahmr_model import predict


@pytest.fixture(scope="module")
def model():
    return load_model(ModelSource("tiny", "tiny"), None, torch.device("cpu")).model


def test_tiny_model_is_seeded_and_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = load_model(ModelSource("tiny", "tiny"), None, torch.device("cpu"))
    assert torch.equal(torch.rand(1), expected)
    b = load_model(ModelSource("tiny", "tiny"), None, torch.device("cpu"))
    assert a.synthetic and torch.equal(a.model.tgt_embed.weight, b.model.tgt_embed.weight)


def test_read_image_reasons(tmp_path: Path) -> None:
    Image.fromarray(np.full((5, 7), 9, np.uint8)).save(tmp_path / "gray.png")
    pixels = read_image(tmp_path / "gray.png")
    assert pixels.shape == (5, 7, 3) and pixels.dtype == np.uint8 and (pixels == 9).all()
    (tmp_path / "text.jpg").write_text("hello")
    with pytest.raises(ImageReadError, match=r"text\.jpg: not an image file PIL can read"):
        read_image(tmp_path / "text.jpg")


def test_run_images_matches_predict_and_reports_bad_files(model, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    shapes = [(60, 80, 3), (90, 50, 3), (70, 70, 3)]
    arrays = [rng.integers(0, 256, s, dtype=np.uint8) for s in shapes]
    paths = []
    for i, array in enumerate(arrays):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(array).save(paths[-1])
        if i == 0:
            paths.append(tmp_path / "bad.jpg")
            paths[-1].write_text("no image")
    times = StageTimes()
    results = list(run_images(model, paths, conf_thresh=0.0, batch_size=2, times=times))
    assert sorted(r.index for r in results) == [0, 1, 2, 3]
    bad = next(r for r in results if not r.ok)
    assert bad.path.name == "bad.jpg" and "not an image" in bad.error
    good = sorted((r for r in results if r.ok), key=lambda r: r.index)
    expected = predict(model, arrays, conf_thresh=0.0, batch_size=1)
    for result, reference in zip(good, expected, strict=True):
        for name in ("scores", "transl", "joints", "betas"):
            np.testing.assert_allclose(
                getattr(result.prediction.persons, name),
                getattr(reference.persons, name),
                rtol=1e-4,
                atol=1e-5,
            )
    assert times.images == 3 and all(times.seconds[s] >= 0 for s in STAGES)
    assert times.seconds["encoder"] > 0 and times.seconds["body model (SMPL)"] > 0


def test_stage_times_partition_the_predict_call(model) -> None:
    """Encoder + decoder/heads + body + the rest = the time of the whole predict call."""
    times = StageTimes()
    image = np.zeros((64, 64, 3), np.uint8)
    with times.stage("load / pre-process"), times.model_hooks(model):
        outer = times.now()
        predict(model, [image, image], conf_thresh=0.0)
        outer = times.now() - outer
    total = sum(times.seconds.values())
    assert total == pytest.approx(outer, rel=0.05, abs=2e-3)
    assert times.seconds["decoder + heads"] > 0 and times.seconds["load / pre-process"] > 0
    times.images = 2
    table = times.table("MA-HMR tiny on cpu")
    assert table.splitlines()[0] == "MA-HMR tiny on cpu" and "total" in table.splitlines()[-1]


def test_benchmark_predictions_round_trip(model, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (64, 96, 3), dtype=np.uint8) for _ in range(2)]
    results = predict(model, images, conf_thresh=0.0, return_vertices=True)
    bench = benchmark_predictions(["x.jpg", "y.jpg"], results, {"method": "MA-HMR"})
    back = read_predictions(write_predictions(tmp_path / "p.npz", bench))
    assert back.image_keys == ("x.jpg", "y.jpg") and back.meta["method"] == "MA-HMR"
    rows = back.rows("y.jpg")
    np.testing.assert_array_equal(back.fields["conf"][rows], results[1].persons.scores)
    np.testing.assert_array_equal(back.fields["verts"][rows], results[1].persons.vertices)
    pose = np.concatenate([results[1].persons.global_orient, results[1].persons.body_pose], 1)
    np.testing.assert_allclose(back.fields["pose"][rows], pose)
    np.testing.assert_allclose(back.fields["K"][rows][0], results[1].intrinsics)
    for i, result in enumerate(results):  # per image, whether or not anybody was found
        np.testing.assert_allclose(back.image_fields["K"][i], result.intrinsics)

    faces = model.body.faces.cpu().numpy()
    path = write_obj(tmp_path / "m.obj", results[0].persons.vertices[0], faces)
    lines = path.read_text().splitlines()
    v = np.array([[float(x) for x in ln.split()[1:]] for ln in lines if ln.startswith("v ")])
    f = np.array([[int(x) for x in ln.split()[1:]] for ln in lines if ln.startswith("f ")])
    np.testing.assert_allclose(v, results[0].persons.vertices[0], atol=6e-6)
    np.testing.assert_array_equal(f - 1, faces)
