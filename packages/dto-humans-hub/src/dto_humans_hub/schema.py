"""The DTO-Humans row schema: one row per image, per-person columns with a variable first dimension.

`FIELDS` is the single source of truth: `features()` builds the `datasets.Features` from it and the
dataset card renders its field table from it. With `with_format("numpy")` an image with N people
gives `smpl_pose` (N, 24, 3), `smpl_betas` (N, 11), ... and (0, 24, 3), (0, 11), ... when N = 0.

Missing values: a source that does not record a quantity stores NaN (floats), -1 (class labels,
image size); shapes never change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from datasets import Array2D, Array3D, ClassLabel, Features, Image, List, Value

from dto_humans_hub.conventions import (
    AGE_GROUPS,
    ANNOTATION_SOURCES,
    DEPTH_GROUPS,
    DTO_STATUSES,
    NUM_BETAS,
    NUM_BODY_JOINTS,
    NUM_KEYPOINTS,
    PERSON_ORIGINS,
    PERSON_STATUSES,
    SCHEMA_VERSION,
    SOURCE_LABELS,
)

__all__ = ["FIELDS", "SCHEMA_VERSION", "FieldSpec", "features", "field_table_markdown"]

Level = Literal["image", "person"]


@dataclass(frozen=True)
class FieldSpec:
    """One column: name, feature, level (per image or per person), shape per row, unit, meaning."""

    name: str
    feature: object
    level: Level
    shape: str
    dtype: str
    unit: str
    description: str


def _labels(names: tuple[str, ...]) -> str:
    return ", ".join(f"{i} {n}" for i, n in enumerate(names))


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("source", ClassLabel(names=list(SOURCE_LABELS)), "image", "()", "int64", "-",
              f"source image collection ({_labels(SOURCE_LABELS)})"),
    FieldSpec("image_key", Value("string"), "image", "()", "string", "-",
              "image key of the release files: the image path relative to the source's root "
              "(InstaVariety keys start with `insta-train/`; `photos`: relative to the photo "
              "folder); unique within a source"),
    FieldSpec("annotation", ClassLabel(names=list(ANNOTATION_SOURCES)), "image", "()", "int64",
              "-", f"where the annotation comes from ({_labels(ANNOTATION_SOURCES)})"),
    FieldSpec("width", Value("int32"), "image", "()", "int32", "px",
              "image width; -1 if unknown (release files: 2 c_x, CameraHMR puts the principal "
              "point at the image centre)"),
    FieldSpec("height", Value("int32"), "image", "()", "int32", "px", "image height; as `width`"),
    FieldSpec("intrinsics", Array2D((3, 3), "float32"), "image", "(3, 3)", "float32", "px",
              "camera matrix K = [[f_x, 0, c_x], [0, f_y, c_y], [0, 0, 1]] of the stored image"),
    FieldSpec("fov_y", Value("float32"), "image", "()", "float32", "rad",
              "vertical field of view 2 atan(height / (2 f_y)); NaN if the height is unknown"),
    FieldSpec("num_people", Value("int16"), "image", "()", "int16", "-",
              "N, the number of people (length of every per-person column)"),
    FieldSpec("all_people_annotated", Value("bool"), "image", "()", "bool", "-",
              "every person of the image is annotated (MA-HMR's `detect_all_people`): false for "
              "MPII and `photos`, so unmatched detections there are not negatives"),
    FieldSpec("dto_status", ClassLabel(names=list(DTO_STATUSES)), "image", "()", "int64", "-",
              f"DTO outcome ({_labels(DTO_STATUSES)}); the DTO-Humans release holds kept "
              "images; MA-HMR's `3d_valid` is `kept`"),
    FieldSpec("dto_score", Value("float32"), "image", "()", "float32", "-",
              "deviation score: mean standardized height residual |h' - mu| / sigma over the "
              "optimised people, skipped people counting 3; kept iff < 1.5; NaN if unknown"),
    FieldSpec("depth_scale", List(Value("float32"), length=2), "image", "(2,)", "float32",
              "m per unit of relative depth",
              "s_d of the solved affine map z = s_d d + t_d, for group 0 (near, or the only group) "
              "and group 1 (far); NaN where the group is absent or unknown"),
    FieldSpec("depth_shift", List(Value("float32"), length=2), "image", "(2,)", "float32", "m",
              "t_d of the affine map, groups as `depth_scale`"),
    FieldSpec("smpl_pose", Array3D((None, NUM_BODY_JOINTS, 3), "float32"), "person",
              f"(N, {NUM_BODY_JOINTS}, 3)", "float32", "rad",
              "SMPL pose, axis-angle, global orientation (camera frame) first, then 23 body joints "
              "relative to their parents"),
    FieldSpec("smpl_betas", Array2D((None, NUM_BETAS), "float32"), "person", f"(N, {NUM_BETAS})",
              "float32", "-",
              "shape: 10 SMPL betas + the SMPL-A kid-template blend (11th); 10-beta sources are "
              "padded with 0"),
    FieldSpec("transl_cam", Array2D((None, 3), "float32"), "person", "(N, 3)", "float32", "m",
              "SMPL `transl` in the camera frame (added to the posed body; the root joint is not "
              "subtracted)"),
    FieldSpec("bbox_xyxy", Array2D((None, 4), "float32"), "person", "(N, 4)", "float32", "px",
              "person box x0, y0, x1, y1 (CameraHMR release: the square box of side 200 x scale "
              "around `center`); NaN if unknown"),
    FieldSpec("keypoints_2d", Array3D((None, NUM_KEYPOINTS, 3), "float32"), "person",
              f"(N, {NUM_KEYPOINTS}, 3)", "float32", "px, px, -",
              "x, y, confidence of the 44 CameraHMR/4D-Humans keypoints (OpenPose BODY_25 + 19 "
              "extra); NaN if unknown"),
    FieldSpec("age_group", List(ClassLabel(names=list(AGE_GROUPS))), "person", "(N,)", "int64",
              "-", f"estimated age group ({_labels(AGE_GROUPS)}: <3, 3-8, 8-15, >=15 years); -1 "
              "if unknown"),
    FieldSpec("p_male", List(Value("float32")), "person", "(N,)", "float32", "probability",
              "estimated P(male) in [0, 1] (female < 0.33 <= neutral < 0.67 <= male); NaN if "
              "unknown"),
    FieldSpec("height_prior_mean", List(Value("float32")), "person", "(N,)", "float32", "m",
              "mean mu of the Gaussian height prior used by DTO (adults: hybrid "
              "(h + mu_gender) / 2); NaN if unknown"),
    FieldSpec("height_prior_std", List(Value("float32")), "person", "(N,)", "float32", "m",
              "standard deviation sigma of the height prior; NaN if unknown"),
    FieldSpec("body_height", List(Value("float32")), "person", "(N,)", "float32", "m",
              "height of the body: DTO runs: the corrected height h' = h s; release files: the "
              "T-pose height (vertex y-extent) of these betas on the SMPL-A body model given to "
              "the converter; NaN if no model was given"),
    FieldSpec("origin", List(ClassLabel(names=list(PERSON_ORIGINS))), "person", "(N,)", "int64",
              "-", f"released-vs-new flag ({_labels(PERSON_ORIGINS)}); -1 if unknown"),
    FieldSpec("height_residual", List(Value("float32")), "person", "(N,)", "float32", "-",
              "standardized residual (h' - mu) / sigma (signed); NaN if not scored or unknown"),
    FieldSpec("person_status", List(ClassLabel(names=list(PERSON_STATUSES))), "person", "(N,)",
              "int64", "-", f"what DTO did with the person ({_labels(PERSON_STATUSES)}); -1 if "
              "unknown"),
    FieldSpec("depth_group", List(ClassLabel(names=list(DEPTH_GROUPS))), "person", "(N,)",
              "int64", "-", f"affine-map group ({_labels(DEPTH_GROUPS)}); -1 if unknown"),
)  # fmt: skip

IMAGE_FIELD = FieldSpec(
    "image", Image(), "image", "()", "image", "-",
    "the original image bytes (JPEG/PNG, not re-encoded) with `path` = source name / image key; "
    "`images` config only",
)  # fmt: skip


def features(*, images: bool = False) -> Features:
    """The `datasets.Features` of a config: annotations only, or with the embedded `image`."""
    specs = (*FIELDS, IMAGE_FIELD) if images else FIELDS
    return Features({spec.name: spec.feature for spec in specs})


def field_table_markdown(*, images: bool = True) -> str:
    """The dataset card's field table (Markdown), rendered from FIELDS."""
    specs = (*FIELDS, IMAGE_FIELD) if images else FIELDS
    lines = [
        "| column | per | shape | dtype | unit | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for s in specs:
        description = s.description.replace("|", "\\|")  # a literal bar inside a table cell
        lines.append(
            f"| `{s.name}` | {s.level} | {s.shape} | {s.dtype} | {s.unit} | {description} |"
        )
    return "\n".join(lines)
