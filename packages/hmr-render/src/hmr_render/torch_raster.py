"""Per-person z-buffers on a torch device (a GPU path; `pip install hmr-render[torch]`).

A vectorised z-buffer rasteriser: every pixel centre inside each face's bounding box is tested
with the three edge functions (either winding, so no back-face culling), its depth is the face's
plane depth along the pixel ray in float64 (the formula of the Embree path), and a scatter-min
per pixel keeps the nearest. It gives the Embree path's buffers: the same covered pixels up to
pixel centres lying exactly on a silhouette edge, depths equal to float64 rounding, and face
ids that differ only where two faces are equally near (a shared edge). Persons with a vertex at
or behind the camera plane (z <= 0), which a projective rasteriser cannot bound, are ray-cast
with Embree instead, so the result is still exact. torch is imported when this runs, never at
hmr_render's import.
"""

from __future__ import annotations

import numpy as np

from hmr_render.raster import PinholeCamera, ZBuffer, _person_buffers

__all__ = ["MAX_CANDIDATES", "torch_zbuffers"]

MAX_CANDIDATES = 1 << 24  # pixel-face pairs per batch of persons (~1 GB of float64 temporaries)


def torch_zbuffers(
    vertices: np.ndarray,
    faces: np.ndarray,
    K: np.ndarray,
    size: tuple[int, int],
    device: str | object = "cuda",
) -> ZBuffer:
    """`render_zbuffers` computed on a torch device; checked arguments (N, V, 3) float64,
    (F, 3) int64, K (3, 3) float64, size (h, w) as `render_zbuffers` passes them."""
    import torch

    height, width = size
    n, num_faces = len(vertices), len(faces)
    depth = np.full((n, height, width), np.inf)
    face = np.full((n, height, width), -1, dtype=np.int32)
    behind = np.flatnonzero(np.any(vertices[..., 2] <= 0, axis=1))
    for i, window, t, hit in _person_buffers(vertices[behind], faces, PinholeCamera(K), size):
        depth[(behind[i], *window)] = t
        face[(behind[i], *window)] = hit
    front = np.setdiff1d(np.arange(n), behind)
    if not len(front) or not num_faces:
        return ZBuffer(depth=depth, face=face)

    dev = torch.device(device)
    f64 = torch.float64
    K_t = torch.as_tensor(K, dtype=f64, device=dev)
    K_inv = torch.linalg.inv(K_t)
    faces_t = torch.as_tensor(faces, device=dev)
    points = torch.as_tensor(vertices[front], dtype=f64, device=dev)  # (n, V, 3)
    uvw = points @ K_t.T
    uv = uvw[..., :2] / uvw[..., 2:]
    tri = uv[:, faces_t]  # (n, F, 3, 2)
    bounds = torch.tensor([width - 1, height - 1], dtype=f64, device=dev)
    lo = torch.ceil(tri.amin(dim=2)).clamp(min=0)
    hi = torch.minimum(torch.floor(tri.amax(dim=2)), bounds)
    extent = (hi - lo + 1).clamp(min=0).long()  # (n, F, 2) columns, rows
    count = extent[..., 0] * extent[..., 1]  # (n, F) pixel centres in each face's box
    per_person = count.sum(dim=1).cpu().numpy()

    start = 0
    while start < len(front):
        stop = start + 1  # batch persons while their candidates fit MAX_CANDIDATES
        while stop < len(front) and per_person[start : stop + 1].sum() <= MAX_CANDIDATES:
            stop += 1
        block = slice(start, stop)
        z, best_face = _rasterise(
            points[block], faces_t, K_inv, tri[block], lo[block], extent[block], count[block], size
        )
        depth[front[block]] = z.reshape(-1, height, width).cpu().numpy()
        face[front[block]] = best_face.reshape(-1, height, width).cpu().numpy()
        start = stop
    return ZBuffer(depth=depth, face=face)


def _rasterise(points, faces, K_inv, tri, lo, extent, count, size):
    """Nearest depth (n h w,) (+inf on miss) and face index (n h w,) (-1 on miss) of n persons;
    arguments as built in `torch_zbuffers`."""
    import torch

    n, num_faces = count.shape
    height, width = size
    pixels = height * width
    total = int(count.sum())
    dev = points.device
    flat = torch.repeat_interleave(torch.arange(n * num_faces, device=dev), count.reshape(-1))
    offset = torch.arange(total, device=dev) - torch.repeat_interleave(
        torch.cumsum(count.reshape(-1), 0) - count.reshape(-1), count.reshape(-1)
    )
    cols_in_box = extent.reshape(-1, 2)[flat, 0]
    lo = lo.reshape(-1, 2)[flat]
    px = lo[:, 0] + (offset % cols_in_box)
    py = lo[:, 1] + torch.div(offset, cols_in_box, rounding_mode="floor")
    a, b, c = tri.reshape(-1, 3, 2)[flat].unbind(dim=1)

    def edge(p, q):
        return (q[:, 0] - p[:, 0]) * (py - p[:, 1]) - (q[:, 1] - p[:, 1]) * (px - p[:, 0])

    e = torch.stack([edge(b, c), edge(c, a), edge(a, b)])
    inside = (e >= 0).all(dim=0) | (e <= 0).all(dim=0)
    flat, px, py = flat[inside], px[inside], py[inside]
    person = torch.div(flat, num_faces, rounding_mode="floor")
    face = flat % num_faces
    v = points[person[:, None], faces[face]]  # (m, 3, 3)
    normal = torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    rays = torch.stack([px, py, torch.ones_like(px)], dim=-1) @ K_inv.T
    z = (normal * v[:, 0]).sum(-1) / (normal * rays).sum(-1)
    key = person * pixels + py.long() * width + px.long()
    zmin = torch.full((n * pixels,), torch.inf, dtype=z.dtype, device=dev)
    zmin.scatter_reduce_(0, key, z, reduce="amin")
    nearest = z == zmin[key]
    best = torch.full((n * pixels,), num_faces, dtype=face.dtype, device=dev)
    best.scatter_reduce_(0, key[nearest], face[nearest], reduce="amin")
    return zmin, torch.where(best == num_faces, -1, best)
