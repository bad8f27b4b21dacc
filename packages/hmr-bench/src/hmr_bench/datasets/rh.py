"""Relative Human (Arthur151/Relative_Human; the same files serve BEV, MA-HMR and DTO-Humans).

Layout: `RelativeHuman/images/<name>.jpg` (flat) and `{train,val,test}_annots.npz` with
`annots` = {image basename: [person dict, ...]}. Person keys: `bbox` [x1, y1, x2, y2] px of the
visible parts (`bbox_wb` whole body, optional), `kp2d` None or 19 x 3 / 14 x 3 numbers (x, y, v;
v = 0 invalid), `depth_id` (ordinal layer, 0 front, -1 unknown), `age` (0 adult, 1 teen, 2 kid,
3 baby, -1 unknown), `gender` (0 male, 1 female, -1), `body_type`, `occluded_by_others`.
19-joint annotations are BK order when the basename without '.jpg' has 7 characters, otherwise
OCHuman order; 14-joint ones are CrowdPose order. The evaluator maps them to CrowdPose-14 by
joint name, so the neck of a 19-joint annotation is always invalid; invalid joints are stored
as (-2, -2, 0). The MA-HMR "processed" files are these files: no converter is needed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hmr_bench.datasets.common import DatasetError, array_field, load_annots_npz
from hmr_bench.joints import BK19_TO_CP14, BK_BASENAME_LENGTH, OCH19_TO_CP14, remap
from hmr_bench.metrics.pck2d import INVALID_COORD

__all__ = ["RHGroundTruth", "annots_path", "cp14_from_annotation", "load_rh"]

OPTIONAL_INT_KEYS = ("gender", "body_type", "occluded_by_others")


@dataclass(frozen=True, eq=False)
class RHGroundTruth:
    """Every annotated person of every image, in file order; person arrays (N, ...), image i's
    people are offsets[i]:offsets[i + 1] in annotation order.

    kp2d (N, 14, 3) CrowdPose-14 x, y px, v in {0, 1}; invalid joints and people without kp2d
    are (-2, -2, 0). has_kp2d (N,): the annotation has a kp2d entry that is not None.
    source_joints (N,): 19, 14, or 0 without kp2d. depth_id, age, gender, body_type,
    occluded (N,) int, -1 where absent; bbox (N, 4) px.
    """

    split: str
    image_keys: tuple[str, ...]
    offsets: np.ndarray
    kp2d: np.ndarray
    has_kp2d: np.ndarray
    source_joints: np.ndarray
    depth_id: np.ndarray
    age: np.ndarray
    gender: np.ndarray
    body_type: np.ndarray
    occluded: np.ndarray
    bbox: np.ndarray

    @property
    def num_images(self) -> int:
        return len(self.image_keys)

    @property
    def annotation_index(self) -> np.ndarray:
        """(N,) position of each person in its image's annotation list."""
        return np.arange(self.offsets[-1]) - np.repeat(self.offsets[:-1], np.diff(self.offsets))


def annots_path(data_dir: str | os.PathLike[str], split: str = "test") -> Path:
    """`{split}_annots.npz` in data_dir (data_dir may also be the file itself)."""
    path = Path(data_dir)
    return path if path.suffix == ".npz" else path / f"{split}_annots.npz"


def cp14_from_annotation(kp2d: np.ndarray, image_key: str, where: str) -> np.ndarray:
    """CrowdPose-14 (14, 3) of a flat 19 x 3 / 14 x 3 annotation, as the official evaluator
    builds it: invalid joints (v = 0) and the unmapped neck at (-2, -2, 0), v in {0, 1}."""
    joints = np.asarray(kp2d, dtype=np.float64).reshape(-1, 3).copy()
    if len(joints) not in (14, 19):
        raise DatasetError(f"{where}: kp2d has {len(joints)} joints, expected 19 or 14")
    invalid = joints[:, 2] == 0
    joints[invalid] = INVALID_COORD
    joints[:, 2] = joints[:, 2] > 0
    if len(joints) == 19:
        stem = os.path.basename(image_key).replace(".jpg", "")
        index_map = BK19_TO_CP14 if len(stem) == BK_BASENAME_LENGTH else OCH19_TO_CP14
        joints = remap(joints, index_map, fill=INVALID_COORD)
        joints[np.asarray(index_map) < 0, 2] = 0.0
    return joints


def load_rh(data_dir: str | os.PathLike[str], split: str = "test") -> RHGroundTruth:
    """Load `{split}_annots.npz` from data_dir (the RelativeHuman folder)."""
    path = annots_path(data_dir, split)
    annots = load_annots_npz(path)
    keys, counts = [], []
    kp2d, has, source = [], [], []
    ints: dict[str, list[int]] = {k: [] for k in ("depth_id", "age", *OPTIONAL_INT_KEYS)}
    bbox = []
    for image_key, people in annots.items():
        if not isinstance(people, list | tuple):
            raise DatasetError(f"{path}: image {image_key!r}: expected a list of person dicts")
        keys.append(str(image_key))
        counts.append(len(people))
        for idx, person in enumerate(people):
            where = f"{path}: image {image_key!r} person {idx}"
            if not isinstance(person, dict):
                raise DatasetError(f"{where}: expected a dict, got {type(person).__name__}")
            bbox.append(array_field(person, "bbox", where, (4,)))
            for key in ("depth_id", "age"):
                ints[key].append(int(array_field(person, key, where, ())))
            for key in OPTIONAL_INT_KEYS:
                ints[key].append(int(person[key]) if person.get(key) is not None else -1)
            raw = person.get("kp2d")
            if raw is None:
                kp2d.append(np.tile([INVALID_COORD, INVALID_COORD, 0.0], (14, 1)))
                has.append(False)
                source.append(0)
            else:
                joints = array_field(person, "kp2d", where).reshape(-1)
                if joints.size % 3:
                    raise DatasetError(f"{where}: kp2d has {joints.size} numbers, not x, y, v")
                kp2d.append(cp14_from_annotation(joints, str(image_key), where))
                has.append(True)
                source.append(joints.size // 3)
    n = sum(counts)
    return RHGroundTruth(
        split=split,
        image_keys=tuple(keys),
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        kp2d=np.array(kp2d).reshape(n, 14, 3),
        has_kp2d=np.array(has, bool),
        source_joints=np.array(source, np.int64),
        depth_id=np.array(ints["depth_id"], np.int64),
        age=np.array(ints["age"], np.int64),
        gender=np.array(ints["gender"], np.int64),
        body_type=np.array(ints["body_type"], np.int64),
        occluded=np.array(ints["occluded_by_others"], np.int64),
        bbox=np.array(bbox).reshape(n, 4),
    )
