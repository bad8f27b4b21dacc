"""Height priors: age/gender groups to Gaussian height priors N(mu, sigma^2) in metres.

Sources:
- Minors (baby < 3 y, kid 3-8 y, teen 8-15 y): Gaussians fitted to CDC growth charts (paper, supp.
  Sec. 6.4), identical in the paper and the official code.
- Adults: gender-specific Gaussians (paper: male N(1.784, 0.076^2), female N(1.647, 0.071^2);
  official code: sigmas 0.0759 and 0.0707), and a neutral adult N(1.715, 0.1^2) for an uncertain
  gender (official code only; the paper does not define it).
- Hybrid adult prior (paper Sec. 6.4 and official code): mu = (h_teacher + mu_gender) / 2,
  sigma = sigma_gender, which anchors the teacher's height halfway to the population mean.
- Gender-agnostic adult prior (official code with its gender prior switched off, the paper's D'
  ablation): mu = h_teacher, sigma = 0.073.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

import numpy as np

__all__ = [
    "AGE_SPLIT",
    "GENDER_AGNOSTIC_SIGMA",
    "GENDER_THRESHOLD",
    "MINOR_CLASSES",
    "OFFICIAL_PRIORS",
    "PAPER_PRIORS",
    "AdultPrior",
    "HeightPriorTable",
    "PriorClass",
    "height_prior",
    "prior_class",
]


class PriorClass(IntEnum):
    """Prior group of a person, numbered as the official code's prior indicator."""

    BABY = 0
    KID = 1
    TEEN = 2
    ADULT_FEMALE = 3
    ADULT_MALE = 4
    ADULT_NEUTRAL = 5


MINOR_CLASSES = (PriorClass.BABY, PriorClass.KID, PriorClass.TEEN)

AGE_SPLIT = (3.0, 8.0, 15.0)
"""Age bin edges in years (official `age_split`): baby < 3 <= kid < 8 <= teen < 15 <= adult."""

GENDER_THRESHOLD = 0.33
"""P(male) < 0.33 is female, P(male) >= 1 - 0.33 is male, otherwise neutral (official code)."""

GENDER_AGNOSTIC_SIGMA = 0.073
"""Adult sigma (m) of the official code when its gender prior is off."""


@dataclass(frozen=True)
class HeightPriorTable:
    """Mean and standard deviation (metres) per PriorClass, indexed by the class value."""

    name: str
    mean: tuple[float, float, float, float, float, float]
    std: tuple[float, float, float, float, float, float]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.mean, dtype=np.float64), np.asarray(self.std, dtype=np.float64)


OFFICIAL_PRIORS = HeightPriorTable(
    name="official",
    mean=(0.801, 1.122, 1.477, 1.647, 1.784, 1.715),
    std=(0.126, 0.120, 0.156, 0.0707, 0.0759, 0.1),
)
"""The values hard-coded in the official DTO-Humans optimiser."""

PAPER_PRIORS = HeightPriorTable(
    name="paper",
    mean=(0.801, 1.122, 1.477, 1.647, 1.784, 1.715),
    std=(0.126, 0.120, 0.156, 0.071, 0.076, 0.1),
)
"""The paper's rounded adult sigmas; the neutral adult is taken from the official code."""

AdultPrior = Literal["hybrid", "cdc", "gender_agnostic"]


def prior_class(
    age: np.ndarray,
    p_male: np.ndarray,
    *,
    use_age: bool = True,
    gender_threshold: float = GENDER_THRESHOLD,
) -> np.ndarray:
    """Prior group of each person from age (years) and P(male), both (K,). Returns (K,) int64.

    With `use_age=False` every person is treated as an adult (the official "age prior off").
    """
    age = np.asarray(age, dtype=np.float64).reshape(-1)
    p_male = np.asarray(p_male, dtype=np.float64).reshape(-1)
    if age.shape != p_male.shape:
        raise ValueError(f"age {age.shape} and p_male {p_male.shape} must have the same length")
    for name, x in (("age", age), ("p_male", p_male)):
        bad = np.flatnonzero(~np.isfinite(x))
        if bad.size:
            raise ValueError(f"{name}[{bad[0]}] = {x[bad[0]]} is not finite")
    bad = np.flatnonzero((p_male < 0) | (p_male > 1))
    if bad.size:
        raise ValueError(f"p_male[{bad[0]}] = {p_male[bad[0]]} is outside [0, 1]")

    cls = np.full(age.shape, PriorClass.ADULT_NEUTRAL, dtype=np.int64)
    cls[p_male < gender_threshold] = PriorClass.ADULT_FEMALE
    cls[p_male >= 1.0 - gender_threshold] = PriorClass.ADULT_MALE
    if use_age:
        baby, kid, teen = AGE_SPLIT
        cls[age < teen] = PriorClass.TEEN
        cls[age < kid] = PriorClass.KID
        cls[age < baby] = PriorClass.BABY
    return cls


def height_prior(
    prior_cls: np.ndarray,
    teacher_height: np.ndarray,
    *,
    adult: AdultPrior = "hybrid",
    table: HeightPriorTable = OFFICIAL_PRIORS,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-person prior mean and standard deviation (metres), each (K,).

    prior_cls:       (K,) PriorClass values.
    teacher_height:  (K,) T-pose heights of the teacher's meshes (metres), used by the adult prior.
    adult:           "hybrid" (mu = (h + mu_gender)/2, sigma_gender), "cdc" (table values) or
                     "gender_agnostic" (mu = h, sigma = 0.073). Minors always use the table.
    """
    prior_cls = np.asarray(prior_cls).reshape(-1)
    teacher_height = np.asarray(teacher_height, dtype=np.float64).reshape(-1)
    if prior_cls.shape != teacher_height.shape:
        raise ValueError(
            f"prior_cls {prior_cls.shape} and teacher_height {teacher_height.shape} differ"
        )
    bad = np.flatnonzero((prior_cls < 0) | (prior_cls > PriorClass.ADULT_NEUTRAL))
    if bad.size:
        raise ValueError(f"prior_cls[{bad[0]}] = {prior_cls[bad[0]]} is not a PriorClass (0..5)")
    table_mean, table_std = table.arrays()
    mean, std = table_mean[prior_cls], table_std[prior_cls]
    is_adult = prior_cls >= PriorClass.ADULT_FEMALE
    if adult == "hybrid":
        mean = np.where(is_adult, 0.5 * (teacher_height + mean), mean)
    elif adult == "gender_agnostic":
        mean = np.where(is_adult, teacher_height, mean)
        std = np.where(is_adult, GENDER_AGNOSTIC_SIGMA, std)
    elif adult != "cdc":
        raise ValueError(f"adult prior must be 'hybrid', 'cdc' or 'gender_agnostic', got {adult!r}")
    return mean, std
