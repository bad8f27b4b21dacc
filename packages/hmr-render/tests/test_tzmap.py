"""render_zbuffers and render_tz_map (spec A.6) against analytic scenes."""

import numpy as np
import pytest
import trimesh

from dto_core.camera import project
from dto_core.cues import CueStatus, extract_cues
from hmr_render import (
    render_composite,
    render_resolution,
    render_tz_map,
    render_zbuffers,
    standing_people,
)


def intrinsics(f, cx, cy):
    return np.array([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])


def box(center, extents):
    """(8, 3) vertices and (12, 3) faces of an axis-aligned box; the faces are the same for all."""
    mesh = trimesh.creation.box(extents=extents)
    return np.asarray(mesh.vertices) + np.asarray(center, dtype=float), np.asarray(mesh.faces)


def disc(center, radius, segments=96):
    """A fronto-parallel regular polygon at depth center[2]: (segments + 1, 3) vertices, a fan."""
    angle = 2 * np.pi * np.arange(segments) / segments
    rim = np.stack([radius * np.cos(angle), radius * np.sin(angle), np.zeros(segments)], -1)
    vertices = np.concatenate([[[0.0, 0.0, 0.0]], rim]) + np.asarray(center, dtype=float)
    i = np.arange(1, segments + 1)
    return vertices, np.stack([np.zeros(segments, int), i, i % segments + 1], -1)


def square_coverage(half, z, K, size):
    """Pixels whose centre sees the square |x|, |y| <= half at depth z (on the optical axis)."""
    v, u = np.mgrid[0 : size[0], 0 : size[1]]
    x, y = (u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z
    return (np.abs(x) <= half) & (np.abs(y) <= half)


# Two boxes on the optical axis: the near one's front face (z = 3) hides part of the far one's
# (z = 5). Silhouettes of axis-centred boxes are their front faces; edges fall between pixel
# centres.
K_BOX = intrinsics(100.0, 50.0, 40.0)
SIZE_BOX = (81, 101)
NEAR = box((0.0, 0.0, 3.2), (0.606, 0.606, 0.4))
FAR = box((0.0, 0.0, 5.5), (2.02, 2.02, 1.0))


def two_boxes():
    return np.stack([NEAR[0], FAR[0]]), NEAR[1]


def test_plane_depth_is_exact():
    vertices, faces = box((0.05, -0.02, 4.3), (0.8, 0.6, 0.0))  # a flat box = a rectangle, twice
    K = intrinsics(200.0, 64.0, 48.0)
    zb = render_zbuffers(vertices[None], faces, K, (96, 128))
    v, u = np.mgrid[0:96, 0:128]
    x, y = (u - 64.0) / 200.0 * 4.3, (v - 48.0) / 200.0 * 4.3
    expected = (np.abs(x - 0.05) <= 0.4) & (np.abs(y + 0.02) <= 0.3)
    assert expected.sum() > 1000
    np.testing.assert_array_equal(np.isfinite(zb.depth[0]), expected)
    np.testing.assert_allclose(zb.depth[0][expected], 4.3, rtol=1e-15, atol=0)
    assert np.all(zb.face[0][expected] >= 0) and np.all(zb.face[0][~expected] == -1)


def test_box_occludes_box_ids_and_depths_exact():
    vertices, faces = two_boxes()
    near = square_coverage(0.303, 3.0, K_BOX, SIZE_BOX)
    far = square_coverage(1.01, 5.0, K_BOX, SIZE_BOX)
    assert near.sum() > 300 and (far & ~near).sum() > 300

    zb = render_zbuffers(vertices, faces, K_BOX, SIZE_BOX)  # each person alone, occluded or not
    np.testing.assert_array_equal(np.isfinite(zb.depth[1]), far)
    np.testing.assert_allclose(zb.depth[1][far], 5.0, rtol=1e-15, atol=0)

    tz = render_tz_map(vertices, faces, K_BOX, SIZE_BOX)
    expected_ids = np.where(near, 1, np.where(far, 2, 0))
    np.testing.assert_array_equal(tz.person_ids, expected_ids)
    expected_depth = np.where(near, 3.0, np.where(far, 5.0, 0.0))
    np.testing.assert_allclose(tz.mesh_depth, expected_depth, rtol=1e-15, atol=0)
    assert tz.person_ids.dtype == np.int32 and tz.tz_map.shape == (*SIZE_BOX, 2)
    np.testing.assert_array_equal(tz.tz_map[..., 0], expected_ids)
    # Visible: the near box's 4 front corners; the far box's 4 front corners (outside the near box).
    np.testing.assert_array_equal(tz.visible_vertices, [4, 4])


def test_mask_reveals_the_person_behind():
    vertices, faces = two_boxes()
    masks = np.ones((2, *SIZE_BOX), dtype=bool)
    masks[0, :, :50] = False  # the near person's detection mask misses the left half
    tz = render_tz_map(vertices, faces, K_BOX, SIZE_BOX, masks)
    near = square_coverage(0.303, 3.0, K_BOX, SIZE_BOX)
    far = square_coverage(1.01, 5.0, K_BOX, SIZE_BOX)
    left = np.zeros(SIZE_BOX, dtype=bool)
    left[:, :50] = True
    expected = np.where(near & ~left, 1, np.where(far, 2, 0))
    np.testing.assert_array_equal(tz.person_ids, expected)
    np.testing.assert_allclose(tz.mesh_depth[near & left], 5.0, rtol=1e-15)

    masks[1] = False  # no mask at all for the far person: its pixels are background
    tz = render_tz_map(vertices, faces, K_BOX, SIZE_BOX, masks)
    np.testing.assert_array_equal(tz.person_ids, np.where(near & ~left, 1, 0))
    assert np.all(tz.mesh_depth[tz.person_ids == 0] == 0)


def test_mask_errors_name_the_expected_shape():
    vertices, faces = two_boxes()
    with pytest.raises(ValueError, match=r"masks must be a bool array of shape \(2, 81, 101\)"):
        render_tz_map(vertices, faces, K_BOX, SIZE_BOX, np.ones((2, 80, 101), dtype=bool))
    with pytest.raises(ValueError, match="masks must be a bool array"):
        render_tz_map(vertices, faces, K_BOX, SIZE_BOX, np.ones((2, *SIZE_BOX)))


def test_bad_meshes_are_rejected():
    vertices, faces = two_boxes()
    with pytest.raises(ValueError, match=r"vertices must have shape \(N, V, 3\)"):
        render_zbuffers(vertices[0], faces, K_BOX, SIZE_BOX)
    with pytest.raises(ValueError, match="faces index vertices outside"):
        render_zbuffers(vertices, faces + 8, K_BOX, SIZE_BOX)
    bad = vertices.copy()
    bad[1, 3, 0] = np.nan
    with pytest.raises(ValueError, match="vertices of person 1 are not all finite"):
        render_tz_map(bad, faces, K_BOX, SIZE_BOX)
    with pytest.raises(ValueError, match="K must"):
        render_zbuffers(vertices, faces, K_BOX[:2], SIZE_BOX)


def test_ties_go_to_the_first_person():
    vertices, faces = box((0.0, 0.0, 4.0), (1.0, 1.0, 0.0))
    tz = render_tz_map(np.stack([vertices, vertices, vertices]), faces, K_BOX, SIZE_BOX)
    covered = square_coverage(0.5, 4.0, K_BOX, SIZE_BOX)
    np.testing.assert_array_equal(tz.person_ids, np.where(covered, 1, 0))
    # every person's vertices sample the same depths, so each counts as many as when alone
    alone = render_tz_map(vertices[None], faces, K_BOX, SIZE_BOX).visible_vertices[0]
    np.testing.assert_array_equal(tz.visible_vertices, [alone] * 3)
    assert alone > 0


def test_silhouette_centroid_is_the_projected_centre():
    # A fronto-parallel disc projects to a disc around the projected centre (no perspective skew);
    # a half-pixel shift or a flipped axis would move the centroid by >= 0.5 px.
    K = intrinsics(300.0, 80.5, 60.0)
    center = np.array([-0.31, 0.12, 2.7])
    vertices, faces = disc(center, 0.35)
    zb = render_zbuffers(vertices[None], faces, K, (120, 160))
    v, u = np.nonzero(np.isfinite(zb.depth[0]))
    np.testing.assert_allclose([u.mean(), v.mean()], project(center, K), atol=0.05)


def test_body_silhouette_matches_projected_vertices(body_model):
    vertices = standing_people(body_model, [[0.4, 4.0]], camera_height=1.2)
    K = intrinsics(400.0, 256.0, 192.0)
    tz = render_tz_map(vertices, body_model.faces, K, (384, 512))  # rendered at full resolution
    v, u = np.nonzero(tz.person_ids == 1)
    uv = project(vertices[0], K)
    # covered pixel centres lie inside the projected vertices' box, and reach within 2 px of it
    # (thin tips such as the hands may fall between pixel centres)
    lo, hi = np.array([u.min(), v.min()]), np.array([u.max(), v.max()])
    assert np.all(lo >= np.ceil(uv.min(axis=0))) and np.all(hi <= np.floor(uv.max(axis=0)))
    np.testing.assert_allclose(lo, uv.min(axis=0), atol=2.0)
    np.testing.assert_allclose(hi, uv.max(axis=0), atol=2.0)
    assert 0.3 * len(uv) < tz.visible_vertices[0] < 0.7 * len(uv)  # about the front half


def test_person_hidden_behind_another_has_no_visible_vertex(body_model):
    # Scaled by 2 about the camera centre, a person projects onto the same silhouette at twice the
    # depth: the second person stands exactly behind the first along every line of sight.
    front = standing_people(body_model, [[0.3, 3.0]], camera_height=1.0)[0]
    back = 2.0 * front
    vertices = np.stack([front, back])
    K = intrinsics(400.0, 256.0, 256.0)
    tz = render_tz_map(vertices, body_model.faces, K, (512, 512))
    assert tz.visible_vertices[1] == 0
    assert tz.visible_vertices[0] > 1000
    assert not np.any(tz.person_ids == 2)
    alone = render_zbuffers(vertices, body_model.faces, K, (512, 512)).depth[1]
    assert np.isfinite(alone).sum() > 1000


def test_visibility_matches_a_per_vertex_loop(body_model):
    vertices = standing_people(body_model, [[-0.3, 3.0], [0.2, 4.0], [1.5, 2.5]], camera_height=1.3)
    K = intrinsics(420.0, 200.0, 150.0)
    tz = render_tz_map(vertices, body_model.faces, K, (300, 400))
    expected = np.zeros(3, dtype=int)
    for i, person in enumerate(vertices):
        for point in person:
            u, v = project(point, K)
            col, row = int(np.floor(u + 0.5)), int(np.floor(v + 0.5))
            if 0 <= col < 400 and 0 <= row < 300:
                depth = tz.mesh_depth[row, col]
                expected[i] += depth > 0 and point[2] <= depth + 0.01
    np.testing.assert_array_equal(tz.visible_vertices, expected)
    assert np.all(expected > 100)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((512, 300), (512, 300, 1.0)),
        ((100, 80), (100, 80, 1.0)),
        ((1080, 1920), (288, 512, 512 / 1920)),
        ((513, 100), (512, 99, 512 / 513)),
        ((4000, 3000), (512, 384, 512 / 4000)),
    ],
)
def test_render_resolution_rule(size, expected):
    assert render_resolution(*size) == expected


def test_render_resolution_rejects_empty_images():
    with pytest.raises(ValueError, match="image size must be positive"):
        render_resolution(0, 10)


def test_large_images_render_at_512_and_upsample_by_nearest():
    # 1024 x 768 renders at 512 x 384 with K halved; full-resolution pixel i shows render pixel
    # floor(i / 2 + 1/2), whose centre sits at full-resolution coordinate 2 floor(i / 2 + 1/2).
    K = intrinsics(800.0, 512.0, 384.0)
    vertices, faces = box((0.1, -0.05, 6.0), (2.0, 1.5, 0.0))
    masks = np.ones((1, 768, 1024), dtype=bool)
    masks[0, :, 600:] = False  # render pixel j samples full-resolution column 2 j
    tz = render_tz_map(vertices[None], faces, K, (768, 1024), masks)
    v, u = np.mgrid[0:768, 0:1024]
    us, vs = 2 * np.floor(u / 2 + 0.5), 2 * np.floor(v / 2 + 0.5)
    x, y = (us - 512.0) / 800.0 * 6.0, (vs - 384.0) / 800.0 * 6.0
    expected = (np.abs(x - 0.1) <= 1.0) & (np.abs(y + 0.05) <= 0.75) & (us < 600)
    np.testing.assert_array_equal(tz.person_ids, expected.astype(np.int32))
    np.testing.assert_allclose(tz.mesh_depth[expected], 6.0, rtol=1e-15)
    # the 4 corners are visible: they project inside the rendered plane (sampled at 2 px steps)
    assert tz.visible_vertices[0] >= 2


def test_output_feeds_extract_cues(body_model):
    vertices = standing_people(body_model, [[-0.5, 3.0], [0.6, 5.0]], camera_height=1.4)
    K = intrinsics(500.0, 320.0, 240.0)
    tz = render_tz_map(vertices, body_model.faces, K, (480, 640))
    rel = np.where(tz.person_ids > 0, 0.5 * tz.mesh_depth, 1.0)  # relative depth = mesh depth / 2
    cues, _ = extract_cues(rel, tz.person_ids, tz.mesh_depth, 2, tz.visible_vertices)
    np.testing.assert_array_equal(cues.status, [CueStatus.OK, CueStatus.OK])
    np.testing.assert_allclose(cues.slope, [2.0, 2.0], rtol=1e-9)
    np.testing.assert_allclose(cues.mesh_depth, 2 * cues.rel_depth, rtol=1e-12)
    assert 2.8 < cues.mesh_depth[0] < 3.2 and 4.8 < cues.mesh_depth[1] < 5.2


def test_composite_is_the_argmin_of_the_per_person_buffers(body_model):
    positions = [[-0.4, 3.0], [0.0, 3.3], [-0.4, 3.0], [0.9, 5.0]]  # overlapping; 2 ties with 0
    vertices = standing_people(body_model, positions, camera_height=1.5)
    np.testing.assert_array_equal(vertices[2], vertices[0])
    K = intrinsics(300.0, 128.0, 96.0)
    masks = np.random.default_rng(0).random((4, 192, 256)) < 0.9
    zb = render_zbuffers(vertices, body_model.faces, K, (192, 256))
    comp = render_composite(vertices, body_model.faces, K, (192, 256), masks)
    masked = np.where(masks, zb.depth, np.inf)
    nearest = np.argmin(masked, axis=0)  # numpy's argmin: the first index on ties
    covered = np.isfinite(masked.min(axis=0))
    np.testing.assert_array_equal(comp.person, np.where(covered, nearest, -1))
    np.testing.assert_array_equal(comp.depth, masked.min(axis=0))
    face = np.take_along_axis(zb.face, nearest[None], axis=0)[0]
    np.testing.assert_array_equal(comp.face, np.where(covered, face, -1))
    assert len(np.unique(comp.person)) == 5  # person 2 shows where person 0's mask is off
