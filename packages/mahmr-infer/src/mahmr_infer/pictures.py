"""Pictures and 3D scenes of one image's people, drawn by hmr-render: the meshes over the photo,
a side view and a bird's-eye view (metric grid, camera frustum, each person's height and
distance), and the scene as GLB."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hmr_render import birds_eye_view, overlay_meshes, person_colors, save_glb, side_view
from mahmr_model import ImagePrediction

from .inputs import VIEWS
from .records import PeopleSummary

__all__ = ["render_views", "write_glb"]


def render_views(
    pixels: np.ndarray,
    prediction: ImagePrediction,
    faces: np.ndarray,
    summary: PeopleSummary,
    views: Sequence[str] = VIEWS,
) -> dict[str, np.ndarray]:
    """The asked views as (h, w, 3) uint8 RGB images; one colour per person in all of them.

    pixels: the (H, W, 3) photo; prediction: with vertices (`return_vertices=True`)."""
    vertices = prediction.persons.vertices
    if vertices is None:
        raise ValueError("the prediction has no vertices: predict with return_vertices=True")
    k, size = prediction.intrinsics.astype(np.float64), tuple(prediction.image_size)
    common = {
        "colors": person_colors(len(vertices)),
        "heights": summary.heights,
        "distances": summary.distances,
    }
    draw = {
        "overlay": lambda: overlay_meshes(pixels, vertices, faces, k, **common),
        "side": lambda: side_view(vertices, faces, k, size, **common),
        "bev": lambda: birds_eye_view(vertices, faces, k, size, **common),
    }
    return {view: draw[view]() for view in views}


def write_glb(path: str | os.PathLike[str], prediction: ImagePrediction, faces: np.ndarray) -> Path:
    """The people as a binary glTF scene in camera space, one node per person, the pictures'
    colours (atomically)."""
    vertices = prediction.persons.vertices
    if vertices is None:
        raise ValueError("the prediction has no vertices: predict with return_vertices=True")
    return save_glb(path, vertices, faces, person_colors(len(vertices)))
