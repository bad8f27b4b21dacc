"""Per-person z-buffers of 10 SMPL-topology bodies (6890 vertices, 13776 faces) at 512 x 512:
hmr-render's Embree ray caster against the other ways to get them from PyPI, with the largest
difference of each from hmr-render's buffers. Then the pictures at photo size.

Run: uv run python tools/bench/bench_render.py
     (all candidates: uv run --with rtree --with pyrender --with moderngl --with open3d-cpu \\
      python tools/bench/bench_render.py; the OpenGL ones need Mesa's EGL, e.g. Debian's
      libegl-mesa0 and libgl1-mesa-dri, and render in software here)
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from collections.abc import Callable

import numpy as np

from dto_core.body import BodyModel
from dto_core.camera import intrinsics_from_fov, project
from dto_core.synthetic_body import write_synthetic_smpl_dir
from hmr_render import (
    birds_eye_view,
    overlay_meshes,
    render_tz_map,
    render_zbuffers,
    side_view,
    standing_people,
)

PERSONS = 10
SIZE = 512
FOV_DEG = 60.0
REPEATS = 5
SEED = 0

Buffers = tuple[np.ndarray, np.ndarray | None]  # depth (N, h, w) +inf on miss, face or None


def scene(model: BodyModel) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (10, 6890, 3), K): people 3-12 m away on a ground 1.6 m below the camera."""
    rng = np.random.default_rng(SEED)
    z = rng.uniform(3.0, 12.0, PERSONS)
    x = rng.uniform(-0.35, 0.35, PERSONS) * z
    pose = rng.normal(0.0, 0.15, (PERSONS, 69))
    betas = rng.normal(0.0, 1.0, (PERSONS, 10))
    vertices = standing_people(model, np.stack([x, z], -1), 1.6, betas, pose)
    return vertices, intrinsics_from_fov(np.radians(FOV_DEG), SIZE, SIZE)


# ------------------------------------------------------------------------------------------------
# Candidates: each returns per-person depth buffers (and face ids where it has them).
# ------------------------------------------------------------------------------------------------


def embree(vertices, faces, K) -> Buffers:
    zb = render_zbuffers(vertices, faces, K, (SIZE, SIZE))
    return zb.depth, zb.face


def torch_cpu(vertices, faces, K) -> Buffers:
    zb = render_zbuffers(vertices, faces, K, (SIZE, SIZE), device="cpu")
    return zb.depth, zb.face


def torch_cuda(vertices, faces, K) -> Buffers:
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA device")
    zb = render_zbuffers(vertices, faces, K, (SIZE, SIZE), device="cuda")
    torch.cuda.synchronize()
    return zb.depth, zb.face


def numpy_rasterizer(vertices, faces, K) -> Buffers:
    """Vectorised z-buffer: every pixel centre inside each face's box, an edge-function test,
    the depth from the face's plane, and the minimum per pixel through a lexsort."""
    k_inv = np.linalg.inv(K)
    depth = np.full((len(vertices), SIZE, SIZE), np.inf)
    face = np.full(depth.shape, -1, dtype=np.int32)
    for i, points in enumerate(vertices):
        tri = project(points, K)[faces]  # (F, 3, 2)
        lo = np.maximum(np.ceil(tri.min(axis=1)), 0).astype(np.int64)
        hi = np.minimum(np.floor(tri.max(axis=1)), SIZE - 1).astype(np.int64)
        n = np.maximum(hi - lo + 1, 0)
        count = n[:, 0] * n[:, 1]
        fid = np.repeat(np.arange(len(faces)), count)
        k = np.arange(len(fid)) - np.repeat(np.cumsum(count) - count, count)
        px, py = lo[fid, 0] + k % n[fid, 0], lo[fid, 1] + k // n[fid, 0]
        a, b, c = tri[fid, 0], tri[fid, 1], tri[fid, 2]

        def edge(p, q, px=px, py=py):
            return (q[:, 0] - p[:, 0]) * (py - p[:, 1]) - (q[:, 1] - p[:, 1]) * (px - p[:, 0])

        e = np.stack([edge(b, c), edge(c, a), edge(a, b)])
        inside = np.all(e >= 0, axis=0) | np.all(e <= 0, axis=0)
        fid, px, py = fid[inside], px[inside], py[inside]
        v = points[faces[fid]]
        normal = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
        rays = np.stack([px, py, np.ones_like(px)], -1) @ k_inv.T
        z = np.einsum("nk,nk->n", normal, v[:, 0]) / np.einsum("nk,nk->n", normal, rays)
        pix = py * SIZE + px
        order = np.lexsort((z, pix))
        pix, z, fid = pix[order], z[order], fid[order]
        first = np.r_[True, pix[1:] != pix[:-1]]
        depth[i].reshape(-1)[pix[first]] = z[first]
        face[i].reshape(-1)[pix[first]] = fid[first]
    return depth, face


def trimesh_rtree(vertices, faces, K) -> Buffers:
    """trimesh's pure-Python ray-triangle intersector (rtree candidates), ray per pixel centre."""
    import trimesh
    from trimesh.ray.ray_triangle import RayMeshIntersector

    v, u = np.mgrid[0:SIZE, 0:SIZE]
    rays = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], -1) @ np.linalg.inv(K).T
    depth = np.full((len(vertices), SIZE, SIZE), np.inf)
    face = np.full(depth.shape, -1, dtype=np.int32)
    for i, points in enumerate(vertices):
        uv = project(points, K)
        lo, hi = np.floor(uv.min(axis=0)), np.ceil(uv.max(axis=0))
        inside = (u.ravel() >= lo[0]) & (u.ravel() <= hi[0]) & (v.ravel() >= lo[1])
        inside &= v.ravel() <= hi[1]
        mesh = trimesh.Trimesh(points, faces, process=False)
        loc, ray, tri = RayMeshIntersector(mesh).intersects_location(
            np.zeros((inside.sum(), 3)), rays[inside], multiple_hits=True
        )
        pix = np.flatnonzero(inside)[ray]
        order = np.lexsort((loc[:, 2], pix))
        pix, z, tri = pix[order], loc[order, 2], tri[order]
        first = np.r_[True, pix[1:] != pix[:-1]]
        depth[i].reshape(-1)[pix[first]] = z[first]
        face[i].reshape(-1)[pix[first]] = tri[first]
    return depth, face


def open3d_raycasting(vertices, faces, K) -> Buffers:
    """Open3D's RaycastingScene (Embree inside), one scene per person, ray per pixel centre."""
    import open3d as o3d

    v, u = np.mgrid[0:SIZE, 0:SIZE]
    rays = (np.stack([u.ravel(), v.ravel(), np.ones(u.size)], -1) @ np.linalg.inv(K).T).astype(
        np.float32
    )
    query = o3d.core.Tensor(np.concatenate([np.zeros_like(rays), rays], axis=1))
    depth = np.full((len(vertices), SIZE, SIZE), np.inf)
    face = np.full(depth.shape, -1, dtype=np.int32)
    for i, points in enumerate(vertices):
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(points.astype(np.float32), faces.astype(np.uint32))
        hit = scene.cast_rays(query)
        t = hit["t_hit"].numpy().reshape(SIZE, SIZE)  # rays have z = 1: t is the depth
        depth[i] = np.where(np.isfinite(t), t, np.inf)
        prim = hit["primitive_ids"].numpy().astype(np.int64).reshape(SIZE, SIZE)
        face[i] = np.where(np.isfinite(t), prim, -1)
    return depth, face


def _gl_projection(K: np.ndarray, near: float = 0.05, far: float = 100.0) -> np.ndarray:
    """Clip matrix for OpenCV camera-frame points: pixel centre (u, v) = (col, row) at window
    (col + 1/2, row + 1/2), rows counted from the framebuffer's first row."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    return np.array(
        [
            [2 * fx / SIZE, 0.0, 2 * (cx + 0.5) / SIZE - 1, 0.0],
            [0.0, 2 * fy / SIZE, 2 * (cy + 0.5) / SIZE - 1, 0.0],
            [0.0, 0.0, (far + near) / (far - near), -2 * far * near / (far - near)],
            [0.0, 0.0, 1.0, 0.0],
        ]
    )


def moderngl_egl(vertices, faces, K) -> Buffers:
    """OpenGL through moderngl on a headless EGL context: camera z and gl_PrimitiveID written to
    float / integer targets with a depth test, one draw and readback per person."""
    import moderngl

    ctx = moderngl.create_context(standalone=True, backend="egl")
    prog = ctx.program(
        vertex_shader="""#version 330
            uniform mat4 proj; in vec3 pos; out float z;
            void main() { z = pos.z; gl_Position = proj * vec4(pos, 1.0); }""",
        fragment_shader="""#version 330
            in float z; layout(location = 0) out float depth; layout(location = 1) out int face;
            void main() { depth = z; face = gl_PrimitiveID; }""",
    )
    prog["proj"].write(_gl_projection(K).T.astype("f4").tobytes())
    targets = [ctx.texture((SIZE, SIZE), 1, dtype="f4"), ctx.texture((SIZE, SIZE), 1, dtype="i4")]
    fbo = ctx.framebuffer(targets, ctx.depth_renderbuffer((SIZE, SIZE)))
    fbo.use()
    ctx.enable(moderngl.DEPTH_TEST)
    index = ctx.buffer(faces.astype("i4").tobytes())
    depth = np.full((len(vertices), SIZE, SIZE), np.inf)
    face = np.full(depth.shape, -1, dtype=np.int32)
    for i, points in enumerate(vertices):
        vbo = ctx.buffer(points.astype("f4").tobytes())
        vao = ctx.vertex_array(prog, [(vbo, "3f", "pos")], index_buffer=index)
        fbo.clear(depth=1.0)
        targets[0].write(np.full((SIZE, SIZE), np.inf, "f4").tobytes())
        targets[1].write(np.full((SIZE, SIZE), -1, "i4").tobytes())
        vao.render(moderngl.TRIANGLES)
        depth[i] = np.frombuffer(fbo.read(attachment=0, components=1, dtype="f4"), "f4").reshape(
            SIZE, SIZE
        )
        face[i] = np.frombuffer(fbo.read(attachment=1, components=1, dtype="i4"), "i4").reshape(
            SIZE, SIZE
        )
        vao.release()
        vbo.release()
    ctx.release()
    return depth, face


def pyrender_egl(vertices, faces, K) -> Buffers:
    """pyrender's OffscreenRenderer on EGL, depth only (no face ids), one render per person."""
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    import pyrender
    import trimesh

    renderer = pyrender.OffscreenRenderer(SIZE, SIZE)
    # pyrender's camera is OpenGL's (y up, -z forward) and samples pixel centres at +1/2
    camera = pyrender.IntrinsicsCamera(K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5, 0.05, 100.0)
    flip = np.diag([1.0, -1.0, -1.0])
    depth = np.full((len(vertices), SIZE, SIZE), np.inf)
    for i, points in enumerate(vertices):
        scene = pyrender.Scene()
        scene.add(pyrender.Mesh.from_trimesh(trimesh.Trimesh(points @ flip, faces, process=False)))
        scene.add(camera)
        d = renderer.render(scene, flags=pyrender.RenderFlags.DEPTH_ONLY)
        depth[i] = np.where(d > 0, d, np.inf)
    renderer.delete()
    return depth, None


CANDIDATES: dict[str, tuple[Callable[..., Buffers], tuple[str, ...], str]] = {
    "hmr-render (trimesh + embreex)": (embree, (), "trimesh, embreex"),
    "hmr-render torch path, CPU": (torch_cpu, ("torch",), "torch"),
    "hmr-render torch path, CUDA": (torch_cuda, ("torch",), "torch"),
    "NumPy z-buffer rasteriser": (numpy_rasterizer, (), "(numpy)"),
    "Open3D RaycastingScene": (open3d_raycasting, ("open3d",), "open3d-cpu"),
    "moderngl, EGL (Mesa llvmpipe)": (moderngl_egl, ("moderngl",), "moderngl + system EGL"),
    "pyrender, EGL (Mesa llvmpipe)": (pyrender_egl, ("pyrender",), "pyrender, PyOpenGL 3.1.0"),
    "trimesh without Embree (rtree)": (trimesh_rtree, ("rtree",), "trimesh, rtree"),
}


def timed(fn: Callable[[], Buffers], repeats: int) -> tuple[float, Buffers]:
    """Fastest of `repeats` runs after a warm-up, in ms: on a shared machine the least disturbed."""
    out = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times), out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic_smpl_dir(tmp)
        model = BodyModel.from_dir(tmp)
    vertices, K = scene(model)
    faces = model.faces
    print(f"{PERSONS} bodies x {faces.shape[0]} faces at {SIZE} x {SIZE}, fastest of {REPEATS}")
    print(f"{'candidate':<32} {'ms':>8} {'x':>6} {'pixels differing':>16} {'max |dz| m':>11}")
    baseline, reference = None, None
    for name, (fn, needs, _) in CANDIDATES.items():
        missing = [m for m in needs if importlib.util.find_spec(m) is None]
        if missing:
            print(f"{name:<32} {'not installed: ' + ', '.join(missing):>43}")
            continue
        repeats = 1 if fn is trimesh_rtree else REPEATS
        try:
            ms, (depth, _) = timed(lambda fn=fn: fn(vertices, faces, K), repeats)
        except Exception as exc:  # a candidate that cannot run here is reported, not fatal
            print(f"{name:<32} failed: {type(exc).__name__}: {str(exc)[:60]}")
            continue
        if reference is None:
            baseline, reference = ms, depth
        hits, ref_hits = np.isfinite(depth), np.isfinite(reference)
        both = hits & ref_hits
        diff = np.abs(depth[both] - reference[both]).max()
        print(f"{name:<32} {ms:8.1f} {ms / baseline:6.2f} {int((hits != ref_hits).sum()):16d} "
              f"{diff:11.2e}")  # fmt: skip

    # The A.6 step and the pictures, as the pipeline and apps/infer call them.
    height, width = 1080, 1920
    K_photo = intrinsics_from_fov(np.radians(FOV_DEG), height, width)
    photo = np.full((height, width, 3), 128, dtype=np.uint8)
    heights = np.full(PERSONS, 1.7)
    steps = {
        "render_tz_map, 1080 x 1920 (renders 288 x 512)": lambda: render_tz_map(
            vertices, faces, K_photo, (height, width)
        ),
        "overlay_meshes, 1080 x 1920, labels": lambda: overlay_meshes(
            photo, vertices, faces, K_photo, heights=heights
        ),
        "birds_eye_view, 768 x 768, labels": lambda: birds_eye_view(
            vertices, faces, K_photo, (height, width), heights=heights
        ),
        "side_view, 432 x 768, labels": lambda: side_view(
            vertices, faces, K_photo, (height, width), heights=heights
        ),
    }
    print(f"\n{'step (10 bodies)':<48} {'ms':>8}")
    for name, fn in steps.items():
        ms, _ = timed(fn, REPEATS)
        print(f"{name:<48} {ms:8.1f}")


if __name__ == "__main__":
    main()
