"""What a run writes: JSON records, OBJ meshes, hmr-bench prediction fields; every file
written to a temp file and renamed (hmr-bench's writer), so none is ever half written."""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dto_core.body import BodyModel
from hmr_bench.datasets.common import write_atomic
from hmr_bench.predictions import Predictions
from mahmr_model import ImagePrediction

__all__ = [
    "UNITS",
    "PeopleSummary",
    "benchmark_fields",
    "benchmark_predictions",
    "image_record",
    "person_records",
    "summarize",
    "write_json",
    "write_obj",
]

UNITS = {"3d": "metres, OpenCV camera frame", "2d": "pixels of the input image"}


@dataclass(frozen=True)
class PeopleSummary:
    """What the labels and tables show, per person (N,).

    heights: T-pose height (m) of the predicted shape (dto_core's `tpose_height`, the height of
    hmr-bench's height error). distances: camera centre to pelvis (SMPL joint 0), m.
    scores: detection confidence.
    """

    heights: np.ndarray
    distances: np.ndarray
    scores: np.ndarray

    def rows(self) -> list[dict[str, float]]:
        """One dict per person: person (1-based), height_m, distance_m, confidence."""
        columns = zip(self.heights, self.distances, self.scores, strict=True)
        return [
            {"person": i + 1, "height_m": round(float(h), 3), "distance_m": round(float(d), 3),
             "confidence": round(float(s), 3)}
            for i, (h, d, s) in enumerate(columns)
        ]  # fmt: skip


def summarize(prediction: ImagePrediction, height_model: BodyModel) -> PeopleSummary:
    """Heights and distances of an image's people; `height_model` has the prediction's betas
    (the neutral SMPL, plus the kid template for 11 betas)."""
    persons = prediction.persons
    heights = (
        height_model.tpose_height(persons.betas.astype(np.float64)) if len(persons) else np.zeros(0)
    )
    distances = np.linalg.norm(persons.joints[:, 0].astype(np.float64), axis=1)
    return PeopleSummary(heights, distances, persons.scores.astype(np.float64))


def person_records(
    prediction: ImagePrediction, summary: PeopleSummary | None = None
) -> list[dict[str, Any]]:
    """Per person: score, box (xyxy px), SMPL parameters, translation (m), 45 joints (m),
    their 2D projections (px) and, with a summary, height_m and distance_m."""
    p = prediction.persons
    extra = [{}] * len(p) if summary is None else [
        {"height_m": float(h), "distance_m": float(d)}
        for h, d in zip(summary.heights, summary.distances, strict=True)
    ]  # fmt: skip
    return [
        {
            **extra[i],
            "score": float(p.scores[i]),
            "box_xyxy": p.boxes[i].tolist(),
            "global_orient": p.global_orient[i].tolist(),
            "body_pose": p.body_pose[i].tolist(),
            "betas": p.betas[i].tolist(),
            "transl": p.transl[i].tolist(),
            "joints": p.joints[i].tolist(),
            "keypoints_2d": p.keypoints_2d[i].tolist(),
        }
        for i in range(len(p))
    ]


def image_record(
    path: Path, prediction: ImagePrediction, summary: PeopleSummary | None = None
) -> dict[str, Any]:
    """One image: file, size (H, W), camera (vertical FoV, focal, K in image px), people."""
    return {
        "file": str(path),
        "image_size": list(prediction.image_size),
        "fov_deg": math.degrees(prediction.fov),
        "focal_px": prediction.focal,
        "intrinsics": prediction.intrinsics.tolist(),
        "camera_source": prediction.camera_source,
        "persons": person_records(prediction, summary),
    }


def benchmark_fields(prediction: ImagePrediction) -> dict[str, np.ndarray]:
    """hmr-bench's per-person fields of one image: conf, pose (global orientation first),
    betas, transl (m), joints24 (m), K (original px) and, when predicted, verts (m, float32)."""
    p = prediction.persons
    n = len(p)
    fields = {
        "conf": p.scores.astype(np.float64),
        "pose": np.concatenate([p.global_orient, p.body_pose], axis=1).astype(np.float64),
        "betas": p.betas.astype(np.float64),
        "transl": p.transl.astype(np.float64),
        "joints24": p.joints[:, :24].astype(np.float64),
        "K": np.broadcast_to(prediction.intrinsics.astype(np.float64), (n, 3, 3)).copy(),
    }
    if p.vertices is not None:
        fields["verts"] = p.vertices.astype(np.float32)
    return fields


def benchmark_predictions(
    keys: Sequence[str], predictions: Sequence[ImagePrediction], meta: Mapping[str, Any]
) -> Predictions:
    """hmr-bench's prediction object of the given images, in this order, with each image's
    intrinsics (image field K: the focal error then covers images where nobody was found)."""
    return Predictions.from_images(
        {key: benchmark_fields(p) for key, p in zip(keys, predictions, strict=True)},
        meta,
        image_fields={"K": np.stack([p.intrinsics.astype(np.float64) for p in predictions])},
    )


def write_json(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> Path:
    """JSON, atomically."""
    return write_atomic(path, lambda f: f.write(json.dumps(payload).encode()))


def write_obj(path: str | os.PathLike[str], vertices: np.ndarray, faces: np.ndarray) -> Path:
    """A Wavefront OBJ of one mesh (vertices (V, 3) m, faces (F, 3) 0-based), atomically."""
    text = io.StringIO()
    np.savetxt(text, vertices, fmt="v %.5f %.5f %.5f")
    np.savetxt(text, np.asarray(faces) + 1, fmt="f %d %d %d")
    return write_atomic(path, lambda f: f.write(text.getvalue().encode()))
