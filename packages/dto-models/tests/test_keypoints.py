"""ViTPose adapter, its NumPy pre/post-processing (oracle: transformers' VitPoseImageProcessor),
the >= 5 visible-joints filter and the keypoint NMS (spec B.2, B.3, B.10 items 4-5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file
from transformers import VitPoseForPoseEstimation, VitPoseImageProcessor
from transformers.models.vitpose.modeling_vitpose import VitPoseEstimatorOutput

from dto_models import CheckpointError, Detections, ImageError, KeypointEstimator
from dto_models.checkpoint import manifest
from dto_models.keypoints import (
    ViTPoseConfig,
    ViTPoseEstimator,
    box_to_center_size,
    enough_visible,
    nms_kp2d,
    postprocess,
    preprocess,
    udp_to_image,
    warp_person,
    xyxy_to_xywh,
)

RNG = np.random.default_rng(7)
IMAGE = RNG.integers(0, 256, (120, 160, 3), dtype=np.uint8)
# inside, tall, wide, partly outside the image, tiny
BOXES = np.array(
    [
        [30.3, 20.7, 70.5, 111.6],
        [100.0, 10.0, 158.0, 40.0],
        [-10.0, 50.0, 60.0, 140.0],
        [5.0, 5.0, 7.5, 9.0],
    ],
    dtype=np.float32,
)


@pytest.fixture(scope="module")
def tiny() -> ViTPoseEstimator:
    return ViTPoseEstimator.tiny(seed=0)


def _processor(config: ViTPoseConfig) -> VitPoseImageProcessor:
    height, width = config.input_size
    return VitPoseImageProcessor(size={"height": height, "width": width})


ONE_LEVEL = 1 / 255 / min(ViTPoseConfig().image_std) + 1e-5  # one uint8 step after normalising


def _assert_same_pixels(ours: np.ndarray, processor: np.ndarray, fraction: float = 1e-4) -> None:
    """Equal up to rare one-level uint8 rounding flips: reading only the box's neighbourhood
    shifts the sample positions' float rounding, which can tip an exact .5 tie."""
    diff = np.abs(ours - processor)
    assert diff.max() <= ONE_LEVEL
    assert (diff > 1e-5).mean() < fraction


def _blob_heatmaps(peaks: np.ndarray, size: tuple[int, int], sigma: float = 2.0) -> np.ndarray:
    """Gaussian blobs (N,K,h,w) centred on `peaks` (N,K,2) (x, y heatmap pixels)."""
    yy, xx = np.mgrid[: size[0], : size[1]]
    dx = xx - peaks[..., 0, None, None]
    dy = yy - peaks[..., 1, None, None]
    return np.exp(-(dx**2 + dy**2) / (2 * sigma**2)).astype(np.float32)


# Pre-processing against the transformers processor


def test_box_enlargement_by_hand() -> None:
    # 30 x 80 box: taller than 3:4, so widened to 60 x 80, then x1.25 -> 75 x 100
    centers, sizes = box_to_center_size(np.array([[10.0, 20.0, 30.0, 80.0]]))
    np.testing.assert_allclose(centers, [[25.0, 60.0]])
    np.testing.assert_allclose(sizes, [[75.0, 100.0]], rtol=1e-6)
    # 120 x 40 box: wider, heightened to 120 x 160 -> 150 x 200
    _, sizes = box_to_center_size(np.array([[0.0, 0.0, 120.0, 40.0]]))
    np.testing.assert_allclose(sizes, [[150.0, 200.0]], rtol=1e-6)


@pytest.mark.parametrize("config", [ViTPoseConfig.base(), ViTPoseConfig.tiny()])
def test_preprocess_matches_transformers_processor(config: ViTPoseConfig) -> None:
    expected = _processor(config)(
        images=[IMAGE], boxes=[xyxy_to_xywh(BOXES).tolist()], return_tensors="np"
    ).pixel_values
    pixels, _, _ = preprocess(IMAGE, BOXES, config=config)
    assert pixels.shape == (len(BOXES), 3, *config.input_size) and pixels.dtype == np.float32
    _assert_same_pixels(pixels, expected)


def test_masked_copy_per_person_matches_processor_on_masked_images() -> None:
    masks = np.zeros((len(BOXES), *IMAGE.shape[:2]), bool)
    for n, (x1, y1, x2, y2) in enumerate(BOXES.astype(int)):
        masks[n, max(y1, 0) : y2, max(x1, 0) : x2] = True
    masks[0, 40:60, 40:50] = False
    copies = [IMAGE * mask[..., None] for mask in masks]  # DTO: one masked copy per person
    boxes = [[box] for box in xyxy_to_xywh(BOXES).tolist()]
    config = ViTPoseConfig.base()
    expected = _processor(config)(images=copies, boxes=boxes, return_tensors="np").pixel_values
    pixels, _, _ = preprocess(IMAGE, BOXES, masks, config)
    _assert_same_pixels(pixels, expected)


def test_large_image_matches_processor() -> None:
    # the warp reads only each box's neighbourhood; the processor warps the whole image
    large = np.zeros((1500, 2000, 3), np.uint8)
    large[1000:1120, 1500:1660] = IMAGE
    boxes = BOXES + np.array([1500, 1000, 1500, 1000], np.float32)
    config = ViTPoseConfig.base()
    expected = _processor(config)(
        images=[large], boxes=[xyxy_to_xywh(boxes).tolist()], return_tensors="np"
    ).pixel_values
    _assert_same_pixels(preprocess(large, boxes, config=config)[0], expected)


def test_box_outside_the_image_gives_a_black_crop() -> None:
    crop = warp_person(IMAGE, None, np.array([500.0, 500.0]), np.array([30.0, 40.0]))
    assert crop.shape == (256, 192, 3) and not crop.any()


# Post-processing: synthetic heatmaps


def test_postprocess_matches_transformers_processor() -> None:
    config = ViTPoseConfig.base()
    peaks = RNG.uniform([3, 3], [44, 60], size=(len(BOXES), 17, 2))
    heatmaps = _blob_heatmaps(peaks, config.heatmap_size)
    heatmaps += 0.05 * RNG.random(heatmaps.shape, dtype=np.float32)
    results = _processor(config).post_process_pose_estimation(
        VitPoseEstimatorOutput(heatmaps=torch.from_numpy(heatmaps)),
        boxes=[xyxy_to_xywh(BOXES).tolist()],
    )[0]
    centers, sizes = box_to_center_size(xyxy_to_xywh(BOXES))
    keypoints, scores = postprocess(heatmaps, centers, sizes)
    assert keypoints.dtype == scores.dtype == np.float32
    np.testing.assert_allclose(keypoints, np.stack([r["keypoints"] for r in results]), atol=1e-3)
    np.testing.assert_allclose(scores, np.stack([r["scores"] for r in results]), atol=1e-6)


def test_known_peak_lands_on_the_udp_pixel() -> None:
    # box 40 x 100 at (50, 20): widened to 75 x 100, x1.25 -> 93.75 x 125, centre (70, 70)
    boxes = np.array([[50.0, 20.0, 90.0, 120.0]])
    centers, sizes = box_to_center_size(xyxy_to_xywh(boxes))
    np.testing.assert_allclose(sizes, [[93.75, 125.0]])
    heatmaps = np.zeros((1, 17, 64, 48), np.float32)
    heatmaps[0, :, 30, 20] = 0.9  # a single symmetric peak: DARK's gradient is 0 there
    keypoints, scores = postprocess(heatmaps, centers, sizes)
    expected = [20 * 93.75 / 47 + 70 - 93.75 / 2, 30 * 125 / 63 + 70 - 125 / 2]
    np.testing.assert_allclose(keypoints[0], np.tile(expected, (17, 1)), atol=1e-4)
    np.testing.assert_allclose(scores, 0.9)


def test_dark_recovers_a_subpixel_gaussian_peak() -> None:
    peak = np.array([[[20.3, 30.6]]])
    heatmaps = _blob_heatmaps(peak, (64, 48))
    centers, sizes = np.array([[23.5, 31.5]]), np.array([[47.0, 63.0]])  # heatmap = image pixels
    keypoints, _ = postprocess(heatmaps, centers, sizes)
    np.testing.assert_allclose(keypoints[0, 0], peak[0, 0], atol=0.05)
    assert abs(keypoints[0, 0, 0] - 20.0) > 0.2  # refined, not the argmax


def test_udp_maps_heatmap_corners_to_enlarged_box_corners() -> None:
    centers, sizes = np.array([[100.0, 50.0]]), np.array([[60.0, 80.0]])
    corners = np.array([[[0.0, 0.0], [47.0, 63.0]]])
    np.testing.assert_allclose(
        udp_to_image(corners, centers, sizes, (64, 48)), [[[70.0, 10.0], [130.0, 90.0]]]
    )


def test_enough_visible_counts_scores_at_least_half() -> None:
    scores = np.zeros((4, 17), np.float32)
    scores[0, :5] = 0.5  # exactly 5 at the threshold: kept
    scores[1, :4] = 0.9  # 4 visible: dropped
    scores[2, :5] = 0.4999  # below the threshold: dropped
    scores[3, :] = 1.0
    np.testing.assert_array_equal(enough_visible(scores), [True, False, False, True])
    assert enough_visible(np.zeros((0, 17))).shape == (0,)


# Keypoint NMS (B.3)


def _person(shift: float = 0.0, side: float = 100.0) -> np.ndarray:
    base = np.linspace([10.0, 10.0], [90.0, 90.0], 17)
    return np.concatenate([base + [shift, 0.0], np.ones((17, 1))], axis=1)


BOX = np.array([0.0, 0.0, 50.0, 100.0])  # longer side 100 -> threshold 0.075 * 100 = 7.5 px


def test_nms_identical_duplicates_suppressed() -> None:
    keypoints = np.stack([_person(), _person()])
    kept = nms_kp2d(keypoints, np.array([0.8, 0.9]), np.stack([BOX, BOX]))
    np.testing.assert_array_equal(kept, [1])
    assert kept.dtype == np.int64


@pytest.mark.parametrize(
    ("shift", "kept"), [(7.0, [0]), (7.49, [0]), (7.51, [0, 1]), (8.0, [0, 1])]
)
def test_nms_threshold_is_0075_of_the_longer_side(shift: float, kept: list[int]) -> None:
    keypoints = np.stack([_person(), _person(shift)])
    np.testing.assert_array_equal(nms_kp2d(keypoints, np.array([0.9, 0.8]), [BOX, BOX]), kept)


def test_nms_threshold_uses_the_kept_persons_box() -> None:
    keypoints = np.stack([_person(), _person(8.0)])
    small = np.array([0.0, 0.0, 50.0, 100.0])
    large = np.array([0.0, 0.0, 200.0, 120.0])  # 0.075 * 200 = 15 px
    np.testing.assert_array_equal(nms_kp2d(keypoints, [0.9, 0.8], [large, small]), [0])
    np.testing.assert_array_equal(nms_kp2d(keypoints, [0.8, 0.9], [large, small]), [1, 0])


def test_nms_uses_joints_visible_in_both() -> None:
    a, b = _person(), _person(3.0)
    b[8:, :2] += 100.0  # far away, but invisible in b: ignored
    b[8:, 2] = 0.2
    np.testing.assert_array_equal(nms_kp2d(np.stack([a, b]), [0.9, 0.8], [BOX, BOX]), [0])
    b[8:, 2] = 0.5  # now visible in both: mean distance is large
    np.testing.assert_array_equal(nms_kp2d(np.stack([a, b]), [0.9, 0.8], [BOX, BOX]), [0, 1])


def test_nms_without_common_visible_joints_averages_all_joints() -> None:
    a, b = _person(), _person()
    a[:9, 2], a[9:, 2] = 1.0, 0.0
    b[:9, 2], b[9:, 2] = 0.0, 1.0
    b[:9, 0] += 17 * 7.0 / 9  # mean over all 17 joints: 7.0 < 7.5 -> suppressed
    np.testing.assert_array_equal(nms_kp2d(np.stack([a, b]), [0.9, 0.8], [BOX, BOX]), [0])
    b[:9, 0] += 17 * 1.0 / 9  # mean 8.0 -> kept
    np.testing.assert_array_equal(nms_kp2d(np.stack([a, b]), [0.9, 0.8], [BOX, BOX]), [0, 1])


def test_nms_two_column_keypoints_use_all_joints_and_empty_input() -> None:
    keypoints = np.stack([_person()[:, :2], _person(7.0)[:, :2], _person(30.0)[:, :2]])
    kept = nms_kp2d(keypoints, [0.5, 0.9, 0.7], [BOX, BOX, BOX])
    np.testing.assert_array_equal(kept, [1, 2])  # 1 suppresses 0 (7 px); 2 is 23 px away
    assert nms_kp2d(np.zeros((0, 17, 3)), np.zeros(0), np.zeros((0, 4))).shape == (0,)


def _greedy_is_consistent(keypoints, scores, boxes, kept) -> bool:
    """Characterisation of greedy NMS: walking by descending score, a person is kept exactly when
    no already-kept person suppresses it."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    survivors: list[int] = []
    for c in order:
        suppressed = False
        for b in survivors:
            side = max(boxes[b][2] - boxes[b][0], boxes[b][3] - boxes[b][1])
            common = (keypoints[b, :, 2] >= 0.5) & (keypoints[c, :, 2] >= 0.5)
            joints = common if common.any() else np.ones(len(common), bool)
            d = np.linalg.norm(keypoints[b, joints, :2] - keypoints[c, joints, :2], axis=1).mean()
            suppressed |= d < side * 0.075
        if not suppressed:
            survivors.append(int(c))
    return survivors == list(kept)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 8))
def test_nms_property_greedy_and_order_independent(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    centre = rng.uniform(0, 30, size=(n, 1, 2))  # close centres: many suppressions
    keypoints = np.concatenate(
        [centre + rng.normal(0, 2, (n, 5, 2)), rng.choice([0.2, 0.9], (n, 5, 1))], axis=2
    )
    scores = rng.permutation(n) / n + 0.01  # distinct
    corner = rng.uniform(0, 50, (n, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(20, 120, (n, 2))], axis=1)
    kept = nms_kp2d(keypoints, scores, boxes)
    assert _greedy_is_consistent(keypoints, scores, boxes, kept)
    perm = rng.permutation(n)
    kept_perm = nms_kp2d(keypoints[perm], scores[perm], boxes[perm])
    np.testing.assert_array_equal(perm[kept_perm], kept)


# The tiny model and the adapter


def _detections(boxes: np.ndarray, masks: np.ndarray | None) -> Detections:
    return Detections(boxes, np.ones(len(boxes), np.float32), masks)


def test_tiny_shapes_dtypes_and_protocol(tiny: ViTPoseEstimator) -> None:
    assert isinstance(tiny, KeypointEstimator)
    heatmaps = tiny.forward(torch.zeros(2, 3, 64, 48))
    assert heatmaps.shape == (2, 17, 16, 12) and heatmaps.dtype == torch.float32
    out = tiny.estimate(IMAGE, _detections(BOXES, None))
    assert out.keypoints.shape == (4, 17, 2) and out.keypoints.dtype == np.float32
    assert out.scores.shape == (4, 17) and out.scores.dtype == np.float32
    np.testing.assert_array_equal(out.boxes_xyxy, BOXES)
    assert np.isfinite(out.keypoints).all()


def test_adapter_equals_preprocess_forward_postprocess(tiny: ViTPoseEstimator) -> None:
    pixels, centers, sizes = preprocess(IMAGE, BOXES, config=tiny.config)
    with torch.no_grad():
        heatmaps = tiny.model(torch.from_numpy(pixels)).heatmaps.numpy()
    keypoints, scores = postprocess(heatmaps, centers, sizes)
    out = tiny.estimate(IMAGE, _detections(BOXES, None))
    np.testing.assert_allclose(out.keypoints, keypoints, atol=1e-4)
    np.testing.assert_allclose(out.scores, scores, atol=1e-6)


def test_masks_hide_everything_outside_the_person(tiny: ViTPoseEstimator) -> None:
    masks = np.zeros((1, *IMAGE.shape[:2]), bool)
    masks[0, 30:100, 35:65] = True
    other = IMAGE.copy()
    other[~masks[0]] = 255 - other[~masks[0]]
    first = tiny.estimate(IMAGE, _detections(BOXES[:1], masks))
    second = tiny.estimate(other, _detections(BOXES[:1], masks))
    np.testing.assert_array_equal(first.keypoints, second.keypoints)
    unmasked = tiny.estimate(other, _detections(BOXES[:1], None))
    assert not np.allclose(unmasked.keypoints, first.keypoints)


def test_keypoints_move_with_the_image(tiny: ViTPoseEstimator) -> None:
    big = np.zeros((300, 400, 3), np.uint8)
    big[100:220, 150:310] = IMAGE
    boxes = np.array([[60.0, 40.0, 90.0, 80.0], [20.0, 30.0, 50.0, 70.0]], np.float32)
    moved_boxes = boxes + np.array([150, 100, 150, 100], np.float32)
    # both enlarged boxes lie inside IMAGE: the crops are the same pixels up to the float32
    # warp matrix's rounding of the larger translation (as in the processor)
    crops = preprocess(IMAGE, boxes, config=tiny.config)[0]
    _assert_same_pixels(preprocess(big, moved_boxes, config=tiny.config)[0], crops, 1e-2)
    base = tiny.estimate(IMAGE, _detections(boxes, None))
    moved = tiny.estimate(big, _detections(moved_boxes, None))
    np.testing.assert_allclose(moved.keypoints, base.keypoints + [150, 100], atol=0.05)
    np.testing.assert_allclose(moved.scores, base.scores, atol=1e-3)


def test_batch_equals_one_by_one_and_is_deterministic() -> None:
    masks = RNG.random((len(BOXES), *IMAGE.shape[:2])) > 0.3
    batched = ViTPoseEstimator.tiny(seed=3, batch_size=16).estimate(
        IMAGE, _detections(BOXES, masks)
    )
    single = ViTPoseEstimator.tiny(seed=3, batch_size=1).estimate(IMAGE, _detections(BOXES, masks))
    np.testing.assert_allclose(batched.keypoints, single.keypoints, atol=1e-3)
    np.testing.assert_allclose(batched.scores, single.scores, atol=1e-5)
    other = ViTPoseEstimator.tiny(seed=4).estimate(IMAGE, _detections(BOXES, masks))
    assert not np.allclose(other.scores, batched.scores)


def test_bad_inputs(tiny: ViTPoseEstimator) -> None:
    none = tiny.estimate(IMAGE, _detections(np.zeros((0, 4), np.float32), np.zeros((0, 120, 160))))
    assert none.keypoints.shape == (0, 17, 2) and none.scores.shape == (0, 17)
    assert none.boxes_xyxy.shape == (0, 4)
    gray = tiny.estimate(IMAGE[..., 0], _detections(BOXES[:1], None))
    rgb = tiny.estimate(np.repeat(IMAGE[..., :1], 3, axis=2), _detections(BOXES[:1], None))
    np.testing.assert_array_equal(gray.keypoints, rgb.keypoints)
    with pytest.raises(ImageError):
        tiny.estimate(np.zeros((0, 5, 3), np.uint8), _detections(BOXES[:1], None))
    with pytest.raises(ValueError, match="masks"):
        tiny.estimate(IMAGE, _detections(BOXES[:2], np.ones((1, 120, 160), bool)))


# Checkpoints


def test_full_size_layout_on_meta() -> None:
    with torch.device("meta"):
        model = VitPoseForPoseEstimation(ViTPoseConfig.base().to_hf())
    layout = manifest(model)
    d, layers, tokens = 768, 12, (256 // 16) * (192 // 16)
    per_layer = 4 * (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d) + 2 * 2 * d
    expected = (
        (3 * 16 * 16 * d + d) + (tokens + 1) * d + layers * per_layer + 2 * d + 17 * d * 9 + 17
    )
    assert sum(int(np.prod(s)) for s in layout.values()) == expected == 85_912_337  # ~344 MB f32
    assert len(layout) == 199
    assert layout["backbone.embeddings.position_embeddings"] == (1, tokens + 1, d)
    assert layout["backbone.encoder.layer.11.attention.attention.query.weight"] == (d, d)
    assert layout["head.conv.weight"] == (17, d, 3, 3)


def test_save_pretrained_round_trip_and_strict_loading(tmp_path, tiny: ViTPoseEstimator) -> None:
    tiny.model.save_pretrained(tmp_path)
    _processor(tiny.config).save_pretrained(tmp_path)
    loaded = ViTPoseEstimator.from_pretrained(tmp_path, device="cpu")
    assert loaded.config == tiny.config
    for key, value in tiny.model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[key], value, rtol=0, atol=0)
    detections = _detections(BOXES, None)
    np.testing.assert_array_equal(
        loaded.estimate(IMAGE, detections).keypoints, tiny.estimate(IMAGE, detections).keypoints
    )
    state = load_file(tmp_path / "model.safetensors")
    removed = "backbone.encoder.layer.1.mlp.fc2.bias"
    save_file({k: v for k, v in state.items() if k != removed}, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"missing.*layer\.1\.mlp\.fc2\.bias"):
        ViTPoseEstimator.from_pretrained(tmp_path)
    state["head.conv.weight"] = torch.zeros(17, 32, 1, 1)
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"head\.conv\.weight"):
        ViTPoseEstimator.from_pretrained(tmp_path)


def test_from_pretrained_missing_directory(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        ViTPoseEstimator.from_pretrained(tmp_path / "nowhere")
