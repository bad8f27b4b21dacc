"""Pictures: overlay alignment and untouched background, bird's-eye and side view scale, files."""

import os
import stat

import numpy as np
import pytest
import trimesh
from PIL import Image
from scipy.ndimage import distance_transform_edt

from dto_core.camera import project
from hmr_render import (
    PALETTE,
    birds_eye_view,
    colorize_depth,
    mesh_scene,
    overlay_meshes,
    person_colors,
    render_composite,
    save_glb,
    save_png,
    side_view,
    standing_people,
    tile_images,
)
from hmr_render.files import GLTF_FROM_OPENCV

K = np.array([[420.0, 0.0, 200.0], [0.0, 420.0, 150.0], [0.0, 0.0, 1.0]])
SIZE = (300, 400)


def cylinder(x, z, radius=0.3, y_top=-0.3, y_bottom=1.5):
    """An upright cylinder (axis along y) centred at (x, z): vertices (V, 3), faces (F, 3)."""
    mesh = trimesh.creation.cylinder(radius=radius, height=y_bottom - y_top, sections=64)
    vertices = np.asarray(mesh.vertices)[:, [0, 2, 1]]  # trimesh's axis is z; make it y
    vertices += [x, (y_top + y_bottom) / 2, z]
    return vertices, np.asarray(mesh.faces)


@pytest.fixture(scope="module")
def crowd(body_model):
    vertices = standing_people(body_model, [[-0.6, 4.0], [0.3, 5.5], [1.0, 7.0]], camera_height=1.0)
    return vertices, body_model.faces


def noise_photo(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (*SIZE, 3), dtype=np.uint8)


def test_overlay_changes_exactly_the_mesh_pixels(crowd):
    vertices, faces = crowd
    photo = np.zeros((*SIZE, 3), dtype=np.uint8)  # every palette colour differs from black
    out = overlay_meshes(photo, vertices, faces, K)
    covered = render_composite(vertices, faces, K, SIZE).person >= 0
    changed = np.any(out != photo, axis=-1)
    np.testing.assert_array_equal(changed, covered)
    noisy = noise_photo()
    out = overlay_meshes(noisy, vertices, faces, K)
    np.testing.assert_array_equal(out[~covered], noisy[~covered])  # background untouched
    assert out.dtype == np.uint8 and out.shape == (*SIZE, 3)


def test_overlay_pixels_land_on_the_projected_vertices(crowd):
    vertices, faces = crowd
    photo = np.zeros((*SIZE, 3), dtype=np.uint8)
    colors = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
    out = overlay_meshes(photo, vertices, faces, K, colors=colors, alpha=1.0)
    rows, cols = np.nonzero(out[..., 0] > 0)  # person 0 (red), the nearest, is fully visible
    uv = project(vertices[0], K)
    lo, hi = np.array([cols.min(), rows.min()]), np.array([cols.max(), rows.max()])
    assert np.all(lo >= np.ceil(uv.min(axis=0))) and np.all(hi <= np.floor(uv.max(axis=0)))
    np.testing.assert_allclose(lo, uv.min(axis=0), atol=2.0)
    np.testing.assert_allclose(hi, uv.max(axis=0), atol=2.0)
    # every vertex of everyone rounds to a pixel at most one diagonal step from a mesh pixel (its
    # own or a nearer person's); a shift of the overlay by 2 px would break this
    distance = distance_transform_edt(~np.any(out > 0, axis=-1))
    col, row = np.round(project(vertices, K).reshape(-1, 2)).astype(int).T
    assert distance[row, col].max() <= np.sqrt(2)


def test_overlay_of_a_disc_is_centred_on_its_projected_centre():
    angle = 2 * np.pi * np.arange(96) / 96
    center = np.array([0.21, -0.17, 2.5])
    rim = center + 0.3 * np.stack([np.cos(angle), np.sin(angle), np.zeros(96)], -1)
    vertices = np.concatenate([center[None], rim])[None]
    i = np.arange(1, 97)
    faces = np.stack([np.zeros(96, int), i, i % 96 + 1], -1)
    out = overlay_meshes(np.zeros((*SIZE, 3), np.uint8), vertices, faces, K)
    rows, cols = np.nonzero(np.any(out > 0, axis=-1))
    np.testing.assert_allclose([cols.mean(), rows.mean()], project(center, K), atol=0.05)


def test_overlay_draws_the_nearer_person_on_top(crowd):
    vertices, faces = crowd
    shifted = vertices.copy()
    shifted[1] = vertices[0] + [0.15, 0.0, 1.0]  # behind person 0, overlapping it in the image
    colors = np.array([[255, 0, 0], [0, 0, 255], [0, 255, 0]], dtype=np.uint8)
    out = overlay_meshes(np.zeros((*SIZE, 3), np.uint8), shifted, faces, K, colors=colors, alpha=1)
    solo = [render_composite(shifted[i : i + 1], faces, K, SIZE).person == 0 for i in range(2)]
    both = solo[0] & solo[1]
    assert both.sum() > 500
    assert np.all(out[both][:, 0] > 0) and np.all(out[both][:, 2] == 0)


def test_overlay_labels_sit_above_the_heads(crowd):
    vertices, faces = crowd
    photo = noise_photo(1)
    out = overlay_meshes(photo, vertices, faces, K, heights=[1.7, 1.6, 1.8], distances=[3, 4, 6])
    covered = render_composite(vertices, faces, K, SIZE).person >= 0
    changed = np.any(out != photo, axis=-1) & ~covered
    assert changed.sum() > 300
    head_rows = project(vertices, K)[..., 1].min(axis=1)
    assert np.nonzero(changed)[0].max() < head_rows.max()  # labels lie above the heads
    with pytest.raises(ValueError, match=r"heights must be 3 finite values"):
        overlay_meshes(photo, vertices, faces, K, heights=[1.7, np.nan, 1.8])


def test_overlay_rejects_bad_input(crowd):
    vertices, faces = crowd
    with pytest.raises(ValueError, match=r"image must be \(H, W, 3\) uint8 RGB"):
        overlay_meshes(np.zeros((*SIZE, 3)), vertices, faces, K)
    with pytest.raises(ValueError, match=r"colors must have shape \(3, 3\)"):
        overlay_meshes(noise_photo(), vertices, faces, K, colors=PALETTE[:2])
    with pytest.raises(ValueError, match="alpha must lie in"):
        overlay_meshes(noise_photo(), vertices, faces, K, alpha=1.5)


def test_birds_eye_view_places_a_person_at_its_grid_position(body_model):
    # extent 10 m x 10 m on 500 px: 0.02 m per pixel;
    # (x, z) -> (col, row) = (249.5 + x / 0.02, 249.5 - (z - 5) / 0.02)
    extent, size = (-5.0, 5.0, 0.0, 10.0), (500, 500)
    vertices, faces = cylinder(1.5, 4.0)
    empty = birds_eye_view(np.zeros((0, *vertices.shape)), faces, K, SIZE, extent=extent, size=size)
    view = birds_eye_view(vertices[None], faces, K, SIZE, extent=extent, size=size)
    rows, cols = np.nonzero(np.any(view != empty, axis=-1))
    np.testing.assert_allclose([cols.mean(), rows.mean()], [324.5, 299.5], atol=0.05)
    np.testing.assert_allclose(len(rows) * 0.02**2, np.pi * 0.3**2, rtol=0.02)  # the disc's area
    # the grid line z = 4 m is drawn through the same row (PIL draws the line at row 299 or 300)
    assert np.all(empty[299:301, 5:15] != 250, axis=-1).any()

    person = standing_people(body_model, [[-2.0, 7.0]], camera_height=1.5)
    view = birds_eye_view(person, body_model.faces, K, SIZE, extent=extent, size=size)
    rows, cols = np.nonzero(np.any(view != empty, axis=-1))
    x, z = (cols.mean() - 249.5) * 0.02, 5.0 - (rows.mean() - 249.5) * 0.02
    np.testing.assert_allclose([x, z], [-2.0, 7.0], atol=0.1)  # the body's top view centre


def test_side_view_scale(body_model):
    extent, size = (0.0, 8.0, -2.0, 2.0), (400, 800)  # 0.01 m per pixel
    vertices, faces = cylinder(0.0, 5.0, y_top=-0.3, y_bottom=1.5)
    empty = side_view(np.zeros((0, *vertices.shape)), faces, K, SIZE, extent=extent, size=size)
    view = side_view(vertices[None], faces, K, SIZE, extent=extent, size=size)
    rows, cols = np.nonzero(np.any(view != empty, axis=-1))
    # z in [4.7, 5.3] -> cols 399.5 + (z - 4) / 0.01; y in [-0.3, 1.5] -> rows 199.5 + y / 0.01
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (470, 529, 170, 349)


def test_views_fit_the_scene_by_default(crowd):
    vertices, faces = crowd
    colors = np.array([[255, 0, 255]] * 3, dtype=np.uint8)
    for view in (
        birds_eye_view(vertices, faces, K, SIZE, colors=colors, heights=[1.7, 1.6, 1.8]),
        side_view(vertices, faces, K, SIZE, colors=colors, distances=[3.0, 4.5, 6.0]),
    ):
        magenta = (view[..., 1] < 20) & (view[..., 0] > 60) & (view[..., 0] == view[..., 2])
        assert magenta.sum() > 100


def test_glb_round_trip(crowd, tmp_path):
    vertices, faces = crowd
    path = save_glb(tmp_path / "scene.glb", vertices, faces)
    loaded = trimesh.load(path, force="scene", process=False)
    assert sorted(loaded.graph.nodes_geometry) == ["person_0", "person_1", "person_2"]
    for i in range(3):
        transform, name = loaded.graph[f"person_{i}"]
        mesh = loaded.geometry[name]
        np.testing.assert_allclose(transform, GLTF_FROM_OPENCV, atol=1e-12)
        np.testing.assert_allclose(mesh.vertices, vertices[i], atol=1e-6)  # float32 in glTF
        np.testing.assert_array_equal(mesh.faces, faces)
        colors = np.broadcast_to(person_colors(3)[i], vertices[i].shape)
        np.testing.assert_array_equal(mesh.visual.vertex_colors[:, :3], colors)
    assert len(mesh_scene(vertices, faces).graph.nodes_geometry) == 3


def test_png_round_trip_is_atomic_with_normal_permissions(tmp_path):
    image = noise_photo()
    old = os.umask(0o022)
    try:
        path = save_png(tmp_path / "sub" / "a.png", image)
    finally:
        os.umask(old)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), image)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.png"]  # no temporary left
    with pytest.raises(ValueError, match="image must be"):
        save_png(tmp_path / "b.png", image[..., 0])
    assert not (tmp_path / "b.png").exists()


def test_colorize_depth_near_is_bright_and_invalid_black():
    depth = np.tile(np.linspace(1.0, 10.0, 50), (4, 1))
    depth[0, 0] = np.nan
    valid = np.ones(depth.shape, dtype=bool)
    valid[3] = False
    out = colorize_depth(depth, valid)
    luminance = out[1].astype(float) @ [0.299, 0.587, 0.114]
    assert np.all(np.diff(luminance) <= 0) and luminance[0] > 200 > 20 > luminance[-1]
    assert np.all(out[3] == 0) and np.all(out[0, 0] == 0)
    assert np.all(colorize_depth(np.full((2, 2), np.inf)) == 0)


def test_tile_images_layout():
    panel = tile_images([noise_photo(), noise_photo(2), noise_photo(3)], ["a", "b", "c"], columns=2,
                        tile_height=150)  # fmt: skip
    # two rows of 150 px tiles under 22 px titles (12 px font), 4 px gaps; 200 + 4 + 200 wide
    assert panel.shape == (2 * (22 + 150 + 4) - 4, 404, 3)
    with pytest.raises(ValueError, match="got 1 titles for 2 images"):
        tile_images([noise_photo(), noise_photo()], ["a"])
