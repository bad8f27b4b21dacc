"""The per-image teacher stage (spec A.2): composition logic with stub teachers whose outputs
are set by hand, and one run through the real tiny adapters."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from dto_core.synthetic_body import write_synthetic_smpl_dir
from dto_models.camerahmr import CameraHMR
from dto_models.depth import DepthAnythingV2
from dto_models.detector import DetectorConfig, MaskRCNNDetector, build_maskrcnn
from dto_models.matching import coco17_from_44
from dto_models.mivolo import MiVOLO
from dto_models.teachers import ReleasedPersons, TeacherRecord, TeacherStage
from dto_models.types import AgeGender, Detections, FoVEstimate, Keypoints2D, SMPLEstimates

H, W = 120, 160
K = np.array([[200.0, 0, W / 2], [0, 200.0, H / 2], [0, 0, 1]])


def skeleton_44(center_x: float, center_y: float, seed: int) -> np.ndarray:
    """A 44-joint person around a centre, head size 10 px (joint 38 - joint 37)."""
    rng = np.random.default_rng(seed)
    keypoints = rng.uniform(-15, 15, (44, 2)) + [center_x, center_y]
    keypoints[37] = [center_x, center_y - 20]
    keypoints[38] = [center_x, center_y - 30]
    return keypoints


# Four detections: 0 and 3 are distinct people, 1 shows only 3 confident joints, 2 duplicates 0
# with a lower score (removed by keypoint NMS).
BOXES = np.array([[20, 10, 60, 90], [100, 10, 140, 90], [21, 11, 61, 91], [100, 30, 150, 110]])
SCORES = np.array([0.95, 0.9, 0.8, 0.7], np.float32)
PEOPLE_44 = np.stack(
    [
        skeleton_44(40, 50, 0),
        skeleton_44(120, 50, 1),
        skeleton_44(40, 50, 0),
        skeleton_44(125, 70, 3),
    ]
)


@dataclass
class StubDetector:
    count: int = 4

    def detect(self, image: np.ndarray) -> Detections:
        masks = np.zeros((self.count, *image.shape[:2]), bool)
        for mask, (x0, y0, x1, y1) in zip(masks, BOXES[: self.count], strict=True):
            mask[y0:y1, x0:x1] = True
        return Detections(BOXES[: self.count].astype(np.float32), SCORES[: self.count], masks)


@dataclass
class StubKeypoints:
    visible: float = 0.9
    calls: int = 0

    def estimate(self, image: np.ndarray, detections: Detections) -> Keypoints2D:
        index = [int(np.flatnonzero((box == BOXES).all(1))[0]) for box in detections.boxes_xyxy]
        scores = np.full((len(index), 17), self.visible, np.float32)
        scores[[i for i, n in enumerate(index) if n == 1], 3:] = 0.1  # detection 1: 3 visible
        self.calls += 1
        return Keypoints2D(coco17_from_44(PEOPLE_44[index]), scores, detections.boxes_xyxy)


class StubHMR:
    """Per detection: betas[0] = the detection's number, keypoints shifted by +0.5 px."""

    def __init__(self) -> None:
        self.seen: Detections | None = None

    def estimate(self, image: np.ndarray, detections: Detections, K: np.ndarray) -> SMPLEstimates:
        self.seen = detections
        index = [int(np.flatnonzero((box == BOXES).all(1))[0]) for box in detections.boxes_xyxy]
        n = len(index)
        betas = np.zeros((n, 10), np.float32)
        betas[:, 0] = index
        return SMPLEstimates(
            global_orient=np.zeros((n, 3), np.float32),
            body_pose=np.full((n, 69), 0.1, np.float32),
            betas=betas,
            transl=np.tile(np.array([0, 0, 5.0], np.float32), (n, 1)),
            keypoints_2d=(PEOPLE_44[index] + 0.5).astype(np.float32),
            K=K,
        )


class StubAgeGender:
    def estimate(self, image, boxes_xyxy, keypoints_44) -> AgeGender:
        return AgeGender(age=boxes_xyxy[:, 0] / 2, p_male=np.full(len(boxes_xyxy), 0.25))


class StubDepth:
    def estimate(self, image: np.ndarray) -> np.ndarray:
        return np.full(image.shape[:2], 3.0, np.float32)


class StubFoV:
    def estimate(self, image: np.ndarray) -> FoVEstimate:
        return FoVEstimate(fov_y=1.0, K=K * [[1], [1], [1]])


def released_person_0() -> ReleasedPersons:
    """One released person whose keypoints are detection 0's."""
    return ReleasedPersons(
        global_orient=np.full((1, 3), 0.2),
        body_pose=np.full((1, 69), -0.1),
        betas=np.full((1, 10), 0.7),
        transl=np.array([[0.1, 0.2, 7.0]]),
        K=K,
        keypoints_2d=PEOPLE_44[:1],
    )


def stage(**kwargs) -> TeacherStage:
    teachers = dict(
        detector=StubDetector(),
        keypoints=StubKeypoints(),
        hmr=StubHMR(),
        age_gender=StubAgeGender(),
        depth=StubDepth(),
    )
    teachers.update(kwargs)
    return TeacherStage(**teachers)


IMAGE = np.full((H, W, 3), 128, np.uint8)


def test_rows_follow_detection_visibility_nms_and_two_stage_matching() -> None:
    hmr = StubHMR()
    record = stage(hmr=hmr).run(IMAGE, released_person_0())
    assert record.skip_reason is None and len(record) == 2
    # detection 1 dropped (3 visible), 2 suppressed by NMS: HMR ran on detections 0 and 3 only
    np.testing.assert_array_equal(hmr.seen.boxes_xyxy, BOXES[[0, 3]])
    np.testing.assert_array_equal(record.detection_index, [0, 3])
    np.testing.assert_array_equal(record.released_index, [0, -1])
    np.testing.assert_array_equal(record.is_released, [True, False])
    np.testing.assert_array_equal(record.scores, SCORES[[0, 3]])
    np.testing.assert_array_equal(record.boxes_xyxy, BOXES[[0, 3]])
    assert record.masks.shape == (2, H, W)
    assert record.masks[0, 50, 40] and not record.masks[0, 50, 120] and record.masks[1, 50, 120]
    # stage A: the released parameters and keypoints; stage B: the prediction's
    np.testing.assert_allclose(record.betas[:, 0], [0.7, 3.0])
    np.testing.assert_allclose(record.transl, [[0.1, 0.2, 7.0], [0, 0, 5.0]], rtol=1e-6)
    np.testing.assert_allclose(record.global_orient, [[0.2] * 3, [0] * 3], rtol=1e-6)
    np.testing.assert_allclose(record.body_pose[:, 0], [-0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(record.keypoints_2d[0], PEOPLE_44[0], rtol=1e-6)
    np.testing.assert_allclose(record.keypoints_2d[1], PEOPLE_44[3] + 0.5, rtol=1e-6)
    np.testing.assert_allclose(record.age, BOXES[[0, 3], 0] / 2)
    np.testing.assert_allclose(record.p_male, 0.25)
    np.testing.assert_array_equal(record.K, K.astype(np.float32))
    assert record.disparity.shape == (H, W) and record.disparity[0, 0] == 3.0


def test_without_released_people_every_row_is_new() -> None:
    record = stage(fov=StubFoV()).run(IMAGE)
    np.testing.assert_array_equal(record.detection_index, [0, 3])
    np.testing.assert_array_equal(record.released_index, [-1, -1])
    assert not record.is_released.any()
    np.testing.assert_allclose(record.betas[:, 0], [0.0, 3.0])
    with pytest.raises(ValueError, match="no intrinsics"):
        stage().run(IMAGE)


@pytest.mark.parametrize(
    ("teachers", "reason"),
    [
        (dict(detector=StubDetector(count=0)), "no person detected"),
        (dict(keypoints=StubKeypoints(visible=0.49)), "no detection with >= 5 visible keypoints"),
    ],
)
def test_skipped_images_say_why(teachers: dict, reason: str) -> None:
    record = stage(**teachers).run(IMAGE, released_person_0())
    assert record.skip_reason == reason and len(record) == 0
    assert record.masks.shape == (0, H, W) and record.keypoints_2d.shape == (0, 44, 2)
    assert record.disparity is None


def test_nobody_matched_is_skipped() -> None:
    class FarHMR(StubHMR):
        def estimate(self, image, detections, K):
            out = super().estimate(image, detections, K)
            return SMPLEstimates(
                out.global_orient, out.body_pose, out.betas, out.transl,
                out.keypoints_2d + 500.0, K,
            )  # fmt: skip

    released = released_person_0()
    far = ReleasedPersons(
        released.global_orient, released.body_pose, released.betas, released.transl, K,
        released.keypoints_2d + 500.0,
    )  # fmt: skip
    record = stage(hmr=FarHMR()).run(IMAGE, far)
    assert record.skip_reason == "no detection matched"


def test_bad_inputs_raise() -> None:
    released = released_person_0()
    no_keypoints = ReleasedPersons(
        released.global_orient, released.body_pose, released.betas, released.transl, K
    )
    with pytest.raises(ValueError, match="need body_model and j19"):
        stage().run(IMAGE, no_keypoints)

    class MasklessDetector(StubDetector):
        def detect(self, image):
            detections = super().detect(image)
            return Detections(detections.boxes_xyxy, detections.scores, None)

    with pytest.raises(ValueError, match="needs instance masks"):
        stage(detector=MasklessDetector()).run(IMAGE, released)


@pytest.fixture(scope="module")
def smpl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("smpl")
    write_synthetic_smpl_dir(folder)
    return folder


def test_real_tiny_teachers_end_to_end(smpl_dir: Path) -> None:
    """Tiny random adapters; the released people are CameraHMR's own estimates and ViTPose is
    replaced by their COCO-17 keypoints, so that every detection kept is matched in stage A."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    K_img = np.array([[150.0, 0, 64], [0, 150.0, 48], [0, 0, 1]])
    torch.manual_seed(0)
    config = replace(DetectorConfig.tiny(), detections_per_img=8)
    detector = MaskRCNNDetector(build_maskrcnn(config), config)
    detections = detector.detect(image)
    hmr = CameraHMR.tiny(0, smpl_dir=smpl_dir, device="cpu")
    estimates = hmr.estimate(image, detections, K_img)
    released = ReleasedPersons(
        estimates.global_orient, estimates.body_pose, estimates.betas, estimates.transl, K_img,
        estimates.keypoints_2d,
    )  # fmt: skip

    class EstimatesAsKeypoints:
        def estimate(self, image, people: Detections) -> Keypoints2D:
            index = [
                int(np.flatnonzero((detections.boxes_xyxy == box).all(1))[0])
                for box in people.boxes_xyxy
            ]
            keypoints = coco17_from_44(estimates.keypoints_2d[index])
            return Keypoints2D(keypoints, np.ones((len(index), 17), np.float32), people.boxes_xyxy)

    record = TeacherStage(
        detector, EstimatesAsKeypoints(), hmr, MiVOLO.tiny(seed=0), DepthAnythingV2.tiny(seed=0)
    ).run(image, released)
    assert len(detections) > 1 and record.skip_reason is None
    assert record.is_released.all() and 0 < len(record) <= len(detections)
    np.testing.assert_array_equal(record.released_index, record.detection_index)
    rows = record.detection_index
    np.testing.assert_array_equal(record.boxes_xyxy, detections.boxes_xyxy[rows])
    np.testing.assert_array_equal(record.masks, detections.masks[rows])
    np.testing.assert_allclose(record.betas, estimates.betas[rows])
    np.testing.assert_allclose(record.keypoints_2d, estimates.keypoints_2d[rows])
    assert np.all(np.isfinite(record.age)) and np.all((record.p_male >= 0) & (record.p_male <= 1))
    assert record.disparity.shape == (96, 128) and (record.disparity >= 0).all()
    assert isinstance(record, TeacherRecord)
