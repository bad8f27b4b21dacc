"""Ground-truth scale maps (spec 10.3): per 28 px cell, person presence and person size."""

from __future__ import annotations

import numpy as np

__all__ = ["grid_size", "paint_scale_map"]

CELL = 28


def grid_size(height: int, width: int, cell: int = CELL) -> tuple[int, int]:
    """Cells of an image's own grid: ceil(side / cell) rounded up to even (the model's grid)."""
    return (-(-height // (2 * cell)) * 2, -(-width // (2 * cell)) * 2)


def paint_scale_map(
    points: list[np.ndarray],
    scales: np.ndarray,
    order: np.ndarray,
    image_size: tuple[int, int],
    clamp: bool = False,
    cell: int = CELL,
) -> np.ndarray:
    """(H1, W1, 2) float32 map of (presence, scale) of one image.

    Args:
        points: per person (M, 2) projected mesh points (px), NaN for points behind the camera.
        scales: (N,) person scale = |(box w, box h)| of the normalised box, clamped to [0, 1].
        order: painting order (far to near: nearer people overwrite).
        image_size: (h, w) px of the image.
        clamp: official behaviour (#14): points outside the image are clamped into the border
            cells; otherwise they paint nothing.
    """
    h, w = image_size
    out = np.zeros((*grid_size(h, w, cell), 2), np.float32)
    rows_max, cols_max = -(-h // cell) - 1, -(-w // cell) - 1
    for i in order:
        uv = points[i]
        uv = uv[np.isfinite(uv).all(1)]
        if clamp:
            cols = np.clip(np.floor(uv[:, 0] / cell), 0, cols_max).astype(int)
            rows = np.clip(np.floor(uv[:, 1] / cell), 0, rows_max).astype(int)
        else:
            inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
            cols = np.floor(uv[inside, 0] / cell).astype(int)
            rows = np.floor(uv[inside, 1] / cell).astype(int)
        out[rows, cols] = (1.0, scales[i])
    return out
