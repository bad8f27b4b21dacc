"""The per-image teacher stage of DTO (spec A.2): from an image and its released pseudo-ground
truth to the per-person record that the DTO optimiser receives.

Steps: detect people with masks -> ViTPose on each masked person, keep those with >= 5 visible
keypoints -> keypoint NMS -> CameraHMR on each kept detection with the released intrinsics ->
two-stage matching (ViTPose person -> released person, leftovers -> new CameraHMR person) ->
age and gender of every matched person -> relative depth of the image. Each teacher is any object
with its protocol's method (`dto_models.types`), so one can be swapped without touching this code.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import numpy as np

from dto_core.body import BodyModel

from .camerahmr import smpl_keypoints_2d
from .image import as_rgb_uint8
from .keypoints import enough_visible, nms_kp2d
from .matching import match_two_stage
from .types import (
    AgeGenderEstimator,
    DepthEstimator,
    Detections,
    FoVEstimator,
    KeypointEstimator,
    PersonDetector,
    SingleHMR,
)

__all__ = ["ReleasedPersons", "TeacherRecord", "TeacherStage"]


@dataclass(frozen=True)
class ReleasedPersons:
    """The existing pseudo-ground truth of one image (e.g. a CameraHMR release file's rows).

    `global_orient` (G,3), `body_pose` (G,69) axis-angle, `betas` (G,10), `transl` (G,3) m,
    `K` (3,3) the image's intrinsics (the official code uses the first row's `cam_int`),
    `keypoints_2d` (G,44,2) pixels (`gtkps[:, :44, :2]`) or None to project the 44 SMPL joints.
    """

    global_orient: np.ndarray
    body_pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    K: np.ndarray
    keypoints_2d: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.betas)

    @classmethod
    def empty(cls, K: np.ndarray) -> ReleasedPersons:
        """No released people (Relative Human test, demos): every row comes from CameraHMR."""
        zeros = np.zeros
        return cls(
            zeros((0, 3)), zeros((0, 69)), zeros((0, 10)), zeros((0, 3)), K, zeros((0, 44, 2))
        )


@dataclass(frozen=True)
class TeacherRecord:
    """What `Optimizer.optimize` receives for one image: N matched people, released rows first.

    `scores` (N,), `boxes_xyxy` (N,4) px, `masks` (N,H,W) bool: the detection of each row;
    `global_orient` (N,3), `body_pose` (N,69), `betas` (N,10), `transl` (N,3) m: the released
    person's parameters (stage A) or CameraHMR's (stage B); `keypoints_2d` (N,44,2) px likewise;
    `is_released` (N,) bool; `detection_index` (N,) the detector's output row of each row;
    `released_index` (N,) the released person of a stage-A row, -1 for new people; `age` (N,)
    years; `p_male` (N,); `K` (3,3); `disparity` (H,W) relative depth (None without a depth
    teacher). `skip_reason` says why an image yields no rows (no person detected, too few
    visible keypoints, nobody matched); None otherwise.
    """

    scores: np.ndarray
    boxes_xyxy: np.ndarray
    masks: np.ndarray
    global_orient: np.ndarray
    body_pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    keypoints_2d: np.ndarray
    is_released: np.ndarray
    detection_index: np.ndarray
    released_index: np.ndarray
    age: np.ndarray
    p_male: np.ndarray
    K: np.ndarray
    disparity: np.ndarray | None
    skip_reason: str | None = None

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def skipped(cls, reason: str, image_hw: tuple[int, int], K: np.ndarray) -> TeacherRecord:
        """An empty record for an image the pipeline skips, with `reason`."""
        zeros = np.zeros
        return cls(
            scores=zeros(0, np.float32),
            boxes_xyxy=zeros((0, 4), np.float32),
            masks=zeros((0, *image_hw), bool),
            global_orient=zeros((0, 3), np.float32),
            body_pose=zeros((0, 69), np.float32),
            betas=zeros((0, 10), np.float32),
            transl=zeros((0, 3), np.float32),
            keypoints_2d=zeros((0, 44, 2), np.float32),
            is_released=zeros(0, bool),
            detection_index=zeros(0, np.int64),
            released_index=zeros(0, np.int64),
            age=zeros(0, np.float32),
            p_male=zeros(0, np.float32),
            K=np.asarray(K, np.float32),
            disparity=None,
            skip_reason=reason,
        )


@dataclass
class TeacherStage:
    """Runs the teachers of spec A.2 on one image at a time.

    `hmr` must return projected 44-joint keypoints (a CameraHMR built with a body model).
    `body_model` and `j19` (see `dto_models.camerahmr`) project released people that come
    without keypoints. `fov` estimates K for images without released intrinsics. A detection
    is kept with >= `min_visible` keypoints of score >= `visible_thresh`; `nms_ratio` is the
    keypoint NMS ratio; `compat` reproduces the official matching defects
    (see `dto_models.matching`).
    """

    detector: PersonDetector
    keypoints: KeypointEstimator
    hmr: SingleHMR
    age_gender: AgeGenderEstimator
    depth: DepthEstimator | None = None
    fov: FoVEstimator | None = None
    _: KW_ONLY
    body_model: BodyModel | None = None
    j19: np.ndarray | None = None
    min_visible: int = 5
    visible_thresh: float = 0.5
    nms_ratio: float = 1 / 8
    compat: bool = False

    def _intrinsics(self, image: np.ndarray, released: ReleasedPersons | None) -> np.ndarray:
        if released is not None:
            K = np.asarray(released.K, np.float64)
        elif self.fov is not None:
            K = np.asarray(self.fov.estimate(image).K, np.float64)
        else:
            raise ValueError("no intrinsics: pass released persons (with K) or a FoV teacher")
        if K.shape != (3, 3):
            raise ValueError(f"K must be (3,3), got {K.shape}")
        return K

    def _released_keypoints(self, released: ReleasedPersons) -> np.ndarray:
        if released.keypoints_2d is not None:
            keypoints = np.asarray(released.keypoints_2d, np.float64)
            if keypoints.shape != (len(released), 44, 2):
                raise ValueError(f"released keypoints_2d must be (G,44,2), got {keypoints.shape}")
            return keypoints
        if self.body_model is None or self.j19 is None:
            raise ValueError("released people without keypoints_2d need body_model and j19")
        return smpl_keypoints_2d(
            self.body_model,
            self.j19,
            released.global_orient,
            released.body_pose,
            released.betas,
            released.transl,
            released.K,
        )

    def run(self, image: np.ndarray, released: ReleasedPersons | None = None) -> TeacherRecord:
        """The teacher record of an RGB uint8 (H,W,3) image; see `TeacherRecord`."""
        image = as_rgb_uint8(image)
        image_hw = image.shape[:2]
        K = self._intrinsics(image, released)
        if released is None:
            released = ReleasedPersons.empty(K)
        detections = self.detector.detect(image)
        if len(detections) == 0:
            return TeacherRecord.skipped("no person detected", image_hw, K)
        masks = detections.masks_for(image_hw)
        if masks is None:
            raise ValueError("the teacher stage needs instance masks from the detector")
        keypoints = self.keypoints.estimate(image, detections)
        visible = enough_visible(keypoints.scores, self.min_visible, self.visible_thresh)
        if not visible.any():
            return TeacherRecord.skipped(
                f"no detection with >= {self.min_visible} visible keypoints", image_hw, K
            )
        kept = np.flatnonzero(visible)
        with_scores = np.concatenate(
            [keypoints.keypoints[kept], keypoints.scores[kept, :, None]], axis=2
        )
        order = nms_kp2d(
            with_scores, detections.scores[kept], detections.boxes_xyxy[kept], self.nms_ratio
        )
        if len(order) < len(kept):  # the official code re-orders only when NMS removed someone
            kept = kept[order]
        people = Detections(detections.boxes_xyxy[kept], detections.scores[kept], masks[kept])
        predictions = self.hmr.estimate(image, people, K)
        if predictions.keypoints_2d is None:
            raise ValueError("the HMR teacher must return keypoints_2d (give it a body model)")
        released_keypoints = self._released_keypoints(released)
        match = match_two_stage(
            keypoints.keypoints[kept],
            keypoints.scores[kept],
            released_keypoints,
            predictions.keypoints_2d,
            compat=self.compat,
        )
        if len(match) == 0:
            return TeacherRecord.skipped("no detection matched", image_hw, K)

        stage_a = np.array(match.stage_a, np.int64).reshape(-1, 2)  # (ViTPose person, released)
        new = np.array([p for _, p in match.stage_b], np.int64)  # detection p's own row
        rows = np.concatenate([stage_a[:, 0], new])

        def stacked(released_values: np.ndarray, predicted_values: np.ndarray) -> np.ndarray:
            a = np.asarray(released_values, np.float32)[stage_a[:, 1]]
            b = np.asarray(predicted_values, np.float32)[new]
            return np.concatenate([a.reshape(len(a), *b.shape[1:]), b])

        boxes = people.boxes_xyxy[rows]
        keypoints_2d = stacked(released_keypoints, predictions.keypoints_2d)
        attributes = self.age_gender.estimate(image, boxes, keypoints_2d)
        return TeacherRecord(
            scores=people.scores[rows],
            boxes_xyxy=boxes,
            masks=people.masks[rows],
            global_orient=stacked(released.global_orient, predictions.global_orient),
            body_pose=stacked(released.body_pose, predictions.body_pose),
            betas=stacked(released.betas, predictions.betas),
            transl=stacked(released.transl, predictions.transl),
            keypoints_2d=keypoints_2d,
            is_released=np.arange(len(rows)) < len(stage_a),
            detection_index=kept[rows],
            released_index=np.concatenate([stage_a[:, 1], np.full(len(new), -1, np.int64)]),
            age=np.asarray(attributes.age, np.float32),
            p_male=np.asarray(attributes.p_male, np.float32),
            K=np.asarray(K, np.float32),
            disparity=None if self.depth is None else self.depth.estimate(image),
        )
