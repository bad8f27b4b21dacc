"""What a dataset reader yields per image (`ImageRecord`), and image loading with named errors."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

__all__ = [
    "DataError",
    "ImageRecord",
    "RecordSource",
    "check_files",
    "decode_image",
    "read_image",
]


class DataError(ValueError):
    """A dataset folder, file or image is missing or malformed; the message names it."""


ImageSource = Path | bytes | Callable[[], np.ndarray]


@dataclass(frozen=True, eq=False)
class ImageRecord:
    """One annotated image as a reader gives it (before augmentation), N people.

    SMPL people are given in a frame mapped to the camera by `cam_rot`, `cam_trans` (world ->
    camera, X_c = R X + t, per person; identity / zero for camera-frame annotations).

    Attributes:
        key: image key (relative path) for messages and logs.
        image: file path, encoded bytes, or a function returning (H, W, 3) uint8 RGB.
        intrinsics: (3, 3) K in original-image px, or None (camera unknown: no FoV loss).
        global_orient, body_pose, betas, transl: (N, 3), (N, 69), (N, 10 | 11), (N, 3).
        cam_rot, cam_trans: (N, 3, 3), (N, 3).
        gender: (N,) 'neutral' | 'male' | 'female'.
        has_3d: supervise 3D (MA-HMR `3d_valid`); has_smpl: SMPL parameters given;
        detect_all: every person is annotated (MA-HMR `detect_all_people`).
        keypoints: (N, J, 3) x, y px, visibility of 2D annotations mapped to the 45 SMPL joints
            (Relative Human), or None.
        depth_layers: (N,) ordinal depth layers (0 front, -1 unknown), or None.
        boxes_xyxy: (N, 4) annotated boxes px (Relative Human), or None.
        rotate_cw: the stored image must be turned 90 degrees clockwise (BEDLAM close-ups).
    """

    key: str
    image: ImageSource
    intrinsics: np.ndarray | None
    global_orient: np.ndarray
    body_pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    cam_rot: np.ndarray
    cam_trans: np.ndarray
    gender: np.ndarray
    has_3d: bool
    has_smpl: bool = True
    detect_all: bool = True
    keypoints: np.ndarray | None = None
    depth_layers: np.ndarray | None = None
    boxes_xyxy: np.ndarray | None = None
    rotate_cw: bool = False

    @property
    def num_people(self) -> int:
        return int(self.betas.shape[0])

    @classmethod
    def camera_frame(
        cls,
        key: str,
        image: ImageSource,
        intrinsics: np.ndarray | None,
        pose: np.ndarray,
        betas: np.ndarray,
        transl: np.ndarray,
        **kwargs: object,
    ) -> ImageRecord:
        """A record whose SMPL parameters are already in the camera frame (pose (N, 72))."""
        n = len(betas)
        pose = np.asarray(pose, np.float64).reshape(n, 72)
        return cls(
            key=key,
            image=image,
            intrinsics=None if intrinsics is None else np.asarray(intrinsics, np.float64),
            global_orient=pose[:, :3],
            body_pose=pose[:, 3:],
            betas=np.asarray(betas, np.float64).reshape(n, -1),
            transl=np.asarray(transl, np.float64).reshape(n, 3),
            cam_rot=np.broadcast_to(np.eye(3), (n, 3, 3)),
            cam_trans=np.zeros((n, 3)),
            gender=np.full(n, "neutral"),
            **kwargs,  # type: ignore[arg-type]
        )


class RecordSource(Protocol):
    """A dataset as a sequence of records (built lazily per index)."""

    name: str

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> ImageRecord: ...


def decode_image(data: bytes, where: str) -> np.ndarray:
    """Encoded JPEG / PNG bytes -> (H, W, 3) uint8 RGB (EXIF orientation applied)."""
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if array is None:
        raise DataError(f"{where}: not a readable image")
    return cv2.cvtColor(array, cv2.COLOR_BGR2RGB)


def read_image(record: ImageRecord) -> np.ndarray:
    """The record's image as (H, W, 3) uint8 RGB, turned clockwise when `rotate_cw`."""
    source = record.image
    if isinstance(source, Path):
        if not source.is_file():
            raise DataError(f"{source}: image of annotation {record.key!r} not found")
        image = decode_image(source.read_bytes(), str(source))
    elif isinstance(source, bytes):
        image = decode_image(source, record.key)
    else:
        image = source()
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DataError(
            f"{record.key}: image must be (H, W, 3) uint8, got {image.shape} {image.dtype}"
        )
    if record.rotate_cw:
        image = np.ascontiguousarray(np.rot90(image, k=-1))
    return image


def check_files(paths: Sequence[Path], what: str, limit: int = 5) -> None:
    """Raise `DataError` listing (the first few of) the paths that are not files."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        shown = ", ".join(str(p) for p in missing[:limit])
        more = f" and {len(missing) - limit} more" if len(missing) > limit else ""
        raise DataError(f"{len(missing)} {what} not found: {shown}{more}")
