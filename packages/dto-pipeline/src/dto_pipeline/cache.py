"""Teacher outputs cached per image and model id, so that DTO re-runs without the teachers.

Two stages are cached separately, so that one can change without re-running the other:
"persons" (detector, ViTPose, keypoint NMS, CameraHMR, matching, MiVOLO, and HumanFoV when no
released intrinsics exist) and "depth" (Depth-Anything-V2). Each stage's model id is a digest of
its teachers' weights and options (`dto_pipeline.teachers`). Layout:

    <cache>/<stage>/<model id>/model.json               what the id stands for
    <cache>/<stage>/<model id>/<ab>/<sha256 of name>.npz one image (zlib-compressed npz)

Every entry holds the image's name and the sha256 of its file bytes: an entry of another image, or
of a file whose content changed, is never used. Entries are written to a temporary sibling and
renamed, so a killed process leaves either the whole entry or none. Masks are stored bit-packed;
every other array exactly as the teachers returned it, so a re-solve sees the same numbers.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dto_core.atomic import write_atomic

from .errors import CacheError

__all__ = ["CacheError", "PersonsEntry", "TeacherCache", "skip_code"]

PERSON_ARRAYS = (
    "scores",
    "boxes_xyxy",
    "global_orient",
    "body_pose",
    "betas",
    "transl",
    "keypoints_2d",
    "is_released",
    "detection_index",
    "released_index",
    "age",
    "p_male",
)

SKIP_CODES = {
    "no person detected": "no_person",
    "no detection with": "too_few_keypoints",
    "no detection matched": "unmatched",
}
"""Prefixes of `dto_models.TeacherRecord.skip_reason` -> the run report's reason codes."""


def skip_code(reason: str) -> str:
    """The reason code of a `TeacherRecord.skip_reason`.

    Raises:
        ValueError: a reason this pipeline does not know (a new teacher-stage rule).
    """
    for prefix, code in SKIP_CODES.items():
        if reason.startswith(prefix):
            return code
    raise ValueError(f"unknown teacher-stage skip reason {reason!r}: add it to SKIP_CODES")


@dataclass(frozen=True)
class PersonsEntry:
    """What the person teachers produced for one image (see `dto_models.TeacherRecord`).

    image_size (H, W) px; K (3, 3) px; per person (N,): scores, boxes_xyxy (N, 4) px, masks
    (N, H, W) bool, global_orient (N, 3) / body_pose (N, 69) axis-angle rad, betas (N, 10),
    transl (N, 3) m, keypoints_2d (N, 44, 2) px, is_released, detection_index, released_index,
    age (years), p_male. skip: "" or the reason code of an image that yields nobody
    (`skip_code`), with `skip_detail` in words.
    """

    image_size: tuple[int, int]
    K: np.ndarray
    scores: np.ndarray
    boxes_xyxy: np.ndarray
    masks: np.ndarray
    global_orient: np.ndarray
    body_pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    keypoints_2d: np.ndarray
    is_released: np.ndarray
    detection_index: np.ndarray
    released_index: np.ndarray
    age: np.ndarray
    p_male: np.ndarray
    skip: str = ""
    skip_detail: str = ""

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def from_record(cls, record: Any, image_size: tuple[int, int]) -> PersonsEntry:
        """From a `dto_models.TeacherRecord` (any object with its fields)."""
        reason = record.skip_reason
        return cls(
            image_size=(int(image_size[0]), int(image_size[1])),
            K=np.asarray(record.K),
            masks=np.asarray(record.masks, dtype=bool),
            skip="" if reason is None else skip_code(reason),
            skip_detail=reason or "",
            **{name: np.asarray(getattr(record, name)) for name in PERSON_ARRAYS},
        )

    @classmethod
    def skipped(cls, code: str, detail: str, image_size: tuple[int, int]) -> PersonsEntry:
        """An image that yields nobody (no teacher output), e.g. unreadable."""
        z = np.zeros
        h, w = image_size
        return cls(
            image_size=(int(h), int(w)),
            K=np.full((3, 3), np.nan),
            scores=z(0, np.float32),
            boxes_xyxy=z((0, 4), np.float32),
            masks=z((0, h, w), bool),
            global_orient=z((0, 3), np.float32),
            body_pose=z((0, 69), np.float32),
            betas=z((0, 10), np.float32),
            transl=z((0, 3), np.float32),
            keypoints_2d=z((0, 44, 2), np.float32),
            is_released=z(0, bool),
            detection_index=z(0, np.int64),
            released_index=z(0, np.int64),
            age=z(0, np.float32),
            p_male=z(0, np.float32),
            skip=code,
            skip_detail=detail,
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        n, (h, w) = len(self), self.image_size
        arrays = {name: np.asarray(getattr(self, name)) for name in PERSON_ARRAYS}
        arrays["K"] = np.asarray(self.K)
        arrays["image_size"] = np.array([h, w], np.int64)
        arrays["masks"] = np.packbits(self.masks.reshape(n, h * w), axis=1)
        arrays["skip"] = np.array(self.skip)
        arrays["skip_detail"] = np.array(self.skip_detail)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> PersonsEntry:
        h, w = (int(v) for v in arrays["image_size"])
        n = len(arrays["scores"])
        masks = np.unpackbits(arrays["masks"], axis=1, count=h * w).astype(bool)
        return cls(
            image_size=(h, w),
            K=arrays["K"],
            masks=masks.reshape(n, h, w),
            skip=str(arrays["skip"]),
            skip_detail=str(arrays["skip_detail"]),
            **{name: arrays[name] for name in PERSON_ARRAYS},
        )


STAGES = ("persons", "depth")


def model_id(description: dict[str, Any]) -> str:
    """The id of a stage's teachers: sha256 (first 16 hex digits) of their description (JSON)."""
    text = json.dumps(description, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class TeacherCache:
    """Per-image teacher outputs under `root` for the stages' model ids.

    `models` maps each stage ("persons", "depth") to the description of its teachers; their ids
    (`model_id`) name the folders. Descriptions are written once to `model.json`.
    """

    def __init__(self, root: str | os.PathLike[str], models: dict[str, dict[str, Any]]) -> None:
        unknown = set(models) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown cache stages {sorted(unknown)}; expected {STAGES}")
        self.root = Path(root)
        self.models = models
        self.ids = {stage: model_id(desc) for stage, desc in models.items()}

    def register(self) -> None:
        """Write each stage's model.json (same content from every process, written atomically)."""
        for stage, desc in self.models.items():
            path = self.root / stage / self.ids[stage] / "model.json"
            if not path.is_file():
                data = (json.dumps(desc, indent=1, sort_keys=True) + "\n").encode()
                write_atomic(path, lambda f, data=data: f.write(data), fsync=True)

    def path(self, stage: str, name: str) -> Path:
        digest = hashlib.sha256(name.encode()).hexdigest()
        return self.root / stage / self.ids[stage] / digest[:2] / f"{digest[2:34]}.npz"

    def _read(
        self, stage: str, name: str, image_sha256: str | None
    ) -> dict[str, np.ndarray] | None:
        path = self.path(stage, name)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise CacheError(f"{path}: damaged cache entry of {name} ({exc}); delete it") from exc
        if str(arrays.pop("name")) != name:
            return None  # a hash collision: never use another image's entry
        stored_sha = str(arrays.pop("image_sha256"))
        if image_sha256 is not None and stored_sha != image_sha256:
            return None  # the file changed since it was cached
        return arrays

    def _write(
        self, stage: str, name: str, image_sha256: str, arrays: dict[str, np.ndarray]
    ) -> None:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, name=np.array(name), image_sha256=np.array(image_sha256), **arrays
        )
        write_atomic(self.path(stage, name), lambda f: f.write(buffer.getbuffer()), fsync=True)

    def get_persons(self, name: str, image_sha256: str | None = None) -> PersonsEntry | None:
        """The cached persons of image `name` (None if absent or of another file content;
        `image_sha256=None` accepts any content, for re-solving without the images)."""
        arrays = self._read("persons", name, image_sha256)
        return None if arrays is None else PersonsEntry.from_arrays(arrays)

    def put_persons(self, name: str, image_sha256: str, entry: PersonsEntry) -> None:
        self._write("persons", name, image_sha256, entry.to_arrays())

    def get_depth(self, name: str, image_sha256: str | None = None) -> np.ndarray | None:
        """The cached relative disparity (H, W) of image `name`, as `get_persons`."""
        arrays = self._read("depth", name, image_sha256)
        return None if arrays is None else arrays["disparity"]

    def put_depth(self, name: str, image_sha256: str, disparity: np.ndarray) -> None:
        self._write("depth", name, image_sha256, {"disparity": np.asarray(disparity)})
