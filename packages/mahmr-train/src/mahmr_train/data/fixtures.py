"""Tiny training datasets in their exact on-disk formats (tests, examples): AGORA's and BEDLAM's
processed `annots` files, CameraHMR's 4D-Humans pGT and the released DTO-Humans files (through
`dto_humans_hub.fixtures`), a built DTO-Humans dataset (`dto_humans_hub.build_dataset`), and
3DPW, Hi4D and Relative Human (hmr-bench's fixture writers). SYNTHETIC values: people standing
3-8 m in front of the camera, every one inside the image; images are flat grey JPEGs.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from dto_core.camera import intrinsics_from_fov
from dto_humans_hub import build_dataset, convert_released_opt
from dto_humans_hub.fixtures import synthetic_opt_annots, write_released_opt
from hmr_bench.datasets.common import save_annots_npz
from hmr_bench.fixtures import make_hi4d_fixture, make_pw3d_fixture, make_rh_fixture
from hmr_bench.fixtures.common import write_jpeg

from .readers import FOLDERS, image_folder

__all__ = ["write_training_fixtures"]

IMAGE_SIZE = (96, 128)  # (h, w) of fixture images


def _people(rng: np.random.Generator, n: int, k: np.ndarray) -> dict[str, np.ndarray]:
    """Camera-frame SMPL people inside the image (upright, 3-8 m away)."""
    w = IMAGE_SIZE[1]
    depth = rng.uniform(3.0, 8.0, n)
    u = (np.arange(n) + 0.5) / n * w
    pose = np.zeros((n, 72))
    pose[:, :3] = [math.pi, 0.0, 0.0]
    pose[:, 3:] = rng.normal(0, 0.1, (n, 69))
    transl = np.stack([(u - k[0, 2]) * depth / k[0, 0], np.full(n, 0.3), depth], 1)
    return {"pose": pose, "betas": rng.normal(0, 0.5, (n, 10)), "transl": transl}


def _world(rng: np.random.Generator, people: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The same people in a world frame: X_c = R X_w + t with a random camera pose."""
    angle = rng.uniform(-0.3, 0.3)
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    t = rng.normal(0, 0.5, 3)
    orient = Rotation.from_matrix(rot.T) * Rotation.from_rotvec(people["pose"][:, :3])
    # translations mapped as points: the people land within a few cm of `people` (the exact
    # map would need each body's root joint)
    return {
        "rot": rot, "trans": t, "global_orient": orient.as_rotvec(),
        "transl": (people["transl"] - t) @ rot,
    }  # fmt: skip


def _write_agora(directory: Path, rng: np.random.Generator, num_images: int, split: str) -> None:
    h, w = IMAGE_SIZE
    k = intrinsics_from_fov(math.radians(60), h, w)
    annots = {}
    for i in range(num_images):
        key = f"ag_{split}_{i:05d}.png"
        n = 2
        people = _people(rng, n, k)
        world = _world(rng, people)
        annots[key] = {
            "isValid": [True] * n + [False],
            "cam_intrinsics": k[None].astype(np.float32),
            "cam_rot": np.repeat(world["rot"][None], n + 1, 0).astype(np.float32),
            "cam_trans": np.repeat(world["trans"][None], n + 1, 0).astype(np.float32),
            "smpl_gt": [
                {
                    "betas": np.append(people["betas"][p], 0.3 * (p == 1))[None].astype(np.float32),
                    "global_orient": world["global_orient"][p][None].astype(np.float32),
                    "body_pose": people["pose"][p, 3:][None].astype(np.float32),
                    "transl": world["transl"][p][None].astype(np.float32),
                }
                for p in range(n)
            ] + [{"betas": np.zeros((1, 10)), "global_orient": np.zeros((1, 3)),
                  "body_pose": np.zeros((1, 69)), "transl": np.zeros((1, 3))}],
            "kid": [False, True, False],
        }  # fmt: skip
        write_jpeg(directory / split / key, w, h)
    name = "annots_smpl_train_fit.npz" if split == "train" else f"annots_smpl_{split}.npz"
    save_annots_npz(directory / "smpl_neutral_annots" / name, annots)


def _write_bedlam(directory: Path, rng: np.random.Generator, num_images: int) -> None:
    h, w = IMAGE_SIZE
    k = intrinsics_from_fov(math.radians(65), h, w)
    annots = {}
    for i in range(num_images):
        key = f"seq_{i:03d}/png/frame_{i:04d}.png"
        n = 2
        people = _people(rng, n, k)
        world = _world(rng, people)
        pose = np.concatenate([world["global_orient"], people["pose"][:, 3:]], 1)
        annots[key] = {
            "cam_int": k.astype(np.float32),
            "cam_rot": [world["rot"].astype(np.float32)] * n,
            "cam_trans": [world["trans"].astype(np.float32)] * n,
            "shape": people["betas"].astype(np.float32),
            "pose_world": pose.astype(np.float32),
            "trans_world": world["transl"].astype(np.float32),
        }
        write_jpeg(directory / "train" / key, w, h)
    save_annots_npz(directory / "bedlam_smpl_train_6fps.npz", annots)


def _write_camerahmr(root: Path, source: str, num_images: int, seed: int) -> list[str]:
    """`<NAME>_CHMR_SMPL.npz` (10 betas) and `_OPT.npz` (11) with JPEGs of the stated sizes."""
    folder = root / FOLDERS[source]
    annots = synthetic_opt_annots(num_images, source=source, seed=seed, num_betas=10)
    write_released_opt(folder / f"{source.upper()}_CHMR_SMPL.npz", annots)
    opt = synthetic_opt_annots(num_images, source=source, seed=seed)
    write_released_opt(folder / f"{source.upper()}_CHMR_SMPL_OPT.npz", opt)
    for key, people in annots.items():
        cx, cy = people[0]["cam_param"]["princpt"] if people else (64.0, 48.0)
        write_jpeg(image_folder(folder, source) / key, round(2 * float(cx)), round(2 * float(cy)))
    return list(annots)


def write_training_fixtures(
    root: str | os.PathLike[str], num_images: int = 3, seed: int = 0
) -> Path:
    """Write every training dataset format under `root` (a data root in MA-HMR's layout)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    _write_agora(root / FOLDERS["agora"], rng, num_images, "train")
    _write_agora(root / FOLDERS["agora"], rng, num_images, "validation")
    _write_bedlam(root / FOLDERS["bedlam"], rng, num_images)
    conversions = []
    for i, source in enumerate(("coco", "mpii", "insta", "aic")):
        _write_camerahmr(root, source, num_images, seed + i)
        conversions.append(
            convert_released_opt(root / FOLDERS[source] / f"{source.upper()}_CHMR_SMPL_OPT.npz")
        )
    build_dataset(root / FOLDERS["dto_humans"], conversions)
    for name, writer in (("3dpw", make_pw3d_fixture), ("hi4d", make_hi4d_fixture)):
        folder = root / FOLDERS[name]
        writer(folder, variant="processed", seed=seed)
        for test in folder.glob("*test*.npz"):  # the benchmark fixtures hold a test split
            shutil.copy(test, folder / test.name.replace("test", "train"))
    rh = root / FOLDERS["rh"]
    make_rh_fixture(rh)
    shutil.copy(rh / "test_annots.npz", rh / "train_annots.npz")
    return root
