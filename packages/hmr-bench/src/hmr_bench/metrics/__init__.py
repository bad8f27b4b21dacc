"""Metrics, float64, batched over people (no loops over joints). 3D inputs in metres, 2D in
pixels; errors returned in millimetres, rates as fractions in [0, 1]."""

from hmr_bench.metrics.detection import DetectionStats, detection_stats, rh_legacy_prf1
from hmr_bench.metrics.height import height_error, tpose_heights
from hmr_bench.metrics.mpjpe import mpjpe, pa_mpjpe, pa_pve, pve, root_relative
from hmr_bench.metrics.panoptic import panoptic_gt_h36m, panoptic_mpjpe
from hmr_bench.metrics.pcdr import DepthPairs, PCDRResult, depth_pairs, pcdr
from hmr_bench.metrics.pck2d import pck2d
from hmr_bench.metrics.pck3d_mupots import (
    joint_errors,
    pck_fraction,
    pck_per_person,
    scale_to_gt_bones,
)
from hmr_bench.metrics.procrustes import SimilarityTransform, similarity_procrustes

__all__ = [
    "DepthPairs",
    "DetectionStats",
    "PCDRResult",
    "SimilarityTransform",
    "depth_pairs",
    "detection_stats",
    "height_error",
    "joint_errors",
    "mpjpe",
    "pa_mpjpe",
    "pa_pve",
    "panoptic_gt_h36m",
    "panoptic_mpjpe",
    "pcdr",
    "pck2d",
    "pck_fraction",
    "pck_per_person",
    "pve",
    "rh_legacy_prf1",
    "root_relative",
    "scale_to_gt_bones",
    "similarity_procrustes",
    "tpose_heights",
]
