"""The posed ground truth of 3DPW / Hi4D, computed once per dataset and cached on disk.

Every ground-truth person is posed with its gendered SMPL model in the camera frame (the bulk of
an evaluation's time: one SMPL forward pass per person), giving its mesh, its 45 smplx joints
(visibility filter, matching), its H36M-17 joints R v (regressed from the float64 mesh) and its
T-pose height. None of this depends on the predictions or the protocol switches, so with a cache
folder it is stored there once, under a key that is a checksum of the ground truth the annotation
files hold (SMPL parameters, cameras, genders, in order) and of the body model (the male and
female model arrays and the H36M regressor), and later evaluations read it back.

Cached meshes are float32 (~84 kB per person, 2.9 GB for a 3DPW-sized test set): float32 keeps
vertices to ~0.5 um at 10 m, far below the 0.01 mm the metrics resolve. The first, cache-writing
evaluation already uses the float32 meshes, so cold and warm runs give identical numbers;
without a cache folder the meshes stay float64.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from hmr_bench.body import Bodies, BodyModels, camera_frame_params, pose_bodies
from hmr_bench.datasets.smpl_gt import GENDERS, SMPLGroundTruth

__all__ = [
    "CACHE_ENV",
    "CACHE_VERSION",
    "PosedChunk",
    "PosedGroundTruth",
    "cache_key",
    "default_cache_dir",
]

CACHE_VERSION = 1
CACHE_ENV = "HMR_BENCH_CACHE"
ARRAYS = {  # name: (dtype, trailing shape)
    "verts": (np.float32, (6890, 3)),
    "joints45": (np.float64, (45, 3)),
    "h36m": (np.float64, (17, 3)),
    "heights": (np.float64, ()),
}


def default_cache_dir() -> Path:
    """$HMR_BENCH_CACHE, else $XDG_CACHE_HOME/hmr-bench, else ~/.cache/hmr-bench."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hmr-bench"


def _digest(arrays: list[np.ndarray]) -> hashlib.blake2b:
    h = hashlib.blake2b(digest_size=20)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes() if a.dtype.kind in "US" else memoryview(a).cast("B"))
    return h


def cache_key(gt: SMPLGroundTruth, models: BodyModels) -> str:
    """Checksum of the ground-truth people and of the gendered body models + H36M regressor."""
    arrays = [
        gt.betas, gt.global_orient, gt.body_pose, gt.transl, gt.cam_rot, gt.cam_trans,
        gt.gender.astype("U6"),
    ]  # fmt: skip
    for gender in GENDERS:
        m = models.model(gender)
        arrays += [m.v_template, m.shapedirs, m.posedirs, m.J_regressor, m.weights, m.parents]
    arrays.append(models.regressors.h36m.weights)
    h = _digest(arrays)
    h.update(f"hmr-bench posed ground truth v{CACHE_VERSION} {gt.benchmark}".encode())
    return h.hexdigest()


@dataclasses.dataclass(frozen=True, eq=False)
class PosedChunk:
    """Ground-truth rows start:stop posed: verts (n, 6890, 3) m (float32 when cached), joints45
    (n, 45, 3) m (the 24 SMPL joints, then smplx's 21 vertex joints), h36m (n, 17, 3) m = R v,
    heights (n,) m (gendered T-pose)."""

    verts: np.ndarray
    joints45: np.ndarray
    h36m: np.ndarray
    heights: np.ndarray


class PosedGroundTruth:
    """Per-chunk access to the posed ground truth: `chunk(start, stop)` -> PosedChunk of
    ground-truth rows start:stop; `transl` (N, 3) is every person's camera-frame SMPL
    translation. Use as a context manager: a cache being written is published (renamed into
    place) on a clean exit and removed otherwise.

    cache_dir None: everything is computed (float64 meshes). Otherwise the folder
    <cache_dir>/<benchmark>-<key> is read if present, else written while the chunks are served.
    """

    def __init__(
        self, gt: SMPLGroundTruth, models: BodyModels, cache_dir: str | os.PathLike[str] | None
    ) -> None:
        self.gt, self.models = gt, models
        self.status = "off"  # off | hit | written | failed: <reason>
        self._arrays: dict[str, np.ndarray] = {}
        self._tmp: Path | None = None
        self._stale = False
        self.folder: Path | None = None
        self.transl = np.zeros((gt.num_people, 3))
        self._pose = np.zeros((gt.num_people, 72))
        if cache_dir is not None:
            self.folder = Path(cache_dir) / f"{gt.benchmark}-{cache_key(gt, models)}"
            if self._open_existing():
                return
        self._camera_frame()
        if self.folder is not None:
            self._start_writing()

    def _camera_frame(self) -> None:
        gt = self.gt
        for gender in GENDERS:
            sel = np.flatnonzero(gt.gender == gender)
            if sel.size:
                orient, self.transl[sel] = camera_frame_params(
                    gt.global_orient[sel], gt.transl[sel], gt.betas[sel], gt.cam_rot[sel],
                    gt.cam_trans[sel], self.models.model(gender),
                )  # fmt: skip
                self._pose[sel] = np.concatenate([orient, gt.body_pose[sel]], axis=1)

    def _open_existing(self) -> bool:
        assert self.folder is not None
        if not self.folder.exists():
            return False
        self._stale = True  # replaced when this run publishes, unless it is valid
        try:
            meta = json.loads((self.folder / "meta.json").read_text())
            arrays = {
                name: np.load(self.folder / f"{name}.npy", mmap_mode="r")
                for name in (*ARRAYS, "transl")
            }
        except (OSError, ValueError):
            return False
        n = self.gt.num_people
        if meta.get("version") != CACHE_VERSION or any(len(a) != n for a in arrays.values()):
            return False
        self.transl = np.asarray(arrays.pop("transl"))
        self._arrays, self.status, self._stale = arrays, "hit", False
        return True

    def _start_writing(self) -> None:
        assert self.folder is not None
        n = self.gt.num_people
        try:
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = Path(tempfile.mkdtemp(dir=self.folder.parent, prefix=".tmp-"))
            for name, (dtype, shape) in ARRAYS.items():
                self._arrays[name] = np.lib.format.open_memmap(
                    self._tmp / f"{name}.npy", mode="w+", dtype=dtype, shape=(n, *shape)
                )
            np.save(self._tmp / "transl.npy", self.transl)
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self.status = f"failed: {exc}"
        self._arrays = {}
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def chunk(self, start: int, stop: int) -> PosedChunk:
        """The posed ground-truth rows start:stop."""
        if self.status == "hit":
            return PosedChunk(*(np.asarray(self._arrays[k][start:stop]) for k in ARRAYS))
        rows = np.arange(start, stop)
        bodies = Bodies(np.empty((len(rows), 6890, 3)), np.empty((len(rows), 24, 3)))
        heights = np.empty(len(rows))
        for gender in GENDERS:
            sel = np.flatnonzero(self.gt.gender[rows] == gender)
            if sel.size:
                r, model = rows[sel], self.models.model(gender)
                pose_bodies(model, self.gt.betas[r], self._pose[r], self.transl[r], bodies, sel)
                heights[sel] = model.tpose_height(self.gt.betas[r])
        posed = PosedChunk(bodies.verts, bodies.joints45, self.models.h36m(bodies.verts), heights)
        if self.folder is None:
            return posed
        # what the cache holds, whether it could be written or not
        posed = dataclasses.replace(posed, verts=posed.verts.astype(np.float32))
        if self._arrays:
            try:
                for name in ARRAYS:
                    self._arrays[name][start:stop] = getattr(posed, name)
            except OSError as exc:
                self._fail(exc)
        return posed

    def __enter__(self) -> PosedGroundTruth:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if self._tmp is None:
            return
        if exc_type is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            return
        assert self.folder is not None
        try:
            for array in self._arrays.values():
                array.flush()
            self._arrays = {}
            meta = {"version": CACHE_VERSION, "benchmark": self.gt.benchmark}
            meta["people"] = self.gt.num_people
            (self._tmp / "meta.json").write_text(json.dumps(meta))
            # mkdtemp made the folder 0700: give it its files' umask-respecting permissions
            mode = (self._tmp / "meta.json").stat().st_mode & 0o666
            os.chmod(self._tmp, mode | (mode & 0o444) >> 2)
            if self._stale:  # an older version's or a damaged cache
                shutil.rmtree(self.folder, ignore_errors=True)
            os.replace(self._tmp, self.folder)
            self.status = "written"
        except OSError as exc:
            if (self.folder / "meta.json").is_file():  # another process published it first
                self.status = "written"
                shutil.rmtree(self._tmp, ignore_errors=True)
                self._tmp = None
            else:
                self._fail(exc)
        finally:
            if self._tmp is not None and self._tmp.exists():
                shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
