"""Re-place and re-shape people after the solve: translations, betas, and the posterior filter.

DTO moves person i along its camera ray: the whole translation is scaled by s_i = z_i*/z_hat_i,
so a body scaled by s_i about the camera centre projects exactly as before. The SMPL body itself
is re-shaped to the corrected height h_i s_i through one shape coefficient: the first beta, or the
kid/age coefficient (the last of 11) for a minor who shrinks or anyone below 1.45 m (official
rule). Its T-pose height H(beta) (vertex y-extent) is piecewise linear and convex along one
coefficient, so Newton's method on the exact H reaches the target in a few steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from dto_core.body import openpose_joints
from dto_core.priors import MINOR_CLASSES

if TYPE_CHECKING:
    from dto_core.body import BodyModel

__all__ = [
    "KID_HEIGHT",
    "UpdateConfig",
    "height_coefficient",
    "posterior_filter",
    "recenter_translation",
    "refit_betas",
    "scale_translation",
    "update_bodies",
]

KID_HEIGHT = 1.45
"""Below this corrected height (m) the kid coefficient is refitted (official code)."""


@dataclass(frozen=True)
class UpdateConfig:
    """The keyword arguments of `update_bodies` (`DTOConfig.update` holds one):
    `update_bodies(..., **dataclasses.asdict(config.update))`. Defaults: exact heights and
    re-centring of everyone; the official code is ("finite_difference", "kid", "openpose")."""

    method: Literal["newton", "finite_difference"] = "newton"
    recenter: Literal["all", "kid", "none"] = "all"
    recenter_joints: Literal["smpl", "openpose"] = "smpl"


def scale_translation(transl: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """T' = s T for (N, 3) translations (m) and (N,) scales: a move along each person's ray."""
    transl = np.asarray(transl, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    if transl.shape != (*scale.shape, 3):
        raise ValueError(f"transl {transl.shape} must be (N, 3) for scale {scale.shape}")
    return transl * scale[..., None]


def height_coefficient(
    prior_cls: np.ndarray, scale: np.ndarray, target_height: np.ndarray, num_betas: int
) -> np.ndarray:
    """Index of the shape coefficient to refit per person, (N,) int.

    With an 11-beta body (kid coefficient last): the kid coefficient for minors who shrink
    (scale < 1) and for anyone whose target height is below KID_HEIGHT; else the first beta.
    """
    prior_cls = np.asarray(prior_cls)
    if num_betas < 11:
        return np.zeros(prior_cls.shape, dtype=np.intp)
    minor = np.isin(prior_cls, MINOR_CLASSES)
    use_kid = (minor & (np.asarray(scale) < 1)) | (np.asarray(target_height) < KID_HEIGHT)
    return np.where(use_kid, num_betas - 1, 0).astype(np.intp)


def refit_betas(
    body: BodyModel,
    betas: np.ndarray,
    target_height: np.ndarray,
    coefficient: np.ndarray,
    *,
    method: Literal["newton", "finite_difference"] = "newton",
    tol: float = 1e-5,
    max_steps: int = 50,
) -> np.ndarray:
    """Change one shape coefficient per person so its T-pose height equals the target.

    betas (N, B); target_height (N,) metres; coefficient (N,) index into B. "newton" solves
    H(beta + lam e_k) = target to `tol` metres (ValueError if a person's height cannot reach it
    along that coefficient); "finite_difference" is the official one-step update
    beta_k += h (s - 1) / (h - H(beta - e_k)), whose achieved height is not checked.
    Returns the new betas (N, B).
    """
    betas = np.array(betas, dtype=np.float64, ndmin=2)
    target = np.asarray(target_height, dtype=np.float64).reshape(-1)
    coefficient = np.asarray(coefficient, dtype=np.intp).reshape(-1)
    n = betas.shape[0]
    if betas.shape[1] != body.num_betas or target.shape != (n,) or coefficient.shape != (n,):
        raise ValueError(
            f"need betas (N, {body.num_betas}), target_height (N,), coefficient (N,); got "
            f"{betas.shape}, {target.shape}, {coefficient.shape}"
        )
    if np.any((coefficient < 0) | (coefficient >= body.num_betas)):
        raise ValueError(f"coefficient must index the {body.num_betas} betas")
    if not np.all(np.isfinite(target) & (target > 0)):
        raise ValueError("target_height must be finite and > 0")

    rows = np.arange(n)
    y0 = body.shaped_vertices(betas)[..., 1]  # (N, V) T-pose vertex heights
    dy = body.shapedirs[:, 1, :].T[coefficient]  # (N, V) d y / d beta_k
    if method == "finite_difference":
        height = y0.max(axis=1) - y0.min(axis=1)
        lowered = y0 - dy
        h_minus = lowered.max(axis=1) - lowered.min(axis=1)
        betas[rows, coefficient] += height * (target / height - 1) / (height - h_minus)
        return betas
    if method != "newton":
        raise ValueError(f"method must be 'newton' or 'finite_difference', got {method!r}")

    lam = np.zeros(n)
    for _ in range(max_steps):
        y = y0 + lam[:, None] * dy
        top, bottom = y.argmax(axis=1), y.argmin(axis=1)
        error = y[rows, top] - y[rows, bottom] - target
        if np.all(np.abs(error) <= tol):
            break
        slope = dy[rows, top] - dy[rows, bottom]
        stuck = slope == 0
        if np.any(stuck & (np.abs(error) > tol)):
            i = np.flatnonzero(stuck & (np.abs(error) > tol))[0]
            raise ValueError(f"person {i}: coefficient {coefficient[i]} does not change the height")
        lam -= np.where(np.abs(error) > tol, error / np.where(stuck, 1.0, slope), 0.0)
    else:
        i = int(np.argmax(np.abs(error)))
        raise ValueError(f"person {i}: height {target[i]:.4f} m not reached in {max_steps} steps")
    betas[rows, coefficient] += lam
    return betas


def recenter_translation(
    body: BodyModel,
    betas_old: np.ndarray,
    betas_new: np.ndarray,
    body_pose: np.ndarray,
    global_orient: np.ndarray,
    transl_old: np.ndarray,
    scale: np.ndarray,
    joints: Literal["smpl", "openpose"] = "smpl",
) -> np.ndarray:
    """New translation (N, 3): s T, plus the x-y offset that puts the mean of the new posed joints
    where the mean of the old joints scaled about the camera centre lies (official kid
    re-centring). joints: the 24 SMPL joints, or "openpose", the first 24 OpenPose joints as the
    official code takes them (`dto_core.body.openpose_joints`, right heel left out)."""
    if joints not in ("smpl", "openpose"):
        raise ValueError(f"joints must be 'smpl' or 'openpose', got {joints!r}")
    scale = np.asarray(scale, dtype=np.float64)
    transl_new = scale_translation(transl_old, scale)
    out_old = body.forward(betas_old, body_pose, global_orient, transl_old)
    out_new = body.forward(betas_new, body_pose, global_orient, transl_new)
    if joints == "openpose":
        old, new = openpose_joints(out_old)[:, :24], openpose_joints(out_new)[:, :24]
    else:
        old, new = out_old.joints, out_new.joints
    offset = (scale[:, None, None] * old - new).mean(axis=1)
    transl_new[:, :2] += offset[:, :2]
    return transl_new


def update_bodies(
    body: BodyModel,
    betas: np.ndarray,
    body_pose: np.ndarray,
    global_orient: np.ndarray,
    transl: np.ndarray,
    scale: np.ndarray,
    prior_cls: np.ndarray,
    *,
    method: Literal["newton", "finite_difference"] = "newton",
    recenter: Literal["all", "kid", "none"] = "all",
    recenter_joints: Literal["smpl", "openpose"] = "smpl",
) -> tuple[np.ndarray, np.ndarray]:
    """New (betas (N, B), transl (N, 3)) of N people re-placed by scale factors s_i = z*/z_hat.

    The T-pose height becomes H(beta) s_i through one coefficient (`height_coefficient`), and
    the translation becomes s_i T, re-centred on the posed joints: for every person by default,
    because a shape change moves the root relative to the body and shifts its 2D projection;
    "kid" re-centres only kid-coefficient updates (official code), "none" never.
    recenter_joints: the joints averaged (see `recenter_translation`). `UpdateConfig` bundles
    the three options.
    """
    if recenter not in ("all", "kid", "none"):
        raise ValueError(f"recenter must be 'all', 'kid' or 'none', got {recenter!r}")
    betas = np.array(betas, dtype=np.float64, ndmin=2)
    scale = np.asarray(scale, dtype=np.float64).reshape(-1)
    target = body.tpose_height(betas) * scale
    coefficient = height_coefficient(prior_cls, scale, target, body.num_betas)
    new_betas = refit_betas(body, betas, target, coefficient, method=method)
    if recenter == "none":
        return new_betas, scale_translation(transl, scale)
    moved = recenter_translation(
        body, betas, new_betas, body_pose, global_orient, transl, scale, recenter_joints
    )
    if recenter == "kid":
        use = coefficient == body.num_betas - 1
        moved = np.where(use[:, None], moved, scale_translation(transl, scale))
    return new_betas, moved


def posterior_filter(
    score: np.ndarray, optimised: np.ndarray, threshold: float = 1.5, *, strict: bool = False
) -> np.ndarray:
    """Keep an image iff it was optimised and its mean standardized residual score <= threshold
    (< threshold with strict=True, as the official code tests; the two differ only at exactly
    the threshold)."""
    score = np.asarray(score)
    below = score < threshold if strict else score <= threshold
    return np.asarray(optimised, dtype=bool) & below
