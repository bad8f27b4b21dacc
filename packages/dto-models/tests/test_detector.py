"""Mask R-CNN person detector: post-processing on synthetic arrays, the tiny model, weight files
(spec B.1, B.10 item 8)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights

from dto_models import CheckpointError, ImageError, PersonDetector
from dto_models.checkpoint import manifest
from dto_models.detector import (
    WEIGHTS_FILENAME,
    DetectorConfig,
    MaskRCNNDetector,
    binarize_masks,
    boxes_to_original,
    build_maskrcnn,
    empty_detections,
    select_persons,
    to_input,
    torchvision_weights_path,
)

RNG = np.random.default_rng(3)
IMAGE = RNG.integers(0, 256, (90, 120, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny() -> MaskRCNNDetector:
    return MaskRCNNDetector.tiny(seed=0)


# Pure post-processing


def test_select_persons_label_and_strict_score() -> None:
    boxes = np.arange(20, dtype=np.float32).reshape(5, 4)
    labels = np.array([1, 2, 1, 1, 3])  # torchvision COCO: person = 1
    scores = np.array([0.9, 0.95, 0.5, 0.5000001, 0.99], np.float32)
    probs = RNG.random((5, 4, 6)).astype(np.float32)
    kept_boxes, kept_scores, kept_probs = select_persons(boxes, labels, scores, probs)
    np.testing.assert_array_equal(kept_boxes, boxes[[0, 3]])  # 0.5 itself is dropped
    np.testing.assert_array_equal(kept_scores, scores[[0, 3]])
    np.testing.assert_array_equal(kept_probs, probs[[0, 3]])
    none = select_persons(boxes, np.full(5, 2), scores, probs)
    assert none[0].shape == (0, 4) and none[2].shape == (0, 4, 6)


def test_binarize_masks_threshold_and_resize() -> None:
    probs = np.array([[[0.5, 0.51], [0.0, 1.0]]], np.float32)
    np.testing.assert_array_equal(binarize_masks(probs, (2, 2)), [[[False, True], [False, True]]])
    # a half-resolution rectangle mask comes back as the rectangle at full resolution
    small = np.zeros((1, 30, 40), np.float32)
    small[0, 10:20, 5:25] = 1.0
    full = binarize_masks(small, (60, 80))
    expected = np.zeros((60, 80), bool)
    expected[20:40, 10:50] = True
    assert full.dtype == bool and full.shape == (1, 60, 80)
    np.testing.assert_array_equal(full[0], expected)


def test_boxes_to_original_scales_each_axis() -> None:
    boxes = np.array([[10.0, 20.0, 30.0, 40.0]])
    np.testing.assert_allclose(
        boxes_to_original(boxes, (50, 100), (100, 300)), [[30.0, 40.0, 90.0, 80.0]]
    )


def test_to_input_range_and_downscale() -> None:
    pixels, scale = to_input(IMAGE)
    assert pixels.shape == (3, 90, 120) and pixels.dtype == np.float32 and scale == 1.0
    np.testing.assert_allclose(pixels[:, 5, 7], IMAGE[5, 7] / 255.0, rtol=1e-6)
    pixels, scale = to_input(IMAGE, max_side=60)
    assert pixels.shape == (3, 45, 60) and scale == 0.5


def test_empty_detections_shapes() -> None:
    empty = empty_detections(7, 9)
    assert empty.boxes_xyxy.shape == (0, 4) and empty.boxes_xyxy.dtype == np.float32
    assert empty.scores.shape == (0,) and empty.scores.dtype == np.float32
    assert empty.masks.shape == (0, 7, 9) and empty.masks.dtype == bool


# The tiny model


def test_tiny_outputs(tiny: MaskRCNNDetector) -> None:
    assert isinstance(tiny, PersonDetector)
    out = tiny.detect(IMAGE)
    n = len(out)
    assert 0 < n <= tiny.config.detections_per_img
    assert out.boxes_xyxy.shape == (n, 4) and out.boxes_xyxy.dtype == np.float32
    assert out.scores.shape == (n,) and out.scores.dtype == np.float32
    assert out.masks.shape == (n, 90, 120) and out.masks.dtype == bool
    assert (np.diff(out.scores) <= 0).all() and (out.scores > 0).all()
    assert (out.boxes_xyxy[:, :2] >= 0).all() and (out.boxes_xyxy[:, 2] <= 120).all()
    assert (out.boxes_xyxy[:, 3] <= 90).all()


def test_adapter_equals_raw_model_person_outputs(tiny: MaskRCNNDetector) -> None:
    with torch.no_grad():
        raw = tiny.model([torch.from_numpy(IMAGE).permute(2, 0, 1).float() / 255])[0]
    person = raw["labels"] == 1
    out = tiny.detect(IMAGE)
    np.testing.assert_allclose(out.boxes_xyxy, raw["boxes"][person].numpy(), atol=1e-4)
    np.testing.assert_allclose(out.scores, raw["scores"][person].numpy(), atol=1e-6)
    np.testing.assert_array_equal(out.masks, raw["masks"][person, 0].numpy() > 0.5)


def test_score_threshold_applies(tiny: MaskRCNNDetector) -> None:
    scores = tiny.detect(IMAGE).scores
    cut = float(np.median(scores))
    strict = MaskRCNNDetector(
        tiny.model, dataclasses.replace(tiny.config, score_thresh=cut), device="cpu"
    )
    np.testing.assert_allclose(strict.detect(IMAGE).scores, scores[scores > cut], atol=1e-6)


def test_no_person_gives_empty_detections(tiny: MaskRCNNDetector) -> None:
    none = MaskRCNNDetector(
        tiny.model, dataclasses.replace(tiny.config, score_thresh=0.999), device="cpu"
    ).detect(np.zeros((40, 50), np.uint8))
    assert none.boxes_xyxy.shape == (0, 4) and none.scores.shape == (0,)
    assert none.masks.shape == (0, 40, 50) and none.masks.dtype == bool


def test_batch_equals_one_by_one_and_is_deterministic(tiny: MaskRCNNDetector) -> None:
    images = [IMAGE, IMAGE[::-1].copy(), IMAGE[:70]]
    batched = tiny.detect_batch(images)
    for image, out in zip(images, batched, strict=True):
        single = MaskRCNNDetector.tiny(seed=0).detect(image)
        np.testing.assert_allclose(out.boxes_xyxy, single.boxes_xyxy, atol=1e-3)
        np.testing.assert_allclose(out.scores, single.scores, atol=1e-5)
        assert (out.masks != single.masks).mean() < 1e-3
    other = MaskRCNNDetector.tiny(seed=1).detect(IMAGE)
    assert other.scores.shape != batched[0].scores.shape or not np.allclose(
        other.scores, batched[0].scores
    )


def test_huge_image_is_downscaled_and_mapped_back(tiny: MaskRCNNDetector) -> None:
    large = np.repeat(np.repeat(IMAGE, 2, axis=0), 2, axis=1)  # 180 x 240
    limited = MaskRCNNDetector(
        tiny.model, dataclasses.replace(tiny.config, max_side=120), device="cpu"
    )
    out = limited.detect(large)
    small = tiny.detect(IMAGE)  # INTER_AREA halving of `large` gives back IMAGE
    np.testing.assert_allclose(out.boxes_xyxy, small.boxes_xyxy * 2, atol=1e-3)
    np.testing.assert_allclose(out.scores, small.scores, atol=1e-6)
    assert out.masks.shape == (len(small), 180, 240)
    # each full-resolution mask is its low-resolution mask upsampled (up to edge pixels)
    upsampled = np.repeat(np.repeat(small.masks, 2, axis=1), 2, axis=2)
    assert (out.masks != upsampled).mean() < 0.02


def test_bad_inputs(tiny: MaskRCNNDetector) -> None:
    with pytest.raises(ImageError):
        tiny.detect(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(ImageError):
        tiny.detect(IMAGE.astype(np.float32))
    rgba = np.concatenate([IMAGE, np.full((90, 120, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(tiny.detect(rgba).scores, tiny.detect(IMAGE).scores)
    assert tiny.detect_batch([]) == []


# Weight files


def test_full_size_layout_on_meta() -> None:
    with torch.device("meta"):
        model = build_maskrcnn(DetectorConfig())
    parameters = sum(p.numel() for p in model.parameters())
    assert parameters == MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1.meta["num_params"] == 46_359_409
    layout = manifest(model)
    assert layout["roi_heads.box_predictor.cls_score.weight"] == (91, 1024)
    assert layout["roi_heads.mask_predictor.mask_fcn_logits.weight"] == (91, 256, 1, 1)
    assert layout["backbone.body.conv1.weight"] == (64, 3, 7, 7)


def test_state_dict_file_round_trip_and_strict_loading(tmp_path) -> None:
    config = DetectorConfig.tiny()
    torch.manual_seed(5)
    state = build_maskrcnn(config).state_dict()
    torch.save(state, tmp_path / WEIGHTS_FILENAME)
    for source in (tmp_path, tmp_path / WEIGHTS_FILENAME):  # directory or file
        loaded = MaskRCNNDetector.from_pretrained(source, config=config, device="cpu")
        for key, value in state.items():
            torch.testing.assert_close(loaded.model.state_dict()[key], value, rtol=0, atol=0)
    missing = {k: v for k, v in state.items() if k != "roi_heads.box_head.fc6.bias"}
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match=r"missing.*box_head\.fc6\.bias"):
        MaskRCNNDetector.from_pretrained(tmp_path / "missing.pth", config=config)
    state["rpn.head.conv.0.0.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"rpn\.head\.conv\.0\.0\.weight"):
        MaskRCNNDetector.from_pretrained(tmp_path / "bad.pth", config=config)


def test_torchvision_weight_names_use_the_cache_only(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="download"):
        MaskRCNNDetector.from_pretrained("COCO_V1")
    cached = tmp_path / "hub" / "checkpoints" / WEIGHTS_FILENAME
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    assert torchvision_weights_path("DEFAULT") == cached
    assert torchvision_weights_path("MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1") == cached
    with pytest.raises(ValueError, match="unknown weights"):
        torchvision_weights_path("COCO_V2")
