"""DTOConfig: every switch of DTO, with the paper's and the official code's presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from dto_core.cues import CueConfig
from dto_core.priors import (
    GENDER_THRESHOLD,
    OFFICIAL_PRIORS,
    PAPER_PRIORS,
    AdultPrior,
    HeightPriorTable,
    prior_class,
)
from dto_core.update import UpdateConfig

__all__ = ["DTOConfig", "Variant"]

Variant = Literal["paper", "official"]
OFFICIAL_UPDATE = UpdateConfig(
    method="finite_difference", recenter="kid", recenter_joints="openpose"
)


@dataclass(frozen=True)
class DTOConfig:
    """Configuration of the DTO optimisation. Build presets with `DTOConfig.paper()` /
    `DTOConfig.official()` (or `from_variant`) and switch single refinements with
    `dataclasses.replace` for ablations.

    Priors
      prior_table, adult_prior: see `dto_core.priors`; use_age_prior/gender_threshold map age and
      P(male) to prior classes (`prior_classes`).
    Scale bounds (the intra-human depth scale X)
      intra_scale: bound s by X = sum w_i X_i / sum w_i over persons with corr w_i >
      slope_min_corr; lower_bound_factor/upper_bound_factor are alpha1/alpha2 (s in
      [alpha1 X, alpha2 X]); default_scale is used as X when intra_scale is off or no person
      qualifies (None: no bounds then). quasi_planar fixes s = alpha1 X when
      std(d_i) < mean(std of d within each person).
    Official refinements
      max_height: iteratively drop the tallest person above this height (m) from the fit (None:
      off);
      max_iterations caps the loop. near_far_split: solve near and far people as two groups (far:
      d > far_rel_depth or apparent scale < far_apparent_scale). down_variant: also solve the near
      group on feet-region statistics and keep it if it optimises no fewer people with a strictly
      lower residual score. far_after_near: shift the far group so its nearest member is no closer
      than the farthest near member. two_person_unscored: a group of exactly two whose scale is
      not forced (by a bound or the quasi-planar test) is fitted exactly and updated, but neither
      scored nor counted as optimised; a forced pair is scored like a larger group.
    Scoring and filter
      skipped_score: residual score of a skipped person; an image is kept if some group optimised
      >= 2 people and its mean score <= filter_threshold.
    Update
      update: the options of `dto_core.update.update_bodies` (`UpdateConfig`).
    compat
      Reproduce the official code's decisions where they differ from the fixes: the two-person
      return happens before the height-outlier check (so an unforced pair can keep a
      > max_height person); the far group's residual score is not recomputed after the
      far-after-near shift; a group stopped by max_iterations counts the person it removed last
      among the optimised; a one-person scene keeps its person unchanged even if its cues were
      rejected; the filter keeps score < filter_threshold (not <=). `official(compat=True)` also
      sets the official update (one finite-difference step, kid-only re-centring on the first 24
      OpenPose joints).
    """

    variant: Variant = "paper"
    prior_table: HeightPriorTable = PAPER_PRIORS
    adult_prior: AdultPrior = "hybrid"
    use_age_prior: bool = True
    gender_threshold: float = GENDER_THRESHOLD

    intra_scale: bool = True
    slope_min_corr: float = 0.0
    lower_bound_factor: float = 1.0
    upper_bound_factor: float = 5.0
    default_scale: float | None = None
    quasi_planar: bool = True

    max_height: float | None = None
    max_iterations: int = 10
    near_far_split: bool = False
    far_rel_depth: float = 0.02
    far_apparent_scale: float = 0.25
    down_variant: bool = False
    far_after_near: bool = False
    two_person_unscored: bool = False

    skipped_score: float = 3.0
    filter_threshold: float = 1.5
    compat: bool = False
    cues: CueConfig = field(default_factory=CueConfig)
    update: UpdateConfig = field(default_factory=UpdateConfig)

    def __post_init__(self) -> None:
        if not 0 < self.lower_bound_factor <= self.upper_bound_factor:
            raise ValueError(
                "need 0 < lower_bound_factor <= upper_bound_factor, got "
                f"{self.lower_bound_factor}, {self.upper_bound_factor}"
            )
        if self.default_scale is not None and not self.default_scale > 0:
            raise ValueError(f"default_scale must be > 0 or None, got {self.default_scale}")
        if self.max_iterations < 1:
            raise ValueError(f"max_iterations must be >= 1, got {self.max_iterations}")

    @classmethod
    def paper(cls, **overrides) -> DTOConfig:
        """Eq. 3 as the paper states it: one affine map, s in [X, 5 X], s = X if quasi-planar."""
        return dataclasses.replace(cls(), **overrides)

    @classmethod
    def official(cls, compat: bool = False, **overrides) -> DTOConfig:
        """The official DTO-Humans optimiser: lower bound only (X, else 20), height outliers
        above 2.1 m removed, near/far groups with the down variant and far-after-near shift, the
        two-person rule. compat=True also reproduces its defects (see the class docstring)."""
        preset = cls(
            variant="official",
            prior_table=OFFICIAL_PRIORS,
            slope_min_corr=0.5,
            upper_bound_factor=np.inf,
            default_scale=20.0,
            max_height=2.1,
            near_far_split=True,
            down_variant=True,
            far_after_near=True,
            two_person_unscored=True,
            compat=compat,
            cues=CueConfig(refit_on_inliers=False),
            update=OFFICIAL_UPDATE if compat else UpdateConfig(),
        )
        return dataclasses.replace(preset, **overrides)

    @classmethod
    def from_variant(cls, variant: Variant, **overrides) -> DTOConfig:
        if variant == "paper":
            return cls.paper(**overrides)
        if variant == "official":
            return cls.official(**overrides)
        raise ValueError(f"variant must be 'paper' or 'official', got {variant!r}")

    def prior_classes(self, age: np.ndarray, p_male: np.ndarray) -> np.ndarray:
        """PriorClass per person from age (years) and P(male), with this config's switches."""
        return prior_class(
            age, p_male, use_age=self.use_age_prior, gender_threshold=self.gender_threshold
        )
