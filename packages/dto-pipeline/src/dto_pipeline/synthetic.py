"""Synthetic photos with ground truth, and simulated teachers that see them as the real ones would.

Everything here is SYNTHETIC. It exercises the whole pixel path of `apps/dto run` (teacher stage,
body model, renderer, cues, solve, update, filter, writer) where no licensed data or weights
exist: the end-to-end tests and `apps/dto demo --pixels` use it.

Photos (`make_photos`): the people of `dto_core.synthetic.sample_crowds` (ages, genders, heights,
positions on a ground plane, the camera) as SMPL(-A) bodies of the given body model, standing
with their arms down (`hmr_render.standing_people`), shaded over a sky-and-ground background
(`hmr_render.overlay_meshes`). A photo folder holds PNGs and `synthetic.json` (the generator's
arguments and each image's pixel digest): the ground truth is regenerated from it, never stored.

Simulated teachers (`SimulatedTeachers`), each with its protocol of `dto_models.types`:
- detector: the visible pixels of each person (a mask, its box), score 0.99; people with fewer
  than `min_pixels` visible pixels are not detected;
- keypoints: the person's true 44 joints, projected and mapped to COCO-17, score 0.9 inside the
  image and 0 outside;
- FoV: the true focal length times the scene's teacher focal ratio (`TeacherModel`);
- HMR: the true pose, a 10-beta adult shape of the teacher height h_hat (`TeacherModel.heights`:
  pulled towards the adult mean, so children come out adult-sized), placed at k = (h_hat / h)
  focal_ratio times the true depth so that it projects where the person is in the teacher's
  camera (CameraHMR's failure mode, dto-core's `TeacherModel`);
- age and gender: sample_crowds' estimates (2-year age noise, mostly confident P(male));
- relative depth: `RelativeDepthModel.disparity` of the true depth map (dto-core's shared error
  model: affine ambiguity, vertical bias, per-person error, intra-body slope error).
A teacher recognises its photo by the digest of the RGB pixels it is given.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dto_core.atomic import write_atomic
from dto_core.body import BodyModel
from dto_core.camera import project
from dto_core.synthetic import SyntheticCrowds, TeacherModel, sample_crowds
from dto_core.update import refit_betas

__all__ = [
    "SIDECAR",
    "SimulatedTeachers",
    "SyntheticPhotos",
    "load_photos",
    "make_photos",
    "release_arrays",
    "write_photos",
]

SIDECAR = "synthetic.json"
ARMS_DOWN = np.radians(70.0)
"""Shoulder rotation (rad) that lowers the arms of the T-pose."""
LEFT_SHOULDER, RIGHT_SHOULDER = 16, 17  # SMPL joint indices
COCO17_FROM_44 = (0, 16, 15, 18, 17, 34, 33, 35, 32, 36, 31, 28, 27, 29, 26, 30, 25)
"""The 4D-Humans 44 joints -> COCO-17 map of DTO's matching (spec A.2; dto_models.matching)."""


def pixel_digest(image: np.ndarray) -> str:
    """sha256 of an RGB uint8 image's shape and pixels."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    return hashlib.sha256(f"{image.shape}".encode() + image.tobytes()).hexdigest()


def _arms_down(n: int) -> np.ndarray:
    pose = np.zeros((n, 23, 3))
    pose[:, LEFT_SHOULDER - 1, 2] = -ARMS_DOWN
    pose[:, RIGHT_SHOULDER - 1, 2] = ARMS_DOWN
    return pose.reshape(n, 69)


@dataclass(frozen=True)
class SyntheticPhotos:
    """S synthetic photos of N people (person i of photo s: `crowds.scene(s)`).

    crowds: the people and cameras (`sample_crowds`); K (S, 3, 3) the true intrinsics and
    K_teacher (S, 3, 3) the teacher's (focal x focal_ratio); per person: betas (N, 11) true
    shape (the 11th, the kid blend, for minors), body_pose (N, 69), global_orient (N, 3), transl
    (N, 3) m true, teacher_betas (N, 10) and teacher_transl (N, 3) m (the simulated CameraHMR);
    names (S,) PNG file names; `arguments` the generator's arguments.
    """

    crowds: SyntheticCrowds
    K: np.ndarray
    K_teacher: np.ndarray
    betas: np.ndarray
    body_pose: np.ndarray
    global_orient: np.ndarray
    transl: np.ndarray
    teacher_betas: np.ndarray
    teacher_transl: np.ndarray
    names: tuple[str, ...]
    arguments: dict[str, Any]

    def __len__(self) -> int:
        return self.crowds.num_scenes

    def vertices(self, scene: int, body: BodyModel, teacher: bool = False) -> np.ndarray:
        """Posed vertices (n, V, 3) m of a photo's people: true, or the teacher's."""
        s = self.crowds.scene(scene)
        if teacher:
            betas = np.pad(self.teacher_betas[s], ((0, 0), (0, body.num_betas - 10)))
            return body.forward(betas, self.body_pose[s], self.global_orient[s],
                                self.teacher_transl[s]).vertices  # fmt: skip
        return body.forward(
            self.betas[s], self.body_pose[s], self.global_orient[s], self.transl[s]
        ).vertices


def make_photos(
    body: BodyModel,
    num_scenes: int,
    *,
    seed: int = 0,
    image_size: tuple[int, int] = (480, 640),
    persons: tuple[int, int] = (2, 8),
    depth_range: tuple[float, float] = (2.0, 12.0),
) -> SyntheticPhotos:
    """The ground truth of `num_scenes` photos (deterministic in the arguments).

    body: an 11-beta SMPL-A model (kid template) or a 10-beta one (then no child shapes).
    """
    crowds = sample_crowds(
        num_scenes, seed=seed, persons=persons, image_size=image_size, depth_range=depth_range
    )
    n, s = len(crowds.height), crowds.scene_index
    h, w = image_size
    minor = crowds.age < 15
    kid = body.num_betas - 1 if body.num_betas > 10 else 0
    zeros = np.zeros((n, body.num_betas))
    betas = refit_betas(body, zeros, crowds.height, np.where(minor, kid, 0))
    teacher_betas = refit_betas(body, zeros, crowds.teacher_height, np.zeros(n, np.intp))[:, :10]
    pose = _arms_down(n)
    upright = np.broadcast_to(np.array([np.pi, 0.0, 0.0]), (n, 3)).copy()
    from hmr_render import standing_people

    placed = standing_people(
        body, np.stack([crowds.x, crowds.depth], 1), 0.0, betas=betas, body_pose=pose
    )
    at_origin = body.forward(betas, pose, upright).vertices
    transl = placed[:, 0] - at_origin[:, 0]
    transl[:, 1] += crowds.camera_height[s]  # the ground is y = camera height (y down)

    focal = crowds.focal
    K = np.zeros((num_scenes, 3, 3))
    K[:, 0, 0] = K[:, 1, 1] = focal
    K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = w / 2, h / 2, 1.0
    K_teacher = K.copy()
    K_teacher[:, 0, 0] *= crowds.focal_ratio
    K_teacher[:, 1, 1] *= crowds.focal_ratio

    # the teacher's person: height h_hat, centre at k times the true centre's depth, projecting
    # (with the teacher's focal) onto the true centre's pixel
    true_centre = at_origin.mean(1) + transl
    teacher_origin = body.forward(np.pad(teacher_betas, ((0, 0), (0, body.num_betas - 10))),
                                  pose, upright).vertices.mean(1)  # fmt: skip
    k = TeacherModel.depth_scale(crowds.height, crowds.teacher_height, crowds.focal_ratio[s])
    centre = np.empty_like(true_centre)
    centre[:, 2] = k * true_centre[:, 2]
    centre[:, :2] = (
        true_centre[:, :2] / true_centre[:, 2:] * centre[:, 2:] / crowds.focal_ratio[s, None]
    )
    return SyntheticPhotos(
        crowds=crowds,
        K=K,
        K_teacher=K_teacher,
        betas=betas,
        body_pose=pose,
        global_orient=upright,
        transl=transl,
        teacher_betas=teacher_betas,
        teacher_transl=centre - teacher_origin,
        names=tuple(f"synthetic_{i:05d}.png" for i in range(num_scenes)),
        arguments={
            "num_scenes": num_scenes,
            "seed": seed,
            "image_size": list(image_size),
            "persons": list(persons),
            "depth_range": list(depth_range),
        },
    )


def _background(K: np.ndarray, size: tuple[int, int], camera_height: float) -> np.ndarray:
    """Sky above the horizon, a ground plane below, shaded by distance (RGB uint8)."""
    h, w = size
    rows = (np.arange(h) + 0.5 - K[1, 2]) / K[1, 1]  # ray y per row (z = 1)
    ground = rows > 1e-6
    distance = np.where(ground, camera_height / np.maximum(rows, 1e-6), np.inf)
    fade = np.clip(distance / 30.0, 0, 1)[:, None]
    sky = np.array([176, 204, 232]) - 40 * np.clip(-rows, 0, 1)[:, None]
    soil = (1 - fade) * np.array([126, 112, 92]) + fade * np.array([170, 170, 160])
    line = np.where(ground[:, None], soil, sky)
    return np.repeat(line[:, None, :], w, axis=1).astype(np.uint8)


def render_photo(photos: SyntheticPhotos, scene: int, body: BodyModel) -> np.ndarray:
    """The RGB uint8 (H, W, 3) picture of one photo."""
    from hmr_render import overlay_meshes

    h, w = photos.crowds.image_size
    background = _background(photos.K[scene], (h, w), photos.crowds.camera_height[scene])
    return overlay_meshes(
        background, photos.vertices(scene, body), body.faces, photos.K[scene], alpha=1.0
    )


def write_photos(
    folder: str | os.PathLike[str], photos: SyntheticPhotos, body: BodyModel
) -> list[Path]:
    """Render every photo to `folder/<name>.png` and write `synthetic.json`."""
    from hmr_render import save_png

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths, digests = [], []
    for scene, name in enumerate(photos.names):
        image = render_photo(photos, scene, body)
        paths.append(save_png(folder / name, image))
        digests.append(pixel_digest(image))
    sidecar = {
        "generator": "dto_pipeline.synthetic.make_photos",
        "synthetic": True,
        "arguments": photos.arguments,
        "body_model": body_fingerprint(body),
        "images": [{"name": n, "pixels_sha256": d} for n, d in zip(photos.names, digests,
                                                                    strict=True)],
    }  # fmt: skip
    text = json.dumps(sidecar, indent=1) + "\n"
    write_atomic(folder / SIDECAR, lambda f: f.write(text.encode()))
    return paths


def body_fingerprint(body: BodyModel) -> str:
    """sha256 of a body model's arrays (the photos depend on it)."""
    digest = hashlib.sha256()
    for name in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "faces"):
        digest.update(np.ascontiguousarray(getattr(body, name)).tobytes())
    return digest.hexdigest()


def load_photos(
    folder: str | os.PathLike[str], body: BodyModel
) -> tuple[SyntheticPhotos, list[str]]:
    """Regenerate the ground truth of a photo folder from its `synthetic.json`.

    Raises:
        ValueError: the folder was made with another body model.
    """
    folder = Path(folder)
    path = folder / SIDECAR
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a synthetic photo folder (no {SIDECAR})")
    sidecar = json.loads(path.read_text())
    if sidecar["body_model"] != body_fingerprint(body):
        raise ValueError(f"{path}: the photos were made with another body model")
    a = sidecar["arguments"]
    photos = make_photos(
        body,
        a["num_scenes"],
        seed=a["seed"],
        image_size=tuple(a["image_size"]),
        persons=tuple(a["persons"]),
        depth_range=tuple(a["depth_range"]),
    )
    return photos, [e["pixels_sha256"] for e in sidecar["images"]]


@dataclass
class _Truth:
    """What the teachers of one photo know: the visible person of each pixel, true depth, the
    detected people and their boxes, masks and projected 44 joints."""

    ids: np.ndarray
    depth: np.ndarray
    detected: np.ndarray
    boxes: np.ndarray
    masks: np.ndarray
    keypoints_44: np.ndarray


class SimulatedTeachers:
    """The six simulated teachers of a photo folder (see the module docstring).

    `j19` (19, V): the SMPL_to_J19 regressor of the body model, for the 44 joints.
    Attributes `detector`, `keypoints`, `hmr`, `fov`, `age_gender`, `depth` implement the
    `dto_models.types` protocols.
    """

    def __init__(
        self,
        photos: SyntheticPhotos,
        digests: list[str],
        body: BodyModel,
        j19: np.ndarray,
        *,
        min_pixels: int = 20,
        seed: int = 0,
    ) -> None:
        self.photos, self.body, self.j19 = photos, body, j19
        self.scene_of = {d: i for i, d in enumerate(digests)}
        self.min_pixels, self.seed = min_pixels, seed
        self._truth: dict[int, _Truth] = {}
        self.detector = _Protocol(self, "detect")
        self.keypoints = _Protocol(self, "keypoints")
        self.hmr = _Protocol(self, "hmr")
        self.fov = _Protocol(self, "fov")
        self.age_gender = _Protocol(self, "age_gender")
        self.depth = _Protocol(self, "depth")

    def scene(self, image: np.ndarray) -> int:
        digest = pixel_digest(image)
        if digest not in self.scene_of:
            raise ValueError("simulated teachers: this image is not one of the synthetic photos")
        return self.scene_of[digest]

    def truth(self, scene: int) -> _Truth:
        if scene not in self._truth:
            self._truth[scene] = self._compute_truth(scene)
        return self._truth[scene]

    def _compute_truth(self, scene: int) -> _Truth:
        from dto_models.camerahmr import keypoints_44
        from hmr_render import render_composite

        p, body = self.photos, self.body
        h, w = p.crowds.image_size
        s = p.crowds.scene(scene)
        posed = body.forward(p.betas[s], p.body_pose[s], p.global_orient[s], p.transl[s])
        vertices = posed.vertices
        comp = render_composite(vertices, body.faces, p.K[scene], (h, w))
        rows = (np.arange(h) + 0.5 - p.K[scene][1, 2]) / p.K[scene][1, 1]
        ground = np.where(rows > 1e-6, p.crowds.camera_height[scene] / np.maximum(rows, 1e-6), 40.0)
        background = np.minimum(np.repeat(ground[:, None], w, axis=1), 40.0)
        depth = np.where(comp.person >= 0, comp.depth, background)
        ids = comp.person + 1
        n = len(vertices)
        counts = np.bincount(ids.ravel(), minlength=n + 1)[1:]
        detected = np.flatnonzero(counts >= self.min_pixels)
        masks = ids[None] == (detected + 1)[:, None, None]
        boxes = np.zeros((detected.size, 4), np.float32)
        for row, mask in enumerate(masks):
            ys, xs = np.nonzero(mask)
            boxes[row] = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        joints = keypoints_44(vertices, posed.joints, self.j19)
        return _Truth(ids, depth, detected, boxes, masks, project(joints, p.K[scene]))

    def detected_people(self, scene: int) -> np.ndarray:
        """The people (indices in the photo) the detector returns, in its output order."""
        return self.truth(scene).detected

    def people(self, image: np.ndarray, boxes: np.ndarray) -> tuple[int, np.ndarray]:
        """The photo and the person index (in the photo) of each box."""
        scene = self.scene(image)
        truth = self.truth(scene)
        index = [int(np.flatnonzero((truth.boxes == box).all(1))[0]) for box in boxes]
        return scene, truth.detected[index]


@dataclass
class _Protocol:
    teachers: SimulatedTeachers
    kind: str

    def detect(self, image: np.ndarray) -> Any:
        from dto_models.types import Detections

        t = self.teachers.truth(self.teachers.scene(image))
        scores = np.full(len(t.detected), 0.99, np.float32)
        return Detections(t.boxes.copy(), scores, t.masks.copy())

    def estimate(self, image: np.ndarray, *args: Any) -> Any:
        return getattr(self, f"_{self.kind}")(image, *args)

    def _keypoints(self, image: np.ndarray, detections: Any) -> Any:
        from dto_models.types import Keypoints2D

        scene, people = self.teachers.people(image, detections.boxes_xyxy)
        kp = self.teachers.truth(scene).keypoints_44[people][:, list(COCO17_FROM_44)]
        h, w = image.shape[:2]
        inside = (kp[..., 0] >= 0) & (kp[..., 0] < w) & (kp[..., 1] >= 0) & (kp[..., 1] < h)
        scores = np.where(inside, 0.9, 0.0).astype(np.float32)
        return Keypoints2D(kp.astype(np.float32), scores, detections.boxes_xyxy)

    def _hmr(self, image: np.ndarray, detections: Any, K: np.ndarray) -> Any:
        from dto_models.camerahmr import smpl_keypoints_2d
        from dto_models.types import SMPLEstimates

        t = self.teachers
        scene, people = t.people(image, detections.boxes_xyxy)
        rows = t.photos.crowds.scene(scene).start + people
        p = t.photos
        betas = np.pad(p.teacher_betas[rows], ((0, 0), (0, t.body.num_betas - 10)))
        keypoints = smpl_keypoints_2d(t.body, t.j19, p.global_orient[rows], p.body_pose[rows],
                                      betas, p.teacher_transl[rows], K)  # fmt: skip
        return SMPLEstimates(
            p.global_orient[rows].astype(np.float32),
            p.body_pose[rows].astype(np.float32),
            p.teacher_betas[rows].astype(np.float32),
            p.teacher_transl[rows].astype(np.float32),
            keypoints,
            np.asarray(K),
        )

    def _fov(self, image: np.ndarray) -> Any:
        from dto_models.types import FoVEstimate

        K = self.teachers.photos.K_teacher[self.teachers.scene(image)]
        return FoVEstimate(float(2 * np.arctan(image.shape[0] / (2 * K[1, 1]))), K.copy())

    def _age_gender(self, image: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray) -> Any:
        from dto_models.types import AgeGender

        scene, people = self.teachers.people(image, boxes)
        c = self.teachers.photos.crowds
        rows = c.scene(scene).start + people
        return AgeGender(c.age_estimate[rows].astype(np.float32), c.p_male[rows].astype(np.float32))

    def _depth(self, image: np.ndarray) -> np.ndarray:
        t = self.teachers
        scene = t.scene(image)
        truth = t.truth(scene)
        c = t.photos.crowds
        rng = np.random.default_rng([t.seed, scene])
        errors = c.depth_errors.scene(scene, c.offsets)
        return c.depth_model.disparity(truth.depth, truth.ids, errors, rng).astype(np.float32)


def release_arrays(photos: SyntheticPhotos, body: BodyModel, j19: np.ndarray) -> dict[str, Any]:
    """A CameraHMR `*-release.npz` (COCO layout, one row per person) holding the simulated
    teacher's people of every photo: the released pseudo-ground truth a `--pgt` run starts from.
    Keypoints `gtkps` are the teacher bodies' 44 joints projected with the teacher's camera."""
    from dto_models.camerahmr import keypoints_44

    c = photos.crowds
    scene = c.scene_index
    betas = np.pad(photos.teacher_betas, ((0, 0), (0, body.num_betas - 10)))
    posed = body.forward(betas, photos.body_pose, photos.global_orient, photos.teacher_transl)
    joints = keypoints_44(posed.vertices, posed.joints, j19)
    uv = np.stack([project(joints[i], photos.K_teacher[scene[i]]) for i in range(len(scene))])
    corners = np.stack([uv.min(1), uv.max(1)], 1)
    return {
        "imgname": np.array([f"train2014/{photos.names[s]}" for s in scene]),
        "center": corners.mean(1).astype(np.float32),
        "scale": ((corners[:, 1] - corners[:, 0]).max(1) / 200.0).astype(np.float32),
        "pose_cam": np.concatenate([photos.global_orient, photos.body_pose], 1).astype(np.float32),
        "shape": photos.teacher_betas.astype(np.float32),
        "trans_cam": photos.teacher_transl.astype(np.float32),
        "cam_int": photos.K_teacher[scene].astype(np.float32),
        "gtkps": np.concatenate([uv, np.ones((len(uv), 44, 1))], 2).astype(np.float32),
    }
