"""dto-humans-hub: the DTO-Humans dataset and MA-HMR checkpoints on the Hugging Face Hub.

Schema (`features`, `FIELDS`), converters from the released annotation files and from DTO runs,
the deterministic resumable shard writer, the dataset card with statistics and figures, joining
local images, and publishing / downloading datasets and safetensors checkpoints. No torch.
"""

from dto_humans_hub.batch import AnnotationBatch
from dto_humans_hub.build import (
    BuildReport,
    MissingImagesError,
    StagedBuildError,
    build_dataset,
    build_images_config,
    convert_built_dataset,
    validation_mask,
)
from dto_humans_hub.card import render_card, write_card
from dto_humans_hub.conventions import REPO_ID, SCHEMA_VERSION
from dto_humans_hub.convert import (
    Conversion,
    DTORun,
    DuplicateImageKeyError,
    Rejection,
    body_heights,
    convert_camerahmr_release,
    convert_dto_run,
    convert_released_opt,
    merge_conversions,
)
from dto_humans_hub.npzio import AnnotationFileError
from dto_humans_hub.schema import FIELDS, features
from dto_humans_hub.stats import compute_statistics, plot_statistics
from dto_humans_hub.writer import DatasetVerificationError, verify_dataset

__version__ = "0.1.0"

__all__ = [
    "FIELDS",
    "REPO_ID",
    "SCHEMA_VERSION",
    "AnnotationBatch",
    "AnnotationFileError",
    "BuildReport",
    "Conversion",
    "DTORun",
    "DatasetVerificationError",
    "DuplicateImageKeyError",
    "MissingImagesError",
    "Rejection",
    "StagedBuildError",
    "body_heights",
    "build_dataset",
    "build_images_config",
    "compute_statistics",
    "convert_built_dataset",
    "convert_camerahmr_release",
    "convert_dto_run",
    "convert_released_opt",
    "features",
    "merge_conversions",
    "plot_statistics",
    "render_card",
    "validation_mask",
    "verify_dataset",
    "write_card",
]
