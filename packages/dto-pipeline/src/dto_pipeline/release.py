"""The released pseudo-ground truth (`--pgt`): CameraHMR's `*-release.npz` of one source, read and
validated by `dto_humans_hub.convert_camerahmr_release`, grouped per image, and matched to the
images of the folder by the release's image-key rule (the last path component, or the last three
for InstaVariety, with MA-HMR's `insta-train/` prefix).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from dto_humans_hub import AnnotationBatch, convert_camerahmr_release
from dto_humans_hub.conventions import INSTA_KEY_PREFIX, KEY_PATH_DEPTH
from dto_humans_hub.convert import source_from_filename
from dto_humans_hub.writer import file_sha256

__all__ = ["Release", "read_release"]


@dataclass(frozen=True)
class Release:
    """A validated release file: `source` name, file `name` and `sha256`, the per-image batch,
    and the files that were rejected while reading (key, reason)."""

    source: str
    name: str
    sha256: str
    batch: AnnotationBatch
    rejected: tuple[tuple[str, str], ...]

    def key_of(self, relative_path: str) -> str:
        """The release image key of an image at `relative_path` in the images folder."""
        parts = PurePosixPath(relative_path).parts[-KEY_PATH_DEPTH[self.source] :]
        key = "/".join(parts)
        return INSTA_KEY_PREFIX + key if self.source == "insta" else key

    @property
    def index(self) -> dict[str, int]:
        return {str(k): i for i, k in enumerate(self.batch.image_key)}

    def persons(self, image: int) -> dict[str, np.ndarray | None]:
        """The released people of image number `image` of the batch, as the keyword arguments
        of `dto_models.ReleasedPersons`: global_orient (G, 3), body_pose (G, 69), betas (G, 10),
        transl (G, 3) m, K (3, 3), keypoints_2d (G, 44, 2) px or None when the release has no
        `gtkps` (the teacher stage then projects the SMPL joints, spec A.2.5)."""
        b = self.batch
        rows = slice(int(b.offsets[image]), int(b.offsets[image + 1]))
        pose = np.asarray(b.smpl_pose[rows], np.float64).reshape(-1, 72)
        keypoints = None
        if b.keypoints_2d is not None:
            keypoints = np.asarray(b.keypoints_2d[rows, :, :2], np.float64)
            if not np.all(np.isfinite(keypoints)):
                keypoints = None  # no gtkps in the file: project the SMPL joints (spec A.2.5)
        return {
            "global_orient": pose[:, :3],
            "body_pose": pose[:, 3:],
            "betas": np.asarray(b.smpl_betas[rows, :10], np.float64),
            "transl": np.asarray(b.transl_cam[rows], np.float64),
            "K": np.asarray(b.intrinsics[image], np.float64),
            "keypoints_2d": keypoints,
        }


def read_release(path: str | os.PathLike[str], source: str | None = None) -> Release:
    """Read and validate a CameraHMR release file (see `convert_camerahmr_release`).

    Raises:
        dto_humans_hub.AnnotationFileError: unreadable, or a missing or mis-shaped field (named).
    """
    path = Path(path)
    conversion = convert_camerahmr_release(path, source=source)
    return Release(
        source=source or source_from_filename(path),
        name=path.name,
        sha256=file_sha256(path),
        batch=conversion.batch,
        rejected=tuple((r.image_key, r.reason) for r in conversion.rejected),
    )
