"""Writers of SYNTHETIC annotation files in the exact released formats, for tests and benchmarks.

- `synthetic_opt_annots` + `write_released_opt`: the DTO-Humans `*_CHMR_SMPL_OPT.npz` layout,
  `np.savez(path, annots={image_key: [{'smpl_param': {'shape', 'pose', 'trans'},
  'cam_param': {'focal', 'princpt'}}, ...]})` with float32 arrays (MA-HMR `prepare_dto.py`).
- `synthetic_release_arrays` + `write_camerahmr_release`: CameraHMR's instance-level
  `*-release.npz` (`imgname`, `center`, `scale`, `pose_cam`, `shape`, `trans_cam`, `cam_int`,
  `gtkps`).
- `synthetic_dto_output` + `write_dto_output`: the official DTO code's per-source `*_opt.npz`
  (`np.savez(path, **{image_key: {'pose_cam', 'shape', 'trans_cam', 'cam_int', 'is_released',
  'is_optimize'}})`, `dto_framework.py`).

The numbers are plausible (people standing 2-20 m in front of a camera with a 30-90 degree FoV,
a persons-per-image distribution with a long tail) but synthetic: nothing here is real data.
Every file written here also holds a `__synthetic__` entry (SYNTHETIC_MARKER; `synthetic=False`
leaves it out), so a dataset built from it is marked synthetic and never published as the real
dataset.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from dto_core.camera import focal_from_fov
from dto_humans_hub.conventions import (
    BOX_SCALE_PX,
    INSTA_KEY_PREFIX,
    NUM_BETAS,
    NUM_BODY_JOINTS,
    NUM_KEYPOINTS,
    NUM_SMPL_BETAS,
    SOURCES,
    SYNTHETIC_MARKER,
)
from dto_humans_hub.writer import write_atomic

__all__ = [
    "IMAGE_SIZES",
    "synthetic_dto_output",
    "synthetic_image_keys",
    "synthetic_opt_annots",
    "synthetic_release_arrays",
    "write_camerahmr_release",
    "write_dto_output",
    "write_released_opt",
]

IMAGE_SIZES = ((480, 640), (640, 480), (720, 1280), (427, 640), (1080, 1920))
"""(height, width) px drawn for synthetic images."""

MEAN_EXTRA_PEOPLE = 3.8
"""Synthetic persons per image: 1 + Poisson-Gamma (mean 4.8 as DTO-Humans, a long tail)."""

MINOR_FRACTION = 0.06
"""Share of synthetic people with a kid-template coefficient (DTO-Humans: about 6.2 % minors)."""

MARKER_TEXT = "SYNTHETIC: written by dto_humans_hub.fixtures, not real data"


def _marker(synthetic: bool) -> dict[str, np.ndarray]:
    return {SYNTHETIC_MARKER: np.array(MARKER_TEXT)} if synthetic else {}


def synthetic_image_keys(source: str, num_images: int, start: int = 0) -> list[str]:
    """Image keys shaped like the source's (`COCO_train2014_%012d.jpg`, `insta-train/a/b/c.jpg`)."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    ids = range(start, start + num_images)
    if source == "coco":
        return [f"COCO_train2014_{i:012d}.jpg" for i in ids]
    if source == "mpii":
        return [f"{i:09d}.jpg" for i in ids]
    if source == "aic":
        return [f"{i * 2654435761 % 16**40:040x}.jpg" for i in ids]
    return [
        f"{INSTA_KEY_PREFIX}clip{i // 100:05d}/shot{i // 10 % 10}/frame{i:07d}.jpg" for i in ids
    ]


def _people(rng: np.random.Generator, num_images: int, empty_fraction: float) -> np.ndarray:
    """(M,) persons per image: 1 + a negative binomial with mean MEAN_EXTRA_PEOPLE; a share of
    images is empty."""
    extra = rng.negative_binomial(1.2, 1.2 / (1.2 + MEAN_EXTRA_PEOPLE), num_images)
    counts = 1 + extra
    counts[rng.random(num_images) < empty_fraction] = 0
    return counts


def _scene(rng: np.random.Generator, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Per image (M,): height, width, focal; per person (P,): pose, betas, transl, (x, y) px."""
    m, p = len(counts), int(counts.sum())
    size = np.array(IMAGE_SIZES)[rng.integers(0, len(IMAGE_SIZES), m)]
    fov = np.deg2rad(rng.uniform(30.0, 90.0, m))
    focal = focal_from_fov(fov, size[:, 0])
    image_of = np.repeat(np.arange(m), counts)
    z = rng.uniform(2.0, 20.0, p)
    u = rng.uniform(0.1, 0.9, p) * size[image_of, 1]
    v = rng.uniform(0.4, 0.7, p) * size[image_of, 0]
    f = focal[image_of]
    transl = np.stack(
        [(u - size[image_of, 1] / 2) * z / f, (v - size[image_of, 0] / 2) * z / f, z], axis=1
    )
    pose = rng.normal(0.0, 0.2, (p, NUM_BODY_JOINTS, 3))
    pose[:, 0] = [np.pi, 0.0, 0.0] + rng.normal(0.0, 0.1, (p, 3))  # upright in the OpenCV camera
    betas = rng.normal(0.0, 1.0, (p, NUM_BETAS))
    betas[:, NUM_SMPL_BETAS] = np.where(rng.random(p) < MINOR_FRACTION, rng.uniform(0.2, 1.0, p), 0)
    return {
        "size": size, "focal": focal, "image_of": image_of, "pose": pose, "betas": betas,
        "transl": transl, "uv": np.stack([u, v], axis=1),
    }  # fmt: skip


def synthetic_opt_annots(
    num_images: int,
    *,
    source: str = "coco",
    seed: int = 0,
    empty_fraction: float = 0.0,
    num_betas: int = NUM_BETAS,
) -> dict[str, list[dict[str, dict[str, np.ndarray]]]]:
    """`{image_key: [person, ...]}` in the released OPT layout, float32 arrays."""
    rng = np.random.default_rng(seed)
    counts = _people(rng, num_images, empty_fraction)
    sc = _scene(rng, counts)
    keys = synthetic_image_keys(source, num_images)
    pose = sc["pose"].reshape(-1, 3 * NUM_BODY_JOINTS).astype(np.float32)
    betas = sc["betas"][:, :num_betas].astype(np.float32)
    transl = sc["transl"].astype(np.float32)
    annots: dict[str, list[dict[str, dict[str, np.ndarray]]]] = {}
    start = 0
    for i, key in enumerate(keys):
        h, w = sc["size"][i]
        focal = np.array([sc["focal"][i]] * 2, dtype=np.float32)
        princpt = np.array([w / 2, h / 2], dtype=np.float32)
        annots[key] = [
            {
                "smpl_param": {"shape": betas[j], "pose": pose[j], "trans": transl[j]},
                "cam_param": {"focal": focal, "princpt": princpt},
            }
            for j in range(start, start + counts[i])
        ]
        start += counts[i]
    return annots


def write_released_opt(
    path: str | os.PathLike[str], annots: dict[str, Any], *, synthetic: bool = True
) -> Path:
    """Write `annots` as the release does, `np.savez(path, annots=annots)` (atomically), plus the
    synthetic marker."""
    path = Path(path)
    write_atomic(path, lambda f: np.savez(f, annots=annots, **_marker(synthetic)))
    return path


def synthetic_release_arrays(
    num_images: int, *, source: str = "coco", seed: int = 0, start: int = 0
) -> dict[str, np.ndarray]:
    """CameraHMR release arrays (instance level, one row per person, rows of an image adjacent)."""
    rng = np.random.default_rng(seed)
    counts = _people(rng, num_images, 0.0)
    sc = _scene(rng, counts)
    image_of = sc["image_of"]
    keys = synthetic_image_keys(source, num_images, start)
    prefix = {"coco": "train2014/", "mpii": "images/", "aic": "train/images/", "insta": "data/"}
    names = [
        prefix[source] + (k.removeprefix(INSTA_KEY_PREFIX) if source == "insta" else k)
        for k in keys
    ]
    h, w = sc["size"][image_of, 0], sc["size"][image_of, 1]
    f = sc["focal"][image_of]
    cam_int = np.zeros((len(image_of), 3, 3), dtype=np.float32)
    cam_int[:, 0, 0] = cam_int[:, 1, 1] = f
    cam_int[:, 0, 2], cam_int[:, 1, 2], cam_int[:, 2, 2] = w / 2, h / 2, 1.0
    scale = (1.8 * f / sc["transl"][:, 2] / BOX_SCALE_PX).astype(np.float32)
    kps = np.concatenate(
        [
            sc["uv"][:, None, :] + rng.normal(0.0, 20.0, (len(image_of), NUM_KEYPOINTS + 5, 2)),
            rng.uniform(0.0, 1.0, (len(image_of), NUM_KEYPOINTS + 5, 1)),
        ],
        axis=2,
    )
    return {
        "imgname": np.array(names)[image_of],
        "center": sc["uv"].astype(np.float32),
        "scale": scale,
        "pose_cam": sc["pose"].reshape(-1, 3 * NUM_BODY_JOINTS).astype(np.float32),
        "shape": sc["betas"][:, :NUM_SMPL_BETAS].astype(np.float32),
        "trans_cam": sc["transl"].astype(np.float32),
        "cam_int": cam_int,
        "gtkps": kps.astype(np.float32),
    }


def write_camerahmr_release(
    path: str | os.PathLike[str], arrays: dict[str, np.ndarray], *, synthetic: bool = True
) -> Path:
    """Write release arrays as CameraHMR does, `np.savez(path, **arrays)` (atomically), plus the
    synthetic marker."""
    path = Path(path)
    write_atomic(path, lambda f: np.savez(f, **arrays, **_marker(synthetic)))
    return path


def synthetic_dto_output(
    num_images: int, *, source: str = "coco", seed: int = 0, optimised_fraction: float = 1.0
) -> dict[str, dict[str, Any]]:
    """`{image_key: {...}}` of the official `*_opt.npz`: per image `pose_cam` (N, 72), `shape`
    (N, 11), `trans_cam` (N, 3), `cam_int` (N, 3, 3) float32, `is_released` (N,) bool and
    `is_optimize`; keys as `dto_framework.py` writes them (InstaVariety without `insta-train/`).
    Images have at least one person (the official code skips empty ones)."""
    rng = np.random.default_rng(seed)
    counts = np.maximum(_people(rng, num_images, 0.0), 1)
    sc = _scene(rng, counts)
    keys = [k.removeprefix(INSTA_KEY_PREFIX) for k in synthetic_image_keys(source, num_images)]
    released = rng.random(len(sc["image_of"])) < 0.8
    optimised = rng.random(num_images) < optimised_fraction
    out: dict[str, dict[str, Any]] = {}
    start = 0
    for i, key in enumerate(keys):
        stop = start + counts[i]
        h, w = sc["size"][i]
        k = np.array([[sc["focal"][i], 0, w / 2], [0, sc["focal"][i], h / 2], [0, 0, 1]])
        out[key] = {
            "pose_cam": sc["pose"][start:stop].reshape(-1, 3 * NUM_BODY_JOINTS).astype(np.float32),
            "shape": sc["betas"][start:stop].astype(np.float32),
            "trans_cam": sc["transl"][start:stop].astype(np.float32),
            "cam_int": np.repeat(k[None], counts[i], axis=0).astype(np.float32),
            "is_released": released[start:stop],
            "is_optimize": bool(optimised[i]),
        }
        start = stop
    return out


def write_dto_output(
    path: str | os.PathLike[str], entries: dict[str, dict[str, Any]], *, synthetic: bool = True
) -> Path:
    """Write entries as `dto_framework.py` does, `np.savez(path, **entries)` (atomically), plus
    the synthetic marker."""
    path = Path(path)
    write_atomic(path, lambda f: np.savez(f, **entries, **_marker(synthetic)))
    return path
