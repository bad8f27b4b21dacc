"""Hi4D (close two-person interaction; the BUDDI split) in its official layout and MA-HMR's file.

Official, per pair and action: `pairXX/<action>/images/<camera id>/<frame:06d>.jpg` (940 x 1280),
`smpl/<frame:06d>.npz` (`betas` (2, 10), `global_orient` (2, 3), `body_pose` (2, 69), `transl`
(2, 3), world frame), `cameras/rgb_cameras.npz` (`ids` (C,), `intrinsics` (C, 3, 3),
`extrinsics` (C, 3, 4) world -> camera, `dist_coeffs` (C, 5), ignored as MA-HMR does),
`meta.npz` (`genders` (2,) 'male'/'female'); the split file `train_val_test_split.npz` holds
arrays of 2-digit pair ids under `train`, `val`, `test`.

Processed (MA-HMR prepare_hi4d.py, `hi4d/hi4d_smpl_<split>.npz`): `annots` =
{"pairXX/<action>/images/<cam>/<frame>.jpg": [one dict per person: `focal` (2,), `princpt` (2,),
`cam_rot` (3, 3), `cam_trans` (3,) float32, `global_orient` (3,), `body_pose` (69,), `transl`
(3,), `betas` (10,) as stored in the Hi4D files, `genders` str]}, every frame x every camera.
"""

from __future__ import annotations

import os
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
from hmr_bench.datasets.smpl_gt import NUM_BETAS, SMPLGroundTruth, assemble_smpl_gt, parse_gender

__all__ = [
    "PROCESSED_NAME",
    "SPLIT_FILE",
    "convert_official_to_processed",
    "load_official",
    "load_processed",
    "official_annots",
    "parse_processed",
]

PROCESSED_NAME = "hi4d_smpl_{split}.npz"
SPLIT_FILE = "train_val_test_split.npz"
SMPL_KEYS = ("betas", "global_orient", "body_pose", "transl")


def _load_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in keys if k not in data.files]
        if missing:
            raise DatasetError(f"{path}: missing key(s) {missing} (found {sorted(data.files)})")
        return {k: data[k] for k in keys}


def official_annots(root: str | os.PathLike[str], split: str = "test") -> dict[str, list[dict]]:
    """The processed `annots` dict built from the official folders of the split's pairs."""
    root = Path(root)
    split_path = root / SPLIT_FILE
    splits = _load_npz(split_path, (split,))
    pairs = {str(p) for p in splits[split].tolist()}
    annots: dict[str, list[dict[str, Any]]] = {}
    for seq in sorted(p for p in root.glob("*/*") if p.is_dir()):
        if seq.parent.name[len("pair") :] not in pairs:
            continue
        cams = _load_npz(seq / "cameras" / "rgb_cameras.npz", ("ids", "intrinsics", "extrinsics"))
        genders = _load_npz(seq / "meta.npz", ("genders",))["genders"]
        frames = sorted((seq / "smpl").glob("*.npz"))
        if not frames:
            raise DatasetError(f"{seq / 'smpl'}: no per-frame SMPL .npz files")
        for frame_path in frames:
            smpl = _load_npz(frame_path, SMPL_KEYS)
            num = len(smpl["betas"])
            if len(genders) < num:
                raise DatasetError(f"{seq / 'meta.npz'}: {len(genders)} genders for {num} people")
            for cam, intr, extr in zip(
                cams["ids"], cams["intrinsics"], cams["extrinsics"], strict=True
            ):
                image = seq / "images" / str(int(cam)) / frame_path.name.replace(".npz", ".jpg")
                if not image.is_file():
                    raise DatasetError(f"{image}: image not found")
                annots[image.relative_to(root).as_posix()] = [
                    {
                        "focal": np.array([intr[0, 0], intr[1, 1]], np.float32),
                        "princpt": np.array([intr[0, 2], intr[1, 2]], np.float32),
                        "cam_rot": np.array(extr[:3, :3], np.float32),
                        "cam_trans": np.array(extr[:3, 3], np.float32),
                        "global_orient": smpl["global_orient"][p],
                        "body_pose": smpl["body_pose"][p],
                        "transl": smpl["transl"][p],
                        "betas": smpl["betas"][p],
                        "genders": genders[p].item(),
                    }
                    for p in range(num)
                ]
    if not annots:
        raise DatasetError(f"{root}: no images of the {split!r} pairs {sorted(pairs)}")
    return annots


def convert_official_to_processed(
    root: str | os.PathLike[str], out: str | os.PathLike[str], split: str = "test"
) -> Path:
    """Write `hi4d_smpl_<split>.npz` (to `out`, a file or folder) from the official folders."""
    out = Path(out)
    if out.suffix != ".npz":
        out = out / PROCESSED_NAME.format(split=split)
    return save_annots_npz(out, official_annots(root, split))


def parse_processed(
    annots: dict[str, Any], data_dir: str | os.PathLike[str], where: str
) -> SMPLGroundTruth:
    """SMPLGroundTruth of a processed `annots` dict; image sizes from data_dir/<key>."""
    data_dir = Path(data_dir)
    fields: dict[str, list[np.ndarray]] = {
        k: [] for k in ("betas", "go", "bp", "tr", "R", "t", "K")
    }
    genders, counts, widths, heights, sequences = [], [], [], [], []
    for key, people in annots.items():
        if not isinstance(people, list | tuple):
            raise DatasetError(f"{where}: image {key!r}: expected a list of person dicts")
        for i, person in enumerate(people):
            here = f"{where}: image {key!r} person {i}"
            fields["betas"].append(array_field(person, "betas", here, (NUM_BETAS,))[None])
            fields["go"].append(array_field(person, "global_orient", here, (3,))[None])
            fields["bp"].append(array_field(person, "body_pose", here, (69,))[None])
            fields["tr"].append(array_field(person, "transl", here, (3,))[None])
            fields["R"].append(array_field(person, "cam_rot", here, (3, 3))[None])
            fields["t"].append(array_field(person, "cam_trans", here).reshape(1, 3))
            f = array_field(person, "focal", here, (2,))
            c = array_field(person, "princpt", here, (2,))
            fields["K"].append(np.array([[[f[0], 0.0, c[0]], [0.0, f[1], c[1]], [0.0, 0.0, 1.0]]]))
            if "genders" not in person:
                raise DatasetError(f"{here}: missing key 'genders'")
            genders.append(parse_gender(person["genders"], here))
        counts.append(len(people))
        w, h = image_size(data_dir / key)
        widths.append(w)
        heights.append(h)
        sequences.append("/".join(key.split("/")[:2]))
    return assemble_smpl_gt(
        "hi4d", list(annots), widths, heights, sequences, counts, fields, genders
    )


def load_processed(data_dir: str | os.PathLike[str], split: str = "test") -> SMPLGroundTruth:
    """Load data_dir/hi4d_smpl_<split>.npz; images under data_dir/pairXX/..."""
    path = Path(data_dir) / PROCESSED_NAME.format(split=split)
    return parse_processed(load_annots_npz(path), data_dir, str(path))


def load_official(root: str | os.PathLike[str], split: str = "test") -> SMPLGroundTruth:
    """Load the official Hi4D folders of the split's pairs under root."""
    return parse_processed(official_annots(root, split), root, str(root))
