"""CMU Panoptic, CRMH test protocol: haggling, mafia, ultimatum, pizza; HD cameras 00_16, 00_30.

Official Panoptic-toolbox layout per sequence: `<seq>/hdImgs/<cam>/<cam>_<frame:08d>.jpg`,
`<seq>/hdPose3d_stage1_coco19/body3DScene_<frame:08d>.json` ({"bodies": [{"id", "joints19": 76
numbers x, y, z, confidence; cm, world frame}]}) and `<seq>/calibration_<seq>.json`
({"cameras": [{"name": "00_16", "K", "distCoef", "R", "t" (cm)}]}).

Processed (MA-HMR `cmu_panoptic/annots_test.npz`): `annots` = {image name: {`kpts3d` (P, 24, 4)
camera frame m + visibility, `kpts2d` (P, 24, 3) px + visibility, `width`, `height`}}, images under
`images/<image name>`; the activity is the substring haggling / mafia / ultimatum / pizza of the
name. The converter follows CRMH's preprocessing: X_c = (R X_w + t) / 100, visibility =
confidence > 0.1, COCO-19 joints 0..14 scattered into SPIN's J24 layout (PANOPTIC_COCO19_TO_J24),
2D by the distorted projection in original pixels (CRMH then rescaled it to its 832 x 512 padded
frame; the 2D joints do not enter the metric). Images are named `<seq>-<cam>_<frame:08d>.jpg`
(ROMP's naming). Which frames CRMH evaluates comes from its index files, not redistributed
here: by default every frame with a skeleton file is converted.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hmr_bench.datasets.common import (
    DatasetError,
    array_field,
    image_size,
    load_annots_npz,
    save_annots_npz,
)
from hmr_bench.joints import PANOPTIC_COCO19_TO_J24

__all__ = [
    "ACTIVITIES",
    "CAMERAS",
    "PROCESSED_NAME",
    "TEST_SEQUENCES",
    "PanopticGroundTruth",
    "activity_of",
    "convert_official_to_processed",
    "load_official",
    "load_processed",
    "official_annots",
    "parse_processed",
    "project_distorted",
]

PROCESSED_NAME = "annots_test.npz"
TEST_SEQUENCES = ("160422_haggling1", "160422_mafia2", "160422_ultimatum1", "160906_pizza1")
ACTIVITIES = ("haggling", "mafia", "ultimatum", "pizza")
CAMERAS = ("00_16", "00_30")
CM_TO_M = 0.01
VISIBLE_CONF = 0.1
"""A Panoptic joint is visible when its confidence exceeds this (CRMH)."""


@dataclass(frozen=True, eq=False)
class PanopticGroundTruth:
    """Skeletons of I images; kpts3d (N, 24, 4) m camera frame + visibility, kpts2d (N, 24, 3)
    px + visibility; image i's people at offsets[i]:offsets[i+1]; activity (I,) of ACTIVITIES."""

    image_keys: tuple[str, ...]
    activity: tuple[str, ...]
    width: np.ndarray
    height: np.ndarray
    offsets: np.ndarray
    kpts3d: np.ndarray
    kpts2d: np.ndarray

    @property
    def num_images(self) -> int:
        return len(self.image_keys)


def activity_of(name: str) -> str:
    """The activity whose name occurs in an image name (MA-HMR's substring rule)."""
    for activity in ACTIVITIES:
        if activity in name:
            return activity
    raise DatasetError(f"image {name!r} names none of the activities {ACTIVITIES}")


def project_distorted(points: np.ndarray, K: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Pixels (P, 2) of camera-frame points (P, 3) with the Brown-Conrady model
    dist = (k1, k2, p1, p2, k3) (OpenCV's, as the Panoptic calibration files store it)."""
    x = points[:, :2] / points[:, 2:3]
    k1, k2, p1, p2, k3 = np.asarray(dist, np.float64).reshape(-1)[:5]
    r2 = (x**2).sum(axis=1)
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    xd = x[:, 0] * radial + 2 * p1 * x[:, 0] * x[:, 1] + p2 * (r2 + 2 * x[:, 0] ** 2)
    yd = x[:, 1] * radial + p1 * (r2 + 2 * x[:, 1] ** 2) + 2 * p2 * x[:, 0] * x[:, 1]
    return np.stack([K[0, 0] * xd + K[0, 1] * yd + K[0, 2], K[1, 1] * yd + K[1, 2]], axis=1)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: invalid JSON ({exc})") from exc


def _camera(calibration: Path, name: str) -> dict[str, np.ndarray]:
    cams = _read_json(calibration).get("cameras")
    if not isinstance(cams, list):
        raise DatasetError(f"{calibration}: no 'cameras' list")
    for cam in cams:
        if cam.get("name") == name:
            where = f"{calibration}: camera {name}"
            return {
                "K": array_field(cam, "K", where, (3, 3)),
                "R": array_field(cam, "R", where, (3, 3)),
                "t": array_field(cam, "t", where).reshape(3),
                "dist": array_field(cam, "distCoef", where).reshape(-1),
            }
    raise DatasetError(f"{calibration}: no camera named {name!r}")


def official_annots(
    data_dir: str | os.PathLike[str],
    sequences: Sequence[str] = TEST_SEQUENCES,
    cameras: Sequence[str] = CAMERAS,
    frames: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, dict[str, Any]]:
    """The processed `annots` dict from the official per-sequence folders under data_dir.

    frames: per sequence, the frame numbers to convert (default every skeleton file)."""
    root = Path(data_dir)
    annots: dict[str, dict[str, Any]] = {}
    for seq in sequences:
        folder = root / seq
        skeleton_dir = folder / "hdPose3d_stage1_coco19"
        if not skeleton_dir.is_dir():
            raise DatasetError(f"{skeleton_dir}: folder not found (official Panoptic layout)")
        available = {
            int(m.group(1)): p
            for p in skeleton_dir.glob("body3DScene_*.json")
            if (m := re.match(r"body3DScene_(\d+)\.json$", p.name))
        }
        wanted = sorted(available) if frames is None else list(frames.get(seq, ()))
        for cam_name in cameras:
            cam = _camera(folder / f"calibration_{seq}.json", cam_name)
            for frame in wanted:
                if frame not in available:
                    raise DatasetError(f"{skeleton_dir}: no skeleton file for frame {frame}")
                bodies = _read_json(available[frame]).get("bodies")
                if not isinstance(bodies, list):
                    raise DatasetError(f"{available[frame]}: no 'bodies' list")
                image = folder / "hdImgs" / cam_name / f"{cam_name}_{frame:08d}.jpg"
                width, height = image_size(image)
                kpts3d = np.zeros((len(bodies), 24, 4))
                kpts2d = np.zeros((len(bodies), 24, 3))
                for b, body in enumerate(bodies):
                    where = f"{available[frame]}: body {b}"
                    joints = array_field(body, "joints19", where, (76,)).reshape(19, 4)[:15]
                    cam_xyz = (joints[:, :3] @ cam["R"].T + cam["t"]) * CM_TO_M
                    vis = (joints[:, 3] > VISIBLE_CONF).astype(np.float64)
                    slots = list(PANOPTIC_COCO19_TO_J24)
                    kpts3d[b, slots, :3] = cam_xyz
                    kpts3d[b, slots, 3] = vis
                    kpts2d[b, slots, :2] = project_distorted(cam_xyz, cam["K"], cam["dist"])
                    kpts2d[b, slots, 2] = vis
                annots[f"{seq}-{cam_name}_{frame:08d}.jpg"] = {
                    "kpts3d": kpts3d,
                    "kpts2d": kpts2d,
                    "width": width,
                    "height": height,
                }
    return annots


def convert_official_to_processed(
    data_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    sequences: Sequence[str] = TEST_SEQUENCES,
    cameras: Sequence[str] = CAMERAS,
    frames: Mapping[str, Sequence[int]] | None = None,
) -> Path:
    """Write `annots_test.npz` (to `out`, a file or folder) from the official folders."""
    out = Path(out)
    if out.suffix != ".npz":
        out = out / PROCESSED_NAME
    return save_annots_npz(out, official_annots(data_dir, sequences, cameras, frames))


def parse_processed(annots: dict[str, Any], where: str) -> PanopticGroundTruth:
    """PanopticGroundTruth of a processed `annots` dict."""
    keys, acts, widths, heights, counts, k3, k2 = [], [], [], [], [], [], []
    for key, frame in annots.items():
        here = f"{where}: image {key!r}"
        if not isinstance(frame, dict):
            raise DatasetError(f"{here}: expected a dict, got {type(frame).__name__}")
        kpts3d = array_field(frame, "kpts3d", here, (None, 24, 4))
        kpts2d = array_field(frame, "kpts2d", here, (len(kpts3d), 24, 3))
        try:
            acts.append(activity_of(str(key)))
        except DatasetError as exc:
            raise DatasetError(f"{where}: {exc}") from exc
        keys.append(str(key))
        widths.append(int(array_field(frame, "width", here, ())))
        heights.append(int(array_field(frame, "height", here, ())))
        counts.append(len(kpts3d))
        k3.append(kpts3d)
        k2.append(kpts2d)
    return PanopticGroundTruth(
        image_keys=tuple(keys),
        activity=tuple(acts),
        width=np.array(widths, np.int64),
        height=np.array(heights, np.int64),
        offsets=np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64),
        kpts3d=np.concatenate(k3) if k3 else np.zeros((0, 24, 4)),
        kpts2d=np.concatenate(k2) if k2 else np.zeros((0, 24, 3)),
    )


def load_processed(data_dir: str | os.PathLike[str]) -> PanopticGroundTruth:
    """Load data_dir/annots_test.npz."""
    path = Path(data_dir) / PROCESSED_NAME
    return parse_processed(load_annots_npz(path), str(path))


def load_official(data_dir: str | os.PathLike[str], **kwargs: Any) -> PanopticGroundTruth:
    """Load the official per-sequence folders under data_dir (see official_annots)."""
    return parse_processed(official_annots(data_dir, **kwargs), str(data_dir))
