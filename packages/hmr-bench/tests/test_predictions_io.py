"""The prediction file: round trip, validation errors that name the problem, adapters."""

import json
import pickle
import re

import numpy as np
import pytest

from hmr_bench import PredictionError, Predictions, evaluate, read_predictions, write_predictions
from hmr_bench.adapters import from_bev_rh_npz, from_dto_npz, from_mahmr_rh_npz
from hmr_bench.datasets.common import save_annots_npz
from hmr_bench.fixtures import make_predictions


def small():
    return Predictions(
        ("a.jpg", "b.jpg", "c.jpg"),
        np.array([0, 2, 2, 3]),
        {"conf": np.array([0.9, 0.1, 0.5]), "transl": np.arange(9.0).reshape(3, 3)},
        {"method": "test"},
    )


def test_round_trip(tmp_path):
    p = small()
    path = write_predictions(tmp_path / "p.npz", p)
    q = read_predictions(path)
    assert q.image_keys == p.image_keys and q.meta == {"method": "test"}
    np.testing.assert_array_equal(q.offsets, p.offsets)
    np.testing.assert_array_equal(q.get("transl"), p.get("transl"))
    assert q.rows("b.jpg") == slice(2, 2) and q.rows("zzz.jpg") == slice(0, 0)
    assert [f.name for f in tmp_path.iterdir()] == ["p.npz"]  # atomic: no temp file left
    kept = q.select(q.get("conf") > 0.3)
    assert kept.offsets.tolist() == [0, 1, 1, 2] and kept.get("conf").tolist() == [0.9, 0.5]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image_keys": ("a.jpg", "a.jpg", "c.jpg")}, "image key 'a.jpg' appears more than once"),
        ({"offsets": np.array([0, 2, 1, 3])}, "never decrease"),
        ({"offsets": np.array([0, 2, 3])}, "offsets must be 4 integers"),
        ({"fields": {"transl": np.zeros((3, 3))}}, "need a 'conf' field"),
        ({"fields": {"conf": np.ones(3), "joint": np.zeros(3)}}, "unknown field 'joint'"),
        (
            {"fields": {"conf": np.ones(3), "kp2d": np.zeros((3, 17, 2))}},
            r"'kp2d' has shape \(3, 17, 2\), expected \(N, 14, 2\)",
        ),
        ({"fields": {"conf": np.ones(3), "betas": np.zeros((3, 12))}}, "'betas' has shape"),
        (
            {"fields": {"conf": np.array([0.9, np.inf, 0.5])}},
            "image 'a.jpg' person 1: field 'conf' is not finite",
        ),
        (
            {"fields": {"conf": np.ones(3), "K": np.zeros((3, 3, 3))}},
            "image 'a.jpg' person 0: K focal <= 0",
        ),
    ],
)
def test_validation_errors(change, message):
    p = small()
    args = {"image_keys": p.image_keys, "offsets": p.offsets, "fields": p.fields, **change}
    with pytest.raises(PredictionError, match=message):
        Predictions(**args)


def test_reading_foreign_files(tmp_path):
    np.savez(tmp_path / "x.npz", results=np.zeros(3))
    with pytest.raises(PredictionError, match=r"hmr_bench\.adapters"):
        read_predictions(tmp_path / "x.npz")
    save_annots_npz(tmp_path / "pickled.npz", {"a": 1})
    with pytest.raises(PredictionError, match="pickled objects"):
        read_predictions(tmp_path / "pickled.npz")
    with pytest.raises(PredictionError, match="file not found"):
        read_predictions(tmp_path / "missing.npz")
    good = write_predictions(tmp_path / "good.npz", small()).read_bytes()
    np.save(tmp_path / "array.npy", np.zeros(3))
    (tmp_path / "pickle.npz").write_bytes(pickle.dumps({"results": {}}))
    (tmp_path / "text.npz").write_text("image conf\na.jpg 0.9 (é)\n")
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "binary.npz").write_bytes(bytes(range(256)))
    (tmp_path / "cut.npz").write_bytes(good[: len(good) // 2])
    damaged = bytearray(good)
    damaged[len(good) // 3] ^= 0xFF  # inside a member: the zip CRC check fails
    (tmp_path / "damaged.npz").write_bytes(bytes(damaged))
    for name, message in (
        ("array.npy", "is a single .npy array"),
        ("pickle.npz", "is a Python pickle"),
        ("text.npz", "is a text file"),
        ("empty.npz", "is empty"),
        ("binary.npz", "is not an .npz file"),
        ("cut.npz", "truncated or damaged .npz file"),
        ("damaged.npz", "truncated or damaged .npz file"),
    ):
        with pytest.raises(PredictionError, match=f"{name}: {re.escape(message)}"):
            read_predictions(tmp_path / name)
    arrays = dict(np.load(write_predictions(tmp_path / "v.npz", small())))
    arrays["version"] = np.array(3)
    np.savez(tmp_path / "v3.npz", **arrays)
    with pytest.raises(PredictionError, match=r"format version 3, this reader handles \(1, 2\)"):
        read_predictions(tmp_path / "v3.npz")


def test_version_2_per_image_intrinsics_and_version_1_files(tmp_path):
    k = np.array([[[500.0, 0, 32], [0, 500, 24], [0, 0, 1]]] * 3)
    k[1, 0, 0] = 510.0
    p = small()
    p2 = Predictions(p.image_keys, p.offsets, p.fields, p.meta, {"K": k})
    q = read_predictions(write_predictions(tmp_path / "v2.npz", p2))
    assert q.has_image("K") and not small().has_image("K")
    np.testing.assert_array_equal(q.image_fields["K"], k)
    assert q.select(q.get("conf") > 0.3).image_fields["K"][1, 0, 0] == 510.0
    with np.load(tmp_path / "v2.npz") as data:
        assert int(data["version"]) == 2 and "image_K" in data.files
    # a version-1 file (written before per-image fields existed) is still read
    arrays = dict(np.load(write_predictions(tmp_path / "v.npz", p)))
    arrays["version"] = np.array(1)
    np.savez(tmp_path / "v1.npz", **arrays)
    v1 = read_predictions(tmp_path / "v1.npz")
    assert v1.image_fields == {} and v1.get("transl").tolist() == p.get("transl").tolist()
    for bad, message in (
        ({"K": k[:2]}, r"per-image field 'K' has shape \(2, 3, 3\)"),
        ({"K": np.where(np.arange(3)[:, None, None] == 2, np.nan, k)}, "image 'c.jpg'"),
        ({"focal": np.ones(3)}, "unknown per-image field 'focal'"),
    ):
        with pytest.raises(PredictionError, match=message):
            Predictions(p.image_keys, p.offsets, p.fields, p.meta, bad)


def test_adapters_feed_the_rh_evaluator(data, tmp_path, model_dir):
    ours = make_predictions("rh", data("rh"), skip_images=("nopred4.jpg",))
    mahmr = {
        k: {
            "kp2ds": ours.get("kp2d")[ours.rows(k)].astype(np.float32),
            "trans": ours.get("transl")[ours.rows(k)].astype(np.float32),
        }
        for k in ours.image_keys
    }
    np.savez(tmp_path / "results.npz", results=mahmr)
    bev = {
        k: [{"kp2ds": kp, "trans": tr} for kp, tr in zip(v["kp2ds"], v["trans"], strict=True)]
        for k, v in mahmr.items()
    }
    np.savez(tmp_path / "bev.npz", results=bev)
    expected = evaluate("rh", data("rh"), ours, "paper").metrics["pcdr@0.2/all"]
    for adapter, name in ((from_mahmr_rh_npz, "results.npz"), (from_bev_rh_npz, "bev.npz")):
        converted = adapter(tmp_path / name)
        assert converted.get("conf").tolist() == [1.0] * converted.num_people
        assert evaluate("rh", data("rh"), converted, "paper").metrics[
            "pcdr@0.2/all"
        ] == pytest.approx(expected)


def test_dto_adapter_drops_nan_rows_and_derives_keypoints(data, tmp_path, model_dir):
    rng = np.random.default_rng(0)
    k = np.array([[100.0, 0, 80], [0, 100.0, 60], [0, 0, 1]])
    entry = {
        "pose_cam": np.concatenate(
            [np.tile([np.pi, 0, 0], (3, 1)), rng.normal(0, 0.1, (3, 69))], 1
        ),
        "shape": rng.normal(0, 0.5, (3, 10)),
        "trans_cam": np.array([[0.0, 0.2, 4.0], [np.nan, 0.0, 5.0], [0.6, 0.2, 5.0]]),
        "cam_int": np.stack([k, 2 * k, 3 * k]),
    }
    np.savez(tmp_path / "dto.npz", annots={"some/dir/cp100003.jpg": entry, "x/bk00001.jpg": {}})
    preds = from_dto_npz(tmp_path / "dto.npz")
    assert preds.image_keys == ("cp100003.jpg", "bk00001.jpg")
    assert preds.meta["dropped_nan_people"] == 1 and preds.num_people == 2
    np.testing.assert_array_equal(preds.get("K"), np.stack([k, k]))  # the first person's K
    r = evaluate("rh", data("rh"), preds, "paper", model_dir=model_dir)
    assert r.metrics["n_matched"] + r.metrics["n_false_positives"] == 2
    assert json.dumps(preds.meta)


def test_derived_cp14_keypoints_match_a_direct_projection(models):
    from hmr_bench.body import pose_bodies
    from hmr_bench.joints import CP14_FROM_SMPL24
    from hmr_bench.protocols.derive import PredictionGeometry

    rng = np.random.default_rng(1)
    pose = np.concatenate([np.tile([np.pi, 0, 0], (2, 1)), rng.normal(0, 0.1, (2, 69))], 1)
    betas, transl = rng.normal(0, 0.5, (2, 10)), np.array([[0.0, 0.2, 4.0], [0.5, 0.2, 6.0]])
    k = np.tile(np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]]), (2, 1, 1))
    preds = Predictions(
        ("a",),
        np.array([0, 2]),
        {"conf": np.ones(2), "pose": pose, "betas": betas, "transl": transl, "K": k},
    )
    kp = PredictionGeometry(preds, models).kp2d(np.arange(2))
    bodies = pose_bodies(models.model(), betas, pose, transl)
    extra = np.einsum("kv,nvc->nkc", models.regressors.extra.weights, bodies.verts)
    joints = np.concatenate([bodies.joints24[:, list(CP14_FROM_SMPL24)], extra[:, [3, 2]]], 1)
    uv = joints @ k[0].T
    np.testing.assert_allclose(kp, uv[..., :2] / uv[..., 2:], atol=1e-9)
