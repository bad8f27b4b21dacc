"""The prediction file: what `apps/eval` reads and any method can write (format version 2).

One `.npz` file without pickles (`np.load(..., allow_pickle=False)` reads it):

- `format` str "hmr-bench-predictions"; `version` int 2 (version-1 files, which have no per-image
  fields, are still read); `meta_json` str, optional JSON object (method, checkpoint, notes);
- `image_keys` (I,) str: the ground-truth loader's image keys (RH: the basename; 3DPW:
  "imageFiles/<seq>/image_%05d.jpg"; Hi4D, MuPoTS, Panoptic: the processed file's keys);
- `offsets` (I + 1,) int64: image i's people are rows offsets[i]:offsets[i + 1] of every
  per-person array below;
- `conf` (N,): detection confidence (required); evaluators keep conf > threshold;
- `verts` (N, V, 3): mesh vertices, camera frame (OpenCV), m;
- `joints24` (N, 24, 3): SMPL forward-kinematics joints (not J_regressor applied to the posed
  mesh), camera frame, m;
- `h36m17` (N, 17, 3): H36M-17 regressed from the posed mesh with J_regressor_h36m_correct, m;
- `transl` (N, 3): the SMPL translation parameter, camera frame, m;
- `pelvis` (N, 3): camera-frame pelvis (H36M row 0), m;
- `betas` (N, 10 or 11): SMPL shape (the 11th is the kid blend of MA-HMR's body model);
- `pose` (N, 72): axis-angle rad, the global orientation in the camera frame first;
- `K` (N, 3, 3): intrinsics in ORIGINAL image pixels (divide a network-frame focal length and
  principal point by the resize rate);
- `kp2d` (N, 14, 2): CrowdPose-14 joints, original pixels (Relative Human);
- per image (version 2): `image_K` (I, 3, 3), the intrinsics predicted for each image, original
  pixels, also for images without any person (the focal error averages over every image).

Every field but `conf` is optional; each benchmark needs some (an error names what is missing) and
derives the rest where it can (e.g. verts from betas + pose + transl with the neutral SMPL model).
Values must be finite: a NaN or inf raises an error naming the image, the person and the field.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hmr_bench.datasets.common import write_atomic

__all__ = [
    "FIELDS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "IMAGE_FIELDS",
    "PredictionError",
    "Predictions",
    "read_predictions",
    "write_predictions",
]

FORMAT_NAME = "hmr-bench-predictions"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
FIELDS: dict[str, tuple[int | None, ...]] = {
    "conf": (),
    "verts": (None, 3),
    "joints24": (24, 3),
    "h36m17": (17, 3),
    "transl": (3,),
    "pelvis": (3,),
    "betas": (None,),
    "pose": (72,),
    "K": (3, 3),
    "kp2d": (14, 2),
}
"""Per-person fields and their trailing shapes (None: any size)."""
IMAGE_FIELDS: dict[str, tuple[int, ...]] = {"K": (3, 3)}
"""Per-image fields (version 2) and their trailing shapes; stored as `image_<name>`."""
IMAGE_PREFIX = "image_"
BETA_SIZES = (10, 11)
_RESERVED = ("format", "version", "image_keys", "offsets", "meta_json")


class PredictionError(ValueError):
    """A prediction file or object is malformed; the message names the image, person, field."""


@dataclass(frozen=True, eq=False)
class Predictions:
    """Predicted people of I images as flat per-person arrays (see the module docstring)."""

    image_keys: tuple[str, ...]
    offsets: np.ndarray
    fields: Mapping[str, np.ndarray]
    meta: Mapping[str, Any] = field(default_factory=dict)
    image_fields: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Per-image arrays (I, ...) by name (IMAGE_FIELDS): `K` (I, 3, 3) px."""
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        keys = tuple(str(k) for k in self.image_keys)
        object.__setattr__(self, "image_keys", keys)
        if len(set(keys)) != len(keys):
            dup = next(k for k in keys if keys.count(k) > 1)
            raise PredictionError(f"image key {dup!r} appears more than once")
        offsets = np.asarray(self.offsets)
        if (
            offsets.ndim != 1
            or len(offsets) != len(keys) + 1
            or not np.issubdtype(offsets.dtype, np.integer)
        ):
            raise PredictionError(
                f"offsets must be {len(keys) + 1} integers, got {offsets.shape} {offsets.dtype}"
            )
        if offsets[0] != 0 or np.any(np.diff(offsets) < 0):
            raise PredictionError("offsets must start at 0 and never decrease")
        object.__setattr__(self, "offsets", offsets.astype(np.int64))
        n = int(offsets[-1])
        fields = dict(self.fields)
        if "conf" not in fields:
            raise PredictionError("predictions need a 'conf' field (N,)")
        for name, value in fields.items():
            fields[name] = self._check_field(name, value, n)
        object.__setattr__(self, "fields", fields)
        image_fields = {
            name: self._check_image_field(name, value)
            for name, value in dict(self.image_fields).items()
        }
        object.__setattr__(self, "image_fields", image_fields)
        object.__setattr__(self, "_index", {k: i for i, k in enumerate(keys)})

    def _check_image_field(self, name: str, value: Any) -> np.ndarray:
        if name not in IMAGE_FIELDS:
            raise PredictionError(
                f"unknown per-image field {name!r}; known: {sorted(IMAGE_FIELDS)}"
            )
        array = np.asarray(value)
        want = (self.num_images, *IMAGE_FIELDS[name])
        if not np.issubdtype(array.dtype, np.floating) or array.shape != want:
            raise PredictionError(
                f"per-image field {name!r} has shape {array.shape} {array.dtype}, expected a "
                f"float array {want} (one per image key)"
            )
        flat = array.reshape(len(array), -1)
        bad = ~np.isfinite(flat).all(axis=1)
        if name == "K":
            bad |= np.any(array[:, [0, 1], [0, 1]] <= 0, axis=1)
        if bad.any():
            image = int(np.flatnonzero(bad)[0])
            raise PredictionError(
                f"image {self.image_keys[image]!r}: per-image field {name!r} is not finite or has "
                f"a focal length <= 0 ({int(bad.sum())} such images in all)"
            )
        return array

    def _check_field(self, name: str, value: Any, n: int) -> np.ndarray:
        if name not in FIELDS:
            raise PredictionError(f"unknown field {name!r}; known: {sorted(FIELDS)}")
        array = np.asarray(value)
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise PredictionError(f"field {name!r} must be numeric, got {array.dtype}")
        trailing = FIELDS[name]
        ok = array.ndim == 1 + len(trailing) and len(array) == n
        ok = ok and all(
            t is None or t == s for t, s in zip(trailing, array.shape[1:], strict=False)
        )
        if name == "betas" and ok and array.shape[1] not in BETA_SIZES:
            ok = False
        if not ok:
            want = ", ".join(["N", *("*" if t is None else str(t) for t in trailing)])
            raise PredictionError(
                f"field {name!r} has shape {array.shape}, expected ({want}) with N = {n}"
            )
        bad = ~np.isfinite(array.reshape(n, -1) if n else array[:0, None]).all(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            image, person = self.locate(row)
            raise PredictionError(
                f"image {self.image_keys[image]!r} person {person}: field {name!r} is not finite "
                f"({int(bad.sum())} such people in all)"
            )
        if name == "K" and n and np.any(array[:, [0, 1], [0, 1]] <= 0):
            row = int(np.flatnonzero(np.any(array[:, [0, 1], [0, 1]] <= 0, axis=1))[0])
            image, person = self.locate(row)
            raise PredictionError(f"image {self.image_keys[image]!r} person {person}: K focal <= 0")
        return array

    def locate(self, row: int) -> tuple[int, int]:
        """(image index, person index within the image) of a flat row."""
        image = int(np.searchsorted(self.offsets, row, side="right") - 1)
        return image, row - int(self.offsets[image])

    @property
    def num_images(self) -> int:
        return len(self.image_keys)

    @property
    def num_people(self) -> int:
        return int(self.offsets[-1])

    def has(self, name: str) -> bool:
        return name in self.fields

    def get(self, name: str) -> np.ndarray:
        if name not in self.fields:
            raise PredictionError(
                f"predictions have no {name!r} field (have {sorted(self.fields)})"
            )
        return self.fields[name]

    def has_image(self, name: str) -> bool:
        """Whether the per-image field `name` is present."""
        return name in self.image_fields

    def index_of(self, image_key: str) -> int | None:
        """Position of an image key, or None if it has no entry."""
        return self._index.get(image_key)

    def rows(self, image_key: str) -> slice:
        """The rows of an image (empty if absent)."""
        i = self.index_of(image_key)
        return slice(0, 0) if i is None else slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    @classmethod
    def from_images(
        cls,
        per_image: Mapping[str, Mapping[str, Any]],
        meta: Mapping[str, Any] | None = None,
        image_fields: Mapping[str, Any] | None = None,
    ) -> Predictions:
        """Build from {image key: {field: (P, ...) array}}; every image needs the same fields.
        image_fields: per-image arrays (I, ...) in the order of per_image's keys."""
        keys = list(per_image)
        names: set[str] = set()
        for k in keys:
            names |= set(per_image[k])
        counts, parts = [], {name: [] for name in names}
        for k in keys:
            entry = per_image[k]
            missing = names - set(entry)
            if missing:
                raise PredictionError(f"image {k!r} lacks field(s) {sorted(missing)}")
            sizes = {name: len(np.asarray(entry[name])) for name in names}
            if len(set(sizes.values())) > 1:
                raise PredictionError(f"image {k!r}: fields have different person counts {sizes}")
            counts.append(next(iter(sizes.values()), 0))
            for name in names:
                parts[name].append(np.asarray(entry[name]))
        fields = {}
        for name in names:
            trailing = FIELDS.get(name, ())
            shaped = [p.reshape(len(p), *p.shape[1:]) for p in parts[name]]
            fields[name] = (
                np.concatenate(shaped) if shaped else np.zeros((0, *[t or 0 for t in trailing]))
            )
        offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)
        return cls(tuple(keys), offsets, fields, dict(meta or {}), dict(image_fields or {}))

    def select(self, rows: np.ndarray) -> Predictions:
        """Keep the rows where the boolean mask `rows` (N,) is True (per image, order kept)."""
        rows = np.asarray(rows, dtype=bool)
        counts = np.add.reduceat(rows, self.offsets[:-1]) if self.num_images else np.zeros(0)
        counts = np.where(np.diff(self.offsets) > 0, counts, 0)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return Predictions(
            self.image_keys,
            offsets,
            {k: v[rows] for k, v in self.fields.items()},
            self.meta,
            self.image_fields,
        )


def write_predictions(path: str | os.PathLike[str], predictions: Predictions) -> Path:
    """Write a version-2 prediction file (.npz, atomically)."""
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT_NAME),
        "version": np.array(FORMAT_VERSION),
        "image_keys": np.array(predictions.image_keys, dtype=str),
        "offsets": predictions.offsets,
        "meta_json": np.array(json.dumps(dict(predictions.meta), sort_keys=True)),
        **predictions.fields,
        **{IMAGE_PREFIX + k: v for k, v in predictions.image_fields.items()},
    }
    return write_atomic(path, lambda f: np.savez(f, **arrays))


ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
"""How an .npz (a zip archive) starts: a first member, or the end record of an empty archive."""


def _not_npz(head: bytes) -> str | None:
    """Why a file starting with `head` is not an .npz prediction file (None if it may be)."""
    if head.startswith(ZIP_MAGIC):
        return None
    if not head:
        return "is empty"
    if head.startswith(np.lib.format.MAGIC_PREFIX):
        return "is a single .npy array (np.save), not an .npz prediction file"
    if head.startswith(b"\x80"):
        return (
            "is a Python pickle, not an .npz prediction file (convert MA-HMR / BEV / DTO "
            "outputs with hmr_bench.adapters or apps/eval --pred-format)"
        )
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut at the end of `head`
            return "is not an .npz file (no zip header)"
    return "is a text file, not an .npz prediction file (hmr_bench.write_predictions writes one)"


def read_predictions(path: str | os.PathLike[str]) -> Predictions:
    """Read and validate a prediction file (format version 1 or 2)."""
    path = Path(path)
    if not path.is_file():
        raise PredictionError(f"{path}: file not found")
    with path.open("rb") as f:
        reason = _not_npz(f.read(512))
    if reason is not None:
        raise PredictionError(f"{path}: {reason}")
    try:
        with np.load(path, allow_pickle=False) as data:
            entries = {k: data[k] for k in data.files}
    except ValueError as exc:
        if "allow_pickle" not in str(exc):  # numpy's words for an object array
            raise PredictionError(f"{path}: damaged .npz member ({exc}); write it again") from exc
        raise PredictionError(
            f"{path}: holds pickled objects; a prediction file has none ({exc})"
        ) from exc
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise PredictionError(
            f"{path}: truncated or damaged .npz file ({exc}); write it again"
        ) from exc
    if entries.get("format", np.array("")).item() != FORMAT_NAME:
        raise PredictionError(
            f"{path}: not an {FORMAT_NAME} file "
            "(convert MA-HMR / BEV / DTO outputs with hmr_bench.adapters)"
        )
    version = int(entries["version"])
    if version not in READABLE_VERSIONS:
        raise PredictionError(
            f"{path}: format version {version}, this reader handles {READABLE_VERSIONS}"
        )
    for key in ("image_keys", "offsets"):
        if key not in entries:
            raise PredictionError(f"{path}: missing entry {key!r}")
    meta = json.loads(str(entries["meta_json"])) if "meta_json" in entries else {}
    image_entries = [
        k for k in entries if version >= 2 and k.startswith(IMAGE_PREFIX) and k not in _RESERVED
    ]
    per_image = {k.removeprefix(IMAGE_PREFIX): entries[k] for k in image_entries}
    fields = {k: v for k, v in entries.items() if k not in _RESERVED and k not in image_entries}
    try:
        return Predictions(
            tuple(entries["image_keys"].tolist()), entries["offsets"], fields, meta, per_image
        )
    except PredictionError as exc:
        raise PredictionError(f"{path}: {exc}") from exc
