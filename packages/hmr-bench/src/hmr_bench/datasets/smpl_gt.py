"""Ground truth given as gendered SMPL parameters in a world frame plus per-frame cameras
(3DPW, Hi4D): the record both loaders return and the protocols turn into camera-frame meshes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hmr_bench.datasets.common import DatasetError

__all__ = ["GENDERS", "NUM_BETAS", "SMPLGroundTruth", "assemble_smpl_gt", "parse_gender"]

GENDERS = ("male", "female")
NUM_BETAS = 10
_GENDER_NAMES = {"m": "male", "male": "male", "f": "female", "female": "female"}


def parse_gender(value: object, where: str) -> str:
    """'m' / 'male' / 'f' / 'female' (any case, bytes or 0-d arrays too) -> 'male' / 'female'.

    MA-HMR maps anything that is not 'f' / 'female' to male; an unknown string raises here.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, bytes):
        value = value.decode()
    name = _GENDER_NAMES.get(str(value).strip().lower()) if isinstance(value, str) else None
    if name is None:
        raise DatasetError(f"{where}: unknown gender {value!r} (expected 'm'/'male'/'f'/'female')")
    return name


@dataclass(frozen=True, eq=False)
class SMPLGroundTruth:
    """People of I images; person arrays (N, ...) with image i's people at
    offsets[i]:offsets[i + 1]. SMPL parameters in the WORLD frame: betas (N, 10),
    global_orient (N, 3), body_pose (N, 69) axis-angle rad, transl (N, 3) m; the world -> camera
    extrinsics of each person's image: cam_rot (N, 3, 3), cam_trans (N, 3) m (X_c = R X_w + t);
    intrinsics K (N, 3, 3) px of the original image; gender (N,) 'male'/'female'.
    Per image: image_keys (as in the processed file), width, height (I,) px, sequence (I,).
    """

    benchmark: str
    image_keys: tuple[str, ...]
    width: np.ndarray
    height: np.ndarray
    sequence: tuple[str, ...]
    offsets: np.ndarray
    betas: np.ndarray
    global_orient: np.ndarray
    body_pose: np.ndarray
    transl: np.ndarray
    cam_rot: np.ndarray
    cam_trans: np.ndarray
    K: np.ndarray
    gender: np.ndarray

    @property
    def num_images(self) -> int:
        return len(self.image_keys)

    @property
    def num_people(self) -> int:
        return int(self.offsets[-1])

    @property
    def image_index(self) -> np.ndarray:
        """(N,) image of each person."""
        return np.repeat(np.arange(self.num_images), np.diff(self.offsets))


def assemble_smpl_gt(
    benchmark: str,
    keys: list[str],
    widths: list[int],
    heights: list[int],
    sequences: list[str],
    counts: list[int],
    fields: dict[str, list[np.ndarray]],
    genders: list[str],
) -> SMPLGroundTruth:
    """Concatenate per-image parts (fields: betas, go, bp, tr, R, t, K) into a record."""

    def cat(name: str, shape: tuple[int, ...]) -> np.ndarray:
        parts = fields[name]
        return np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, *shape))

    return SMPLGroundTruth(
        benchmark=benchmark,
        image_keys=tuple(keys),
        width=np.array(widths, np.int64),
        height=np.array(heights, np.int64),
        sequence=tuple(sequences),
        offsets=np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64),
        betas=cat("betas", (NUM_BETAS,)),
        global_orient=cat("go", (3,)),
        body_pose=cat("bp", (69,)),
        transl=cat("tr", (3,)),
        cam_rot=cat("R", (3, 3)),
        cam_trans=cat("t", (3,)),
        K=cat("K", (3, 3)),
        gender=np.array(genders, dtype="<U6"),
    )
