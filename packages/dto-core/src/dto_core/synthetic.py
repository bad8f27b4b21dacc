"""Synthetic crowds with ground truth, a simulated teacher and a simulated relative depth.

Every number produced here is synthetic; it exercises DTO where no licensed data exist.

World: an OpenCV camera (principal point at the image centre) `camera_height` metres above a flat
ground; people stand on it at depths 2-20 m, heights drawn from the age/gender priors.

Teacher (CameraHMR's known failure): heights are pulled towards the adult mean
(h_hat = h + pull (1.715 - h) + noise), the focal length is over-estimated by `focal_ratio`, and
the depth is the one that keeps the 2D projection of that wrong body: the teacher's person is the
true person scaled by k = z_hat / z = (h_hat / h) focal_ratio about the camera centre.

Relative depth: an affine-invariant disparity a (1/z + b + c (v/H - 1/2)) with per-scene scale a,
shift b (1/m), a vertical bias c (1/m across the image height) and noise; the relative depth
used by DTO is its inverse (`cues.depth_from_disparity`), as in the official code.

Two levels: `sample_crowds` gives per-person cues directly for many scenes (vectorised, millions of
persons per second); `render_scene` ray-casts one scene of ellipsoid bodies into pixel maps
(relative depth, person ids, teacher mesh depth) for the pixel-level cue extraction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dto_core.camera import focal_from_fov
from dto_core.cues import CueStatus, DepthCues
from dto_core.optimize import person_apparent_scale
from dto_core.priors import PAPER_PRIORS, PriorClass, prior_class

__all__ = ["PixelScene", "SyntheticCrowds", "render_scene", "sample_crowds"]

ADULT_MEAN_HEIGHT = PAPER_PRIORS.mean[PriorClass.ADULT_NEUTRAL]  # what the teacher regresses to
BODY_THICKNESS = 0.25  # front-to-back depth of an adult body (m), for within-person depth spread
MIN_HEIGHT = 0.45  # truncation of the sampled true heights (m)


@dataclass(frozen=True)
class SyntheticCrowds:
    """S scenes, N persons; person arrays (N,), scene i is offsets[i]:offsets[i+1].

    Ground truth: age (years), is_male, height (m), depth z (m), x (m, lateral position of the
    body axis). Estimates the pipeline would have: age_estimate, p_male, prior_cls (from those),
    teacher_height, teacher_depth (m), cues (DepthCues, mesh_depth = teacher_depth), apparent_scale.
    Scene arrays (S,): focal (px, true), focal_ratio (teacher focal / true), camera_height (m),
    disparity_scale a, disparity_shift b (1/m), vertical_bias c (1/m); image_size (H, W) px.
    """

    offsets: np.ndarray
    age: np.ndarray
    is_male: np.ndarray
    height: np.ndarray
    depth: np.ndarray
    x: np.ndarray
    age_estimate: np.ndarray
    p_male: np.ndarray
    prior_cls: np.ndarray
    teacher_height: np.ndarray
    teacher_depth: np.ndarray
    cues: DepthCues
    apparent_scale: np.ndarray
    focal: np.ndarray
    focal_ratio: np.ndarray
    camera_height: np.ndarray
    disparity_scale: np.ndarray
    disparity_shift: np.ndarray
    vertical_bias: np.ndarray
    image_size: tuple[int, int]

    @property
    def target_depth(self) -> np.ndarray:
        """(N,) the depth (m) at which the teacher's camera (focal x focal_ratio) sees the person
        at its true height: what DTO can reach without refining the focal length."""
        return self.depth * self.focal_ratio[self.scene_index]

    @property
    def num_scenes(self) -> int:
        return self.offsets.size - 1

    @property
    def scene_index(self) -> np.ndarray:
        """(N,) scene of each person."""
        return np.repeat(np.arange(self.num_scenes), np.diff(self.offsets))

    def scene(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))


def _true_heights(rng, cls, is_male) -> np.ndarray:
    mean, std = PAPER_PRIORS.arrays()
    adult = cls >= PriorClass.ADULT_FEMALE
    # a person's true height follows their true gender's prior, whatever the estimator says
    true_cls = np.where(
        adult, np.where(is_male, PriorClass.ADULT_MALE, PriorClass.ADULT_FEMALE), cls
    )
    return np.maximum(rng.normal(mean[true_cls], std[true_cls]), MIN_HEIGHT)


def _row(focal, camera_height, y_above_ground, depth, image_height):
    """Image row (px) of a point y_above_ground metres above the ground at depth z."""
    return image_height / 2 + focal * (camera_height - y_above_ground) / depth


def sample_crowds(
    num_scenes: int,
    *,
    seed: int = 0,
    persons: tuple[int, int] = (2, 12),
    minor_fraction: float = 0.2,
    depth_range: tuple[float, float] = (2.0, 20.0),
    group_photo_fraction: float = 0.25,
    group_photo_spread: float = 0.3,
    fov_deg: tuple[float, float] = (35.0, 75.0),
    image_size: tuple[int, int] = (480, 640),
    teacher_pull: float = 0.7,
    teacher_height_noise: float = 0.03,
    focal_ratio: tuple[float, float] = (1.0, 1.25),
    disparity_scale: tuple[float, float] = (1.0, 300.0),
    disparity_shift: tuple[float, float] = (0.0, 0.01),
    vertical_bias: float = 0.01,
    disparity_noise: float = 0.05,
    slope_noise: float = 0.15,
) -> SyntheticCrowds:
    """Sample `num_scenes` scenes of persons[0]..persons[1] people each (seeded, vectorised).

    minor_fraction of people are under 15 (ages uniform in 0-15, adults 15-80); the age estimate
    has 2-year noise and P(male) is confident for most people. People stand at depths uniform in
    depth_range, except in a group_photo_fraction of scenes where all stand within
    +/- group_photo_spread metres of one depth (the degenerate case the scale bound is for).
    disparity_noise is relative; slope_noise is the log-normal spread of the slope X_i.
    """
    if num_scenes < 1 or persons[0] < 1 or persons[1] < persons[0]:
        raise ValueError(f"need num_scenes >= 1 and 1 <= persons[0] <= persons[1], got {persons}")
    rng = np.random.default_rng(seed)
    img_h, img_w = image_size
    counts = rng.integers(persons[0], persons[1] + 1, num_scenes)
    offsets = np.concatenate(([0], np.cumsum(counts)))
    n = int(offsets[-1])
    scene = np.repeat(np.arange(num_scenes), counts)

    fov = np.deg2rad(rng.uniform(*fov_deg, num_scenes))
    focal = focal_from_fov(fov, img_h)
    f_ratio = rng.uniform(*focal_ratio, num_scenes)
    cam_h = rng.uniform(1.2, 2.0, num_scenes)
    a = np.exp(rng.uniform(*np.log(disparity_scale), num_scenes))
    b = rng.uniform(*disparity_shift, num_scenes)
    c = rng.uniform(-vertical_bias, vertical_bias, num_scenes)

    minor = rng.random(n) < minor_fraction
    age = np.where(minor, rng.uniform(0, 15, n), rng.uniform(15, 80, n))
    is_male = rng.random(n) < 0.5
    age_est = np.maximum(age + rng.normal(0, 2.0, n), 0.0)
    confident = rng.random(n) < 0.85
    p_male = np.where(confident, np.where(is_male, 0.9, 0.1), rng.uniform(0.2, 0.8, n))
    p_male = np.clip(p_male + rng.normal(0, 0.05, n), 0, 1)
    cls_true = prior_class(age, is_male.astype(float))
    height = _true_heights(rng, cls_true, is_male)

    z = rng.uniform(*depth_range, n)
    group_photo = (rng.random(num_scenes) < group_photo_fraction)[scene]
    z_group = rng.uniform(
        depth_range[0] + group_photo_spread, depth_range[1] - group_photo_spread, num_scenes
    )[scene]
    z = np.where(group_photo, z_group + rng.uniform(-group_photo_spread, group_photo_spread, n), z)
    half_width = 0.8 * z * (img_w / 2) / focal[scene]
    x = rng.uniform(-1, 1, n) * half_width

    h_hat = (
        height
        + teacher_pull * (ADULT_MEAN_HEIGHT - height)
        + rng.normal(0, teacher_height_noise, n)
    )
    h_hat = np.maximum(h_hat, MIN_HEIGHT)
    k = h_hat / height * f_ratio[scene]  # teacher person = true person scaled by k about the camera
    z_hat = k * z

    def disparity(rows, depth):
        v = rows / img_h - 0.5
        noise = 1 + disparity_noise * rng.standard_normal(depth.shape)
        return a[scene] * (1 / depth + b[scene] + c[scene] * v) * noise

    row_mid = _row(focal[scene], cam_h[scene], height / 2, z, img_h)
    row_feet = _row(focal[scene], cam_h[scene], 0.0, z, img_h)
    d = 1 / disparity(row_mid, z)
    d_down = 1 / disparity(row_feet, z)
    # d(rel depth)/dz at the person, and the teacher's slope X_i = dz_teacher / d(rel depth)
    inv_b = b[scene] + c[scene] * (row_mid / img_h - 0.5)
    dd_dz = 1 / (a[scene] * (1 + inv_b * z) ** 2)
    slope = k / dd_dz * np.exp(slope_noise * rng.standard_normal(n))
    corr = np.clip(rng.normal(0.9 - 0.02 * z, 0.1), -0.3, 0.99)
    # within-person spread of rel depth: body thickness plus the vertical bias over its rows
    pixel_height = focal[scene] * height / z
    bias_spread = np.abs(c[scene]) * a[scene] * d**2 * pixel_height / img_h / np.sqrt(12)
    d_std = np.hypot(BODY_THICKNESS * height / ADULT_MEAN_HEIGHT * dd_dz / np.sqrt(12), bias_spread)

    cues = DepthCues(
        rel_depth=d,
        mesh_depth=z_hat,
        rel_depth_std=d_std,
        slope=slope,
        corr=corr,
        rel_depth_down=d_down,
        mesh_depth_down=z_hat,
        num_pixels=np.round(pixel_height * pixel_height * 0.3).astype(np.int64),
        status=np.full(n, CueStatus.OK, dtype=np.int8),
    )
    return SyntheticCrowds(
        offsets=offsets,
        age=age,
        is_male=is_male,
        height=height,
        depth=z,
        x=x,
        age_estimate=age_est,
        p_male=p_male,
        prior_cls=prior_class(age_est, p_male),
        teacher_height=h_hat,
        teacher_depth=z_hat,
        cues=cues,
        apparent_scale=person_apparent_scale(focal[scene] * f_ratio[scene], z_hat, image_size),
        focal=focal,
        focal_ratio=f_ratio,
        camera_height=cam_h,
        disparity_scale=a,
        disparity_shift=b,
        vertical_bias=c,
        image_size=(img_h, img_w),
    )


# body of a person of height h standing at the origin, as ellipsoids:
# (centre height / h, semi-axes x, y, z / h) for head, torso, legs
_BODY_PARTS = np.array(
    [
        [0.935, 0.055, 0.065, 0.060],
        [0.660, 0.120, 0.170, 0.075],
        [0.255, 0.100, 0.255, 0.070],
    ]
)


@dataclass(frozen=True)
class PixelScene:
    """Pixel maps of one synthetic scene, (H, W) each.

    disparity: simulated raw relative disparity; person_ids: 0 background, i+1 person i of the
    scene (front-most surface wins); true_depth: z of the visible surface (m; background too);
    mesh_depth: the teacher's mesh depth on person pixels (k_i times the true depth), 0 elsewhere.
    """

    disparity: np.ndarray
    person_ids: np.ndarray
    true_depth: np.ndarray
    mesh_depth: np.ndarray


def render_scene(
    crowds: SyntheticCrowds, index: int, *, seed: int = 0, noise: float = 0.01
) -> PixelScene:
    """Ray-cast scene `index` of `crowds` (bodies as three ellipsoids, ground plane, far wall)."""
    rng = np.random.default_rng(seed)
    img_h, img_w = crowds.image_size
    sl = crowds.scene(index)
    f, cam_h = crowds.focal[index], crowds.camera_height[index]
    u, v = np.meshgrid(np.arange(img_w) + 0.5, np.arange(img_h) + 0.5)
    ray = np.stack([(u - img_w / 2) / f, (v - img_h / 2) / f, np.ones_like(u)], axis=-1)  # z = 1

    far_wall = 40.0
    ground = np.where(ray[..., 1] > 0, cam_h / np.maximum(ray[..., 1], 1e-12), np.inf)
    depth = np.minimum(ground, far_wall)
    ids = np.zeros((img_h, img_w), dtype=np.int32)
    for person, (h, z, x) in enumerate(
        zip(crowds.height[sl], crowds.depth[sl], crowds.x[sl], strict=True)
    ):
        for centre_frac, *semi in _BODY_PARTS:
            centre = np.array([x, cam_h - centre_frac * h, z])
            axes = np.array(semi) * h
            # ray p = s * ray (s = depth since ray z = 1); solve |(s ray - centre) / axes| = 1
            q = ray / axes
            oc = centre / axes
            qa = np.einsum("...i,...i", q, q)
            qb = np.einsum("...i,i", q, oc)
            disc = qb**2 - qa * (oc @ oc - 1)
            hit = disc >= 0
            s = np.where(hit, (qb - np.sqrt(np.where(hit, disc, 0))) / qa, np.inf)
            closer = hit & (s > 0) & (s < depth)
            depth = np.where(closer, s, depth)
            ids = np.where(closer, person + 1, ids)

    a, b, c = (
        crowds.disparity_scale[index],
        crowds.disparity_shift[index],
        crowds.vertical_bias[index],
    )
    disparity = (
        a * (1 / depth + b + c * (v / img_h - 0.5)) * (1 + noise * rng.standard_normal(depth.shape))
    )
    k = np.concatenate(([0.0], crowds.teacher_depth[sl] / crowds.depth[sl]))
    mesh_depth = np.where(ids > 0, k[ids] * depth, 0.0)
    return PixelScene(disparity=disparity, person_ids=ids, true_depth=depth, mesh_depth=mesh_depth)
