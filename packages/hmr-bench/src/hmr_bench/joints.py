"""Joint sets of the five benchmarks and the index maps between them (all 0-based).

Sources: SMPL's kinematic tree and smplx's vertex joints (smplx/vertex_ids.py), SPIN's
`J_regressor_extra.npy` and `J_regressor_h36m*.npy` row orders, the MPI-INF-3DHP / MuPoTS-3D
skeleton (mpii_get_joint_set.m), the CRMH Panoptic preprocessing (COCO-19 -> J24), and the
Relative Human evaluator (CrowdPose-14 from BK-19 / OCHuman-19, matched by joint name).
"""

from __future__ import annotations

import numpy as np

SMPL24_NAMES = (
    "pelvis", "L_hip", "R_hip", "spine1", "L_knee", "R_knee", "spine2", "L_ankle", "R_ankle",
    "spine3", "L_foot", "R_foot", "neck", "L_collar", "R_collar", "head", "L_shoulder",
    "R_shoulder", "L_elbow", "R_elbow", "L_wrist", "R_wrist", "L_hand", "R_hand",
)  # fmt: skip

SMPLX_VERTEX_JOINT_IDS = (
    332, 6260, 2800, 4071, 583,  # nose, R_eye, L_eye, R_ear, L_ear
    3216, 3226, 3387, 6617, 6624, 6787,  # L big toe, small toe, heel; R big toe, small toe, heel
    2746, 2319, 2445, 2556, 2673, 6191, 5782, 5905, 6016, 6133,  # L then R thumb..pinky tips
)  # fmt: skip
"""SMPL vertices that smplx appends to the 24 skeleton joints (45 joints in all), in its order."""

H36M17_NAMES = (
    "pelvis", "R_hip", "R_knee", "R_ankle", "L_hip", "L_knee", "L_ankle", "spine", "thorax",
    "nose", "head_top", "L_shoulder", "L_elbow", "L_wrist", "R_shoulder", "R_elbow", "R_wrist",
)  # fmt: skip
"""H36M-17 as regressed by J_regressor_h36m_correct.npy (rows 1-3 are the RIGHT leg)."""

H36M_EVAL14 = (1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 16)
"""3DPW / Hi4D evaluated joints: H36M-17 without pelvis, spine and nose."""

EXTRA9_NAMES = (
    "R_hip_lsp", "L_hip_lsp", "neck_lsp", "head_top_lsp", "pelvis_mpii", "thorax_mpii",
    "spine_h36m", "jaw_h36m", "head_h36m",
)  # fmt: skip
"""Rows of SPIN's J_regressor_extra.npy."""
EXTRA_NECK, EXTRA_HEAD_TOP = 2, 3

MPI17_NAMES = (
    "head_top", "neck", "R_shoulder", "R_elbow", "R_wrist", "L_shoulder", "L_elbow", "L_wrist",
    "R_hip", "R_knee", "R_ankle", "L_hip", "L_knee", "L_ankle", "pelvis", "spine", "head",
)  # fmt: skip
MPI_TO_H36M = (14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4)
"""h36m[i] = mpi[MPI_TO_H36M[i]] (MA-HMR prepare_mupots.py)."""
H36M_TO_MPI = (10, 8, 14, 15, 16, 11, 12, 13, 1, 2, 3, 4, 5, 6, 0, 7, 9)
"""The exact inverse of MPI_TO_H36M."""
H36M_TO_MPI_MAHMR = (10, 8, 14, 15, 16, 11, 12, 13, 4, 5, 6, 1, 2, 3, 0, 7, 9)
"""The map the MA-HMR / CRMH MuPoTS evaluators use: legs left/right swapped (quirk B13)."""
MUPOTS_PARENTS = (1, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, 14, 14, 1)
"""Parent of each MPI-17 joint; the pelvis (14) is its own parent (mpii_get_joint_set.m)."""
MUPOTS_TRAVERSAL = (14, 15, 1, 0, 16, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)
"""Order in which bones are rescaled to ground-truth lengths, root outwards."""
MUPOTS_ROOT = 14
MUPOTS_MATCH_JOINTS = tuple(range(1, 14))
"""Joints used by mpii_multiperson_get_identity_matching (neck .. L_ankle)."""
MUPOTS_SCORED_JOINTS = tuple(range(14))
"""Joints scored by the 3D PCK (head_top .. L_ankle)."""

J24_NAMES = (
    "R_ankle", "R_knee", "R_hip", "L_hip", "L_knee", "L_ankle", "R_wrist", "R_elbow",
    "R_shoulder", "L_shoulder", "L_elbow", "L_wrist", "neck_lsp", "head_top_lsp", "pelvis_mpii",
    "thorax_mpii", "spine_h36m", "jaw_h36m", "head_h36m", "nose", "L_eye", "R_eye", "L_ear",
    "R_ear",
)  # fmt: skip
"""SPIN's 24-joint ground-truth layout, used by the Panoptic ground truth."""
PANOPTIC_COCO19_TO_J24 = (12, 13, 14, 9, 10, 11, 3, 4, 5, 8, 7, 6, 2, 1, 0)
"""Panoptic COCO-19 joint j (0..14) goes to J24 slot PANOPTIC_COCO19_TO_J24[j] (CRMH): neck ->
neck, NOSE -> head_top slot, body centre -> pelvis slot, arms, legs. Joints 15-18 are dropped."""
PANOPTIC_ROOT_J24 = 14
J24_TO_H36M_CORRECT = (14, 2, 1, 0, 3, 4, 5, 16, 12, 17, 18, 9, 10, 11, 8, 7, 6)
"""h36m[i] = j24[...] for the 'correct' regressor row order (MA-HMR)."""
J24_TO_H36M_SPIN = (14, 3, 4, 5, 2, 1, 0, 16, 12, 17, 18, 9, 10, 11, 8, 7, 6)
"""The same for SPIN's J_regressor_h36m.npy row order (CRMH, BMP, ROMP)."""

CP14_NAMES = (
    "L_shoulder", "R_shoulder", "L_elbow", "R_elbow", "L_wrist", "R_wrist", "L_hip", "R_hip",
    "L_knee", "R_knee", "L_ankle", "R_ankle", "head_top", "neck",
)  # fmt: skip
"""CrowdPose-14, the Relative Human evaluation layout."""
BK19_NAMES = (
    "head_top", "nose", "neck", "L_eye", "R_eye", "L_shoulder", "R_shoulder", "L_elbow",
    "R_elbow", "L_wrist", "R_wrist", "L_hip", "R_hip", "L_knee", "R_knee", "L_ankle", "R_ankle",
    "L_bigtoe", "R_bigtoe",
)  # fmt: skip
OCH19_NAMES = (
    "R_shoulder", "R_elbow", "R_wrist", "L_shoulder", "L_elbow", "L_wrist", "R_hip", "R_knee",
    "R_ankle", "L_hip", "L_knee", "L_ankle", "head_top", "neck", "R_ear", "L_ear", "nose",
    "R_eye", "L_eye",
)  # fmt: skip
BK19_TO_CP14 = (5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, -1)
OCH19_TO_CP14 = (3, 0, 4, 1, 5, 2, 9, 6, 10, 7, 11, 8, 12, -1)
"""The official RH evaluator maps by joint NAME into CrowdPose-14, whose neck is called
'Neck_LSP' and so never matches: the neck slot (-1) is invalid for every 19-joint annotation."""
BK_BASENAME_LENGTH = 7
"""A 19-joint RH annotation is BK order iff the image basename without '.jpg' has 7 characters."""
CP14_FROM_SMPL24 = (16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8)
"""CP-14 slots 0..11 from SMPL-24 joints (MA-HMR); slot 12 = extra head_top, 13 = extra neck."""
CP14_HIPS = (6, 7)
EXTRA_LSP_HIPS = (1, 0)
"""BEV takes the CP-14 hips (L, R) from the extra regressor's LSP hips instead."""


def remap(x: np.ndarray, index_map: tuple[int, ...] | np.ndarray, fill: float = -2.0) -> np.ndarray:
    """x[..., J, C] -> out[..., len(index_map), C] with out[..., i] = x[..., index_map[i]];
    entries -1 of index_map are filled with `fill` (the RH evaluator's invalid marker)."""
    index_map = np.asarray(index_map, dtype=np.int64)
    x = np.asarray(x)
    out = x[..., np.maximum(index_map, 0), :].copy()
    out[..., index_map < 0, :] = fill
    return out
