"""Protocol switches. `ProtocolConfig.paper()` reproduces the official evaluators (MA-HMR, the
Relative Human evaluator, the CRMH / MuPoTS scripts) quirks included, so that numbers compare
with the paper's tables; `ProtocolConfig.clean()` fixes every quirk. Each quirk is its own flag,
so any difference between the modes can be attributed (`ProtocolConfig.paper().replace(...)`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["MODES", "ProtocolConfig"]

MODES = ("paper", "clean")


@dataclass(frozen=True)
class ProtocolConfig:
    """Every switch of the five protocols; defaults are the paper (official evaluator) values."""

    mode: str = "paper"
    conf_thresh: float = 0.3
    """Keep predictions with conf > conf_thresh (strict), all benchmarks."""
    conf_float32: bool = True
    """MA-HMR compares its float32 confidences with float32(conf_thresh): a float64 copy of
    float32(0.3) is dropped (clean: float64 comparison, kept)."""
    h36m_about_transl: bool = True
    """MA-HMR regresses H36M-17 as R (v - t) + t with t the SMPL translation, which equals R v
    only when every regressor row sums to 1 (clean: R v)."""
    # --- AGORA-style 2D matching (3DPW, Hi4D, RH) ---
    matcher: Literal["greedy", "hungarian"] = "greedy"
    greedy_fp_counter_quirk: bool = True
    """B7: low-IoU candidates increment a counter that ends the greedy loop early."""
    degenerate_box_error: bool = True
    """Zero-size keypoint boxes raise (the original asserts); False: they get IoU 0."""
    matching_frame: Literal["network", "original"] = "network"
    """3DPW / Hi4D: match in MA-HMR's resized frame (long side network_size) or original px."""
    network_size: int = 1288
    network_frame_float32: bool = True
    """MA-HMR's resize: long side network_size, short side int() of a float32 product (clean:
    the exact size * short // long)."""
    # --- 3DPW / Hi4D ---
    min_visible_joints: int = 4
    """A ground-truth person needs >= this many of its 45 joints inside the image."""
    skip_images_nobody_visible: bool = True
    """MA-HMR crashes on an image where nobody passes the visibility filter: skip (and count)
    such images (clean: their people are filtered, their predictions are false positives)."""
    height_gt_index_bug: bool = True
    """MA-HMR does not filter the per-person T-pose heights: after a filtered person, the k-th
    evaluated person of an image is scored against the k-th person's height."""
    height_failure_as_zero: bool = True
    """B12: a failing predicted T-pose height becomes 0 m (clean: raise)."""
    # --- Relative Human ---
    rh_iou_include_invalid: bool = True
    """B5: ground-truth IoU boxes include the invalid joints stored at (-2, -2)."""
    rh_gt_index_bug: bool = True
    """B4: depth_id / age of matched and missed people are read at positions of the list from
    which all-invalid people were removed, i.e. from the wrong person after such a person."""
    rh_unmatchable_missed_without_preds: bool = True
    """People whose joints are all invalid count as misses in images without predictions (but
    vanish in images with predictions)."""
    rh_unannotated_image_error: bool = True
    """B16: predictions for an image without any annotated (kp2d) person crash the official
    evaluator; raise instead of counting them as false positives."""
    rh_pck_include_minus1: bool = True
    """B2: matched people with < 2 valid joints enter the PCK mean as -1."""
    rh_hip_source: Literal["smpl", "lsp"] = "smpl"
    """CP-14 hips built from SMPL joints (MA-HMR, DTO) or the LSP hips of the extra regressor
    (BEV), when kp2d is derived from meshes."""
    rh_depth_source: Literal["transl", "pelvis"] = "transl"
    """Depth for PCDR: z of the SMPL translation (MA-HMR, DTO) or of the pelvis (BEV)."""
    rh_depth_float32: bool = True
    """MA-HMR's RH results hold float32 translations: PCDR depth differences are float32
    and compared with float32(pcdr_thresh)."""
    rh_miss_weight: float = 0.3
    pcdr_thresh: float = 0.2
    pck2d_thresh: float = 0.143
    # --- CMU Panoptic ---
    panoptic_sticky_thresh_halving: bool = True
    """B9: the halved confidence threshold (no prediction above it) persists for later images."""
    panoptic_root_y_shift: float = -0.06
    panoptic_divide_by_17: bool = True
    """B9: per-person error divided by 17 (clean: by the visible non-root joints)."""
    panoptic_one_to_one: bool = False
    """B9: predictions may serve several ground truths (clean: one-to-one assignment)."""
    panoptic_distance_float32: bool = True
    """Nearest poses by |a|^2 + |b|^2 - 2 a.b in float32 (MA-HMR's vectorize_distance; near ties
    can flip, a negative square gives NaN, which argmin picks) (clean: float64 |a - b|)."""
    panoptic_visibility_weights: bool = True
    """Joints are weighted by the ground truth's visibility value and used for matching when
    its sum over the people is >= people - 0.1 (clean: visible = value > 0)."""
    # --- MuPoTS-3D ---
    mupots_gt: Literal["annot3", "univ_annot3"] = "annot3"
    mupots_mask_occluded: bool = True
    mupots_aggregate: Literal["person_pooled", "sequence_mean"] = "person_pooled"
    mupots_leg_swap_vis: bool = True
    """B13: the leg-swapped H36M -> MPI map attaches a leg's occlusion flag to the other leg."""
    mupots_error_float32: bool = True
    """MA-HMR casts the per-joint errors to float32 before comparing them with 150 mm: an error of
    150.000001 mm counts as within (clean: float64)."""
    mupots_thresh: float = 150.0
    mupots_match_px: float = 40.0
    h36m_regressor_convention: Literal["correct", "spin"] = "correct"

    @classmethod
    def paper(cls, **overrides: Any) -> ProtocolConfig:
        """The official evaluators' behaviour, quirks included."""
        return cls(mode="paper", **overrides)

    @classmethod
    def clean(cls, **overrides: Any) -> ProtocolConfig:
        """The same definitions with every quirk fixed."""
        fixed = {
            "mode": "clean",
            "matcher": "hungarian",
            "greedy_fp_counter_quirk": False,
            "degenerate_box_error": False,
            "matching_frame": "original",
            "conf_float32": False,
            "h36m_about_transl": False,
            "network_frame_float32": False,
            "skip_images_nobody_visible": False,
            "height_gt_index_bug": False,
            "height_failure_as_zero": False,
            "rh_iou_include_invalid": False,
            "rh_gt_index_bug": False,
            "rh_unmatchable_missed_without_preds": False,
            "rh_unannotated_image_error": False,
            "rh_pck_include_minus1": False,
            "rh_depth_source": "pelvis",
            "rh_depth_float32": False,
            "panoptic_sticky_thresh_halving": False,
            "panoptic_divide_by_17": False,
            "panoptic_one_to_one": True,
            "panoptic_distance_float32": False,
            "panoptic_visibility_weights": False,
            "mupots_gt": "univ_annot3",
            "mupots_mask_occluded": False,
            "mupots_aggregate": "sequence_mean",
            "mupots_leg_swap_vis": False,
            "mupots_error_float32": False,
        }
        return cls(**{**fixed, **overrides})

    @classmethod
    def for_mode(cls, mode: str, **overrides: Any) -> ProtocolConfig:
        """paper() or clean() with overrides (unknown names raise)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"unknown protocol flag(s) {unknown}; known: {sorted(names)}")
        return cls.paper(**overrides) if mode == "paper" else cls.clean(**overrides)

    def replace(self, **changes: Any) -> ProtocolConfig:
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
