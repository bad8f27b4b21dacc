"""Named constants of the DTO-Humans formats, each with its source.

Units everywhere: metres (3D), pixels (2D), radians (angles); OpenCV camera frame (x right,
y down, z forward).
"""

from __future__ import annotations

from dto_core.optimize import PersonStatus

SCHEMA_VERSION = "1.2.0"
"""Version of the row schema (`dto_humans_hub.schema`). Bump the major number when a column is
removed, renamed or changes meaning; class-label lists are only ever appended to."""

DATASET_NAME = "dto-humans"

REPO_ID = "gouba2333/DTO-Humans"
"""The dataset's home on the Hugging Face Hub: the default of `apps/publish dataset`, of the
card's snippets and of `checkpoint` cards' training-data link. Named after the official
repository (github.com/gouba2333/DTO-Humans), whose authors release the annotations."""

NUM_BODY_JOINTS = 24
"""SMPL kinematic joints: axis-angle pose is (24, 3), global orientation first (SMPL)."""

NUM_BETAS = 11
"""Shape coefficients: 10 SMPL betas plus the SMPL-A / AGORA kid-template blend as the 11th
(DTO-Humans release, MA-HMR). 10-beta sources are padded with a zero 11th entry, as MA-HMR does."""

NUM_SMPL_BETAS = 10
"""Betas of plain SMPL (CameraHMR's release files)."""

NUM_KEYPOINTS = 44
"""2D keypoints in the CameraHMR / 4D-Humans 44-joint order (OpenPose BODY_25 then 19 extra joints);
CameraHMR's `gtkps` hold at least 44 rows and the first 44 are used (DTO-Humans code)."""

BOX_SCALE_PX = 200.0
"""CameraHMR / 4D-Humans `scale` convention: box side in pixels = 200 x scale (SPIN, HMR2)."""

SOURCES = ("coco", "mpii", "aic", "insta")
"""Source image collections of 4D-Humans as released by CameraHMR, in class-label order: the
sources of the release files (`*_CHMR_SMPL_OPT.npz`, `*-release.npz`) and of DTO-Humans."""

PHOTOS = "photos"
"""Source label of any other folder of photos run through DTO without a released pGT (spec A.11:
the Relative Human / demo path, CameraHMR with HumanFoV intrinsics); image keys are the paths
relative to the folder. No release file holds it."""

SOURCE_LABELS = (*SOURCES, PHOTOS)
"""Class labels of the `source` column, in order (only ever appended to): SOURCES, then
`photos` (schema 1.2.0)."""

SOURCE_FILE_PREFIXES = {"coco": "coco", "mpii": "mpii", "aic": "aic", "insta": "insta"}
"""Lower-cased file-name prefixes: `COCO_CHMR_SMPL_OPT.npz`, `insta1-release.npz`, ..."""

INSTA_KEY_PREFIX = "insta-train/"
"""MA-HMR's `prepare_dto.py` / `prepare_chmr.py` prefix InstaVariety image keys with this."""

KEY_PATH_DEPTH = {"coco": 1, "mpii": 1, "aic": 1, "insta": 3}
"""Trailing path components of CameraHMR's `imgname` that form the image key (DTO-Humans code:
`dir_depth` 3 for InstaVariety, 1 otherwise)."""

ANNOTATION_SOURCES = ("dto_humans_release", "camerahmr_release", "dto_run", "dto_official_run")
"""Where a row's annotation comes from: the released `*_CHMR_SMPL_OPT.npz` (DTO-Humans);
CameraHMR's 4D-Humans pGT, not optimised by DTO (its `*-release.npz`, or MA-HMR's per-image
`*_CHMR_SMPL.npz` of it: the paper's "w. 4D" baseline); a DTO run of this project; or a
`*_opt.npz` written by the official DTO code (`dto_framework.py`)."""

ALL_PEOPLE_ANNOTATED = {"coco": True, "mpii": False, "aic": True, "insta": True, "photos": False}
"""MA-HMR's `detect_all_people` per source: False where not every person of an image is
annotated (MPII), so a detector must not learn unmatched people as background there; False for
`photos` too: their people are the detections a DTO run kept, checked by nobody."""

SYNTHETIC_MARKER = "__synthetic__"
"""Entry that `dto_humans_hub.fixtures` adds to every synthetic file it writes; a dataset built
from such a file is marked synthetic in its manifest and card and never published as REPO_ID."""

AGE_GROUPS = ("baby", "kid", "teen", "adult")
"""Age groups of the height priors: < 3, 3-8, 8-15, >= 15 years (paper supp. Sec. 6.4)."""

PERSON_ORIGINS = ("released", "new")
"""`released`: a person of CameraHMR's released pGT matched by DTO's stage A; `new`: a detection
without a released person, estimated afresh by CameraHMR (stage B, `is_released = False`)."""

DEPTH_GROUPS = ("near", "far")
"""Affine-map group of a person (official code's near/far split); without the split everyone is
`near` (group 0)."""

PERSON_STATUSES = tuple(s.name.lower() for s in PersonStatus if s != PersonStatus.REMOVED)
"""`dto_core.optimize.PersonStatus` names; removed persons never reach the dataset."""

DTO_STATUSES = ("not_run", "kept", "rejected_score", "not_optimised", "optimised")
"""Per image: no DTO (a teacher-only pGT), kept by the posterior filter, rejected by it (score
>= 1.5), no group optimised >= 2 persons, or optimised with the filter's outcome not recorded (an
official `*_opt.npz` written with `--save_all_annots True`). The released DTO-Humans holds kept
images only."""

POSTERIOR_SCORE_THRESHOLD = 1.5
"""DTO-Humans keeps an image iff its mean standardized residual is below this (paper Sec. 3.3)."""

UNKNOWN_LABEL = -1
"""Class-label value for "not recorded by this source" (the `datasets` convention for no label)."""

UNKNOWN_SIZE = -1
"""Image width/height when the source does not record it."""

MAX_SHARD_BYTES = 500_000_000
"""Upper bound of a shard's uncompressed Arrow size (`datasets` MAX_SHARD_SIZE, "500MB"). Shards
split the data evenly, so every shard of a multi-shard split holds 250-500 MB."""

MIN_SHARDS = 16
"""Shards per (source, split) once it holds 16 x MIN_SHARD_ROWS rows or more, so that streaming
with `DataLoader(num_workers=k)` (each worker reads whole shards) keeps k = 2, 4, 8 or 16
workers busy on any one source; smaller parts get the largest power of two <= rows /
MIN_SHARD_ROWS (at least 1)."""

MIN_SHARD_ROWS = 1000
"""Fewest images per shard when the shard count is raised to MIN_SHARDS (small sets stay one
shard)."""

ANNOTATIONS = "annotations"
IMAGES = "images"
FAMILIES = (ANNOTATIONS, IMAGES)
"""Shard families: `data/annotations/<source>/` (no pixels) and `data/images/<source>/` (the same
rows plus the original image bytes, built locally by users who hold the images)."""

ALL_CONFIG = "all"
"""The default config: every source's annotations. Each source also has its own config (its
name, e.g. `coco`), and the images family is the `images` config."""

SPLITS = ("train", "validation")

VALIDATION_FRACTION = 0.01
"""Share of images held out as the `validation` split: image i is held out iff
hash(source/group) < fraction, so the split never changes when other images are added or
removed. group: the image key; for InstaVariety the clip (the first folder under
`insta-train/`), so that frames of one clip never straddle the splits."""

DATA_LICENSE = "cc-by-nc-4.0"
"""Licence of the DTO-Humans annotations (upstream release)."""
