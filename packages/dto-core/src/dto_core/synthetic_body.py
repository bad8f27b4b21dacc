"""Synthetic SMPL-format body models, for tests and demos (the licensed SMPL files cannot ship).

The body is 24 tapered lat-long capsules, one per SMPL part, in SMPL's frame (metres, y up, x the
body's left, z forward, origin a little above the pelvis) and T-pose. They are joined along the
kinematic tree by connected sums (one triangle removed from each side, the two holes bridged by a
6-triangle sleeve) into one closed genus-0 surface with SMPL's 6890 vertices and 13776 faces.
Shape directions are derivatives of a small parametric body (stature, girth, shoulder width, ...);
pose correctives are smooth seeded bumps around the joints.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from dto_core.atomic import write_atomic

__all__ = [
    "SMPL_PARENTS",
    "make_synthetic_j19_regressor",
    "make_synthetic_kid_template",
    "make_synthetic_mean_params",
    "make_synthetic_smpl",
    "write_synthetic_smpl_dir",
]

NUM_VERTICES = 6890
NUM_JOINTS = 24
NUM_BETAS = 10
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
ROOT_PARENT_UINT32 = 2**32 - 1  # how SMPL's kintree_table stores the root's parent
GENDER_HEIGHTS = {"neutral": 1.70, "male": 1.76, "female": 1.64}  # T-pose height at betas=0, m
KID_HEIGHT = 0.85  # m
PELVIS = np.array([0.0, -0.23, 0.02])  # pelvis joint position, as in SMPL's templates
STATURE_PER_BETA = 0.07  # T-pose height change per unit of beta_0, m
SHAPE_JITTER = 0.1  # relative seeded spread of the amplitudes of shape directions 1..9
PROPORTION_JITTER = 0.01  # relative seeded spread of the body proportions
BLEND_FRACTION, BLEND_MIN, BLEND_MAX = 0.25, 0.012, 0.05  # skinning blend half-width: of bone, m
RADIAL_FALLOFF = 0.8  # child blend fades out between 1 and 1 + this many child radii off its axis
POSE_RADIAL_STD, POSE_SHIFT_STD = 0.006, 0.003  # pose corrective scales, m per unit of R - I
POSE_BUMP_RADII = 1.2  # pose corrective bump width in part radii (cut off at 3 widths)

# (rings, segments) of each part's lat-long grid, in SMPL joint order; sum(r * s + 2) == 6890.
GRID = (
    (16, 32), (20, 24), (20, 24), (10, 32), (20, 20), (20, 20), (10, 32), (10, 16),
    (10, 16), (18, 36), (6, 12), (6, 12), (8, 20), (6, 16), (6, 16), (23, 46),
    (16, 18), (16, 18), (14, 16), (14, 16), (8, 14), (8, 14), (8, 10), (8, 10),
)  # fmt: skip
_SIZES = np.array([r * s + 2 for r, s in GRID])
_OFFSETS = np.concatenate([[0], np.cumsum(_SIZES)])
_CHILDREN = [[c for c in range(NUM_JOINTS) if SMPL_PARENTS[c] == j] for j in range(NUM_JOINTS)]
_SHIN_OF_ANKLE = {7: 4, 8: 5}  # the ankle lies on the shin's axis, not on the foot's


@dataclass(frozen=True)
class _Proportions:
    """Body proportions: relative factors, except belly and chest (extra depth, m)."""

    scale: float = 1.0  # all lengths, about the pelvis
    leg: float = 1.0
    torso: float = 1.0
    arm: float = 1.0
    shoulder: float = 1.0
    hip: float = 1.0
    girth: float = 1.0
    limb: float = 1.0
    head: float = 1.0
    belly: float = 0.0
    chest: float = 0.0


_PRESETS = {
    "neutral": _Proportions(),
    "male": _Proportions(shoulder=1.08, hip=0.95, girth=1.03, limb=1.05, chest=0.005),
    "female": _Proportions(shoulder=0.92, hip=1.08, girth=0.97, limb=0.95, head=0.97, chest=0.012),
    "kid": _Proportions(leg=0.72, torso=0.95, arm=0.82, girth=1.2, limb=1.1, head=1.5, belly=0.01),
}
# Shape directions 1..9 (direction 0 is stature): proportion changes per unit of beta.
_SHAPE_DIRECTIONS = (
    {"girth": 0.07},
    {"shoulder": 0.06},
    {"hip": 0.06},
    {"belly": 0.02},
    {"leg": 0.03, "torso": -0.04},
    {"arm": 0.05},
    {"head": 0.05},
    {"chest": 0.015},
    {"limb": 0.08},
)


class _Part(NamedTuple):
    start: np.ndarray  # (3,) proximal axis point: the part's joint, except for the feet
    end: np.ndarray  # (3,) distal axis point
    ext: tuple[float, float]  # axis extension before start and after end, m
    r_start: tuple[float, float]  # (ru, rw) cross-section semi-axes at the proximal pole side, m
    r_end: tuple[float, float]
    sharp: float  # profile exponent: 1 ellipsoid, < 1 boxier


class _Body(NamedTuple):
    vertices: np.ndarray  # (V, 3)
    joints: np.ndarray  # (24, 3)
    normals: np.ndarray  # (24, 3) unit direction across each joint, parent side to child side
    blend: np.ndarray  # (24,) skinning blend half-width, m
    lengths: np.ndarray  # (24,) axis length of each part between its start and end points, m
    radius: np.ndarray  # (24,) proximal radius of each part, m
    ring_s: list[np.ndarray]  # per part: axial position of poles and rings from its start, m


def _layout(p: _Proportions) -> tuple[np.ndarray, list[_Part]]:
    """Joints (24, 3) and parts of an unscaled body, pelvis at the origin, m."""
    j = np.zeros((NUM_JOINTS, 3))
    g, gl, h = p.girth, p.girth * p.limb, p.head
    j[3] = (0.0, 0.12 * p.torso, -0.025)
    j[6] = j[3] + (0.0, 0.135 * p.torso, 0.005)
    j[9] = j[6] + (0.0, 0.055 * p.torso, 0.025)
    j[12] = j[9] + (0.0, 0.215 * p.torso, -0.04)
    j[15] = j[12] + (0.0, 0.07, 0.05)
    parts: dict[int, _Part] = {
        0: _Part(j[0], j[3], (0.13, 0.0), (0.165 * p.hip * g, 0.105 * g),
                 (0.15 * g, 0.10 * g + p.belly), 0.5),
        3: _Part(j[3], j[6], (0.03, 0.03), (0.145 * g, 0.10 * g + p.belly),
                 (0.14 * g, 0.10 * g + p.belly), 0.5),
        6: _Part(j[6], j[9], (0.03, 0.03), (0.14 * g, 0.10 * g + p.belly / 2),
                 (0.15 * g, 0.105 * g + p.chest), 0.5),
        9: _Part(j[9], j[12], (0.04, 0.0), (0.15 * g, 0.105 * g + p.chest),
                 (0.165 * g * p.shoulder, 0.08 * g), 0.45),
        12: _Part(j[12], j[15], (0.02, 0.02), (0.055 * g, 0.06 * g), (0.052 * g, 0.058 * g), 0.8),
        15: _Part(j[15], j[15] + (0.0, 0.12 * h, 0.01), (0.075 * h, 0.035 * h),
                  (0.07 * h, 0.085 * h), (0.08 * h, 0.097 * h), 1.0),
    }  # fmt: skip
    for s, (hip, knee, ankle, foot, collar, shoulder, elbow, wrist, hand) in (
        (1.0, (1, 4, 7, 10, 13, 16, 18, 20, 22)),
        (-1.0, (2, 5, 8, 11, 14, 17, 19, 21, 23)),
    ):
        j[hip] = (s * 0.062 * p.hip, -0.085, -0.005)
        j[knee] = j[hip] + (s * 0.045, -0.375 * p.leg, 0.005)
        j[ankle] = j[knee] + (-s * 0.012, -0.42 * p.leg, -0.035)
        j[foot] = j[ankle] + (s * 0.02, -0.05, 0.125)
        j[collar] = j[9] + (s * 0.075 * p.shoulder, 0.115 * p.torso, -0.03)
        j[shoulder] = j[collar] + (s * 0.095 * p.shoulder, 0.03, -0.01)
        j[elbow] = j[shoulder] + (s * 0.26 * p.arm, -0.01, -0.02)
        j[wrist] = j[elbow] + (s * 0.25 * p.arm, 0.005, 0.0)
        j[hand] = j[wrist] + (s * 0.085 * p.arm, -0.008, -0.008)
        heel = j[ankle] + (0.0, -0.037, -0.045)  # sole 0.075 below the ankle
        parts |= {
            hip: _Part(j[hip], j[knee], (0.06, 0.03), (0.085 * gl, 0.09 * gl),
                       (0.055 * gl, 0.058 * gl), 0.6),
            knee: _Part(j[knee], j[ankle], (0.03, 0.045), (0.055 * gl, 0.058 * gl),
                        (0.034 * gl, 0.037 * gl), 0.6),
            ankle: _Part(heel, j[foot], (0.02, 0.0), (0.035 * g, 0.038 * g),
                         (0.048 * g, 0.025 * g), 0.6),
            foot: _Part(j[foot], j[foot] + (s * 0.005, -0.004, 0.06), (0.015, 0.012),
                        (0.046, 0.021), (0.04, 0.015), 0.7),
            collar: _Part(j[collar], j[shoulder], (0.02, 0.03), (0.055 * g, 0.06 * g),
                          (0.058 * g, 0.062 * g), 0.6),
            shoulder: _Part(j[shoulder], j[elbow], (0.035, 0.02), (0.05 * gl, 0.052 * gl),
                            (0.038 * gl, 0.04 * gl), 0.6),
            elbow: _Part(j[elbow], j[wrist], (0.02, 0.012), (0.04 * gl, 0.042 * gl),
                         (0.026 * gl, 0.032 * gl), 0.6),
            wrist: _Part(j[wrist], j[hand], (0.012, 0.01), (0.016, 0.04), (0.014, 0.045), 0.6),
            hand: _Part(j[hand], j[hand] + (s * 0.095 * p.arm, -0.004, 0.0), (0.01, 0.0),
                        (0.012, 0.042), (0.008, 0.035), 0.7),
        }  # fmt: skip
    return j, [parts[k] for k in range(NUM_JOINTS)]


def _frame(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit u, w with (u, w, d) right-handed; w is forward (z), or up for parts along z."""
    ref = np.array([0.0, 1.0, 0.0]) if abs(d[2]) > 0.7 else np.array([0.0, 0.0, 1.0])
    w = ref - (ref @ d) * d
    w /= np.linalg.norm(w)
    return np.cross(w, d), w


def _build(p: _Proportions) -> _Body:
    """Vertices and skinning geometry of the body with proportions p, SMPL frame, m."""
    local_joints, parts = _layout(p)
    joints = PELVIS + p.scale * local_joints
    verts, axes, lengths, radius, ring_s = [], [], [], [], []
    for part, (rings, segs) in zip(parts, GRID, strict=True):
        start, end = PELVIS + p.scale * part.start, PELVIS + p.scale * part.end
        ext0, ext1 = (p.scale * e for e in part.ext)
        length = float(np.linalg.norm(end - start))
        d = (end - start) / length
        u, w = _frame(d)
        theta = np.pi * np.arange(1, rings + 1) / (rings + 1)
        t = (1.0 - np.cos(theta)) / 2.0
        total = ext0 + length + ext1
        centres = start + (t * total - ext0)[:, None] * d
        profile = np.sin(theta) ** part.sharp * p.scale
        ru = profile * ((1 - t) * part.r_start[0] + t * part.r_end[0])
        rw = profile * ((1 - t) * part.r_start[1] + t * part.r_end[1])
        phi = 2.0 * np.pi * np.arange(segs) / segs
        ring = (centres[:, None] + (ru[:, None] * np.cos(phi))[..., None] * u
                + (rw[:, None] * np.sin(phi))[..., None] * w)  # fmt: skip
        verts.append(np.vstack([start - ext0 * d, ring.reshape(-1, 3), end + ext1 * d]))
        axes.append(d)
        lengths.append(length)
        radius.append(p.scale * max(part.r_start))
        ring_s.append(np.concatenate([[-ext0], t * total - ext0, [length + ext1]]))
    axes = np.array(axes)
    normals = axes.copy()
    for ankle, shin in _SHIN_OF_ANKLE.items():
        normals[ankle] = axes[shin]
    blend = np.clip(BLEND_FRACTION * np.array(lengths), BLEND_MIN, BLEND_MAX)
    return _Body(
        np.concatenate(verts), joints, normals, blend, np.array(lengths), np.array(radius), ring_s
    )


def _jittered(p: _Proportions, rng: np.random.Generator) -> _Proportions:
    """p with its relative factors (not scale) perturbed by PROPORTION_JITTER."""
    names = ("leg", "torso", "arm", "shoulder", "hip", "girth", "limb", "head")
    factors = 1.0 + PROPORTION_JITTER * rng.standard_normal(len(names))
    return replace(p, **{n: getattr(p, n) * f for n, f in zip(names, factors, strict=True)})


def _with_height(p: _Proportions, height: float) -> _Proportions:
    """p rescaled about the pelvis to the given T-pose height, m."""
    return replace(p, scale=p.scale * height / np.ptp(_build(p).vertices[:, 1]))


def _part_faces(rings: int, segs: int) -> np.ndarray:
    """(2 * rings * segs, 3) outward faces of one lat-long capsule, local vertex indices."""
    m = np.arange(segs)
    m1 = (m + 1) % segs
    first, last = 1, 1 + (rings - 1) * segs
    k = 1 + segs * np.arange(rings - 1)[:, None]
    a, b, c, d = k + m, k + m1, k + segs + m1, k + segs + m
    quads = np.concatenate([np.stack([a, b, c], -1), np.stack([a, c, d], -1)], 1).reshape(-1, 3)
    bottom = np.stack([np.zeros(segs, int), first + m1, first + m], 1)
    top = np.stack([np.full(segs, last + segs), last + m, last + m1], 1)
    return np.concatenate([bottom, quads, top])


def _sleeve(a: np.ndarray, b: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """(6, 3) faces bridging the holes left by removing outward faces a and b, least twisted."""
    rotations = [b[[(k - i) % 3 for i in range(3)]] for k in range(3)]
    beta = min(rotations, key=lambda r: float(np.sum((vertices[a] - vertices[r]) ** 2)))
    nxt = (1, 2, 0)
    pairs = [((a[i], a[nxt[i]], beta[nxt[i]]), (a[i], beta[nxt[i]], beta[i])) for i in range(3)]
    return np.array(pairs).reshape(6, 3)


@cache
def _faces() -> np.ndarray:
    """(13776, 3) faces of the joined surface, from the neutral layout (same for every model)."""
    body = _build(_PRESETS["neutral"])
    parts = [_part_faces(r, s) + o for (r, s), o in zip(GRID, _OFFSETS[:-1], strict=True)]
    keep = [np.ones(len(f), bool) for f in parts]
    used = np.zeros(NUM_VERTICES, bool)

    def take(part: int, target: np.ndarray) -> np.ndarray:
        faces = parts[part]
        dist = np.linalg.norm(body.vertices[faces].mean(1) - target, axis=1)
        dist[~keep[part] | used[faces].any(1)] = np.inf
        best = int(np.argmin(dist))
        keep[part][best] = False
        used[faces[best]] = True
        return faces[best]

    sleeves = [
        _sleeve(take(SMPL_PARENTS[c], body.joints[c]), take(c, body.joints[c]), body.vertices)
        for c in range(1, NUM_JOINTS)
    ]
    faces = np.concatenate([f[k] for f, k in zip(parts, keep, strict=True)] + sleeves)
    faces.flags.writeable = False
    return faces


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _skinning_weights(body: _Body) -> np.ndarray:
    """(V, 24) weights: each part to its joint, blended with parent and children across joints."""
    weights = np.zeros((NUM_VERTICES, NUM_JOINTS))
    for q in range(NUM_JOINTS):
        rows = slice(_OFFSETS[q], _OFFSETS[q + 1])
        v = body.vertices[rows]
        own = np.ones(len(v))
        if q > 0:
            t = (v - body.joints[q]) @ body.normals[q]
            own = _smoothstep((t + body.blend[q]) / (2.0 * body.blend[q]))
            weights[rows, SMPL_PARENTS[q]] += 1.0 - own
        for c in _CHILDREN[q]:
            rel = v - body.joints[c]
            t = rel @ body.normals[c]
            off_axis = np.linalg.norm(rel - t[:, None] * body.normals[c], axis=1) / body.radius[c]
            share = own * _smoothstep((t + body.blend[c]) / (2.0 * body.blend[c]))
            share *= 1.0 - _smoothstep((off_axis - 1.0) / RADIAL_FALLOFF)
            weights[rows, c] += share
            own = own - share
        weights[rows, q] += own
    return weights


def _joint_regressor(body: _Body) -> sp.csc_matrix:
    """(24, V) regressor: each joint interpolated between the two rings (or poles) around it."""
    rows, cols, vals = [], [], []
    for j in range(NUM_JOINTS):
        part = _SHIN_OF_ANKLE.get(j, j)
        s_joint = body.lengths[part] if part != j else 0.0  # the ankle is the shin's end
        s = body.ring_s[part]
        k = int(np.searchsorted(s, s_joint, side="right")) - 1
        alpha = (s_joint - s[k]) / (s[k + 1] - s[k])
        segs = GRID[part][1]
        for ring, share in ((k, 1.0 - alpha), (k + 1, alpha)):
            if ring in (0, len(s) - 1):  # a pole: one vertex
                members = np.array([0 if ring == 0 else _SIZES[part] - 1])
            else:
                members = 1 + (ring - 1) * segs + np.arange(segs)
            rows.append(np.full(len(members), j))
            cols.append(_OFFSETS[part] + members)
            vals.append(np.full(len(members), share / len(members)))
    data = (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols)))
    return sp.csc_matrix(data, shape=(NUM_JOINTS, NUM_VERTICES))


def _pose_correctives(body: _Body, rng: np.random.Generator) -> np.ndarray:
    """(V, 3, 207) posedirs: per joint and pose feature, a seeded bump of radial + shift offsets."""
    radial_coef = rng.normal(0.0, POSE_RADIAL_STD, (NUM_JOINTS - 1, 9))
    shift_coef = rng.normal(0.0, POSE_SHIFT_STD, (NUM_JOINTS - 1, 3, 9))
    posedirs = np.zeros((NUM_VERTICES, 3, NUM_JOINTS - 1, 9))
    for j in range(1, NUM_JOINTS):
        rel = body.vertices - body.joints[j]
        dist = np.linalg.norm(rel, axis=1)
        width = POSE_BUMP_RADII * body.radius[j]
        near = dist < 3.0 * width
        bump = np.exp(-((dist[near] / width) ** 2))[:, None, None]
        radial = rel[near] / np.maximum(dist[near], 1e-9)[:, None]
        posedirs[near, :, j - 1] = bump * (
            radial[:, :, None] * radial_coef[j - 1] + shift_coef[j - 1]
        )
    return posedirs.reshape(NUM_VERTICES, 3, 9 * (NUM_JOINTS - 1))


def _shape_directions(p: _Proportions, rng: np.random.Generator) -> np.ndarray:
    """(V, 3, 10) shapedirs: 0 = stature (uniform scaling about the floor), 1..9 proportions."""
    vertices = _build(p).vertices
    floor = np.array([0.0, vertices[:, 1].min(), 0.0])
    dirs = np.empty((NUM_VERTICES, 3, NUM_BETAS))
    dirs[..., 0] = (vertices - floor) * (STATURE_PER_BETA / np.ptp(vertices[:, 1]))
    amplitudes = 1.0 + SHAPE_JITTER * rng.standard_normal(NUM_BETAS - 1)
    for k, (change, amplitude) in enumerate(zip(_SHAPE_DIRECTIONS, amplitudes, strict=True), 1):
        plus = replace(p, **{n: getattr(p, n) + d for n, d in change.items()})
        minus = replace(p, **{n: getattr(p, n) - d for n, d in change.items()})
        dirs[..., k] = amplitude * (_build(plus).vertices - _build(minus).vertices) / 2.0
    return dirs


def make_synthetic_smpl(gender: str = "neutral", seed: int = 0) -> dict[str, object]:
    """A synthetic model with exactly the keys, shapes and dtypes of an SMPL .pkl.

    v_template (6890, 3) m, f (13776, 3) uint32, J_regressor csc (24, 6890), weights (6890, 24),
    kintree_table (2, 24) uint32, shapedirs (6890, 3, 10), posedirs (6890, 3, 207), J (24, 3),
    bs_style "lbs", bs_type "lrotmin". Deterministic for (gender, seed).
    """
    if gender not in GENDER_HEIGHTS:
        raise ValueError(f"gender must be one of {sorted(GENDER_HEIGHTS)}, got {gender!r}")
    rng = np.random.default_rng(seed)
    p = _with_height(_jittered(_PRESETS[gender], rng), GENDER_HEIGHTS[gender])
    body = _build(p)
    regressor = _joint_regressor(body)
    parents = np.array(SMPL_PARENTS, dtype=np.int64)
    parents[0] = ROOT_PARENT_UINT32
    return {
        "v_template": body.vertices,
        "f": _faces().astype(np.uint32),
        "J_regressor": regressor,
        "weights": _skinning_weights(body),
        "kintree_table": np.stack([parents, np.arange(NUM_JOINTS)]).astype(np.uint32),
        "shapedirs": _shape_directions(p, rng),
        "posedirs": _pose_correctives(body, rng),
        "J": regressor @ body.vertices,
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


def make_synthetic_kid_template(seed: int = 0) -> np.ndarray:
    """(6890, 3) toddler template (T-pose, KID_HEIGHT tall, big head), topology of the adults, m."""
    rng = np.random.default_rng(seed)
    return _build(_with_height(_jittered(_PRESETS["kid"], rng), KID_HEIGHT)).vertices


def make_synthetic_j19_regressor(model: dict[str, object]) -> np.ndarray:
    """(19, 6890) float64 counterpart of SMPL_to_J19.pkl for a synthetic model's arrays.

    Rows in the file's order: R ankle, R knee, R hip, L hip, L knee, L ankle, R wrist, R elbow,
    R shoulder, L shoulder, L elbow, L wrist, neck, head top, pelvis, thorax, spine, jaw, head.
    Each row is a SMPL joint-regressor row (or a mean of two) or one vertex (head top: the
    highest T-pose vertex; jaw: the most forward vertex above the neck); every row sums to 1.
    """
    jr = np.asarray(sp.csr_matrix(model["J_regressor"]).toarray(), dtype=np.float64)
    v = np.asarray(model["v_template"], dtype=np.float64)
    top = np.zeros(len(v))
    top[np.argmax(v[:, 1])] = 1.0
    above_neck = np.flatnonzero(v[:, 1] > (jr[12] @ v)[1])
    jaw = np.zeros(len(v))
    jaw[above_neck[np.argmax(v[above_neck, 2])]] = 1.0
    limbs = jr[[8, 5, 2, 1, 4, 7, 21, 19, 17, 16, 18, 20]]
    return np.vstack([limbs, jr[12], top, jr[0], jr[[9, 12]].mean(0), jr[6], jaw, jr[15]])


def make_synthetic_mean_params(seed: int = 0) -> dict[str, np.ndarray]:
    """Counterpart of smpl_mean_params.npz: `pose` (144,) 24 x 6D (first column, then second
    column of each rotation matrix) near the identity, `shape` (10,) near 0, `cam` (3,) near
    (0.9, 0, 0) (weak-perspective scale, t_x, t_y). Float64, deterministic for the seed."""
    rng = np.random.default_rng(seed)
    identity_6d = np.tile([1.0, 0.0, 0.0, 0.0, 1.0, 0.0], NUM_JOINTS)
    return {
        "pose": identity_6d + rng.normal(0.0, 0.01, identity_6d.shape),
        "shape": rng.normal(0.0, 0.1, NUM_BETAS),
        "cam": np.array([0.9, 0.0, 0.0]) + rng.normal(0.0, 0.01, 3),
    }


def write_synthetic_smpl_dir(directory: str | os.PathLike[str], seed: int = 0) -> list[Path]:
    """Write SMPL_{NEUTRAL,MALE,FEMALE}.pkl, SMPL_NEUTRAL.npz, smpl_kid_template.npy,
    SMPL_to_J19.pkl (the neutral model's (19, 6890) regressor, a pickled dense array) and
    smpl_mean_params.npz; returns the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for gender in ("neutral", "male", "female"):
        model = make_synthetic_smpl(gender, seed)
        path = directory / f"SMPL_{gender.upper()}.pkl"
        write_atomic(path, lambda f, m=model: pickle.dump(m, f, protocol=2))
        written.append(path)
        if gender == "neutral":
            dense = {k: v.toarray() if sp.issparse(v) else np.asarray(v) for k, v in model.items()}
            path = directory / "SMPL_NEUTRAL.npz"
            write_atomic(path, lambda f, d=dense: np.savez(f, **d))
            written.append(path)
            path = directory / "SMPL_to_J19.pkl"
            j19 = make_synthetic_j19_regressor(model)
            write_atomic(path, lambda f, a=j19: pickle.dump(a, f, protocol=2))
            written.append(path)
    path = directory / "smpl_kid_template.npy"
    write_atomic(path, lambda f: np.save(f, make_synthetic_kid_template(seed)))
    written.append(path)
    path = directory / "smpl_mean_params.npz"
    write_atomic(path, lambda f: np.savez(f, **make_synthetic_mean_params(seed)))
    return [*written, path]
