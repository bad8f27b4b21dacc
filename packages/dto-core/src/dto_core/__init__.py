"""dto-core: DTO, depth-conditioned translation optimisation of a crowd in metric camera space.

Public entry points: `solve_affine_depth` / `solve_affine_depth_batch` (the exact KKT solution of
the paper's Eq. 3), `DTOConfig` (the paper's and the official code's variants, every switch),
`optimize_scene` / `optimize_scenes` (cues and priors to corrected depths, heights and scores).
"""

from dto_core.config import DTOConfig
from dto_core.cues import CueConfig, CueStatus, DepthCues
from dto_core.optimize import (
    CrowdResult,
    GroupOutcome,
    PersonStatus,
    optimize_scene,
    optimize_scenes,
    person_apparent_scale,
)
from dto_core.priors import PriorClass, height_prior, prior_class
from dto_core.solve import (
    AffineDepthFit,
    SolveStatus,
    fit_affine_depth,
    fit_affine_depth_batch,
    solve_affine_depth,
    solve_affine_depth_batch,
    solve_affine_depth_padded,
)

__version__ = "0.1.0"

__all__ = [
    "AffineDepthFit",
    "CrowdResult",
    "CueConfig",
    "CueStatus",
    "DTOConfig",
    "DepthCues",
    "GroupOutcome",
    "PersonStatus",
    "PriorClass",
    "SolveStatus",
    "fit_affine_depth",
    "fit_affine_depth_batch",
    "height_prior",
    "optimize_scene",
    "optimize_scenes",
    "person_apparent_scale",
    "prior_class",
    "solve_affine_depth",
    "solve_affine_depth_batch",
    "solve_affine_depth_padded",
]
