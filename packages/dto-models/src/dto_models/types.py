"""What every teacher returns, and the protocol it satisfies.

Outputs are dataclasses of NumPy arrays in pixels of the ORIGINAL image and metres in the OpenCV
camera frame (x right, y down, z forward). A user swaps a teacher by passing any object with the
protocol's method; nothing checks the class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "AgeGender",
    "AgeGenderEstimator",
    "DepthEstimator",
    "Detections",
    "FoVEstimate",
    "FoVEstimator",
    "KeypointEstimator",
    "Keypoints2D",
    "PersonDetector",
    "SMPLEstimates",
    "SingleHMR",
]


@dataclass(frozen=True)
class Detections:
    """People found in one image: `boxes_xyxy` (N,4) float32 pixels, `scores` (N,) float32,
    `masks` (N,H,W) bool at the image's resolution, or None from a detector without masks
    (adapters then use the whole image for every person)."""

    boxes_xyxy: np.ndarray
    scores: np.ndarray
    masks: np.ndarray | None

    def __len__(self) -> int:
        return len(self.scores)

    def masks_for(self, image_hw: tuple[int, int]) -> np.ndarray | None:
        """`masks` after checking that they are (N,H,W) for an image of `image_hw` (H,W).

        Raises:
            ValueError: masks of another shape (e.g. from a resized copy of the image).
        """
        if self.masks is not None and self.masks.shape != (len(self), *image_hw):
            raise ValueError(
                f"masks {self.masks.shape} do not match {len(self)} detections on an image of "
                f"{tuple(image_hw)} (H,W)"
            )
        return self.masks


@dataclass(frozen=True)
class Keypoints2D:
    """COCO-17 keypoints of N people: `keypoints` (N,17,2) float32 pixels, `scores` (N,17)
    float32 (heatmap maxima, roughly [0,1], not probabilities), `boxes_xyxy` (N,4) the boxes they
    were estimated in."""

    keypoints: np.ndarray
    scores: np.ndarray
    boxes_xyxy: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


@dataclass(frozen=True)
class SMPLEstimates:
    """Per-person SMPL estimates of N people, camera space.

    `global_orient` (N,3) and `body_pose` (N,69) axis-angle radians, `betas` (N,10),
    `transl` (N,3) metres (the SMPL `transl` argument: the root is not subtracted),
    `keypoints_2d` (N,44,2) pixels (the 4D-Humans 44-joint set projected with `K`) or None when no
    body model was given, `K` (3,3) the intrinsics used.
    """

    global_orient: np.ndarray
    body_pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    keypoints_2d: np.ndarray | None
    K: np.ndarray

    def __len__(self) -> int:
        return len(self.betas)


@dataclass(frozen=True)
class FoVEstimate:
    """Camera of one image: vertical field of view `fov_y` (radians) and `K` (3,3), fx = fy,
    principal point at the image centre."""

    fov_y: float
    K: np.ndarray


@dataclass(frozen=True)
class AgeGender:
    """Per person: `age` (N,) years, `p_male` (N,) probability of the male class in [0,1]."""

    age: np.ndarray
    p_male: np.ndarray

    def __len__(self) -> int:
        return len(self.age)


@runtime_checkable
class PersonDetector(Protocol):
    def detect(self, image: np.ndarray) -> Detections:
        """People in an RGB uint8 (H,W,3) image."""
        ...


@runtime_checkable
class KeypointEstimator(Protocol):
    def estimate(self, image: np.ndarray, detections: Detections) -> Keypoints2D:
        """COCO-17 keypoints for each detection (the image masked per person where masks exist)."""
        ...


@runtime_checkable
class SingleHMR(Protocol):
    def estimate(self, image: np.ndarray, detections: Detections, K: np.ndarray) -> SMPLEstimates:
        """One SMPL body per detection, placed in the camera with intrinsics `K` (3,3)."""
        ...


@runtime_checkable
class FoVEstimator(Protocol):
    def estimate(self, image: np.ndarray) -> FoVEstimate:
        """The camera of an RGB uint8 (H,W,3) image."""
        ...


@runtime_checkable
class DepthEstimator(Protocol):
    def estimate(self, image: np.ndarray) -> np.ndarray:
        """Relative disparity (H,W) float32 >= 0 (larger = nearer, arbitrary affine scale)."""
        ...


@runtime_checkable
class AgeGenderEstimator(Protocol):
    def estimate(
        self, image: np.ndarray, boxes_xyxy: np.ndarray, keypoints_44: np.ndarray
    ) -> AgeGender:
        """Age and gender of N people from body boxes (N,4) and 44-joint keypoints (N,44,2)."""
        ...
