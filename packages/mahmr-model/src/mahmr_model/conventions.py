"""Named constants of MA-HMR and SAT-HMR, each with its source.

"Official" means the released MA-HMR code (gouba2333/MA-HMR) and the SAT-HMR code it extends
(ChiSu001/SAT-HMR); both share these values.
"""

from __future__ import annotations

import math

__all__ = [
    "BOX_LOGIT_EPS",
    "CONF_PRIOR_PROB",
    "DEFAULT_FOV",
    "FOV_HEAD_BIAS_INIT",
    "FOV_HEAD_GAIN_INIT",
    "FOV_MIN",
    "H36M_EVAL_JOINTS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MATCHER_JOINTS",
    "NUM_BODY_JOINTS",
    "NUM_H36M_JOINTS",
    "NUM_JOINTS",
    "NUM_LEVELS",
    "NUM_SMPL_JOINTS",
    "NUM_VERTICES",
    "POS_TEMPERATURE",
    "PROJECTION_EPS",
    "ROOT_JOINT",
    "SCALE_EPS",
    "TOKEN_GRID_MULTIPLE",
]

# Preprocessing: ImageNet statistics (official datasets/base.py Normalize; DINOv2's training stats).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Scale-adaptive tokens: levels 14 px / 28 px / 56 px (official sat_cfg.num_lvls = 3), so an
# image is padded to a multiple of 4 patches (56 px for patch 14; official asserts S % 56 == 0).
NUM_LEVELS = 3
TOKEN_GRID_MULTIPLE = 1 << (NUM_LEVELS - 1)  # in patches

# Decoder sine embedding (official models/position_encoding.py: temperature 20, scale 2 pi).
POS_TEMPERATURE = 20.0

# Box refinement: inverse sigmoid clamps its input to [eps, 1 - eps] (official utils/misc.py).
BOX_LOGIT_EPS = 1e-5

# Confidence head bias: -log((1 - p) / p) with prior p = 0.01 (official sat_model.py, RetinaNet).
CONF_PRIOR_PROB = 0.01

# Camera: fixed vertical FoV of models without a FoV head, f = S / (2 tan(pi / 6)) (official
# sat_model.py FOV = pi / 3); FoV head init (bias pi / 6, xavier gain 0.1) and its lower clamp
# 0.08 rad = 2 * 12 mm / 300 mm, the HumanFoV heuristic (official sat_model.py).
DEFAULT_FOV = math.pi / 3
FOV_HEAD_BIAS_INIT = math.pi / 6
FOV_HEAD_GAIN_INIT = 0.1
FOV_MIN = 0.08

# Weak-perspective camera lifted to perspective: s = 2 sigmoid(c_s) + 1e-6; projection divides
# by z + 1e-6 (official sat_model.py process_smpl).
SCALE_EPS = 1e-6
PROJECTION_EPS = 1e-6

# SMPL (smplx 0.1.28 layer with its default vertex joints).
NUM_VERTICES = 6890
NUM_SMPL_JOINTS = 24
NUM_BODY_JOINTS = NUM_SMPL_JOINTS - 1
NUM_JOINTS = 45  # 24 SMPL joints + 21 smplx vertex joints (face, feet, finger tips)
ROOT_JOINT = 0  # pelvis
MATCHER_JOINTS = 22  # the Hungarian matcher's keypoint cost uses the first 22 (body, no hands)
NUM_H36M_JOINTS = 17  # J_regressor_h36m_correct.npy (SPIN), evaluation on 3DPW / Hi4D / Panoptic
H36M_EVAL_JOINTS = (1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 16)  # 14 joints, root 0
