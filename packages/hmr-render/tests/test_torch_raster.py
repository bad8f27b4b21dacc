"""The torch z-buffer (GPU path, run here on the CPU) gives the Embree path's buffers."""

import numpy as np
import pytest

from hmr_render import (
    render_composite,
    render_tz_map,
    render_zbuffers,
    standing_people,
    torch_raster,
)
from hmr_render.raster import pixel_rays

pytest.importorskip("torch")

K = np.array([[160.0, 0.0, 79.3], [0.0, 160.0, 59.6], [0.0, 0.0, 1.0]])
SIZE = (120, 160)


@pytest.fixture(scope="module")
def scene(body_model):
    rng = np.random.default_rng(0)
    positions = [[-0.7, 2.5], [0.2, 3.5], [0.9, 5.0], [-1.5, 8.0]]
    pose = rng.normal(0.0, 0.2, (4, 69))
    vertices = standing_people(body_model, positions, 1.3, rng.normal(0, 1, (4, 10)), pose)
    straddling = vertices[1] - [0.0, 0.0, 3.3]  # partly behind the camera plane: Embree's share
    return np.concatenate([vertices, straddling[None]]), body_model.faces


def assert_same_buffers(cpu, gpu, vertices, faces):
    np.testing.assert_array_equal(np.isfinite(gpu.depth), np.isfinite(cpu.depth))
    hit = np.isfinite(cpu.depth)
    np.testing.assert_allclose(gpu.depth[hit], cpu.depth[hit], rtol=1e-12, atol=0)
    np.testing.assert_array_equal(gpu.face[~hit], -1)
    # Face ids may differ only where two faces are equally near: there the other face's plane
    # depth along the pixel ray equals the reported depth.
    n, rows, cols = np.nonzero(hit & (gpu.face != cpu.face))
    assert len(n) <= 0.002 * hit.sum()
    tri = vertices[n[:, None], faces[gpu.face[n, rows, cols]]]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    rays = pixel_rays(K, rows, cols)
    plane = np.einsum("nk,nk->n", normal, tri[:, 0]) / np.einsum("nk,nk->n", normal, rays)
    np.testing.assert_allclose(plane, cpu.depth[n, rows, cols], rtol=1e-9)


def test_torch_zbuffers_equal_the_embree_ones(scene):
    vertices, faces = scene
    cpu = render_zbuffers(vertices, faces, K, SIZE)
    gpu = render_zbuffers(vertices, faces, K, SIZE, device="cpu")
    assert np.isfinite(cpu.depth).sum(axis=(1, 2)).min() > 50  # every person is seen
    assert_same_buffers(cpu, gpu, vertices, faces)


def test_batches_of_persons_give_the_same_buffers(scene, monkeypatch):
    vertices, faces = scene
    whole = render_zbuffers(vertices[:4], faces, K, SIZE, device="cpu")
    monkeypatch.setattr(torch_raster, "MAX_CANDIDATES", 1000)  # one person per batch
    split = render_zbuffers(vertices[:4], faces, K, SIZE, device="cpu")
    np.testing.assert_array_equal(split.depth, whole.depth)
    np.testing.assert_array_equal(split.face, whole.face)


def test_composite_and_tz_map_on_a_torch_device(scene):
    vertices, faces = scene
    masks = np.random.default_rng(1).random((5, *SIZE)) < 0.95
    cpu = render_composite(vertices, faces, K, SIZE, masks)
    gpu = render_composite(vertices, faces, K, SIZE, masks, device="cpu")
    np.testing.assert_array_equal(gpu.person, cpu.person)
    np.testing.assert_allclose(gpu.depth, cpu.depth, rtol=1e-12)
    image = (240, 320)  # rendered at 120 x 160 (max_side 160) with K halved
    K_full = K * [[2.0], [2.0], [1.0]]
    a = render_tz_map(vertices[:4], faces, K_full, image, max_side=160)
    b = render_tz_map(vertices[:4], faces, K_full, image, max_side=160, device="cpu")
    np.testing.assert_array_equal(b.person_ids, a.person_ids)
    np.testing.assert_allclose(b.mesh_depth, a.mesh_depth, rtol=1e-12)
    np.testing.assert_array_equal(b.visible_vertices, a.visible_vertices)
