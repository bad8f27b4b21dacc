"""DTO's rendering step (spec A.6): the tz map (composite person id and mesh depth) and the
per-person visible-vertex counts, in the form `dto_core.cues.extract_cues` reads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dto_core.camera import project
from hmr_render.raster import check_meshes, render_composite

__all__ = ["RENDER_MAX_SIDE", "VISIBILITY_TOLERANCE", "TzMap", "render_resolution", "render_tz_map"]

RENDER_MAX_SIDE = 512  # official: images with a longer side are rendered downscaled to 512 px
VISIBILITY_TOLERANCE = 0.01  # m: a vertex up to 1 cm behind the composite surface is visible


@dataclass(frozen=True, eq=False)
class TzMap:
    """Rendered cues of one image of N persons at full resolution (H, W).

    person_ids:       (H, W) int32, 0 background, i + 1 where person i is the nearest (masked)
                      surface.
    mesh_depth:       (H, W) float64, that surface's camera-frame depth (m), 0 on background.
    visible_vertices: (N,) int64, vertices of each person visible in the composite depth.
    """

    person_ids: np.ndarray
    mesh_depth: np.ndarray
    visible_vertices: np.ndarray

    @property
    def tz_map(self) -> np.ndarray:
        """(H, W, 2) float64 [person id, mesh depth], the official array."""
        return np.stack([self.person_ids.astype(np.float64), self.mesh_depth], axis=-1)


def render_resolution(
    height: int, width: int, max_side: int = RENDER_MAX_SIDE
) -> tuple[int, int, float]:
    """(h, w, r): the render size of an (H, W) image (spec A.6.1). r = max_side / max(H, W) when
    the image is larger, else 1; (h, w) = (int(H r), int(W r)) as the official code computes it.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got (H, W) = ({height}, {width})")
    if max(height, width) <= max_side:
        return height, width, 1.0
    r = max_side / max(height, width)
    return int(height * r), int(width * r), r


def _nearest(n_out: int, n_in: int, step: float) -> np.ndarray:
    """Index (n_out,) of the input sample nearest to output pixel j, which lies at j * step."""
    return np.clip(np.floor(np.arange(n_out) * step + 0.5).astype(np.intp), 0, n_in - 1)


def render_tz_map(
    vertices: np.ndarray,
    faces: np.ndarray,
    K: np.ndarray,
    image_size: tuple[int, int],
    masks: np.ndarray | None = None,
    *,
    max_side: int = RENDER_MAX_SIDE,
    tolerance: float = VISIBILITY_TOLERANCE,
) -> TzMap:
    """Spec A.6 for one image: vertices (N, V, 3) m camera frame, faces (F, 3), K (3, 3) of the
    full image of `image_size` (H, W) px, masks (N, H, W) bool detection masks (None: no mask).

    Renders at `render_resolution` with K's first two rows scaled by r, so that render pixel j sits
    at full-resolution coordinate j / r; masks are sampled there (nearest) and the id and depth maps
    are sampled back to (H, W) the same way. Ties in depth go to the lower person index.
    """
    vertices, faces = check_meshes(vertices, faces)
    height, width = (int(s) for s in image_size)
    h, w, r = render_resolution(height, width, max_side)
    n = len(vertices)
    K = np.asarray(K, dtype=np.float64)
    K_render = K.copy()
    K_render[:2] *= r
    rows_in, cols_in = _nearest(h, height, 1.0 / r), _nearest(w, width, 1.0 / r)

    if masks is not None:
        masks = np.asarray(masks)
        if masks.shape != (n, height, width) or masks.dtype != np.bool_:
            raise ValueError(
                f"masks must be a bool array of shape {(n, height, width)}, "
                f"got {masks.dtype} {masks.shape}"
            )
        masks = masks[:, rows_in][:, :, cols_in]
    composite = render_composite(vertices, faces, K_render, (h, w), masks)
    covered = composite.person >= 0
    ids = np.where(covered, composite.person + 1, 0).astype(np.int32)
    depth = np.where(covered, composite.depth, 0.0)

    # Visibility: nearest composite depth at each vertex's projection (0 outside the image).
    with np.errstate(divide="ignore", invalid="ignore"):  # vertices at or behind z = 0
        uv = project(vertices, K) * r
    col, row = np.floor(uv[..., 0] + 0.5), np.floor(uv[..., 1] + 0.5)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h) & (vertices[..., 2] > 0)
    sampled = np.zeros(vertices.shape[:2])
    sampled[inside] = depth[row[inside].astype(np.intp), col[inside].astype(np.intp)]
    visible = (sampled > 0) & (vertices[..., 2] <= sampled + tolerance)

    rows_out, cols_out = _nearest(height, h, r), _nearest(width, w, r)
    return TzMap(
        person_ids=ids[rows_out][:, cols_out],
        mesh_depth=depth[rows_out][:, cols_out],
        visible_vertices=visible.sum(axis=1).astype(np.int64),
    )
