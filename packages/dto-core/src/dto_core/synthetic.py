"""Synthetic crowds with ground truth, a simulated teacher and a simulated relative depth.

Every number produced here is synthetic; it exercises DTO where no licensed data exist.

World: an OpenCV camera (principal point at the image centre) `camera_height` metres above a flat
ground; people stand on it at depths 2-20 m, heights drawn from the age/gender priors; a body is
three ellipsoids (head, torso, legs).

Two error models, shared by both levels of the simulator and public, so that a pixel pipeline
(e.g. rendered SMPL bodies) can apply them to its own depth maps and people:

- `TeacherModel`: the single-person teacher's errors (heights pulled towards the adult mean, an
  over-estimated focal length, 2D projections kept).
- `RelativeDepthModel`: how a monocular relative-depth network's disparity-like map differs from
  the truth (affine ambiguity, vertical bias, per-person error, intra-body slope error, pixel
  noise); `RelativeDepthModel.disparity` applies it to a true depth map.

Two levels: `sample_crowds` gives per-person cues for many scenes (vectorised, millions of persons
per second), with the statistics that cue extraction yields on pixels under the same model (closed
form, see `RelativeDepthModel`); `render_scene` ray-casts one scene into pixel maps (relative
disparity, person ids, teacher mesh depth) with the same draws, for the pixel-level cue extraction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dto_core.camera import focal_from_fov
from dto_core.cues import CueStatus, DepthCues
from dto_core.optimize import person_apparent_scale
from dto_core.priors import PAPER_PRIORS, PriorClass, prior_class

__all__ = [
    "DA_V2_ABS_REL",
    "DepthErrors",
    "PixelScene",
    "RelativeDepthModel",
    "SyntheticCrowds",
    "TeacherModel",
    "render_scene",
    "sample_crowds",
]

ADULT_MEAN_HEIGHT = PAPER_PRIORS.mean[PriorClass.ADULT_NEUTRAL]  # what the teacher regresses to
MIN_HEIGHT = 0.45  # truncation of the sampled true and teacher heights (m)

DA_V2_ABS_REL = 0.045
"""AbsRel of Depth Anything V2 ViT-L, zero-shot relative depth on NYU-D after per-image affine
alignment (Yang et al., "Depth Anything V2", NeurIPS 2024, Table 2; the same table gives 0.074 on
KITTI). The default per-person error of `RelativeDepthModel` is derived from it."""


@dataclass(frozen=True)
class TeacherModel:
    """Errors of the simulated single-person teacher (CameraHMR with a HumanFoV camera).

    height:  h_hat = h + pull (1.715 - h) + N(0, height_noise^2) m, truncated at 0.45 m: heights
             are pulled towards the adult mean, so children come out adult-sized.
    focal:   teacher focal / true focal, uniform in `focal_ratio` per scene (HumanFoV predicts
             large focal lengths, DTO paper supp. 6.3).
    The teacher keeps every person's 2D projection: its person is the true one scaled by
    k = (h_hat / h) focal_ratio about the camera centre (`depth_scale`), so its depth is k z and
    its mesh depth on the person's pixels is k times the true depth there.
    The values are assumptions that reproduce these documented failure directions, not
    measurements.
    """

    pull: float = 0.7
    height_noise: float = 0.03
    focal_ratio: tuple[float, float] = (1.0, 1.25)

    def heights(self, height: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Teacher T-pose heights (N,) m of people with true heights (N,) m."""
        height = np.asarray(height, dtype=np.float64)
        h_hat = (
            height
            + self.pull * (ADULT_MEAN_HEIGHT - height)
            + rng.normal(0.0, self.height_noise, height.shape)
        )
        return np.maximum(h_hat, MIN_HEIGHT)

    def sample_focal_ratio(self, num_scenes: int, rng: np.random.Generator) -> np.ndarray:
        """Teacher focal / true focal, (S,)."""
        return rng.uniform(*self.focal_ratio, num_scenes)

    @staticmethod
    def depth_scale(
        height: np.ndarray, teacher_height: np.ndarray, focal_ratio: np.ndarray
    ) -> np.ndarray:
        """k = z_hat / z = (h_hat / h) focal_ratio per person (arrays broadcast)."""
        return np.asarray(teacher_height) / np.asarray(height) * np.asarray(focal_ratio)


@dataclass(frozen=True)
class DepthErrors:
    """One draw of a `RelativeDepthModel` for S scenes and N persons.

    Per scene (S,): scale a (arbitrary units), shift b (1/m), vertical_bias c (1/m over the image
    height). Per person (N,): person_error, the factor m_i on the person's disparity (mean 1), and
    slope_gain, the factor nu_i on the person's intra-human slope (mean 1).
    """

    scale: np.ndarray
    shift: np.ndarray
    vertical_bias: np.ndarray
    person_error: np.ndarray
    slope_gain: np.ndarray

    def scene(self, index: int, offsets: np.ndarray) -> DepthErrors:
        """The draws of scene `index` (S = 1), whose persons are offsets[index]:offsets[index+1]."""
        persons = slice(int(offsets[index]), int(offsets[index + 1]))
        one = slice(index, index + 1)
        return DepthErrors(
            self.scale[one],
            self.shift[one],
            self.vertical_bias[one],
            self.person_error[persons],
            self.slope_gain[persons],
        )


@dataclass(frozen=True)
class RelativeDepthModel:
    """Errors of a monocular relative-depth network with a disparity-like output (DA-V2 style).

    At pixel p (row v, image height H) of person i, with true depth z(p) (m) and q_i the mean of
    1/z over the person's pixels:

        disparity(p) = a m_i (q_i + (1/z(p) - q_i) / nu_i + b + c ((v + 1/2) / H - 1/2)) n(p)

    and the same without m_i and nu_i on background pixels. Per scene: a log-uniform in `scale`,
    b uniform in `shift` (1/m), c uniform in +/- `vertical_bias` (1/m). Per person: the error of
    its disparity m_i = exp(person_noise N - person_noise^2 / 2) and the slope gain
    nu_i = exp(slope_noise N - slope_noise^2 / 2) (both log-normal with mean 1, so unbiased),
    which scales the body's depth relief in the map by 1/nu_i and hence the person's intra-human
    slope X_i by nu_i. Per pixel: white noise n(p) = exp(pixel_noise N - pixel_noise^2 / 2).

    What cue extraction then yields (the cue level, `sample_crowds`, uses these formulas; the
    pixel level reproduces them, tested): relative depth d_i = 1 / (a m_i (1/z_i + b + c v_i));
    slope X_i = k_i m_i nu_i lambda_i / (dd/dz)_i with k_i the teacher's depth scale and
    (dd/dz)_i = 1 / (a (1 + (b + c v_i) z_i)^2) the noise-free slope of relative depth; pixel
    noise dilutes the row-demeaned regression by lambda_i = S / (S + N), with S the variance of
    the relief inside image rows in relative-depth units and N = (d_i pixel_noise)^2, and gives
    the correlation sqrt(lambda_i).

    Sources: person_noise = sqrt(pi/2) DA_V2_ABS_REL = 0.056 (the mean absolute value of a
    Gaussian relative error sigma is sigma sqrt(2/pi)), i.e. DA-V2's whole-image error put on each
    person's mean depth. The split of that error into per-person and within-body parts is not
    published: slope_noise = 0.15 is an assumption, and pixel_noise is 0 because DA-V2's output
    is smooth at body scale (its DPT head upsamples 14-pixel patch features); both are
    parameters for sweeps. The vertical bias is the one the official DTO code removes row by row
    ("DepthAnything v2 output has Y-axis bias"); its size is an assumption.
    """

    scale: tuple[float, float] = (1.0, 300.0)
    shift: tuple[float, float] = (0.0, 0.01)
    vertical_bias: float = 0.01
    person_noise: float = float(np.sqrt(np.pi / 2) * DA_V2_ABS_REL)
    slope_noise: float = 0.15
    pixel_noise: float = 0.0

    def sample(self, num_scenes: int, num_persons: int, rng: np.random.Generator) -> DepthErrors:
        """Draw the per-scene and per-person errors."""
        return DepthErrors(
            scale=np.exp(rng.uniform(*np.log(self.scale), num_scenes)),
            shift=rng.uniform(*self.shift, num_scenes),
            vertical_bias=rng.uniform(-self.vertical_bias, self.vertical_bias, num_scenes),
            person_error=_unit_lognormal(rng, self.person_noise, num_persons),
            slope_gain=_unit_lognormal(rng, self.slope_noise, num_persons),
        )

    def disparity(
        self,
        true_depth: np.ndarray,
        person_ids: np.ndarray,
        errors: DepthErrors,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """The network's disparity map (H, W) of one scene.

        true_depth: (H, W) depth (m, > 0) of the visible surface at each pixel; person_ids:
        (H, W) int, 0 background, i + 1 person i; errors: the scene's draws (S = 1, persons in id
        order, at least max(person_ids) of them). Pixel noise is drawn from rng.
        """
        true_depth = np.asarray(true_depth, dtype=np.float64)
        ids = np.asarray(person_ids)
        if true_depth.ndim != 2 or ids.shape != true_depth.shape:
            raise ValueError(
                f"true_depth {true_depth.shape} and person_ids {ids.shape} must be one (H, W)"
            )
        if not np.all(np.isfinite(true_depth) & (true_depth > 0)):
            raise ValueError("true_depth must be finite and > 0 everywhere")
        k = errors.person_error.size
        if errors.scale.size != 1 or ids.min(initial=0) < 0 or ids.max(initial=0) > k:
            raise ValueError(f"errors must hold one scene, and person_ids must lie in [0, {k}]")
        img_h = ids.shape[0]
        inv = 1.0 / true_depth
        # q_i, the mean inverse depth of each person; the relief around it is scaled by 1/nu_i
        counts = np.bincount(ids.ravel(), minlength=k + 1)
        q = np.bincount(ids.ravel(), weights=inv.ravel(), minlength=k + 1) / np.maximum(counts, 1)
        relief = np.concatenate(([1.0], 1.0 / errors.slope_gain))[ids]
        inv = q[ids] + (inv - q[ids]) * relief
        rows = (np.arange(img_h)[:, None] + 0.5) / img_h - 0.5
        scene = errors.scale[0] * (inv + errors.shift[0] + errors.vertical_bias[0] * rows)
        person = np.concatenate(([1.0], errors.person_error))[ids]
        return scene * person * _unit_lognormal(rng, self.pixel_noise, ids.shape)


def _unit_lognormal(rng: np.random.Generator, sigma: float, shape) -> np.ndarray:
    """exp(sigma N - sigma^2 / 2): log-normal factors with mean exactly 1."""
    return np.exp(sigma * rng.standard_normal(shape) - sigma**2 / 2)


# body of a person of height h standing at the origin, as ellipsoids:
# (centre height / h, semi-axes x, y, z / h) for head, torso, legs
_BODY_PARTS = np.array(
    [
        [0.935, 0.055, 0.065, 0.060],
        [0.660, 0.120, 0.170, 0.075],
        [0.255, 0.100, 0.255, 0.070],
    ]
)


def _relief_std(height: np.ndarray, sin_view: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Std (m) of the visible surface depth of a body over its pixels: inside image rows (what
    the row-demeaned regression sees) and overall.

    height (N,) m; sin_view (N,) sine of the angle between the optical axis and the ray to the
    body axis. Each ellipsoid (semi-axes s_x, s_z) shows, along a row chord w in [-1, 1], the
    depth offset -s_z sqrt(1 - w^2) plus s_x sin_view w (seen obliquely, one side is nearer);
    inside rows that has variance s_z^2 (2/3 - pi^2/16) + s_x^2 sin_view^2 / 3, times 3/4 over the
    rows (chords weighted by length); over the whole silhouette (disc) s_z^2 / 18 +
    s_x^2 sin_view^2 / 4 about the part's mean offset -2 s_z / 3. Parts are weighted by silhouette
    area; overlaps and the change of perspective across a body are neglected.
    """
    _, sx, sy, sz = _BODY_PARTS.T
    w = sx * sy / np.sum(sx * sy)
    tilt = np.asarray(sin_view, dtype=np.float64)[..., None] ** 2
    lean = (sz**2 / sx) ** 2 * tilt  # squared depth offset of the silhouette's edges
    in_rows = np.sum(w * 0.75 * ((2 / 3 - np.pi**2 / 16) * sz**2 + lean / 3), axis=-1)
    mean = -2 / 3 * sz  # mean offset of each part's front surface
    spread = np.sum(w * (sz**2 / 18 + lean / 4 + mean**2), axis=-1) - np.sum(w * mean) ** 2
    height = np.asarray(height, dtype=np.float64)
    return height * np.sqrt(in_rows), height * np.sqrt(spread)


@dataclass(frozen=True)
class SyntheticCrowds:
    """S scenes, N persons; person arrays (N,), scene i is offsets[i]:offsets[i+1].

    Ground truth: age (years), is_male, height (m), depth z (m), x (m, lateral position of the
    body axis). Estimates the pipeline would have: age_estimate, p_male, prior_cls (from those),
    teacher_height, teacher_depth (m), cues (DepthCues, mesh_depth = teacher_depth), apparent_scale.
    exact_slope (N,): the intra-human slope an error-free cue would give, d(target depth)/d(rel
    depth) at the person (focal_ratio / (dd/dz)). Scene arrays (S,): focal (px, true), focal_ratio
    (teacher focal / true), camera_height (m); depth_errors: the RelativeDepthModel draws;
    image_size (H, W) px; the two error models used.
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
    exact_slope: np.ndarray
    focal: np.ndarray
    focal_ratio: np.ndarray
    camera_height: np.ndarray
    depth_errors: DepthErrors
    image_size: tuple[int, int]
    teacher: TeacherModel = field(default_factory=TeacherModel)
    depth_model: RelativeDepthModel = field(default_factory=RelativeDepthModel)

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
    teacher: TeacherModel | None = None,
    depth_model: RelativeDepthModel | None = None,
) -> SyntheticCrowds:
    """Sample `num_scenes` scenes of persons[0]..persons[1] people each (seeded, vectorised).

    minor_fraction of people are under 15 (ages uniform in 0-15, adults 15-80); the age estimate
    has 2-year noise and P(male) is confident for most people. People stand at depths uniform in
    depth_range, except in a group_photo_fraction of scenes where all stand within
    +/- group_photo_spread metres of one depth (the degenerate case the scale bound is for).
    teacher, depth_model: the error models (defaults: `TeacherModel()`, `RelativeDepthModel()`).
    """
    if num_scenes < 1 or persons[0] < 1 or persons[1] < persons[0]:
        raise ValueError(f"need num_scenes >= 1 and 1 <= persons[0] <= persons[1], got {persons}")
    teacher = teacher or TeacherModel()
    depth_model = depth_model or RelativeDepthModel()
    rng = np.random.default_rng(seed)
    img_h, img_w = image_size
    counts = rng.integers(persons[0], persons[1] + 1, num_scenes)
    offsets = np.concatenate(([0], np.cumsum(counts)))
    n = int(offsets[-1])
    scene = np.repeat(np.arange(num_scenes), counts)

    fov = np.deg2rad(rng.uniform(*fov_deg, num_scenes))
    focal = focal_from_fov(fov, img_h)
    f_ratio = teacher.sample_focal_ratio(num_scenes, rng)
    cam_h = rng.uniform(1.2, 2.0, num_scenes)
    errors = depth_model.sample(num_scenes, n, rng)

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

    h_hat = teacher.heights(height, rng)
    k = teacher.depth_scale(height, h_hat, f_ratio[scene])
    z_hat = k * z

    a, m, nu = errors.scale[scene], errors.person_error, errors.slope_gain
    pixel_height = focal[scene] * height / z

    def inverse_disparity(rows):
        """Relative depth 1 / (a m (1/z + b + c v)) and B = b + c v at image rows (px)."""
        shift = errors.shift[scene] + errors.vertical_bias[scene] * (rows / img_h - 0.5)
        return 1 / (a * m * (1 / z + shift)), shift

    d, shift_mid = inverse_disparity(_row(focal[scene], cam_h[scene], height / 2, z, img_h))
    d_down, _ = inverse_disparity(_row(focal[scene], cam_h[scene], 0.0, z, img_h))
    dd_dz = 1 / (a * (1 + shift_mid * z) ** 2)  # noise-free d(rel depth)/dz at the person
    gain = dd_dz / (m * nu)  # relief of the map per metre of relief of the body
    relief_in_rows, relief = _relief_std(height, x / np.hypot(x, z))
    signal = (gain * relief_in_rows) ** 2
    noise = (d * depth_model.pixel_noise) ** 2
    dilution = signal / (signal + noise)
    slope = k * m * nu / dd_dz * dilution
    # whole-person spread of rel depth: relief, the vertical bias over the person's rows, noise
    bias_spread = np.abs(errors.vertical_bias[scene]) * a * m * d**2 * pixel_height / img_h
    d_std = np.sqrt((gain * relief) ** 2 + bias_spread**2 / 12 + noise)

    cues = DepthCues(
        rel_depth=d,
        mesh_depth=z_hat,
        rel_depth_std=d_std,
        slope=slope,
        corr=np.sqrt(dilution),
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
        exact_slope=f_ratio[scene] / dd_dz,
        focal=focal,
        focal_ratio=f_ratio,
        camera_height=cam_h,
        depth_errors=errors,
        image_size=(img_h, img_w),
        teacher=teacher,
        depth_model=depth_model,
    )


@dataclass(frozen=True)
class PixelScene:
    """Pixel maps of one synthetic scene, (H, W) each.

    disparity: simulated relative disparity (`RelativeDepthModel.disparity`); person_ids:
    0 background, i+1 person i of the scene (front-most surface wins); true_depth: z of the
    visible surface (m; background too); mesh_depth: the teacher's mesh depth on person pixels
    (k_i times the true depth), 0 elsewhere.
    """

    disparity: np.ndarray
    person_ids: np.ndarray
    true_depth: np.ndarray
    mesh_depth: np.ndarray


def render_scene(crowds: SyntheticCrowds, index: int, *, seed: int = 0) -> PixelScene:
    """Ray-cast scene `index` of `crowds` (bodies as three ellipsoids, ground plane, far wall);
    the disparity carries the crowd's own depth-error draws, pixel noise is drawn from `seed`."""
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

    errors = crowds.depth_errors.scene(index, crowds.offsets)
    disparity = crowds.depth_model.disparity(depth, ids, errors, np.random.default_rng(seed))
    k = np.concatenate(([0.0], crowds.teacher_depth[sl] / crowds.depth[sl]))
    mesh_depth = np.where(ids > 0, k[ids] * depth, 0.0)
    return PixelScene(disparity=disparity, person_ids=ids, true_depth=depth, mesh_depth=mesh_depth)
