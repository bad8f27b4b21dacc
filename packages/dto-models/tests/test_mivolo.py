"""MiVOLO v2 adapter: pure pre/post-processing on hand-computed cases, tiny model, weight files."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from dto_core.priors import PriorClass, prior_class
from dto_models.checkpoint import CheckpointError, manifest, read_manifest
from dto_models.image import IMAGENET_MEAN, IMAGENET_STD
from dto_models.mivolo import (
    CrossBottleneckAttn,
    MiVOLO,
    MiVOLOConfig,
    MiVOLOModel,
    age_gender_from_outputs,
    assign_faces,
    crop_box,
    estimate_face_boxes,
    letterbox_crop,
    prepare_inputs,
)
from dto_models.types import AgeGenderEstimator

FIXTURE = Path(__file__).parent / "fixtures" / "mivolo_v2_state_dict.json"
PREFIX = "mivolo.model."


def face_keypoints(nose, r_eye, l_eye, r_ear, l_ear, rng=None) -> np.ndarray:
    """(44,2) keypoints with the five face joints set and every other joint random."""
    rng = rng or np.random.default_rng(0)
    kp = rng.uniform(0, 200, size=(44, 2))
    kp[[0, 15, 16, 17, 18]] = [nose, r_eye, l_eye, r_ear, l_ear]
    return kp


FRONT = face_keypoints((50, 60), (45, 55), (55, 55), (40, 58), (62, 58))
BACK = face_keypoints((50, 60), (55, 55), (45, 55), (62, 58), (40, 58))  # eyes swapped


# --- face boxes from keypoints ---------------------------------------------------------------


def test_face_box_front_facing_hand_computed():
    # x in [40, 62] -> side 1.2 * 22 = 26.4; centre (51, 57.5); corners truncated toward zero
    boxes = estimate_face_boxes(FRONT[None])
    np.testing.assert_array_equal(boxes, [[37, 44, 64, 70]])
    assert boxes.dtype == np.int64


def test_face_box_back_facing_is_zero_and_rows_are_independent():
    boxes = estimate_face_boxes(np.stack([BACK, FRONT]))
    np.testing.assert_array_equal(boxes, [[0, 0, 0, 0], [37, 44, 64, 70]])


def test_face_box_truncates_toward_zero_like_int():
    # centre (0.5, 0.5), side 1.2 * 5 = 6 -> (-2.5, -2.5, 3.5, 3.5) -> int() gives (-2, -2, 3, 3)
    kp = face_keypoints((0.5, 0.5), (-2, 0.5), (3, 0.5), (-2, 0.5), (3, 0.5))
    np.testing.assert_array_equal(estimate_face_boxes(kp[None]), [[-2, -2, 3, 3]])


def test_face_box_moves_with_the_keypoints():
    shifted = FRONT + np.array([100.0, 30.0])
    np.testing.assert_array_equal(
        estimate_face_boxes(shifted[None]), estimate_face_boxes(FRONT[None]) + [100, 30, 100, 30]
    )


def test_face_box_rejects_wrong_shape():
    with pytest.raises(ValueError, match="44"):
        estimate_face_boxes(np.zeros((2, 17, 2)))


# --- face assignment ---------------------------------------------------------------------------


def test_assign_faces_hand_computed_with_zero_area_box():
    estimated = np.array([[0, 0, 10, 10], [0, 0, 0, 0], [100, 100, 110, 110]])
    # face 1 vs estimated 2: inter 81, union 119 -> (81/119 + 81/100) / 2 = 0.745 > 0.3
    faces = np.array([[0, 0, 10, 10], [101, 101, 111, 111], [0, 0, 3, 3]])
    np.testing.assert_array_equal(assign_faces(faces, estimated), [0, -1, 1])


def test_assign_faces_zero_area_only_no_nan_error():
    # upstream divides 0/0 here and SciPy raises on the NaN cost (spec A.13 item 2)
    estimated = np.zeros((2, 4))
    faces = np.array([[0, 0, 10, 10]])
    np.testing.assert_array_equal(assign_faces(faces, estimated), [-1, -1])


def test_assign_faces_threshold_is_strict_and_empty_inputs():
    estimated = np.array([[0, 0, 10, 10]])
    # inter 50, union 150: (1/3 + 1/2) / 2 = 0.4167 accepted; inter 30: (30/170 + 0.3)/2 rejected
    assert assign_faces(np.array([[5, 0, 15, 10]]), estimated).tolist() == [0]
    assert assign_faces(np.array([[7, 0, 17, 10]]), estimated).tolist() == [-1]
    # a cost exactly at the threshold is rejected (strict >)
    face = np.array([[0, 0, 10, 20]])  # inter 100, union 200: (0.5 + 1) / 2 = 0.75
    assert assign_faces(face, estimated, iou_thresh=0.75).tolist() == [-1]
    assert assign_faces(face, estimated, iou_thresh=0.7499).tolist() == [0]
    assert assign_faces(np.zeros((0, 4)), estimated).tolist() == [-1]
    assert assign_faces(face, np.zeros((0, 4))).tolist() == []


def _brute_force_assignment(faces, estimated, thresh):
    """Oracle: maximum-sum matching by enumerating all injective maps, then the threshold."""

    def cost(f, e):
        iw = max(0.0, min(f[2], e[2]) - max(f[0], e[0]))
        ih = max(0.0, min(f[3], e[3]) - max(f[1], e[1]))
        inter = iw * ih
        area_f = (f[2] - f[0]) * (f[3] - f[1])
        area_e = (e[2] - e[0]) * (e[3] - e[1])
        return (inter / (area_f + area_e - inter) + inter / area_e) / 2

    costs = [[cost(f, e) for e in estimated] for f in faces]
    best, best_sum = None, -1.0
    for cols in itertools.permutations(range(len(estimated)), len(faces)):
        total = sum(costs[r][c] for r, c in enumerate(cols))
        if total > best_sum:
            best, best_sum = cols, total
    out = [-1] * len(estimated)
    for r, c in enumerate(best):
        if costs[r][c] > thresh:
            out[c] = r
    return out


@pytest.mark.parametrize("seed", range(6))
def test_assign_faces_matches_brute_force_optimum(seed):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 60, size=(4, 2))
    sizes = rng.uniform(8, 20, size=(4, 1))
    estimated = np.hstack([centres - sizes / 2, centres + sizes / 2])
    jitter = rng.normal(0, 4, size=(3, 4))
    faces = estimated[rng.permutation(4)[:3]] + jitter
    faces[:, 2:] = np.maximum(faces[:, 2:], faces[:, :2] + 1)
    expected = _brute_force_assignment(faces, estimated, 0.3)
    assert assign_faces(faces, estimated).tolist() == expected


# --- post-processing -------------------------------------------------------------------------


def test_flip_averaging_and_p_male_on_fabricated_logits():
    raw = np.array(
        [
            [2.0, 0.0, 0.1],  # person 0 original: male, p = sigmoid(2)
            [0.0, 1.0, -0.2],  # person 1 original: female, p_female = sigmoid(1)
            [0.0, 3.0, 0.3],  # person 0 flipped: female, p_female = sigmoid(3)
            [0.5, 0.5, 0.0],  # person 1 flipped: tie -> 0.5
        ]
    )
    out = age_gender_from_outputs(raw, min_age=0.0, max_age=100.0, avg_age=50.0)

    def sigmoid(x):
        return 1 / (1 + math.exp(-x))

    np.testing.assert_allclose(out.age, [(60 + 80) / 2, (30 + 50) / 2], rtol=1e-6)
    np.testing.assert_allclose(
        out.p_male, [(sigmoid(2) + 1 - sigmoid(3)) / 2, (1 - sigmoid(1) + 0.5) / 2], rtol=1e-6
    )
    assert out.age.dtype == np.float32 and out.p_male.dtype == np.float32


def test_age_scaling_uses_min_max_avg():
    raw = np.array([[0.0, 0.0, 0.25], [0.0, 0.0, 0.25]])
    out = age_gender_from_outputs(raw, min_age=1.0, max_age=95.0, avg_age=48.0)
    np.testing.assert_allclose(out.age, [0.25 * 94 + 48], rtol=1e-6)


def test_outputs_must_be_even_rows_of_three():
    with pytest.raises(ValueError, match="2n"):
        age_gender_from_outputs(np.zeros((3, 3)), 0, 100, 50)


def test_p_male_and_age_feed_the_prior_classes():
    # p_male 0.2 / 0.5 / 0.8 -> female / neutral / male adults (thresholds 0.33 / 0.67), age
    # 2 -> baby; every row is repeated as its own "flipped" sample so the means are the values
    def row(p_male, age):
        return [math.log(p_male / (1 - p_male)), 0.0, (age - 50.0) / 100.0]

    people = [(0.2, 30.0), (0.5, 30.0), (0.8, 30.0), (0.8, 2.0), (0.32, 40.0), (0.68, 40.0)]
    raw = np.array([row(p, a) for p, a in people] * 2)
    out = age_gender_from_outputs(raw, 0.0, 100.0, 50.0)
    np.testing.assert_allclose(out.p_male, [p for p, _ in people], rtol=1e-5)
    classes = prior_class(out.age, out.p_male)
    assert classes.tolist() == [
        PriorClass.ADULT_FEMALE,
        PriorClass.ADULT_NEUTRAL,
        PriorClass.ADULT_MALE,
        PriorClass.BABY,
        PriorClass.ADULT_FEMALE,
        PriorClass.ADULT_MALE,
    ]


# --- pre-processing --------------------------------------------------------------------------


def test_letterbox_wide_crop_is_centred_vertically():
    crop = np.full((10, 20, 3), 200, dtype=np.uint8)
    out = letterbox_crop(crop, size=40)  # r = 2 -> 40 x 20 content, 10 px black above and below
    assert out.shape == (40, 40, 3) and out.dtype == np.uint8
    assert (out[:10] == 0).all() and (out[30:] == 0).all() and (out[10:30] == 200).all()


def test_letterbox_odd_padding_extra_pixel_bottom_right_and_channels_kept():
    rng = np.random.default_rng(0)
    crop = rng.integers(1, 256, size=(13, 40, 3), dtype=np.uint8)
    out = letterbox_crop(crop, size=40)  # r = 1: pad 27 = 13 top + 14 bottom, content unchanged
    np.testing.assert_array_equal(out[13:26], crop)
    assert (out[:13] == 0).all() and (out[26:] == 0).all()
    tall = rng.integers(1, 256, size=(40, 13, 3), dtype=np.uint8)
    out = letterbox_crop(tall, size=40)
    np.testing.assert_array_equal(out[:, 13:26], tall)
    assert (out[:, :13] == 0).all() and (out[:, 26:] == 0).all()


def test_letterbox_upscales_bilinear_and_degenerate_side():
    crop = np.zeros((2, 2, 3), dtype=np.uint8)
    crop[:, 1] = 100
    out = letterbox_crop(crop, size=8)  # x4 upscale fills the square, bilinear ramp in x
    assert out.shape == (8, 8, 3)
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 100 and 0 < out[0, 4, 0] < 100
    assert np.array_equal(out[0], out[-1])
    assert letterbox_crop(np.ones((1, 1000, 3), np.uint8), size=16).shape == (16, 16, 3)


def test_prepare_inputs_normalisation_and_none():
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    crop = np.zeros((8, 8, 3), dtype=np.uint8)
    crop[..., 0] = 255  # red, kept in channel 0 (our crops are already RGB)
    out = prepare_inputs([crop, None], size=8)
    assert out.shape == (2, 3, 8, 8) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0], (1 - mean[0]) / std[0], rtol=1e-6)
    np.testing.assert_allclose(out[0, 1], -mean[1] / std[1], rtol=1e-6)
    np.testing.assert_allclose(out[1], np.broadcast_to((-mean / std)[:, None, None], (3, 8, 8)))
    np.testing.assert_array_equal(out[1], prepare_inputs([np.zeros((8, 8, 3), np.uint8)], 8)[0])


def test_prepare_inputs_rejects_empty_and_bad_crops():
    with pytest.raises(ValueError, match="empty"):
        prepare_inputs([np.zeros((0, 5, 3), np.uint8)], size=8)
    with pytest.raises(ValueError, match="uint8"):
        prepare_inputs([np.zeros((4, 5, 3), np.float32)], size=8)


def test_crop_box_truncates_and_clips():
    image = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    np.testing.assert_array_equal(crop_box(image, (-3.7, 2.9, 5.5, 100)), image[2:10, 0:5])
    assert crop_box(image, (0, 0, 0, 0)) is None
    assert crop_box(image, (20, 20, 30, 30)) is None


# --- network ---------------------------------------------------------------------------------


def test_cross_attention_face_queries_attend_body_keys():
    """Oracle: explicit loops with relative-position logits q.(h_rel[ky-qy] + w_rel[kx-qx])."""
    torch.manual_seed(0)
    attn = CrossBottleneckAttn(8, 8, feat_size=(2, 3)).eval()
    x = torch.randn(1, 16, 2, 3)
    face, body = x[:, :8], x[:, 8:]
    q_f, _, _ = attn.qkv_f(face).split(8, dim=1)
    _, k_p, v_p = attn.qkv_p(body).split(8, dim=1)
    q_p, _, _ = attn.qkv_p(body).split(8, dim=1)
    _, k_f, v_f = attn.qkv_f(face).split(8, dim=1)
    h_rel, w_rel = attn.pos_embed.height_rel, attn.pos_embed.width_rel

    def naive(q, k, v):
        pos = [(y, x) for y in range(2) for x in range(3)]
        out = torch.zeros(8, 2, 3)
        for qy, qx in pos:
            qv = q[0, :, qy, qx]
            logits = torch.stack(
                [
                    (qv @ k[0, :, ky, kx]) * attn.scale
                    + qv @ h_rel[ky - qy + 1]
                    + qv @ w_rel[kx - qx + 2]
                    for ky, kx in pos
                ]
            )
            w = logits.softmax(0)
            out[:, qy, qx] = sum(w[i] * v[0, :, ky, kx] for i, (ky, kx) in enumerate(pos))
        return out

    fused = torch.cat([naive(q_f, k_p, v_p), naive(q_p, k_f, v_f)])[None]
    with torch.no_grad():
        expected = attn.mlp(attn.norm(fused))
        torch.testing.assert_close(attn(x), expected, rtol=1e-5, atol=1e-5)


def test_tiny_model_shapes_and_token_grid():
    model = MiVOLOModel(MiVOLOConfig.tiny()).eval()
    assert model.patch_embed.map.pos_embed.height == 8  # 64 px / patch 8
    assert tuple(model.pos_embed.shape) == (1, 4, 4, 32)
    with torch.no_grad():
        out = model(torch.randn(3, 6, 64, 64))
    assert out.shape == (3, 3) and out.dtype == torch.float32
    with pytest.raises(ValueError, match="tokens"):
        model(torch.randn(1, 6, 96, 96))


def make_scene(rng, n=3, size=(120, 160)):
    image = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
    boxes = np.array([[5.3, 4.1, 60.9, 110.2], [50.0, 10.0, 150.5, 119.0], [-10, -5, 30, 40]])[:n]
    keypoints = np.stack(
        [
            face_keypoints((30, 20), (26, 16), (34, 16), (22, 18), (38, 18), rng),
            face_keypoints((100, 30), (108, 25), (92, 25), (112, 28), (88, 28), rng),  # away
            face_keypoints((10, 10), (6, 6), (14, 6), (2, 8), (18, 8), rng),
        ]
    )[:n]
    return image, boxes, keypoints


@pytest.fixture(scope="module")
def tiny():
    return MiVOLO.tiny(seed=0, device="cpu")


def test_tiny_estimate_shapes_protocol_and_empty(tiny):
    image, boxes, keypoints = make_scene(np.random.default_rng(0))
    assert isinstance(tiny, AgeGenderEstimator)
    out = tiny.estimate(image, boxes, keypoints)
    assert out.age.shape == (3,) and out.p_male.shape == (3,)
    assert out.age.dtype == np.float32 and out.p_male.dtype == np.float32
    assert ((out.p_male >= 0) & (out.p_male <= 1)).all()
    empty = tiny.estimate(image, np.zeros((0, 4)), np.zeros((0, 44, 2)))
    assert empty.age.shape == (0,) and empty.p_male.shape == (0,)
    assert empty.age.dtype == np.float32
    with pytest.raises(ValueError, match="keypoints"):
        tiny.estimate(image, boxes, keypoints[:2])


def test_estimate_equals_manual_pipeline_with_flips_and_detector_faces(tiny):
    image, boxes, keypoints = make_scene(np.random.default_rng(1))
    detector_faces = np.array([[20.0, 10.0, 41.0, 31.0], [140.0, 100.0, 150.0, 110.0]])
    out = tiny.estimate(image, boxes, keypoints, face_boxes=detector_faces)

    estimated = estimate_face_boxes(keypoints)
    assert assign_faces(detector_faces, estimated).tolist() == [0, -1, -1]
    faces = [image[10:31, 20:41], None, crop_box(image, estimated[2])]  # person 1 faces away
    bodies = [image[4:110, 5:60], image[10:119, 50:150], image[0:40, 0:30]]

    def flipped(crops):
        return [None if c is None else c[:, ::-1].copy() for c in crops]

    f = torch.from_numpy(prepare_inputs(faces + flipped(faces), 64))
    b = torch.from_numpy(prepare_inputs(bodies + flipped(bodies), 64))
    with torch.no_grad():
        raw = tiny.model(torch.cat([f, b], dim=1)).numpy()
    expected = age_gender_from_outputs(raw, 0.0, 100.0, 50.0)
    np.testing.assert_allclose(out.age, expected.age, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.p_male, expected.p_male, rtol=1e-5, atol=1e-6)
    # the flipped half matters: without it the result differs
    no_flip = age_gender_from_outputs(np.concatenate([raw[:3], raw[:3]]), 0.0, 100.0, 50.0)
    assert not np.allclose(no_flip.age, expected.age, atol=1e-4)


def test_batch_equals_one_by_one_and_chunking(tiny):
    image, boxes, keypoints = make_scene(np.random.default_rng(2))
    together = tiny.estimate(image, boxes, keypoints)
    single = [tiny.estimate(image, boxes[i : i + 1], keypoints[i : i + 1]) for i in range(3)]
    np.testing.assert_allclose(together.age, [s.age[0] for s in single], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(together.p_male, [s.p_male[0] for s in single], atol=1e-6)
    chunked = MiVOLO(tiny.model, tiny.config, device="cpu", batch_size=4)  # 6 samples -> 4 + 2
    out = chunked.estimate(image, boxes, keypoints)
    np.testing.assert_allclose(out.age, together.age, rtol=1e-5, atol=1e-5)


def test_outputs_move_with_the_image_content(tiny):
    image, boxes, keypoints = make_scene(np.random.default_rng(3), n=2)
    shifted = np.zeros((150, 200, 3), dtype=np.uint8)
    shifted[17:137, 23:183] = image
    out = tiny.estimate(image, boxes, keypoints)
    moved = tiny.estimate(shifted, boxes + [23, 17, 23, 17], keypoints + [23, 17])
    np.testing.assert_allclose(moved.age, out.age, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(moved.p_male, out.p_male, atol=1e-6)


def test_grayscale_image_and_box_outside_image(tiny):
    rng = np.random.default_rng(4)
    gray = rng.integers(0, 256, size=(50, 60), dtype=np.uint8)
    box = np.array([[100.0, 100.0, 120.0, 120.0]])  # no pixels -> body None, face None
    out = tiny.estimate(
        gray, box, face_keypoints((110, 110), (106, 106), (114, 106), (102, 108), (118, 108))[None]
    )
    assert out.age.shape == (1,) and np.isfinite(out.age).all()
    rgb = tiny.estimate(np.repeat(gray[..., None], 3, axis=2), box, BACK[None])
    np.testing.assert_allclose(out.age, rgb.age, rtol=1e-6)


def test_tiny_is_deterministic_per_seed():
    a, b, c = MiVOLO.tiny(seed=0), MiVOLO.tiny(seed=0), MiVOLO.tiny(seed=1)
    for (name, x), y in zip(
        a.model.state_dict().items(), b.model.state_dict().values(), strict=True
    ):
        assert torch.equal(x, y), name
    assert not torch.equal(a.model.head.weight, c.model.head.weight)
    image, boxes, keypoints = make_scene(np.random.default_rng(5))
    first, second = a.estimate(image, boxes, keypoints), a.estimate(image, boxes, keypoints)
    np.testing.assert_array_equal(first.age, second.age)
    np.testing.assert_array_equal(first.p_male, second.p_male)


# --- weight files ----------------------------------------------------------------------------


def test_full_size_manifest_on_meta_equals_fixture():
    with torch.device("meta"):
        model = MiVOLOModel(MiVOLOConfig())
    ours = {PREFIX + k: v for k, v in manifest(model).items()}
    assert ours == read_manifest(FIXTURE)
    assert ours[PREFIX + "patch_embed.map.norm.weight"] == (384, 48, 48)
    assert ours[PREFIX + "patch_embed.map.pos_embed.height_rel"] == (95, 192)
    assert ours[PREFIX + "pos_embed"] == (1, 24, 24, 384)
    assert ours[PREFIX + "head.weight"] == (3, 384)


def write_tiny_checkpoint(tmp_path: Path, state: dict[str, torch.Tensor], ages=None) -> Path:
    save_file(
        {PREFIX + k: v.contiguous() for k, v in state.items()}, tmp_path / "model.safetensors"
    )
    config = {"model_name": "mivolo_tiny", "num_classes": 3, "in_chans": 6, "input_size": 64}
    config.update(ages or {})
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def random_tiny_state(seed: int = 7) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = MiVOLOModel(MiVOLOConfig.tiny()).state_dict()
    return {
        k: (torch.randn(v.shape, generator=gen) if v.is_floating_point() else v.clone())
        for k, v in state.items()
    }


def test_tiny_safetensors_round_trip_with_prefix_and_config_ages(tmp_path):
    state = random_tiny_state()
    ages = {"min_age": 2, "max_age": 90, "avg_age": 40.5}
    path = write_tiny_checkpoint(tmp_path, state, ages)
    loaded = MiVOLO.from_pretrained(path, device="cpu", config=MiVOLOConfig.tiny())
    for k, v in loaded.model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert (loaded.config.min_age, loaded.config.max_age, loaded.config.avg_age) == (2, 90, 40.5)
    by_file = MiVOLO.from_pretrained(path / "model.safetensors", config=MiVOLOConfig.tiny())
    assert torch.equal(by_file.model.head.weight, state["head.weight"])


def test_missing_batchnorm_counters_are_tolerated(tmp_path):
    state = {k: v for k, v in random_tiny_state().items() if "num_batches_tracked" not in k}
    loaded = MiVOLO.from_pretrained(
        write_tiny_checkpoint(tmp_path, state), config=MiVOLOConfig.tiny()
    )
    assert torch.equal(loaded.model.head.bias, state["head.bias"])


def test_missing_and_misshaped_keys_are_named(tmp_path):
    state = random_tiny_state()
    missing = {k: v for k, v in state.items() if k != "patch_embed.map.qkv_f.weight"}
    with pytest.raises(CheckpointError, match=r"patch_embed\.map\.qkv_f\.weight"):
        MiVOLO.from_pretrained(write_tiny_checkpoint(tmp_path, missing), config=MiVOLOConfig.tiny())
    bad = dict(state, **{"head.weight": torch.zeros(4, 32)})
    with pytest.raises(CheckpointError, match=r"head\.weight"):
        MiVOLO.from_pretrained(write_tiny_checkpoint(tmp_path, bad), config=MiVOLOConfig.tiny())


def test_config_json_of_another_model_is_rejected(tmp_path):
    path = write_tiny_checkpoint(tmp_path, random_tiny_state(), {"only_age": True})
    with pytest.raises(ValueError, match="only_age"):
        MiVOLO.from_pretrained(path, config=MiVOLOConfig.tiny())
