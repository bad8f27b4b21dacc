"""DTO on one image from its teacher outputs (spec A.3-A.10): body model, rendering, cues,
priors, solve, update, posterior filter. NumPy only (no torch): `apps/dto solve` re-runs this on
cached teacher outputs.

Per image: posed SMPL(-A) meshes of every person -> `hmr_render.render_tz_map` (per-person
z-buffers at long side 512, detection masks, composite id and depth map, visible vertices) ->
`dto_core.cues.extract_cues` on the relative depth `1 / disparity` -> height priors from age and
P(male) -> `dto_core.optimize_scene` -> `dto_core.update.update_bodies` for the people it moves.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from dto_core import CrowdResult, DepthCues, DTOConfig, PersonStatus, optimize_scene
from dto_core.body import BodyModel
from dto_core.cues import depth_from_disparity, extract_cues
from dto_core.optimize import person_apparent_scale
from dto_core.update import update_bodies

from .cache import PersonsEntry
from .profile import StageTimer

__all__ = ["ImageSolution", "SolveSettings", "concat_results", "solve_image"]

UpdateMethod = Literal["newton", "finite_difference"]
Recenter = Literal["all", "kid", "none"]

VARIANT_UPDATE: dict[str, tuple[UpdateMethod, Recenter]] = {
    "official": ("finite_difference", "kid"),
    "paper": ("newton", "all"),
}
"""Shape/translation update per variant: the official code's one-step finite difference with
kid-only re-centring, or this project's exact height (Newton) with re-centring for everyone
(see dto-core's README, "Update")."""


@dataclass(frozen=True)
class SolveSettings:
    """Everything of DTO that changes the rows: the `DTOConfig`, the update rule and the render
    resolution (long side, px; spec A.6: 512)."""

    config: DTOConfig
    update_method: UpdateMethod
    recenter: Recenter
    max_side: int = 512

    @classmethod
    def from_variant(
        cls, variant: str, overrides: dict[str, Any] | None = None, **update: Any
    ) -> SolveSettings:
        """The variant's DTOConfig with `overrides` (DTOConfig fields; "cues.<field>" for the
        cue thresholds) and its update rule (`update_method`, `recenter`, `max_side` override)."""
        overrides = dict(overrides or {})
        cue_overrides = {
            k.split(".", 1)[1]: overrides.pop(k) for k in list(overrides) if k.startswith("cues.")
        }
        config = DTOConfig.from_variant(variant, **overrides)
        if cue_overrides:
            config = dataclasses.replace(
                config, cues=dataclasses.replace(config.cues, **cue_overrides)
            )
        method, recenter = VARIANT_UPDATE[variant]
        return cls(
            config=config,
            update_method=update.pop("update_method", method),
            recenter=update.pop("recenter", recenter),
            **update,
        )


@dataclass(frozen=True)
class ImageSolution:
    """One image after DTO. Persons (N,) are the teacher's people with a usable translation, in
    record order, including those DTO removes (status REMOVED, with their cue status).

    smpl_pose (N, 72) axis-angle (global orientation first), betas_in (N, 11) (teacher betas
    padded with the kid coefficient 0) and transl_in (N, 3) m before DTO, betas / transl after
    (unchanged for people DTO does not move); is_released, age, p_male, boxes_xyxy (N, 4),
    keypoints_2d (N, 44, 2), detection_index (N,) each person's detector row, cue_status (N,)
    `CueStatus`, result: the one-scene `CrowdResult`.
    reason: "" if the posterior filter keeps the image, else its code; invalid: (M,) indices into
    the teacher record of people dropped before DTO (non-finite or behind-camera translation).
    `views` (not stored): posed vertices before/after, relative depth, for pictures.
    """

    image_size: tuple[int, int]
    K: np.ndarray
    smpl_pose: np.ndarray
    betas_in: np.ndarray
    transl_in: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    is_released: np.ndarray
    age: np.ndarray
    p_male: np.ndarray
    boxes_xyxy: np.ndarray
    keypoints_2d: np.ndarray
    detection_index: np.ndarray
    cue_status: np.ndarray
    result: CrowdResult
    reason: str
    detail: str
    invalid: np.ndarray
    views: dict[str, np.ndarray] | None = field(default=None, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.betas)


def _pad_betas(betas: np.ndarray, num_betas: int) -> np.ndarray:
    betas = np.asarray(betas, dtype=np.float64)
    if betas.shape[1] > num_betas:
        raise ValueError(
            f"teacher betas have {betas.shape[1]} coefficients, the body model {num_betas}"
        )
    return np.pad(betas, ((0, 0), (0, num_betas - betas.shape[1])))


def _image_reason(result: CrowdResult, num_persons: int, threshold: float) -> tuple[str, str]:
    if result.kept[0]:
        return "", ""
    if num_persons == 0:
        return "invalid_teacher_output", "no person with a finite translation in front of camera"
    left = int(np.sum(result.status != PersonStatus.REMOVED))
    if result.optimised[0]:
        return "posterior_residual", f"score {result.score[0]:.3f} > {threshold}"
    if num_persons == 1:
        return "single_person", "one person: nothing to place relative to"
    if left < 2:
        return "too_few_after_cues", f"{left} of {num_persons} people left after the cue checks"
    return "not_optimised", "no group optimised >= 2 people (height outliers or degenerate depth)"


def solve_image(
    persons: PersonsEntry,
    disparity: np.ndarray,
    body: BodyModel,
    settings: SolveSettings,
    *,
    timer: StageTimer | None = None,
    keep_views: bool = False,
) -> ImageSolution:
    """DTO on one image: `persons` (the cached teacher record, not skipped), `disparity` (H, W)
    relative disparity, `body` the SMPL(-A) model (11 betas with the kid template).

    Raises:
        ValueError: inputs of inconsistent shapes (a damaged cache).
    """
    from hmr_render import render_tz_map

    timer = timer or StageTimer()
    h, w = persons.image_size
    if persons.skip:
        raise ValueError(f"image skipped by the teachers ({persons.skip}): nothing to solve")
    disparity = np.asarray(disparity)
    if disparity.shape != (h, w) or persons.masks.shape != (len(persons), h, w):
        raise ValueError(
            f"image {h}x{w}: disparity {disparity.shape} and masks {persons.masks.shape} differ"
        )
    K = np.asarray(persons.K, dtype=np.float64)
    transl_all = np.asarray(persons.transl, dtype=np.float64)
    usable = np.all(np.isfinite(transl_all), axis=1) & (transl_all[:, 2] > 0)
    usable &= np.all(np.isfinite(persons.global_orient), axis=1)
    usable &= np.all(np.isfinite(persons.body_pose), axis=1) & np.all(
        np.isfinite(persons.betas), axis=1
    )
    keep = np.flatnonzero(usable)
    n = keep.size
    global_orient = np.asarray(persons.global_orient, dtype=np.float64)[keep]
    body_pose = np.asarray(persons.body_pose, dtype=np.float64)[keep]
    betas_in = _pad_betas(persons.betas[keep], body.num_betas)
    transl_in = transl_all[keep]
    config = settings.config

    with timer.stage("body_model"):
        vertices = body.forward(betas_in, body_pose, global_orient, transl_in).vertices
    with timer.stage("rendering"):
        if n:
            tz = render_tz_map(
                vertices, body.faces, K, (h, w), persons.masks[keep], max_side=settings.max_side
            )
    with timer.stage("cues"):
        rel_depth = depth_from_disparity(disparity)
        if n:
            cues, _ = extract_cues(
                rel_depth, tz.person_ids, tz.mesh_depth, n, tz.visible_vertices, config.cues
            )
        else:
            empty = np.zeros(0)
            cues = DepthCues(*[empty] * 7, np.zeros(0, np.int64), np.zeros(0, np.int64))
    with timer.stage("solve"):
        age, p_male = persons.age[keep], persons.p_male[keep]
        prior_cls = config.prior_classes(age, p_male)
        height = body.tpose_height(betas_in)
        apparent = person_apparent_scale(K[1, 1], transl_in[:, 2], (h, w)) if n else np.zeros(0)
        result = optimize_scene(height, prior_cls, cues, apparent_scale=apparent, config=config)
    betas, transl = betas_in.copy(), transl_in.copy()
    reason, detail = _image_reason(result, n, config.filter_threshold)
    moved = result.updated
    if moved.any():
        with timer.stage("update"):
            try:
                betas[moved], transl[moved] = update_bodies(
                    body,
                    betas_in[moved],
                    body_pose[moved],
                    global_orient[moved],
                    transl_in[moved],
                    result.scale_factor[moved],
                    prior_cls[moved],
                    method=settings.update_method,
                    recenter=settings.recenter,
                )
            except ValueError as exc:  # e.g. a height the shape space cannot reach
                reason, detail = "update_failed", str(exc)
                result = dataclasses.replace(result, kept=np.zeros(1, bool))
    views = None
    if keep_views:
        after = body.forward(betas, body_pose, global_orient, transl).vertices
        views = {"vertices_before": vertices, "vertices_after": after, "rel_depth": rel_depth}
    return ImageSolution(
        image_size=(h, w),
        K=K,
        smpl_pose=np.concatenate([global_orient, body_pose], axis=1),
        betas_in=betas_in,
        transl_in=transl_in,
        betas=betas,
        transl=transl,
        is_released=np.asarray(persons.is_released, dtype=bool)[keep],
        age=np.asarray(age, dtype=np.float64),
        p_male=np.asarray(p_male, dtype=np.float64),
        boxes_xyxy=np.asarray(persons.boxes_xyxy, dtype=np.float64)[keep],
        keypoints_2d=np.asarray(persons.keypoints_2d, dtype=np.float64)[keep],
        detection_index=np.asarray(persons.detection_index, dtype=np.int64)[keep],
        cue_status=np.asarray(cues.status, dtype=np.int64),
        result=result,
        reason=reason,
        detail=detail,
        invalid=np.flatnonzero(~usable),
        views=views,
    )


def concat_results(results: list[CrowdResult]) -> CrowdResult:
    """One `CrowdResult` of several, scenes in order (person arrays and scene arrays joined,
    offsets shifted)."""
    if not results:
        raise ValueError("no results to join")
    counts = np.concatenate([np.diff(r.offsets) for r in results])
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    joined = {
        f.name: np.concatenate([getattr(r, f.name) for r in results])
        for f in dataclasses.fields(CrowdResult)
        if f.name != "offsets"
    }
    return CrowdResult(offsets=offsets, **joined)
