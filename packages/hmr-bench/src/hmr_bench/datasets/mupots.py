"""MuPoTS-3D (20 test sequences TS1-TS20) in its official layout and MA-HMR's processed file.

Official `MultiPersonTestSet/TS<k>/img_%06d.jpg`, `annot.mat` (`annotations`: F x S MATLAB cell
of structs `annot2` (2, 17) px, `annot3` (3, 17) mm camera frame, `univ_annot3` (3, 17) mm
height-normalised, `isValidFrame` (1, 1)) and `occlusion.mat` (`occlusion_labels`: F x S cell of
(1, 17) logicals, 1 = occluded); joint order MPI-17 (hmr_bench.joints.MPI17_NAMES).

Processed (MA-HMR prepare_mupots.py, `mupots/mupots_annots.npz`): `annots` =
{"TS<k>/img_%06d.jpg": [person dicts of the VALID subjects: `annot_2d` (17, 2), `annot_3d`
(17, 3), `annot_3d_univ` (17, 3), reordered MPI -> H36M with MPI_TO_H36M, and `vis` (17,) bool =
not occluded, left in MPI order]}; frames without a valid subject are absent.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from hmr_bench.datasets.common import DatasetError, array_field, load_annots_npz, save_annots_npz
from hmr_bench.joints import MPI_TO_H36M

__all__ = [
    "PROCESSED_NAME",
    "MuPoTSGroundTruth",
    "convert_official_to_processed",
    "load_official",
    "load_processed",
    "official_annots",
    "official_root",
    "parse_processed",
]

PROCESSED_NAME = "mupots_annots.npz"
OFFICIAL_FOLDER = "MultiPersonTestSet"
ANNOT_FIELDS = ("annot2", "annot3", "univ_annot3", "isValidFrame")


@dataclass(frozen=True, eq=False)
class MuPoTSGroundTruth:
    """Valid subjects of I frames; person arrays (N, ...), frame i's at offsets[i]:offsets[i+1].

    annot_2d (N, 17, 2) px, annot_3d and annot_3d_univ (N, 17, 3) mm: H36M-17 order (as in the
    processed file); vis (N, 17) bool, not occluded, in MPI-17 order. sequence (I,) k of TS<k>.
    """

    image_keys: tuple[str, ...]
    sequence: np.ndarray
    offsets: np.ndarray
    annot_2d: np.ndarray
    annot_3d: np.ndarray
    annot_3d_univ: np.ndarray
    vis: np.ndarray

    @property
    def num_images(self) -> int:
        return len(self.image_keys)


def official_root(data_dir: str | os.PathLike[str]) -> Path:
    """data_dir itself or its MultiPersonTestSet subfolder, whichever holds TS<k> folders."""
    data_dir = Path(data_dir)
    for candidate in (data_dir / OFFICIAL_FOLDER, data_dir):
        if any(candidate.glob("TS*/annot.mat")):
            return candidate
    raise DatasetError(f"{data_dir}: no TS<k>/annot.mat (expected the official MuPoTS-3D layout)")


def _sequence_number(name: str, where: str) -> int:
    match = re.match(r"TS(\d+)$", name)
    if match is None:
        raise DatasetError(f"{where}: folder {name!r} is not TS<k>")
    return int(match.group(1))


def _load_mat(path: Path, key: str) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    data = scipy.io.loadmat(path)
    if key not in data:
        found = sorted(k for k in data if not k.startswith("__"))
        raise DatasetError(f"{path}: no {key!r} variable (found {found})")
    return data[key]


def official_annots(data_dir: str | os.PathLike[str]) -> dict[str, list[dict[str, np.ndarray]]]:
    """The processed `annots` dict from TS<k>/annot.mat and occlusion.mat (as prepare_mupots)."""
    root = official_root(data_dir)
    mapping = list(MPI_TO_H36M)
    annots: dict[str, list[dict[str, np.ndarray]]] = {}
    folders = sorted(root.glob("TS*"), key=lambda p: _sequence_number(p.name, str(root)))
    for folder in folders:
        ann = _load_mat(folder / "annot.mat", "annotations")
        occ = _load_mat(folder / "occlusion.mat", "occlusion_labels")
        if occ.shape != ann.shape:
            raise DatasetError(f"{folder}: occlusion_labels {occ.shape} != annotations {ann.shape}")
        for t in range(ann.shape[0]):
            people = []
            for p in range(ann.shape[1]):
                where = f"{folder / 'annot.mat'}: frame {t} subject {p}"
                cell = ann[t, p]
                record = (
                    cell[0, 0]
                    if isinstance(cell, np.ndarray) and cell.dtype.names is None
                    else cell
                )
                record = (
                    record[0, 0] if isinstance(record, np.ndarray) and record.ndim == 2 else record
                )
                names = record.dtype.names or ()
                missing = [f for f in ANNOT_FIELDS if f not in names]
                if missing:
                    raise DatasetError(f"{where}: missing field(s) {missing}")
                if not int(np.asarray(record["isValidFrame"]).item()):
                    continue
                people.append({
                    "annot_2d": np.transpose(record["annot2"])[mapping],
                    "annot_3d": np.transpose(record["annot3"])[mapping],
                    "annot_3d_univ": np.transpose(record["univ_annot3"])[mapping],
                    "vis": np.asarray(occ[t, p]).reshape(-1) == 0,
                })  # fmt: skip
            if people:
                annots[f"{folder.name}/img_{t:06d}.jpg"] = people
    return annots


def convert_official_to_processed(
    data_dir: str | os.PathLike[str], out: str | os.PathLike[str]
) -> Path:
    """Write `mupots_annots.npz` (to `out`, a file or folder) from the official .mat files."""
    out = Path(out)
    if out.suffix != ".npz":
        out = out / PROCESSED_NAME
    return save_annots_npz(out, official_annots(data_dir))


def parse_processed(annots: dict[str, Any], where: str) -> MuPoTSGroundTruth:
    """MuPoTSGroundTruth of a processed `annots` dict."""
    keys, seqs, counts = [], [], []
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("annot_2d", "annot_3d", "annot_3d_univ", "vis")
    }
    for key, people in annots.items():
        if not isinstance(people, list | tuple):
            raise DatasetError(f"{where}: image {key!r}: expected a list of person dicts")
        keys.append(str(key))
        seqs.append(_sequence_number(str(key).split("/")[0], f"{where}: image {key!r}"))
        counts.append(len(people))
        for i, person in enumerate(people):
            here = f"{where}: image {key!r} person {i}"
            parts["annot_2d"].append(array_field(person, "annot_2d", here, (17, 2)))
            parts["annot_3d"].append(array_field(person, "annot_3d", here, (17, 3)))
            parts["annot_3d_univ"].append(array_field(person, "annot_3d_univ", here, (17, 3)))
            parts["vis"].append(array_field(person, "vis", here, (17,), dtype=bool))
    n = sum(counts)

    def stack(name: str, shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
        return np.array(parts[name], dtype=dtype).reshape(n, *shape)

    return MuPoTSGroundTruth(
        image_keys=tuple(keys),
        sequence=np.array(seqs, np.int64),
        offsets=np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64),
        annot_2d=stack("annot_2d", (17, 2)),
        annot_3d=stack("annot_3d", (17, 3)),
        annot_3d_univ=stack("annot_3d_univ", (17, 3)),
        vis=stack("vis", (17,), bool),
    )


def load_processed(data_dir: str | os.PathLike[str]) -> MuPoTSGroundTruth:
    """Load data_dir/mupots_annots.npz."""
    path = Path(data_dir) / PROCESSED_NAME
    return parse_processed(load_annots_npz(path), str(path))


def load_official(data_dir: str | os.PathLike[str]) -> MuPoTSGroundTruth:
    """Load the official .mat files under data_dir (or data_dir/MultiPersonTestSet)."""
    return parse_processed(official_annots(data_dir), str(official_root(data_dir)))
