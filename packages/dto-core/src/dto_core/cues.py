"""Per-person depth cues from a relative depth map, a person id map and a per-pixel mesh-depth map.

Implements DTO's inter-human depth relation (representative relative depth d_i) and intra-human
depth scale (slope X_i and correlation w_i of mesh depth against relative depth), as the official
DTO-Humans code computes them (see the package README, "Depth cues").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

__all__ = ["CueConfig", "CueStatus", "DepthCues"]


class CueStatus(IntEnum):
    """Why a person's cues were (not) extracted. Anything but OK means the person is removed."""

    OK = 0
    TOO_SMALL = 1  # fewer mask pixels than min_area_fraction of the image
    TOO_FEW_VISIBLE_VERTICES = 2  # fewer than min_visible_vertices visible mesh vertices
    TOO_FEW_AFTER_IQR = 3  # fewer pixels than the area threshold after the IQR filter
    DEGENERATE_FIT = 4  # no horizontal variation inside rows, or no inlier left after the fit


@dataclass(frozen=True)
class CueConfig:
    """Thresholds of the cue extraction; defaults are the official DTO-Humans values."""

    min_area_fraction: float = 1.0 / 400.0  # (H/20)(W/20) pixels
    min_visible_vertices: int = 500
    iqr_factor: float = 1.5
    inlier_threshold: float = 0.1  # metres of mesh depth
    refit_on_inliers: bool = True  # official: False (slope/corr of the first fit are kept)
    down_percentile: float = 90.0  # rows at or below this percentile of the person's rows = "down"


@dataclass(frozen=True)
class DepthCues:
    """Per-person cues of one image, arrays of length K (persons in record order).

    rel_depth:        d_i, mean relative depth over the person's filtered pixels (arbitrary units).
    mesh_depth:       t_i (z_hat_i), mean teacher mesh depth over the same pixels (metres).
    rel_depth_std:    population std of relative depth over those pixels (quasi-planar test).
    slope:            X_i, intra-human depth scale, metres of mesh depth per unit of relative depth.
    corr:             w_i, Pearson correlation of the row-demeaned fit (0 where undefined).
    rel_depth_down:   d_i over the person's lowest rows (feet region), for the "down" variant.
    mesh_depth_down:  t_i over the same lowest rows (metres).
    num_pixels:       pixels kept after all filters.
    status:           CueStatus per person; rows with status != OK hold NaN cues.
    """

    rel_depth: np.ndarray
    mesh_depth: np.ndarray
    rel_depth_std: np.ndarray
    slope: np.ndarray
    corr: np.ndarray
    rel_depth_down: np.ndarray
    mesh_depth_down: np.ndarray
    num_pixels: np.ndarray
    status: np.ndarray

    def __len__(self) -> int:
        return len(self.rel_depth)

    @property
    def ok(self) -> np.ndarray:
        """(K,) bool, persons whose cues were extracted."""
        return self.status == CueStatus.OK

    def select(self, index: np.ndarray) -> DepthCues:
        """Cues of a subset of persons (bool mask or integer index)."""
        return DepthCues(**{k: np.asarray(v)[index] for k, v in self.__dict__.items()})
