"""Matching of predicted to ground-truth people, as each benchmark's protocol does it."""

from hmr_bench.matching.greedy_agora import (
    DegenerateBoxError,
    Matching,
    box_iou_plus1,
    greedy_match,
    hungarian_match,
    keypoint_boxes,
    match_keypoints_2d,
    match_keypoints_2d_images,
    spectral_norm_cost,
)
from hmr_bench.matching.mupots import match_mupots
from hmr_bench.matching.panoptic import match_nearest_pose, pose_distance

__all__ = [
    "DegenerateBoxError",
    "Matching",
    "box_iou_plus1",
    "greedy_match",
    "hungarian_match",
    "keypoint_boxes",
    "match_keypoints_2d",
    "match_keypoints_2d_images",
    "match_mupots",
    "match_nearest_pose",
    "pose_distance",
    "spectral_norm_cost",
]
