"""Per-person z-buffers by ray casting with Intel Embree (through trimesh), exact at pixel centres.

Embree picks the face that a pixel-centre ray hits first (float32, watertight, no back-face
culling); the depth is then computed in float64 from that face's plane, so a planar surface gets
its exact camera-frame depth whatever Embree's rounding.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import trimesh
from trimesh.ray.ray_pyembree import RayMeshIntersector

from dto_core.camera import project

__all__ = ["Composite", "ZBuffer", "cast_rays", "pixel_rays", "render_composite", "render_zbuffers"]


@dataclass(frozen=True, eq=False)
class ZBuffer:
    """Per-person buffers at one image size (h, w).

    depth: (N, h, w) float64, camera-frame z of mesh i's nearest surface at each pixel centre,
           +inf where mesh i does not cover the pixel.
    face:  (N, h, w) int32, index of the face hit there, -1 where none.
    """

    depth: np.ndarray
    face: np.ndarray


def check_meshes(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """vertices (N, V, 3) float64 and faces (F, 3) int64, or a ValueError naming the problem."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces)
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must have shape (N, V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[-1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"faces must be an integer (F, 3) array, got {faces.dtype} {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= vertices.shape[1]):
        raise ValueError(f"faces index vertices outside [0, {vertices.shape[1]})")
    if not np.isfinite(vertices).all():
        person = int(np.flatnonzero(~np.isfinite(vertices).all(axis=(1, 2)))[0])
        raise ValueError(f"vertices of person {person} are not all finite")
    return vertices, faces.astype(np.int64)


def _check_intrinsics(K: np.ndarray) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all():
        raise ValueError(f"K must be a finite (3, 3) matrix, got shape {K.shape}")
    if K[0, 0] <= 0 or K[1, 1] <= 0 or np.any(K[2] != (0.0, 0.0, 1.0)):
        raise ValueError(f"K must have fx, fy > 0 and last row (0, 0, 1), got {K.tolist()}")
    return K


def pixel_rays(K: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Directions (..., 3) with z = 1 through the pixel centres (u, v) = (cols, rows)."""
    pixels = np.stack([cols, rows, np.ones_like(cols)], axis=-1).astype(np.float64)
    return pixels @ np.linalg.inv(K).T


def cast_rays(
    mesh: trimesh.Trimesh, origins: np.ndarray, directions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """First hits of rays on a mesh: (t, face), t (R,) float64 such that the hit point is
    origins + t * directions (exact on the hit face's plane), face (R,) int32, -1 and +inf on miss.
    """
    face = RayMeshIntersector(mesh).intersects_first(origins, directions).astype(np.int32)
    t = np.full(len(face), np.inf)
    hit = face >= 0
    tri = mesh.triangles[face[hit]]  # (n, 3, 3) float64
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    offset = np.einsum("nk,nk->n", normal, tri[:, 0] - origins[hit])
    t[hit] = offset / np.einsum("nk,nk->n", normal, directions[hit])
    return t, face


@dataclass(frozen=True)
class PinholeCamera:
    """Rays of an OpenCV pinhole camera at the origin: pixel (row v, col u) looks through (u, v)."""

    K: np.ndarray

    def window(self, points: np.ndarray, size: tuple[int, int]) -> tuple[slice, slice]:
        """Rows and columns of the pixel centres that can see a mesh with vertices (V, 3)."""
        height, width = size
        if np.any(points[:, 2] <= 0):  # part of the mesh behind the camera: no finite bound
            return slice(0, height), slice(0, width)
        return _box(project(points, self.K), size)

    def rays(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(origins, directions) (n, 3); directions have z = 1: the ray parameter is the depth."""
        directions = pixel_rays(self.K, rows, cols)
        return np.zeros_like(directions), directions


@dataclass(frozen=True)
class OrthoCamera:
    """Parallel rays along `direction` from the plane corner + col * axis_u + row * axis_v (m);
    axis_u, axis_v are orthogonal to each other and to the unit `direction`. The ray parameter is
    the distance from that plane (which must lie in front of the scene)."""

    corner: np.ndarray
    axis_u: np.ndarray
    axis_v: np.ndarray
    direction: np.ndarray

    def pixels(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) (col, row) of points (..., 3) m."""
        rel = np.asarray(points, dtype=np.float64) - self.corner
        return np.stack(
            [
                rel @ self.axis_u / (self.axis_u @ self.axis_u),
                rel @ self.axis_v / (self.axis_v @ self.axis_v),
            ],
            axis=-1,
        )

    def window(self, points: np.ndarray, size: tuple[int, int]) -> tuple[slice, slice]:
        return _box(self.pixels(points), size)

    def rays(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        origins = self.corner + cols[:, None] * self.axis_u + rows[:, None] * self.axis_v
        return origins, np.broadcast_to(self.direction, origins.shape)


def _box(uv: np.ndarray, size: tuple[int, int]) -> tuple[slice, slice]:
    """Rows and columns of the pixel centres inside the bounding box of points uv (n, 2)."""
    height, width = size
    lo = np.maximum(np.ceil(uv.min(axis=0)), 0).astype(int)
    hi = np.minimum(np.floor(uv.max(axis=0)), (width - 1, height - 1)).astype(int)
    return slice(lo[1], max(hi[1] + 1, lo[1])), slice(lo[0], max(hi[0] + 1, lo[0]))


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    height, width = (int(s) for s in size)
    if height <= 0 or width <= 0:
        raise ValueError(f"size must be positive (h, w), got {size}")
    return height, width


def _person_buffers(
    vertices: np.ndarray,
    faces: np.ndarray,
    camera: PinholeCamera | OrthoCamera,
    size: tuple[int, int],
) -> Iterator[tuple[int, tuple[slice, slice], np.ndarray, np.ndarray]]:
    """(i, window, t, face) per person: the window (rows, cols) of pixels that can see mesh i and
    its ray parameter / face buffers over that window (+inf / -1 where missed)."""
    for i, points in enumerate(vertices):
        rows, cols = camera.window(points, size)
        if rows.start == rows.stop or cols.start == cols.stop:
            continue
        grid_v, grid_u = np.mgrid[rows, cols]
        origins, directions = camera.rays(grid_v.ravel(), grid_u.ravel())
        mesh = trimesh.Trimesh(points, faces, process=False, validate=False)
        t, hit = cast_rays(mesh, origins, directions)
        yield i, (rows, cols), t.reshape(grid_v.shape), hit.reshape(grid_v.shape)


def render_zbuffers(
    vertices: np.ndarray, faces: np.ndarray, K: np.ndarray, size: tuple[int, int]
) -> ZBuffer:
    """One z-buffer per person: vertices (N, V, 3) m in the camera frame, faces (F, 3), K (3, 3)
    the intrinsics of an image of `size` = (h, w) pixels. Pixel (row v, column u) samples the ray
    through (u, v) = (col, row), OpenCV's convention (u = fx X / Z + cx). See `ZBuffer`.
    """
    vertices, faces = check_meshes(vertices, faces)
    K, size = _check_intrinsics(K), _check_size(size)
    depth = np.full((len(vertices), *size), np.inf)
    face = np.full((len(vertices), *size), -1, dtype=np.int32)
    for i, window, t, hit in _person_buffers(vertices, faces, PinholeCamera(K), size):
        depth[(i, *window)] = t
        face[(i, *window)] = hit
    return ZBuffer(depth=depth, face=face)


@dataclass(frozen=True, eq=False)
class Composite:
    """The nearest surface of all persons at each pixel of an (h, w) image.

    depth:  (h, w) float64 camera-frame z, +inf where no person is seen.
    person: (h, w) int32 index of the nearest person (the lowest index on ties), -1 where none.
    face:   (h, w) int32 index of that person's face, -1 where none.
    """

    depth: np.ndarray
    person: np.ndarray
    face: np.ndarray


def render_composite(
    vertices: np.ndarray,
    faces: np.ndarray,
    K: np.ndarray,
    size: tuple[int, int],
    masks: np.ndarray | None = None,
) -> Composite:
    """Depth-sorted composite of N meshes (the arguments of `render_zbuffers`), keeping person i
    only where masks[i] (N, h, w) bool is True, if masks are given. Memory O(h w), not O(N h w).
    """
    vertices, faces = check_meshes(vertices, faces)
    K, size = _check_intrinsics(K), _check_size(size)
    masks = None if masks is None else np.asarray(masks)
    if masks is not None and (masks.shape != (len(vertices), *size) or masks.dtype != np.bool_):
        raise ValueError(
            f"masks must be a bool array of shape {(len(vertices), *size)}, "
            f"got {masks.dtype} {masks.shape}"
        )
    return composite(vertices, faces, PinholeCamera(K), size, masks)


def composite(
    vertices: np.ndarray,
    faces: np.ndarray,
    camera: PinholeCamera | OrthoCamera,
    size: tuple[int, int],
    masks: np.ndarray | None = None,
) -> Composite:
    """`render_composite` for any camera; depth is that camera's ray parameter."""
    depth = np.full(size, np.inf)
    person = np.full(size, -1, dtype=np.int32)
    face = np.full(size, -1, dtype=np.int32)
    for i, window, t, hit in _person_buffers(vertices, faces, camera, size):
        if masks is not None:
            t = np.where(masks[(i, *window)], t, np.inf)
        nearer = t < depth[window]  # strict: the lower index keeps a tie
        depth[window] = np.where(nearer, t, depth[window])
        person[window] = np.where(nearer, i, person[window])
        face[window] = np.where(nearer, hit, face[window])
    return Composite(depth=depth, person=person, face=face)
