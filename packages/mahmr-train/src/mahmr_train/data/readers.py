"""Dataset readers: each validates its files (errors name the missing file) and yields
`ImageRecord`s. Layouts are MA-HMR's, below the data root (spec 10.1):

- agora: `agora/smpl_neutral_annots/annots_smpl_{train_fit,validation}.npz`, images
  `agora/{train,validation}/<key>`.
- bedlam: `bedlam/bedlam_smpl_{train_6fps,train_1fps,validation_6fps}.npz`, images
  `bedlam/{train,validation}/<key>` (close-ups turned clockwise).
- coco, mpii, insta, aic (CameraHMR's 4D-Humans pGT): `coco2014/COCO_CHMR_SMPL.npz` (split
  `train`, 2D supervision) or `..._OPT.npz` (`train_opt`, the released DTO-Humans, 3D); images
  `coco2014/images/train2014/<key>`, `<folder>/images/<key>`.
- dto_humans: a built DTO-Humans dataset folder `dto-humans/` (`dto_humans_hub`), images in the
  four folders above.
- 3dpw, hi4d: hmr-bench's processed files (`3dpw/annots_smpl_<split>_genders.npz`,
  `hi4d/hi4d_smpl_<split>.npz`), images `<folder>/<key>`.
- rh: `RelativeHuman/<split>_annots.npz`, images `RelativeHuman/images/<key>`.
- synthetic: rendered people (`mahmr_train.data.synthetic`), no files.

Annotation pickles are read with restricted unpicklers (NumPy arrays and plain containers only).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hmr_bench.datasets import hi4d as hi4d_io
from hmr_bench.datasets import pw3d as pw3d_io
from hmr_bench.datasets import rh as rh_io
from hmr_bench.datasets.common import DatasetError
from hmr_bench.joints import CP14_FROM_SMPL24

from ..config import DatasetSpec
from .bodies import BodyModels
from .records import DataError, ImageRecord, RecordSource, check_files
from .synthetic import SyntheticSource

__all__ = ["FOLDERS", "build_source", "image_folder"]

FOLDERS = {
    "agora": "agora", "bedlam": "bedlam", "coco": "coco2014", "mpii": "mpii", "insta": "insta",
    "aic": "aic", "dto_humans": "dto-humans", "3dpw": "3dpw", "hi4d": "hi4d", "rh": "RelativeHuman",
}  # fmt: skip
"""Folder of each dataset under the data root (MA-HMR's `configs/paths.py` layout)."""
PGT_SOURCES = ("coco", "mpii", "insta", "aic")
NOT_ALL_ANNOTATED = ("mpii", "3dpw")  # MA-HMR detect_all_people = False


def image_folder(directory: Path, source: str) -> Path:
    """Where MA-HMR keeps the images of a 4D-Humans source inside its dataset folder."""
    return directory / "images" / "train2014" if source == "coco" else directory / "images"


def _annots(path: Path) -> dict[str, Any]:
    """The dict of an MA-HMR `np.savez(path, annots=dict)` file (restricted unpickling)."""
    from dto_humans_hub.npzio import AnnotationFileError, load_npz  # the hub stack: on use

    if not path.is_file():
        raise DataError(f"{path}: annotation file not found")
    try:
        arrays = load_npz(path)
    except AnnotationFileError as exc:
        raise DataError(str(exc)) from exc
    value = arrays.get("annots")
    if value is None or value.shape != () or not isinstance(value.item(), dict):
        raise DataError(f"{path}: expected one dict under 'annots' (found {sorted(arrays)})")
    return value.item()


def _field(record: Any, key: str, where: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    try:
        value = np.asarray(record[key], np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{where}: missing or non-numeric field {key!r}") from exc
    if shape is not None:
        try:
            value = value.reshape(shape)
        except ValueError as exc:
            raise DataError(f"{where}: {key!r} has shape {value.shape}, expected {shape}") from exc
    return value


class _Source:
    """Records built on demand from `keys` by `make(index)`."""

    def __init__(self, name: str, keys: list[str], make: Callable[[int], ImageRecord]) -> None:
        self.name, self.keys, self._make = name, keys, make

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> ImageRecord:
        return self._make(index)


def _downsampled(keys: list[str], step: int) -> list[str]:
    return keys[::step]


def _agora(directory: Path, spec: DatasetSpec) -> _Source:
    split = spec.split
    name = f"annots_smpl_{split}_fit.npz" if split == "train" else f"annots_smpl_{split}.npz"
    path = directory / "smpl_neutral_annots" / name
    annots = _annots(path)
    keys = _downsampled(sorted(annots), spec.downsample)
    images = directory / split
    check_files([images / k for k in keys], f"AGORA {split} images (annotated in {path})")

    def make(i: int) -> ImageRecord:
        key = keys[i]
        entry, where = annots[key], f"{path}: image {key!r}"
        valid = np.flatnonzero(np.asarray(entry["isValid"], bool))
        if valid.size == 0:
            raise DataError(f"{where}: no valid person")
        smpl = [entry["smpl_gt"][p] for p in valid]
        betas = [_field(s, "betas", where).reshape(-1) for s in smpl]
        width = max(len(b) for b in betas)
        return ImageRecord(
            key=key,
            image=images / key,
            intrinsics=_field(entry, "cam_intrinsics", where).reshape(-1, 3, 3)[0],
            global_orient=np.stack([_field(s, "global_orient", where, (3,)) for s in smpl]),
            body_pose=np.stack([_field(s, "body_pose", where, (69,)) for s in smpl]),
            betas=np.stack([np.pad(b, (0, width - len(b))) for b in betas]),
            transl=np.stack([_field(s, "transl", where, (3,)) for s in smpl]),
            cam_rot=_field(entry, "cam_rot", where).reshape(-1, 3, 3)[valid],
            cam_trans=_field(entry, "cam_trans", where).reshape(-1, 3)[valid],
            gender=np.full(len(valid), "neutral"),
            has_3d=True,
        )

    return _Source("agora", keys, make)


def _bedlam(directory: Path, spec: DatasetSpec) -> _Source:
    path = directory / f"bedlam_smpl_{spec.split}.npz"
    annots = _annots(path)
    keys = _downsampled(list(annots), spec.downsample)  # file order, as MA-HMR's downsampling
    images = directory / ("train" if "train" in spec.split else "validation")
    check_files([images / k for k in keys], f"BEDLAM {spec.split} images (annotated in {path})")

    def make(i: int) -> ImageRecord:
        key = keys[i]
        entry, where = annots[key], f"{path}: image {key!r}"
        betas = _field(entry, "shape", where)
        n = len(betas)
        pose = _field(entry, "pose_world", where, (n, 72))
        return ImageRecord(
            key=key,
            image=images / key,
            intrinsics=_field(entry, "cam_int", where, (3, 3)),
            global_orient=pose[:, :3],
            body_pose=pose[:, 3:],
            betas=betas.reshape(n, -1),
            transl=_field(entry, "trans_world", where, (n, 3)),
            cam_rot=_field(entry, "cam_rot", where, (n, 3, 3)),
            cam_trans=_field(entry, "cam_trans", where, (n, 3)),
            gender=np.full(n, "neutral"),
            has_3d=True,
            rotate_cw="closeup" in key,
        )

    return _Source("bedlam", keys, make)


def _camerahmr(directory: Path, spec: DatasetSpec) -> _Source:
    """CameraHMR's 4D-Humans pseudo-GT (`train`, 2D supervision) or the released DTO-Humans
    file of the same layout (`train_opt`, 3D), read through dto_humans_hub's converter."""
    from dto_humans_hub.convert import convert_released_opt  # the hub stack: on use
    from dto_humans_hub.npzio import AnnotationFileError

    suffix = {"train": "", "train_opt": "_OPT"}.get(spec.split)
    if suffix is None:
        raise DataError(f"{spec.name}: split {spec.split!r} is not 'train' or 'train_opt'")
    path = directory / f"{spec.name.upper()}_CHMR_SMPL{suffix}.npz"
    if not path.is_file():
        raise DataError(f"{path}: annotation file not found")
    try:
        batch = convert_released_opt(path, source=spec.name).batch
    except AnnotationFileError as exc:
        raise DataError(str(exc)) from exc
    order = np.arange(len(batch.image_key))[:: spec.downsample]
    folder = image_folder(directory, spec.name)
    keys = [str(batch.image_key[i]) for i in order]
    check_files([folder / k for k in keys], f"{spec.name} images (annotated in {path})")

    def make(i: int) -> ImageRecord:
        j = order[i]
        people = slice(batch.offsets[j], batch.offsets[j + 1])
        return ImageRecord.camera_frame(
            keys[i], folder / keys[i], batch.intrinsics[j], batch.smpl_pose[people],
            batch.smpl_betas[people], batch.transl_cam[people],
            has_3d=spec.split == "train_opt", detect_all=spec.name not in NOT_ALL_ANNOTATED,
        )  # fmt: skip

    return _Source(spec.name, keys, make)


def _dto_humans(directory: Path, spec: DatasetSpec, root: Path) -> _Source:
    """A built DTO-Humans dataset (`load_dataset(folder)`) joined to the local images."""
    from datasets import load_dataset

    from dto_humans_hub.conventions import (  # the hub stack: on use
        DTO_STATUSES,
        PHOTOS,
        SOURCES,
    )
    from dto_humans_hub.images import attach_images
    from dto_humans_hub.reader import TRAIN_COLUMNS, ImageRows

    if not (directory / "README.md").is_file() and not (directory / "data").is_dir():
        raise DataError(f"{directory}: no DTO-Humans dataset folder (README.md, data/)")
    dataset = load_dataset(str(directory), split=spec.split)
    if spec.downsample > 1:
        dataset = dataset.select(range(0, len(dataset), spec.downsample))
    folders = {s: str(image_folder(root / FOLDERS[s], s)) for s in SOURCES}
    folders[PHOTOS] = str(root / PHOTOS)  # rows of `apps/dto run` on a photo folder
    try:
        dataset = attach_images(dataset, folders)
    except FileNotFoundError as exc:
        raise DataError(f"DTO-Humans images missing under {root}: {exc}") from exc
    rows = ImageRows.from_dataset(dataset, columns=(*TRAIN_COLUMNS, "image"))
    keys = [str(k) for k in dataset["image_key"]]

    def make(i: int) -> ImageRecord:
        row = rows[i]
        n = int(row["num_people"])
        return ImageRecord.camera_frame(
            row["image_key"], Path(row["image"]["path"]), row["intrinsics"],
            row["smpl_pose"].reshape(n, 72), row["smpl_betas"], row["transl_cam"],
            has_3d=int(row["dto_status"]) == kept, detect_all=bool(row["all_people_annotated"]),
        )  # fmt: skip

    kept = DTO_STATUSES.index("kept")

    return _Source("dto_humans", keys, make)


def _benchmark(directory: Path, spec: DatasetSpec) -> _Source:
    """3DPW / Hi4D training (or test) split through hmr-bench's loaders."""
    module = pw3d_io if spec.name == "3dpw" else hi4d_io
    try:
        gt = module.load_processed(directory, split=spec.split)
    except DatasetError as exc:
        raise DataError(str(exc)) from exc
    images = list(range(gt.num_images))[:: spec.downsample]
    keys = [gt.image_keys[i] for i in images]

    def make(i: int) -> ImageRecord:
        j = images[i]
        p = slice(gt.offsets[j], gt.offsets[j + 1])
        return ImageRecord(
            key=keys[i],
            image=directory / keys[i],
            intrinsics=gt.K[p][0],
            global_orient=gt.global_orient[p],
            body_pose=gt.body_pose[p],
            betas=gt.betas[p],
            transl=gt.transl[p],
            cam_rot=gt.cam_rot[p],
            cam_trans=gt.cam_trans[p],
            gender=gt.gender[p],
            has_3d=True,
            detect_all=spec.name not in NOT_ALL_ANNOTATED,
        )

    return _Source(spec.name, keys, make)


def _relative_human(directory: Path, spec: DatasetSpec) -> _Source:
    """Relative Human: CrowdPose-14 keypoints (12 of them are SMPL joints), depth layers, boxes."""
    try:
        gt = rh_io.load_rh(directory, split=spec.split)
    except DatasetError as exc:
        raise DataError(str(exc)) from exc
    images = list(range(gt.num_images))[:: spec.downsample]
    keys = [gt.image_keys[i] for i in images]
    check_files([directory / "images" / k for k in keys], f"Relative Human {spec.split} images")

    def make(i: int) -> ImageRecord:
        j = images[i]
        p = slice(gt.offsets[j], gt.offsets[j + 1])
        n = p.stop - p.start
        keypoints = np.zeros((n, 45, 3))
        keypoints[:, list(CP14_FROM_SMPL24)] = gt.kp2d[p][:, : len(CP14_FROM_SMPL24)]
        return ImageRecord(
            key=keys[i], image=directory / "images" / keys[i], intrinsics=None,
            global_orient=np.zeros((n, 3)), body_pose=np.zeros((n, 69)), betas=np.zeros((n, 10)),
            transl=np.zeros((n, 3)), cam_rot=np.broadcast_to(np.eye(3), (n, 3, 3)),
            cam_trans=np.zeros((n, 3)), gender=np.full(n, "neutral"), has_3d=False,
            has_smpl=False, keypoints=keypoints, depth_layers=gt.depth_id[p],
            boxes_xyxy=gt.bbox[p],
        )  # fmt: skip

    return _Source("rh", keys, make)


def build_source(spec: DatasetSpec, root: str | Path | None, bodies: BodyModels) -> RecordSource:
    """The reader of one dataset spec; `root` is the data root (`--data-root`); `bodies` the
    SMPL layers (the synthetic dataset poses its people with them)."""
    if spec.name == "synthetic":
        return SyntheticSource(spec, bodies)
    if spec.name not in FOLDERS:
        raise DataError(f"unknown dataset {spec.name!r}; known: {sorted(FOLDERS)} and 'synthetic'")
    if spec.path is None and root is None:
        raise DataError(f"dataset {spec.name!r} needs a data root (--data-root) or its own path")
    base = Path(root) if root is not None else Path(spec.path or ".").parent
    directory = Path(spec.path) if spec.path is not None else base / FOLDERS[spec.name]
    if not directory.is_dir():
        raise DataError(f"{directory}: {spec.name} dataset folder not found")
    if spec.name == "agora":
        return _agora(directory, spec)
    if spec.name == "bedlam":
        return _bedlam(directory, spec)
    if spec.name in PGT_SOURCES:
        return _camerahmr(directory, spec)
    if spec.name == "dto_humans":
        return _dto_humans(directory, spec, base)
    if spec.name in ("3dpw", "hi4d"):
        return _benchmark(directory, spec)
    return _relative_human(directory, spec)
