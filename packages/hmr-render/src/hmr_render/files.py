"""PNG and GLB files, written atomically (a temporary sibling, then os.replace)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from dto_core.atomic import write_atomic
from hmr_render.pictures import check_colors, check_image
from hmr_render.raster import check_meshes

__all__ = ["GLTF_FROM_OPENCV", "mesh_scene", "save_glb", "save_png"]

# glTF viewers use y up and look along -z; this root transform shows camera-space data upright.
GLTF_FROM_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


def save_png(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 RGB image as PNG; returns the path."""
    picture = Image.fromarray(check_image(image))
    return write_atomic(path, lambda f: picture.save(f, format="PNG"))


def mesh_scene(
    vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray | None = None
) -> trimesh.Scene:
    """A trimesh scene of N people: vertices (N, V, 3) m in the camera frame (OpenCV axes),
    faces (F, 3), colors (N, 3) uint8 (default `person_colors`). Node "person_{i}" holds person i's
    mesh with its colour as vertex colours, under a root node "camera" whose transform
    GLTF_FROM_OPENCV turns the scene upright in glTF viewers; the mesh data stay in camera space."""
    vertices, faces = check_meshes(vertices, faces)
    colors = check_colors(colors, len(vertices))
    scene = trimesh.Scene()
    scene.graph.update(
        frame_to="camera", frame_from=scene.graph.base_frame, matrix=GLTF_FROM_OPENCV
    )
    for i, (points, color) in enumerate(zip(vertices, colors, strict=True)):
        rgba = np.broadcast_to(np.r_[color, 255].astype(np.uint8), (len(points), 4))
        mesh = trimesh.Trimesh(points, faces, vertex_colors=rgba, process=False)
        scene.add_geometry(
            mesh, node_name=f"person_{i}", geom_name=f"person_{i}", parent_node_name="camera"
        )
    return scene


def save_glb(
    path: str | os.PathLike[str],
    vertices: np.ndarray,
    faces: np.ndarray,
    colors: np.ndarray | None = None,
) -> Path:
    """Write `mesh_scene(vertices, faces, colors)` as binary glTF (.glb); returns the path."""
    data = mesh_scene(vertices, faces, colors).export(file_type="glb")
    return write_atomic(path, lambda f: f.write(data))
