"""Pictures of a synthetic scene with known ground truth: people of the synthetic body model
standing at known places, rendered into a "photo", then drawn from an ImagePrediction that holds
the ground truth (what a perfect model would predict)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import trimesh
from scipy import ndimage

from dto_core.body import BodyModel
from dto_core.synthetic_body import write_synthetic_smpl_dir
from hmr_render import person_colors, render_composite, standing_people
from mahmr_infer.pictures import render_views, write_glb
from mahmr_infer.records import image_record, summarize
from mahmr_model import ImagePrediction, PersonPredictions

H, W, FOCAL = 480, 640, 500.0
K = np.array([[FOCAL, 0.0, (W - 1) / 2], [0.0, FOCAL, (H - 1) / 2], [0.0, 0.0, 1.0]])
POSITIONS = np.array([[-1.5, 4.0], [0.3, 6.0], [1.8, 9.0]])  # (x, z) m of each root joint
BACKGROUND, SILHOUETTE = (90, 110, 130), (128, 128, 128)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("smpl")
    write_synthetic_smpl_dir(folder)
    body = BodyModel.from_dir(folder, kid_template=folder / "smpl_kid_template.npy")
    betas = np.zeros((3, 11))
    betas[1, 10], betas[2, 0] = 0.8, 2.0  # a child, a tall adult
    vertices = standing_people(body, POSITIONS, camera_height=1.6, betas=betas)
    pelvis = np.einsum("jv,nvc->njc", body.J_regressor, vertices)[:, :1]
    joints = np.repeat(pelvis, 45, axis=1).astype(np.float32)
    persons = PersonPredictions(
        scores=np.array([0.9, 0.8, 0.7], np.float32), boxes=np.zeros((3, 4), np.float32),
        global_orient=np.zeros((3, 3), np.float32), body_pose=np.zeros((3, 69), np.float32),
        betas=betas.astype(np.float32), transl=pelvis[:, 0].astype(np.float32), joints=joints,
        keypoints_2d=np.zeros((3, 45, 2), np.float32), vertices=vertices.astype(np.float32),
    )  # fmt: skip
    fov = 2 * math.atan(H / 2 / FOCAL)
    prediction = ImagePrediction((H, W), fov, K.astype(np.float32), "fov", persons)
    silhouette = render_composite(vertices, body.faces, K, (H, W)).person >= 0
    photo = np.empty((H, W, 3), np.uint8)
    photo[:] = BACKGROUND
    photo[silhouette] = SILHOUETTE  # the ground-truth people, rendered flat
    return {"body": body, "prediction": prediction, "photo": photo, "silhouette": silhouette,
            "betas": betas}  # fmt: skip


def test_heights_and_distances_are_the_ground_truth(scene: dict) -> None:
    summary = summarize(scene["prediction"], scene["body"])
    np.testing.assert_allclose(summary.heights, scene["body"].tpose_height(scene["betas"]))
    assert summary.heights[1] < 1.3 < summary.heights[0] < summary.heights[2]  # child, tall
    pelvis_y = scene["prediction"].persons.joints[:, 0, 1]
    expected = np.hypot(np.hypot(POSITIONS[:, 0], pelvis_y), POSITIONS[:, 1])
    np.testing.assert_allclose(summary.distances, expected, rtol=1e-5)
    record = image_record(Path("x.jpg"), scene["prediction"], summary)
    assert record["persons"][2]["height_m"] == pytest.approx(summary.heights[2])
    assert summary.rows()[0] == {
        "person": 1, "height_m": round(summary.heights[0], 3),
        "distance_m": round(summary.distances[0], 3), "confidence": 0.9,
    }  # fmt: skip


def test_overlay_covers_the_people_and_leaves_the_background(scene: dict) -> None:
    summary = summarize(scene["prediction"], scene["body"])
    faces = scene["body"].faces
    overlay = render_views(scene["photo"], scene["prediction"], faces, summary, ["overlay"])
    changed = (overlay["overlay"] != scene["photo"]).any(axis=-1)
    silhouette = scene["silhouette"]
    assert changed[silhouette].all()  # every ground-truth pixel is painted over
    # projected vertices land on painted pixels
    verts = scene["prediction"].persons.vertices.reshape(-1, 3).astype(np.float64)
    uv = np.rint(verts[:, :2] / verts[:, 2:] * FOCAL + K[:2, 2]).astype(int)
    near = ndimage.binary_dilation(changed, np.ones((3, 3)))  # a vertex on the outline
    assert near[uv[:, 1], uv[:, 0]].all()
    # elsewhere only the labels, which sit above the heads
    rows, _ = np.nonzero(changed & ~silhouette)
    head_rows = np.nonzero(silhouette.any(axis=1))[0]
    assert len(rows) > 0 and rows.max() < head_rows.max()
    tallest_top = min(np.nonzero(silhouette[:, : W // 3].any(axis=1))[0])
    assert rows.min() < tallest_top  # the near person's label is above its head


def mesh_blobs(image: np.ndarray, n: int) -> np.ndarray:
    """(n, 2) row, col centres of the n largest saturated blobs (the meshes): grey grid, ink,
    flat label boxes and thin lines (frustum, text strokes) removed."""
    pixels = image.astype(int)
    saturated = pixels.max(-1) - pixels.min(-1) > 40
    flat = (pixels[..., None, :] == person_colors(n).astype(int)).all(-1).any(-1)
    mask = ndimage.binary_opening(saturated & ~flat, np.ones((3, 3)))
    labels, count = ndimage.label(mask)
    sizes = ndimage.sum(mask, labels, range(1, count + 1))
    biggest = np.argsort(sizes)[::-1][:n] + 1
    return np.array(ndimage.center_of_mass(mask, labels, biggest))


def test_bev_and_side_put_people_where_they_stand(scene: dict) -> None:
    """In the bird's-eye view each person sits at col = a + x / s, row = b - z / s with one
    scale s (m per pixel) for both axes; in the side view at col = c + z / s'."""
    summary = summarize(scene["prediction"], scene["body"])
    views = render_views(
        scene["photo"], scene["prediction"], scene["body"].faces, summary, ["side", "bev"]
    )
    bev = mesh_blobs(views["bev"], 3)
    bev = bev[np.argsort(bev[:, 1])]  # left to right = persons 0, 1, 2 (x grows)
    assert list(np.argsort(-bev[:, 0])) == [0, 1, 2]  # and near (bottom) to far (top)
    col_fit = np.polyfit(POSITIONS[:, 0], bev[:, 1], 1)
    row_fit = np.polyfit(POSITIONS[:, 1], bev[:, 0], 1)
    assert col_fit[0] == pytest.approx(-row_fit[0], rel=0.03)  # equal metres per pixel
    residual = np.polyval(col_fit, POSITIONS[:, 0]) - bev[:, 1]
    assert np.abs(residual).max() < 3  # px: each person at its ground-truth x
    side = np.sort(mesh_blobs(views["side"], 3)[:, 1])  # depth grows to the right
    depth_fit = np.polyfit(POSITIONS[:, 1], side, 1)
    assert depth_fit[0] > 0 and np.abs(np.polyval(depth_fit, POSITIONS[:, 1]) - side).max() < 3


def test_glb_round_trip(scene: dict, tmp_path: Path) -> None:
    prediction, faces = scene["prediction"], scene["body"].faces
    path = write_glb(tmp_path / "scene.glb", prediction, faces)
    loaded = trimesh.load(path)
    assert sorted(loaded.geometry) == ["person_0", "person_1", "person_2"]
    for i in range(3):
        mesh = loaded.geometry[f"person_{i}"]
        np.testing.assert_allclose(mesh.vertices, prediction.persons.vertices[i], atol=1e-6)
        np.testing.assert_array_equal(mesh.faces, faces)
        np.testing.assert_array_equal(mesh.visual.vertex_colors[0, :3], person_colors(3)[i])
        transform, _ = loaded.graph[f"person_{i}"]
        up = trimesh.transform_points(prediction.persons.vertices[i], transform)
        assert up[:, 1].max() - up[:, 1].min() > 0.9  # upright: y up in glTF
        assert np.median(up[:, 1]) > -1.6 and np.median(up[:, 2]) < 0  # in front of the camera
