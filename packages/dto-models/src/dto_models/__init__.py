"""Teacher models of the DTO pipeline behind small protocols (see `dto_models.types`).

Each adapter loads its public weights (`from_pretrained`), builds a tiny random instance of the
same architecture for tests (`tiny`), and returns dataclasses of NumPy arrays in original-image
pixels and metres. `TeacherStage` composes them into the per-image record DTO optimises.
"""

from .camerahmr import CameraHMR, CameraHMRConfig
from .checkpoint import CheckpointError
from .depth import DepthAnythingV2, DepthAnythingV2Config
from .detector import DetectorConfig, MaskRCNNDetector
from .humanfov import FoVError, HumanFoV, HumanFoVConfig
from .image import ImageError
from .keypoints import ViTPoseConfig, ViTPoseEstimator, enough_visible, nms_kp2d
from .matching import TwoStageMatch, match_two_stage
from .mivolo import MiVOLO, MiVOLOConfig
from .teachers import ReleasedPersons, TeacherRecord, TeacherStage
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

__version__ = "0.1.0"

__all__ = [
    "AgeGender",
    "AgeGenderEstimator",
    "CameraHMR",
    "CameraHMRConfig",
    "CheckpointError",
    "DepthAnythingV2",
    "DepthAnythingV2Config",
    "DepthEstimator",
    "Detections",
    "DetectorConfig",
    "FoVError",
    "FoVEstimate",
    "FoVEstimator",
    "HumanFoV",
    "HumanFoVConfig",
    "ImageError",
    "KeypointEstimator",
    "Keypoints2D",
    "MaskRCNNDetector",
    "MiVOLO",
    "MiVOLOConfig",
    "PersonDetector",
    "ReleasedPersons",
    "SMPLEstimates",
    "SingleHMR",
    "TeacherRecord",
    "TeacherStage",
    "TwoStageMatch",
    "ViTPoseConfig",
    "ViTPoseEstimator",
    "enough_visible",
    "match_two_stage",
    "nms_kp2d",
]
