"""Converters from the result files of existing evaluators to the prediction format.

These files are pickled numpy object arrays, read with hmr-bench's restricted unpickler
(hmr_bench.datasets.pickles: data only, no code runs).

- `from_mahmr_rh_npz`: MA-HMR's `results.npz` for Relative Human, {"results": {image basename:
  {"kp2ds": (N, 14, 2) original px, "trans": (N, 3) m}}}; people were already filtered at
  conf > 0.3, so conf is set to 1.
- `from_bev_rh_npz`: BEV / ROMP's RH results, {"results": {image: [{"kp2ds": (14, 2),
  "trans": (3,), ...}, ...]}}; conf 1.
- `from_dto_npz`: DTO-Humans' RH file (key "annots" holding {image path: dict}, or one entry
  per image) with `pose_cam` (N, 72), `shape` (N, 10|11), `trans_cam` (N, 3), `cam_int` (N, 3, 3).
  As DTO's eval_rh.py: the first person's intrinsics serve every person of the image, and people
  with a NaN translation are dropped (counted in meta["dropped_nan_people"], logged). DTO builds
  CrowdPose-14 from OpenPose joints of CameraHMR's SMPL wrapper; hmr-bench derives them from SMPL
  joints + the extra regressor (MA-HMR's choice), which moves keypoints by a few pixels.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from hmr_bench.datasets.common import (
    DatasetError,
    annots_entry,
    array_field,
    load_annots_npz,
    load_npz_entries,
)
from hmr_bench.predictions import Predictions

__all__ = ["from_bev_rh_npz", "from_dto_npz", "from_mahmr_rh_npz"]

log = logging.getLogger(__name__)


def from_mahmr_rh_npz(path: str | os.PathLike[str]) -> Predictions:
    """Predictions (kp2d, transl, conf = 1) from MA-HMR's RH results.npz."""
    results = load_annots_npz(path, key="results")
    per_image = {}
    for key, entry in results.items():
        where = f"{path}: image {key!r}"
        if not isinstance(entry, dict):
            raise DatasetError(f"{where}: expected a dict with 'kp2ds' and 'trans'")
        kp = array_field(entry, "kp2ds", where, (None, 14, 2))
        per_image[str(key)] = {
            "kp2d": kp,
            "transl": array_field(entry, "trans", where, (len(kp), 3)),
            "conf": np.ones(len(kp)),
        }
    return Predictions.from_images(
        per_image, {"source": f"MA-HMR RH results {Path(path).name}", "conf_filtered_upstream": 0.3}
    )


def from_bev_rh_npz(path: str | os.PathLike[str]) -> Predictions:
    """Predictions (kp2d, transl, conf = 1) from BEV / ROMP RH results (a list per image)."""
    results = load_annots_npz(path, key="results")
    per_image = {}
    for key, people in results.items():
        where = f"{path}: image {key!r}"
        if isinstance(people, dict):
            people = [people]
        kp = [array_field(p, "kp2ds", f"{where} person {i}", (14, 2)) for i, p in enumerate(people)]
        tr = [array_field(p, "trans", f"{where} person {i}", (3,)) for i, p in enumerate(people)]
        per_image[str(key)] = {
            "kp2d": np.array(kp).reshape(-1, 14, 2),
            "transl": np.array(tr).reshape(-1, 3),
            "conf": np.ones(len(kp)),
        }
    return Predictions.from_images(per_image, {"source": f"BEV RH results {Path(path).name}"})


def _dto_entries(path: Path) -> dict[str, Any]:
    entries = load_npz_entries(path)
    if "annots" in entries:
        return annots_entry(entries, "annots", path)
    return {k: v[()] for k, v in entries.items()}


def from_dto_npz(path: str | os.PathLike[str]) -> Predictions:
    """Predictions (pose, betas, transl, K, conf = 1) from DTO-Humans' RH file."""
    path = Path(path)
    per_image: dict[str, dict[str, np.ndarray]] = {}
    dropped = 0
    for key, entry in _dto_entries(path).items():
        name = str(key).split("/")[-1]
        where = f"{path}: image {key!r}"
        if not isinstance(entry, dict) or len(entry.get("pose_cam", ())) == 0:
            per_image[name] = {
                "pose": np.zeros((0, 72)), "betas": np.zeros((0, 10)), "transl": np.zeros((0, 3)),
                "K": np.zeros((0, 3, 3)), "conf": np.zeros(0),
            }  # fmt: skip
            continue
        pose = array_field(entry, "pose_cam", where, (None, 72))
        betas = array_field(entry, "shape", where, (len(pose), None))
        transl = array_field(entry, "trans_cam", where, (len(pose), 3))
        cam = array_field(entry, "cam_int", where, (None, 3, 3))
        ok = ~np.isnan(transl).any(axis=1)
        dropped += int((~ok).sum())
        per_image[name] = {
            "pose": pose[ok],
            "betas": betas[ok],
            "transl": transl[ok],
            "K": np.repeat(cam[:1], int(ok.sum()), axis=0),
            "conf": np.ones(int(ok.sum())),
        }
    if dropped:
        log.warning(
            "%s: dropped %d people with NaN translation (as DTO's evaluator)", path, dropped
        )
    sizes = {v["betas"].shape[1] for v in per_image.values() if len(v["betas"])}
    if len(sizes) > 1:
        raise DatasetError(f"{path}: images have different numbers of betas {sorted(sizes)}")
    size = sizes.pop() if sizes else 10
    for v in per_image.values():
        if len(v["betas"]) == 0:
            v["betas"] = np.zeros((0, size))
    return Predictions.from_images(
        per_image, {"source": f"DTO-Humans RH file {path.name}", "dropped_nan_people": dropped}
    )
