"""mahmr_model: the MA-HMR / SAT-HMR network, its SMPL layer, checkpoints and inference."""

from .body import BodyOutput, SMPLBody
from .checkpoint import CheckpointError, LoadReport, to_official_state_dict
from .config import VARIANTS, MAHMRConfig, get_config, mahmr, mahmr_fov, sat_hmr_stage1, tiny
from .model import MAHMR, DenoisingQueries, LayerOutput, MAHMROutput
from .predict import ImagePrediction, PersonPredictions, predict
from .preprocess import ImageBatch, prepare_images

__version__ = "0.1.0"

__all__ = [
    "MAHMR",
    "VARIANTS",
    "BodyOutput",
    "CheckpointError",
    "DenoisingQueries",
    "ImageBatch",
    "ImagePrediction",
    "LayerOutput",
    "LoadReport",
    "MAHMRConfig",
    "MAHMROutput",
    "PersonPredictions",
    "SMPLBody",
    "get_config",
    "mahmr",
    "mahmr_fov",
    "predict",
    "prepare_images",
    "sat_hmr_stage1",
    "tiny",
    "to_official_state_dict",
]
