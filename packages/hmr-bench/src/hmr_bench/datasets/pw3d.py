"""3DPW (test split, 24 sequences) in its official layout and in MA-HMR's processed file.

Official: `imageFiles/<seq>/image_%05d.jpg` and `sequenceFiles/{train,validation,test}/<seq>.pkl`
(latin1 pickles): `sequence`, `genders` ('m'/'f' per actor), `betas` (per actor, the first 10
are used), `poses` (F, 72) and `trans` (F, 3) per actor in the world frame, `campose_valid`
(F,) per actor, `cam_poses` (F, 4, 4) world -> camera, `cam_intrinsics` (3, 3), `img_frame_ids`.

Processed (SAT-HMR / MA-HMR `3dpw/annots_smpl_test_genders.npz`): `annots` =
{"imageFiles/<seq>/image_%05d.jpg": {`betas` (P, 10), `global_orient` (P, 3), `body_pose` (P, 69),
`transl` (P, 3) world frame (torch float32 tensors in the released file: MA-HMR's reader
`torch.cat`s them, so the converter writes them as tensors too), `cam_rot` (3, 3),
`cam_trans` (3,), `cam_intrinsics` (3, 3), `genders` ['m' | 'f', ...] (older files: `gender`)}}
with P the actors whose camera pose is valid in that frame (frames without any are absent).
The converter writes that file from the official pickles; image sizes come from the images.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hmr_bench.datasets.common import (
    DatasetError,
    array_field,
    image_size,
    load_annots_npz,
    load_pickle,
    save_annots_npz,
)
from hmr_bench.datasets.pickles import TorchTensor
from hmr_bench.datasets.smpl_gt import NUM_BETAS, SMPLGroundTruth, assemble_smpl_gt, parse_gender

__all__ = [
    "PROCESSED_NAME",
    "TEST_SEQUENCES",
    "convert_official_to_processed",
    "load_official",
    "load_processed",
    "official_annots",
    "parse_processed",
]

PROCESSED_NAME = "annots_smpl_{split}_genders.npz"
OFFICIAL_SPLITS = {"train": "train", "validation": "validation", "test": "test"}
TEST_SEQUENCES = (
    "downtown_arguing_00", "downtown_bar_00", "downtown_bus_00", "downtown_cafe_00",
    "downtown_car_00", "downtown_crossStreets_00", "downtown_downstairs_00",
    "downtown_enterShop_00", "downtown_rampAndStairs_00", "downtown_runForBus_00",
    "downtown_runForBus_01", "downtown_sitOnStairs_00", "downtown_stairs_00",
    "downtown_upstairs_00", "downtown_walkBridge_01", "downtown_walkUphill_00",
    "downtown_walking_00", "downtown_warmWelcome_00", "downtown_weeklyMarket_00",
    "downtown_windowShopping_00", "flat_guitar_01", "flat_packBags_00", "office_phoneCall_00",
    "outdoors_fencing_01",
)  # fmt: skip
PICKLE_KEYS = (
    "sequence", "genders", "betas", "poses", "trans", "campose_valid", "cam_poses",
    "cam_intrinsics",
)  # fmt: skip


def image_key(sequence: str, frame: int) -> str:
    return f"imageFiles/{sequence}/image_{frame:05d}.jpg"


def official_annots(
    root: str | os.PathLike[str],
    split: str = "test",
    tensor_factory: Callable[[np.ndarray], Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """The processed `annots` dict built from `root/sequenceFiles/<split>/*.pkl`.

    tensor_factory wraps the per-person float32 arrays; the default, TorchTensor, makes them
    torch tensors for MA-HMR's reader without importing torch (hmr_bench.datasets.pickles).
    """
    wrap = tensor_factory or TorchTensor
    folder = Path(root) / "sequenceFiles" / OFFICIAL_SPLITS.get(split, split)
    files = sorted(folder.glob("*.pkl"))
    if not files:
        raise DatasetError(f"{folder}: no sequence .pkl files (expected the official 3DPW layout)")
    annots: dict[str, dict[str, Any]] = {}
    for path in files:
        seq = load_pickle(path)
        if not isinstance(seq, dict):
            raise DatasetError(f"{path}: expected a dict, got {type(seq).__name__}")
        for key in PICKLE_KEYS:
            if key not in seq:
                raise DatasetError(f"{path}: missing key {key!r}")
        name = str(seq["sequence"])
        cam_poses = array_field(seq, "cam_poses", str(path), (None, 4, 4))
        intrinsics = array_field(seq, "cam_intrinsics", str(path), (3, 3))
        frame_ids = seq.get("img_frame_ids", np.arange(len(cam_poses)))
        valid = np.array([np.asarray(v, bool) for v in seq["campose_valid"]]).reshape(
            len(seq["genders"]), -1
        )
        poses = [np.asarray(p, np.float64) for p in seq["poses"]]
        trans = [np.asarray(t, np.float64) for t in seq["trans"]]
        betas = [np.asarray(b, np.float64).reshape(-1)[:NUM_BETAS] for b in seq["betas"]]
        for f in range(len(cam_poses)):
            actors = np.flatnonzero(valid[:, f])
            if actors.size == 0:
                continue
            pose = np.stack([poses[a][f] for a in actors])
            annots[image_key(name, int(frame_ids[f]))] = {
                "betas": wrap(np.stack([betas[a] for a in actors]).astype(np.float32)),
                "global_orient": wrap(pose[:, :3].astype(np.float32)),
                "body_pose": wrap(pose[:, 3:72].astype(np.float32)),
                "transl": wrap(np.stack([trans[a][f] for a in actors]).astype(np.float32)),
                "cam_rot": cam_poses[f, :3, :3].copy(),
                "cam_trans": cam_poses[f, :3, 3].copy(),
                "cam_intrinsics": intrinsics.copy(),
                "genders": [str(seq["genders"][a]) for a in actors],
            }
    return annots


def convert_official_to_processed(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    split: str = "test",
    tensor_factory: Callable[[np.ndarray], Any] | None = None,
) -> Path:
    """Write `annots_smpl_<split>_genders.npz` (to `out`, a file or folder) from the pickles."""
    out = Path(out)
    if out.suffix != ".npz":
        out = out / PROCESSED_NAME.format(split=split)
    return save_annots_npz(out, official_annots(root, split, tensor_factory))


def parse_processed(
    annots: dict[str, Any], data_dir: str | os.PathLike[str], where: str
) -> SMPLGroundTruth:
    """SMPLGroundTruth of a processed `annots` dict; image sizes from data_dir/<key>."""
    data_dir = Path(data_dir)
    fields: dict[str, list[np.ndarray]] = {
        k: [] for k in ("betas", "go", "bp", "tr", "R", "t", "K")
    }
    genders, counts, widths, heights, sequences = [], [], [], [], []
    for key, frame in annots.items():
        here = f"{where}: image {key!r}"
        if not isinstance(frame, dict):
            raise DatasetError(f"{here}: expected a dict, got {type(frame).__name__}")
        betas = array_field(frame, "betas", here, (None, NUM_BETAS))
        p = len(betas)
        fields["betas"].append(betas)
        fields["go"].append(array_field(frame, "global_orient", here, (p, 3)))
        fields["bp"].append(array_field(frame, "body_pose", here, (p, 69)))
        fields["tr"].append(array_field(frame, "transl", here, (p, 3)))
        rot = array_field(frame, "cam_rot", here, (3, 3))
        trans = array_field(frame, "cam_trans", here).reshape(-1)
        if trans.shape != (3,):
            raise DatasetError(f"{here}: 'cam_trans' has {trans.size} values, expected 3")
        fields["R"].append(np.broadcast_to(rot, (p, 3, 3)))
        fields["t"].append(np.broadcast_to(trans, (p, 3)))
        fields["K"].append(
            np.broadcast_to(array_field(frame, "cam_intrinsics", here, (3, 3)), (p, 3, 3))
        )
        names = frame.get("genders", frame.get("gender"))
        if names is None:
            raise DatasetError(f"{here}: missing key 'genders'")
        if len(names) != p:
            raise DatasetError(f"{here}: {len(names)} genders for {p} people")
        genders += [parse_gender(g, f"{here} person {i}") for i, g in enumerate(names)]
        counts.append(p)
        w, h = image_size(data_dir / key)
        widths.append(w)
        heights.append(h)
        parts = key.split("/")
        sequences.append(parts[1] if len(parts) > 2 else "")
    return assemble_smpl_gt(
        "3dpw", list(annots), widths, heights, sequences, counts, fields, genders
    )


def load_processed(data_dir: str | os.PathLike[str], split: str = "test") -> SMPLGroundTruth:
    """Load data_dir/annots_smpl_<split>_genders.npz; images under data_dir/imageFiles."""
    path = Path(data_dir) / PROCESSED_NAME.format(split=split)
    return parse_processed(load_annots_npz(path), data_dir, str(path))


def load_official(root: str | os.PathLike[str], split: str = "test") -> SMPLGroundTruth:
    """Load root/sequenceFiles/<split>/*.pkl (images under root/imageFiles)."""
    return parse_processed(official_annots(root, split), root, f"{root}/sequenceFiles/{split}")
