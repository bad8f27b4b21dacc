"""Scene-level DTO: from per-person cues and priors to corrected depths, heights and a score.

One vectorised code path serves both variants and every ablation: persons are sorted into groups
(one per scene, or near/far per scene), and each step (scale bounds, quasi-planar test, bounded
solve, height-outlier removal, two-person rule, down variant, far-after-near shift, scoring) runs
on all groups of all scenes at once. `optimize_scene` is the one-scene entry point.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from dto_core.config import DTOConfig
from dto_core.cues import DepthCues
from dto_core.priors import height_prior
from dto_core.solve import EMPTY_SCENE, SolveStatus, _fit_kernel
from dto_core.update import posterior_filter

__all__ = [
    "CrowdResult",
    "GroupOutcome",
    "PersonStatus",
    "optimize_scene",
    "optimize_scenes",
    "person_apparent_scale",
]


class PersonStatus(IntEnum):
    """What DTO did with a person."""

    OPTIMISED = 0  # re-placed and scored
    UNSCORED_PAIR = 1  # re-placed by an exact two-person fit, not scored (official rule)
    SKIPPED_TALL = 2  # dropped from the fit as taller than max_height; unchanged, scored 3
    SKIPPED_GROUP = 3  # its group could not be solved; unchanged, scored 3
    SKIPPED_FAR_SHIFT = 4  # too tall after the far-after-near shift; unchanged, scored 3
    SINGLE = 5  # alone in its group; unchanged, not scored
    REMOVED = 6  # its depth cues were rejected; dropped from the output


class GroupOutcome(IntEnum):
    NONE = -1  # the scene has no such group
    OPTIMISED = 0
    UNSCORED_PAIR = 1
    FAILED = 2  # collapsed by outlier removal, or scale unidentifiable without bounds
    SINGLE = 3


@dataclass(frozen=True)
class CrowdResult:
    """DTO result for S scenes with N persons in total (persons in input order).

    Per person (N,): scale_factor = z*/z_hat (1 for unchanged, NaN for removed), height and depth
    after correction (m), signed standardized residual (h' - mu)/sigma, the prior (mu, sigma),
    status (PersonStatus), is_far, used_down (the feet-region variant was used).
    Per scene (S,): score (mean residual score, skipped persons counting skipped_score),
    optimised (some group optimised >= 2 persons), kept (posterior filter); per scene and group
    (S, 2) with group 0 = near (or the only group) and 1 = far: group_scale, group_shift (the
    affine map z = s d + t) and group_outcome.
    """

    scale_factor: np.ndarray
    height: np.ndarray
    depth: np.ndarray
    residual: np.ndarray
    prior_mean: np.ndarray
    prior_std: np.ndarray
    status: np.ndarray
    is_far: np.ndarray
    used_down: np.ndarray
    score: np.ndarray
    optimised: np.ndarray
    kept: np.ndarray
    group_scale: np.ndarray
    group_shift: np.ndarray
    group_outcome: np.ndarray
    offsets: np.ndarray

    @property
    def updated(self) -> np.ndarray:
        """(N,) bool, persons whose translation and shape change."""
        return (self.status == PersonStatus.OPTIMISED) | (self.status == PersonStatus.UNSCORED_PAIR)


@dataclass
class _Groups:
    """Persons sorted by group; every group is non-empty and its persons contiguous."""

    perm: np.ndarray  # sorted position -> person index
    group: np.ndarray  # sorted position -> group index
    starts: np.ndarray  # (G,)
    counts: np.ndarray  # (G,)
    scene: np.ndarray  # (G,)
    far: np.ndarray  # (G,) bool

    def sum(self, x: np.ndarray) -> np.ndarray:
        return np.add.reduceat(x, self.starts) if self.starts.size else np.zeros(0)

    def each(self, x: np.ndarray) -> np.ndarray:
        return np.repeat(x, self.counts)


@dataclass
class _GroupFit:
    scale: np.ndarray  # (G,)
    shift: np.ndarray
    outcome: np.ndarray  # GroupOutcome
    n_opt: np.ndarray  # persons counted as optimised
    score: np.ndarray  # mean |residual| of the optimised persons
    in_fit: np.ndarray  # (n,) sorted persons still in the fit at the end
    skipped: np.ndarray  # (n,) sorted persons dropped as too tall


def _segment_ids(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.concatenate(([0], np.cumsum(counts)))
    return offsets, np.repeat(np.arange(counts.size), counts)


def _scale_estimate(gr: _Groups, slope, corr, config: DTOConfig) -> np.ndarray:
    """X per group: corr-weighted mean slope of the qualifying members, else default_scale/NaN."""
    default = np.nan if config.default_scale is None else config.default_scale
    if not config.intra_scale:
        return np.full(gr.counts.size, default)
    weight = np.where(corr > config.slope_min_corr, corr, 0.0)
    w_sum = gr.sum(weight)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = gr.sum(weight * np.where(weight > 0, slope, 0.0)) / w_sum
    return np.where(w_sum > 0, x, default)


def _solve_groups(gr, h, t, d, mu, sigma, d_std, x_scale, todo, config: DTOConfig) -> _GroupFit:
    """A.8 of the official code on all groups with `todo` (>= 2 members), vectorised."""
    num_groups, n = gr.counts.size, h.size
    fit = _GroupFit(
        scale=np.full(num_groups, np.nan),
        shift=np.full(num_groups, np.nan),
        outcome=np.where(todo, GroupOutcome.OPTIMISED, GroupOutcome.SINGLE),
        n_opt=np.zeros(num_groups, dtype=np.int64),
        score=np.zeros(num_groups),
        in_fit=gr.each(todo).copy(),
        skipped=np.zeros(n, dtype=bool),
    )
    has_x = np.isfinite(x_scale)
    s_lo = np.where(has_x, config.lower_bound_factor * x_scale, -np.inf)
    s_hi = np.where(has_x, config.upper_bound_factor * x_scale, np.inf)
    iterating = todo.copy()
    for _ in range(config.max_iterations):
        groups = np.flatnonzero(iterating)
        if groups.size == 0:
            break
        idx = np.flatnonzero(fit.in_fit & iterating[gr.group])
        count = np.bincount(gr.group[idx], minlength=num_groups)[groups]
        offsets, local = _segment_ids(count)
        starts = offsets[:-1]

        lo, hi = s_lo[groups], s_hi[groups]
        planar = np.zeros(groups.size, dtype=bool)
        if config.quasi_planar:
            di = d[idx]
            d_mean = np.add.reduceat(di, starts) / count
            d_var = np.add.reduceat((di - d_mean[local]) ** 2, starts) / count
            planar = (np.sqrt(d_var) < np.add.reduceat(d_std[idx], starts) / count) & has_x[groups]
            hi = np.where(planar, lo, hi)
        res = _fit_kernel(h[idx], t[idx], d[idx], mu[idx], sigma[idx], offsets, lo, hi)
        scale, shift = res.scale, res.shift
        fit.scale[groups], fit.shift[groups] = scale, shift
        new_h = h[idx] * (scale[local] * d[idx] + shift[local]) / t[idx]

        undetermined = res.status == SolveStatus.UNDETERMINED
        if config.max_height is not None:
            excess = np.where(new_h > config.max_height, new_h - config.max_height, -np.inf)
            worst = np.maximum.reduceat(excess, starts)
        else:
            excess = worst = None
        has_outlier = np.zeros(groups.size, bool) if worst is None else worst > -np.inf
        # the two-person rule: an exact fit of two people (scale not forced by a bound or the
        # quasi-planar test) is not scored; a forced pair is scored like a larger group
        forced = planar | (res.status != SolveStatus.INTERIOR)
        pair = (count == 2) & config.two_person_unscored & ~forced
        if config.compat:
            has_outlier &= ~pair  # official: the two-person return precedes the outlier check
        collapse = (has_outlier & (count <= 2)) | undetermined
        remove = has_outlier & ~collapse
        finished = ~remove

        if remove.any():
            is_worst = (excess == worst[local]) & remove[local]
            # first index on ties, as the official loop
            first = np.minimum.reduceat(np.where(is_worst, np.arange(idx.size), idx.size), starts)
            drop = idx[first[remove]]
            fit.in_fit[drop] = False
            fit.skipped[drop] = True

        residual = np.abs(new_h - mu[idx]) / sigma[idx]
        score = np.add.reduceat(residual, starts) / count
        done = groups[finished]
        outcome = np.where(
            collapse,
            GroupOutcome.FAILED,
            np.where(pair, GroupOutcome.UNSCORED_PAIR, GroupOutcome.OPTIMISED),
        )[finished]
        fit.outcome[done] = outcome
        counted = outcome == GroupOutcome.OPTIMISED
        fit.n_opt[done] = np.where(counted, count[finished], 0)
        fit.score[done] = np.where(counted, score[finished], 0.0)
        iterating[done] = False
    else:
        # max_iterations reached: keep the last solution, scored on the persons still in the fit
        # (the official loop counts the person it removed last among the optimised)
        left = np.flatnonzero(iterating)
        member = fit.in_fit & iterating[gr.group]
        new_h = h * (gr.each(fit.scale) * d + gr.each(fit.shift)) / t
        residual = np.where(member, np.abs(new_h - mu) / sigma, 0.0)
        count = np.bincount(gr.group, weights=member, minlength=num_groups)
        fit.n_opt[left] = count[left] + config.compat
        res_sum = np.bincount(gr.group, weights=residual, minlength=num_groups)
        fit.score[left] = np.divide(res_sum, count, out=np.zeros(num_groups), where=count > 0)[left]

    failed = fit.outcome == GroupOutcome.FAILED
    if failed.any():
        # official collapse: every member unchanged and skipped; the map keeps the farthest member
        fit.in_fit &= ~gr.each(failed)
        fit.skipped |= gr.each(failed)
        fit.scale[failed] = 0.0
        fit.shift[failed] = np.maximum.reduceat(t, gr.starts)[failed]
    return fit


def _validate(height, prior_cls, cues, offsets, apparent_scale, config) -> np.ndarray:
    n = height.size
    if height.ndim != 1:
        raise ValueError(f"height must be 1-D (N,), got shape {height.shape}")
    if prior_cls.shape != height.shape:
        raise ValueError(f"prior_cls {prior_cls.shape} must match height {height.shape}")
    for name, x in cues.__dict__.items():
        if np.shape(x) != (n,):
            raise ValueError(f"cues.{name} must have shape ({n},), got {np.shape(x)}")
    offsets = np.asarray(offsets)
    if (
        offsets.ndim != 1
        or offsets.size == 0
        or not np.issubdtype(offsets.dtype, np.integer)
        or offsets[0] != 0
        or offsets[-1] != n
        or np.any(np.diff(offsets) < 0)
    ):
        raise ValueError(
            f"offsets must be integers non-decreasing from 0 to N={n}, got {offsets!r}"
        )
    ok = cues.ok
    checks = [
        ("height", height, True),
        ("cues.mesh_depth", cues.mesh_depth, True),
        ("cues.rel_depth", cues.rel_depth, False),
        ("cues.rel_depth_std", cues.rel_depth_std, False),
        ("cues.slope", cues.slope, False),
        ("cues.corr", cues.corr, False),
    ]
    if config.down_variant:
        checks += [
            ("cues.mesh_depth_down", cues.mesh_depth_down, True),
            ("cues.rel_depth_down", cues.rel_depth_down, False),
        ]
    if config.near_far_split:
        if apparent_scale is None:
            raise ValueError(
                "near_far_split needs apparent_scale (2 f_y / (T_z min(H, W))) per person"
            )
        apparent_scale = np.asarray(apparent_scale, dtype=np.float64)
        if apparent_scale.shape != (n,):
            raise ValueError(f"apparent_scale must have shape ({n},), got {apparent_scale.shape}")
        checks.append(("apparent_scale", apparent_scale, False))
    for name, x, positive in checks:
        bad = ok & ~(np.isfinite(x) & ((x > 0) if positive else True))
        if bad.any():
            i = np.flatnonzero(bad)[0]
            need = "finite and > 0" if positive else "finite"
            raise ValueError(
                f"{name}[{i}] = {float(x[i])}: must be {need} for a person with valid cues"
            )
    return offsets.astype(np.intp)


def optimize_scenes(
    height: np.ndarray,
    prior_cls: np.ndarray,
    cues: DepthCues,
    offsets: np.ndarray,
    *,
    apparent_scale: np.ndarray | None = None,
    config: DTOConfig | None = None,
) -> CrowdResult:
    """Run DTO on S scenes whose N persons are concatenated; scene i is offsets[i]:offsets[i+1].

    height:          (N,) teacher T-pose heights (m).
    prior_cls:       (N,) PriorClass (see `DTOConfig.prior_classes`).
    cues:            DepthCues with (N,) arrays; `cues.mesh_depth` is the teacher depth z_hat
                     (official: mean rendered mesh depth; paper: translation z). Persons with a
                     status other than OK are removed (with `config.compat`, except the person
                     of a one-person scene, kept unchanged as the official code does).
    apparent_scale:  (N,) 2 f_y / (T_z min(H, W)), needed by the near/far split only.
    """
    config = config or DTOConfig()
    height = np.asarray(height, dtype=np.float64)
    prior_cls = np.asarray(prior_cls)
    offsets = _validate(height, prior_cls, cues, offsets, apparent_scale, config)
    n, num_scenes = height.size, offsets.size - 1
    scene_of = np.repeat(np.arange(num_scenes), np.diff(offsets))
    ok = cues.ok
    mu, sigma = height_prior(prior_cls, height, adult=config.adult_prior, table=config.prior_table)

    far = np.zeros(n, dtype=bool)
    if config.near_far_split:
        far = (cues.rel_depth > config.far_rel_depth) | (
            np.asarray(apparent_scale) < config.far_apparent_scale
        )
    far &= ok
    valid = np.flatnonzero(ok)
    key = scene_of[valid] * 2 + far[valid]
    order = np.argsort(key, kind="stable")
    perm = valid[order]
    group_key, starts, counts = np.unique(key[order], return_index=True, return_counts=True)
    gr = _Groups(
        perm=perm,
        group=np.repeat(np.arange(counts.size), counts),
        starts=starts,
        counts=counts,
        scene=group_key // 2,
        far=(group_key % 2).astype(bool),
    )

    def sorted_(x):
        return np.asarray(x, dtype=np.float64)[perm]

    h, mu_s, sigma_s = sorted_(height), mu[perm], sigma[perm]
    t, d, d_std = sorted_(cues.mesh_depth), sorted_(cues.rel_depth), sorted_(cues.rel_depth_std)
    x_scale = _scale_estimate(gr, sorted_(cues.slope), sorted_(cues.corr), config)
    todo = counts >= 2
    fit = _solve_groups(gr, h, t, d, mu_s, sigma_s, d_std, x_scale, todo, config)

    use_down = np.zeros(counts.size, dtype=bool)
    if config.down_variant:
        near_todo = todo & ~gr.far
        t_dn, d_dn = sorted_(cues.mesh_depth_down), sorted_(cues.rel_depth_down)
        down = _solve_groups(gr, h, t_dn, d_dn, mu_s, sigma_s, d_std, x_scale, near_todo, config)
        use_down = near_todo & (down.n_opt >= fit.n_opt) & (down.score < fit.score)
        for name in ("scale", "shift", "outcome", "n_opt", "score"):
            getattr(fit, name)[use_down] = getattr(down, name)[use_down]
        person_down = gr.each(use_down)
        fit.in_fit = np.where(person_down, down.in_fit, fit.in_fit)
        fit.skipped = np.where(person_down, down.skipped, fit.skipped)
        t = np.where(person_down, t_dn, t)
        d = np.where(person_down, d_dn, d)

    single = ~todo
    fit.scale[single], fit.shift[single] = 0.0, gr.sum(t)[single]  # map z = t of the only member
    far_skipped = np.zeros(h.size, dtype=bool)
    if config.far_after_near:
        far_skipped = _far_after_near(gr, fit, h, t, d, mu_s, sigma_s, config)

    updated = fit.in_fit & ~far_skipped
    per_scale = np.where(updated, (gr.each(fit.scale) * d + gr.each(fit.shift)) / t, 1.0)
    outcome_each = gr.each(fit.outcome)
    status_sorted = np.select(
        [
            updated & (outcome_each == GroupOutcome.UNSCORED_PAIR),
            updated,
            far_skipped,
            fit.skipped & (outcome_each == GroupOutcome.FAILED),
            fit.skipped,
        ],
        [
            PersonStatus.UNSCORED_PAIR,
            PersonStatus.OPTIMISED,
            PersonStatus.SKIPPED_FAR_SHIFT,
            PersonStatus.SKIPPED_GROUP,
            PersonStatus.SKIPPED_TALL,
        ],
        PersonStatus.SINGLE,
    )

    scale_factor = np.full(n, np.nan)
    scale_factor[perm] = per_scale
    status = np.full(n, PersonStatus.REMOVED, dtype=np.int8)
    status[perm] = status_sorted
    used_down = np.zeros(n, dtype=bool)
    used_down[perm] = gr.each(use_down) & updated
    if config.compat:
        # official: an image of one person returns before any cue check, the person unchanged
        lone = np.repeat(np.diff(offsets) == 1, np.diff(offsets))
        status[lone], scale_factor[lone] = PersonStatus.SINGLE, 1.0

    # residual score: each group adds its score n_opt times and skipped_score per skipped person
    num_skipped = np.bincount(gr.group, weights=fit.skipped | far_skipped, minlength=counts.size)
    dev_sum = np.bincount(
        gr.scene,
        weights=fit.score * fit.n_opt + config.skipped_score * num_skipped,
        minlength=num_scenes,
    )
    dev_count = np.bincount(gr.scene, weights=fit.n_opt + num_skipped, minlength=num_scenes)
    score = np.divide(dev_sum, dev_count, out=np.zeros(num_scenes), where=dev_count > 0)
    optimised = np.bincount(gr.scene[fit.n_opt >= 2], minlength=num_scenes) > 0

    group_scale = np.full((num_scenes, 2), np.nan)
    group_shift = np.full((num_scenes, 2), np.nan)
    group_outcome = np.full((num_scenes, 2), GroupOutcome.NONE, dtype=np.int8)
    slot = (gr.scene, gr.far.astype(np.intp))
    group_scale[slot], group_shift[slot], group_outcome[slot] = fit.scale, fit.shift, fit.outcome

    return CrowdResult(
        scale_factor=scale_factor,
        height=height * scale_factor,
        depth=np.asarray(cues.mesh_depth, dtype=np.float64) * scale_factor,
        residual=(height * scale_factor - mu) / sigma,
        prior_mean=mu,
        prior_std=sigma,
        status=status,
        is_far=far,
        used_down=used_down,
        score=score,
        optimised=optimised,
        kept=posterior_filter(score, optimised, config.filter_threshold, strict=config.compat),
        group_scale=group_scale,
        group_shift=group_shift,
        group_outcome=group_outcome,
        offsets=offsets,
    )


def _far_after_near(gr: _Groups, fit: _GroupFit, h, t, d, mu, sigma, config) -> np.ndarray:
    """Shift each far group so that its nearest member is no closer than the farthest near member
    (A.9 step 3); returns the far members skipped as too tall afterwards (sorted order)."""
    num_scenes = int(gr.scene.max()) + 1 if gr.scene.size else 0
    near_of_scene = np.full(num_scenes, -1)
    near_of_scene[gr.scene[~gr.far]] = np.flatnonzero(~gr.far)
    near = near_of_scene[gr.scene]
    solved = (fit.outcome == GroupOutcome.OPTIMISED) | (fit.outcome == GroupOutcome.UNSCORED_PAIR)
    shiftable = gr.far & (gr.counts >= 2) & (near >= 0) & solved
    skipped = np.zeros(h.size, dtype=bool)
    if not shiftable.any():
        return skipped
    max_d = np.maximum.reduceat(d, gr.starts)
    min_d = np.minimum.reduceat(d, gr.starts)
    near_far_end = fit.scale[near] * max_d[near] + fit.shift[near]
    floor = near_far_end - fit.scale * min_d
    fit.shift[shiftable] = np.maximum(fit.shift[shiftable], floor[shiftable])
    if config.max_height is not None:
        member = gr.each(shiftable) & fit.in_fit
        new_h = h * (gr.each(fit.scale) * d + gr.each(fit.shift)) / t
        skipped = member & (new_h > config.max_height)
        fit.n_opt -= np.bincount(gr.group[skipped], minlength=gr.counts.size)
        np.maximum(fit.n_opt, 0, out=fit.n_opt)
    if not config.compat:
        # the official code keeps the pre-shift score; we score the shifted far group
        keep = gr.each(shiftable) & fit.in_fit & ~skipped
        new_h = h * (gr.each(fit.scale) * d + gr.each(fit.shift)) / t
        res_sum = np.bincount(
            gr.group[keep], weights=(np.abs(new_h - mu) / sigma)[keep], minlength=gr.counts.size
        )
        recount = shiftable & (fit.outcome == GroupOutcome.OPTIMISED)
        fit.score[:] = np.where(
            recount & (fit.n_opt > 0), res_sum / np.maximum(fit.n_opt, 1), fit.score
        )
    return skipped


def person_apparent_scale(
    focal_y: float, transl_z: np.ndarray, image_size: tuple[int, int]
) -> np.ndarray:
    """2 f_y / (T_z min(H, W)) per person, about 1.18 x the person's apparent height as a
    fraction of the short image side; the official near/far split calls < 1/4 far.

    focal_y: px; transl_z: (K,) teacher translation z (m); image_size: (H, W) px.
    """
    transl_z = np.asarray(transl_z, dtype=np.float64)
    if not np.all(np.isfinite(transl_z) & (transl_z > 0)):
        raise ValueError("transl_z must be finite and > 0")
    return 2.0 * focal_y / (transl_z * min(image_size))


def optimize_scene(
    height: np.ndarray,
    prior_cls: np.ndarray,
    cues: DepthCues,
    *,
    apparent_scale: np.ndarray | None = None,
    config: DTOConfig | None = None,
) -> CrowdResult:
    """Run DTO on one scene of K >= 1 persons; arrays (K,), see `optimize_scenes` (which also
    accepts empty scenes). Raises ValueError for an empty scene, as `solve_affine_depth` does."""
    height = np.asarray(height, dtype=np.float64)
    if height.size == 0:
        raise ValueError(EMPTY_SCENE)
    return optimize_scenes(
        height,
        prior_cls,
        cues,
        np.array([0, height.size]),
        apparent_scale=apparent_scale,
        config=config,
    )
