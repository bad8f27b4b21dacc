"""Augmentation consistency: image, keypoints, 3D people and intrinsics move together."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mahmr_train.config import AugmentConfig, CompatConfig
from mahmr_train.data.augment import AugmentDraw, View
from mahmr_train.data.bodies import BodyModels
from mahmr_train.data.pipeline import SamplePipeline, _project
from mahmr_train.data.records import ImageRecord

CANVAS = 224


def _record(rng: np.random.Generator, size: tuple[int, int] = (160, 224)) -> ImageRecord:
    h, w = size
    n = 3
    pose = rng.normal(0, 0.15, (n, 72))
    pose[:, :3] = [math.pi, 0, 0] + rng.normal(0, 0.2, (n, 3))  # upright in the OpenCV camera
    transl = np.stack([rng.uniform(-1, 1, n), rng.uniform(-0.3, 0.3, n), rng.uniform(4, 7, n)], 1)
    k = np.array([[230.0, 0, w / 2 + 3], [0, 230.0, h / 2 - 2], [0, 0, 1]])
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return ImageRecord.camera_frame(
        "img", lambda: image.copy(), k, pose, rng.normal(0, 1, (n, 10)), transl, has_3d=True
    )


@pytest.fixture(scope="module")
def pipeline(smpl_dir: Path) -> SamplePipeline:
    return SamplePipeline(CANVAS, BodyModels(smpl_dir, 11), AugmentConfig(), CompatConfig())


def _mirror_permutation(bodies: BodyModels) -> np.ndarray:
    """45-joint left / right permutation from the (mirror-symmetric) synthetic T-pose."""
    joints = bodies.pose(np.zeros((1, 72)), np.zeros((1, 11)), np.array(["neutral"])).joints[0, :24]
    mirrored = joints * [-1, 1, 1]
    return np.linalg.norm(mirrored[:, None] - joints[None], axis=-1).argmin(1)


@pytest.mark.parametrize(
    "draw",
    [
        AugmentDraw(rot=math.radians(12), scale=1.4),
        AugmentDraw(rot=math.radians(-15), scale=0.8, crop=True, crop_beta=0.3),
        AugmentDraw(flip=True),
        AugmentDraw(rot=math.radians(7), flip=True, scale=1.2, crop=True, crop_beta=0.6),
    ],
)
def test_augmented_3d_joints_project_onto_augmented_keypoints(
    pipeline: SamplePipeline, draw: AugmentDraw
) -> None:
    rng = np.random.default_rng(0)
    record = _record(rng)
    people = pipeline._camera_frame(record)
    plain = pipeline._geometry(record, people, (160, 224), AugmentDraw())
    aug = pipeline._geometry(record, people, (160, 224), draw)
    expected = aug["view"].points(plain["uv"])  # the image map applied to the original keypoints
    got = _project(aug["joints"], aug["k"])
    if draw.flip:
        # the mirrored body's joints are the original's, left and right swapped; the synthetic
        # model is mirror-symmetric, but the vertex ids of smplx's 21 extra joints (nose, toes,
        # finger tips, ...) are not mirror pairs on its mesh: compare the 24 SMPL joints
        got, expected = got[:, _mirror_permutation(pipeline.bodies)][:, :24], expected[:, :24]
    np.testing.assert_allclose(got, expected, atol=1e-3)  # px (float32 SMPL)
    # rotation and scaling keep every person's depth (the camera turns about its axis)
    np.testing.assert_allclose(aug["joints"][:, 0, 2], plain["joints"][:, 0, 2], atol=1e-5)


def test_the_warped_image_shows_a_point_where_its_projection_lands(
    pipeline: SamplePipeline,
) -> None:
    """A bright pixel at a joint's projection is found at the augmented projection."""
    rng = np.random.default_rng(1)
    record = _record(rng)
    people = pipeline._camera_frame(record)
    plain = pipeline._geometry(record, people, (160, 224), AugmentDraw())
    u, v = np.round(plain["uv"][0, 0]).astype(int)
    image = np.zeros((160, 224, 3), np.uint8)
    image[v - 1 : v + 2, u - 1 : u + 2] = 255
    draw = AugmentDraw(rot=math.radians(10), scale=1.3, flip=True)
    aug = pipeline._geometry(record, people, (160, 224), draw)
    warped = aug["view"].warp(image).astype(float).sum(-1)
    ys, xs = np.nonzero(warped > 0.5 * warped.max())
    centre = np.array(
        [np.average(xs, weights=warped[ys, xs]), np.average(ys, weights=warped[ys, xs])]
    )
    np.testing.assert_allclose(centre, aug["view"].points(np.array([u, v], float)), atol=0.3)


def test_flip_twice_is_the_identity(pipeline: SamplePipeline) -> None:
    rng = np.random.default_rng(2)
    record = _record(rng, size=(160, 224))  # long side = canvas: the resize is the identity
    people = pipeline._camera_frame(record)
    once = pipeline._geometry(record, people, (160, 224), AugmentDraw(flip=True))
    image = record.image()
    flipped = ImageRecord.camera_frame(
        "img",
        lambda: once["view"].warp(image),
        once["k"],
        once["pose"],
        once["betas"],
        once["transl"],
        has_3d=True,
    )
    twice = pipeline._geometry(
        flipped, pipeline._camera_frame(flipped), (160, 224), AugmentDraw(flip=True)
    )
    plain = pipeline._geometry(record, people, (160, 224), AugmentDraw())
    np.testing.assert_allclose(twice["pose"], plain["pose"], atol=1e-6)
    np.testing.assert_allclose(twice["transl"], plain["transl"], atol=1e-6)
    np.testing.assert_allclose(twice["k"], plain["k"], atol=1e-9)
    np.testing.assert_allclose(twice["joints"], plain["joints"], atol=1e-5)
    np.testing.assert_array_equal(twice["view"].warp(once["view"].warp(image)), image)


def test_compat_flip_and_crop_reproduce_the_official_formulas(smpl_dir: Path) -> None:
    rng = np.random.default_rng(3)
    record = _record(rng)
    fixed = SamplePipeline(CANVAS, BodyModels(smpl_dir, 11), AugmentConfig(), CompatConfig())
    official = SamplePipeline(
        CANVAS,
        BodyModels(smpl_dir, 11),
        AugmentConfig(),
        CompatConfig(flip_negate_transl=True, crop_half_pixel=True),
    )
    draw = AugmentDraw(flip=True, crop=True, crop_beta=0.2)
    a = fixed._geometry(record, fixed._camera_frame(record), (160, 224), draw)
    b = official._geometry(record, official._camera_frame(record), (160, 224), draw)
    root = a["joints"][:, 0] - a["transl"]  # rest root joint (body frame)
    np.testing.assert_allclose(b["transl"][:, 0] - a["transl"][:, 0], 2 * root[:, 0], atol=1e-9)
    r = a["view"].affine[1, 1]
    if not np.isclose(r, 1.0):
        np.testing.assert_allclose(b["k"][:2, 2] - a["k"][:2, 2], 0.5 * (r - 1), atol=1e-9)


def test_view_intrinsics_hold_for_any_camera() -> None:
    """K' = A K T^T maps T X to A (K X) exactly, also with fx != fy and a skewed principal point."""
    k = np.array([[300.0, 0, 90], [0, 250.0, 70], [0, 0, 1]])
    view = View.create(140, 200, 224, AugmentDraw(rot=0.3, flip=True, scale=1.7))
    points = np.random.default_rng(4).normal([0, 0, 5], 1, (20, 3))
    got = _project(points @ view.transform.T, view.intrinsics(k))
    np.testing.assert_allclose(got, view.points(_project(points, k)), atol=1e-9)


def test_samples_of_a_training_draw(pipeline: SamplePipeline) -> None:
    rng = np.random.default_rng(5)
    sample = pipeline(_record(rng), np.random.default_rng(0), train=True)
    assert sample is not None and sample.num_people >= 1
    h, w = sample.image.shape[1:]
    assert max(h, w) == CANVAS and sample.image.dtype == torch.float32
    assert sample.scale_map.shape == (-(-h // 56) * 2, -(-w // 56) * 2, 2)
    np.testing.assert_allclose(sample.depths, sample.joints_3d[:, 0, 2])
    assert (sample.joints_2d_mask.sum(1) >= 4).all()
    assert ((sample.boxes[:, :2] > 0) & (sample.boxes[:, :2] < 1)).all()
