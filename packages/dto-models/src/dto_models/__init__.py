"""Teacher models of the DTO pipeline behind small protocols (see `dto_models.types`)."""

from .checkpoint import CheckpointError
from .image import ImageError
from .types import (
    AgeGender,
    AgeGenderEstimator,
    DepthEstimator,
    Detections,
    FoVEstimate,
    FoVEstimator,
    KeypointEstimator,
    Keypoints2D,
    PersonDetector,
    SingleHMR,
    SMPLEstimates,
)

__all__ = [
    "AgeGender",
    "AgeGenderEstimator",
    "CheckpointError",
    "DepthEstimator",
    "Detections",
    "FoVEstimate",
    "FoVEstimator",
    "ImageError",
    "KeypointEstimator",
    "Keypoints2D",
    "PersonDetector",
    "SMPLEstimates",
    "SingleHMR",
]
