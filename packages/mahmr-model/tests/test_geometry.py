"""Camera and rotation geometry."""

from __future__ import annotations

import math

import pytest
import torch

from mahmr_model.geometry import (
    axis_angle_to_matrix,
    focal_from_fov,
    fov_from_focal,
    intrinsics_matrix,
    matrix_to_axis_angle,
    project,
    rot6d_to_matrix,
    translation_from_camera,
)

CANVAS = 1288


def test_fov_focal_round_trip() -> None:
    fov = torch.linspace(0.08, 3.0, 50, dtype=torch.float64)
    height = torch.full_like(fov, 966.0)
    focal = focal_from_fov(fov, height)
    assert torch.allclose(fov_from_focal(focal, height), fov, atol=1e-12)
    # the canvas camera of models without FoV head: 60 degrees over 1288 px -> 1115.44 px
    assert float(focal_from_fov(torch.tensor(math.pi / 3), torch.tensor(1288.0))) == pytest.approx(
        1115.4, abs=0.05
    )


def test_translation_keeps_the_2d_root_independent_of_focal() -> None:
    generator = torch.Generator().manual_seed(0)
    cam = torch.randn(3, 7, 3, generator=generator, dtype=torch.float64)
    sizes = torch.tensor([[966, 1288], [1288, 700], [500, 1288]])
    pixels = []
    for focal in (300.0, 1115.44, 5000.0):
        k = intrinsics_matrix(torch.full((3,), focal, dtype=torch.float64), sizes)
        transl = translation_from_camera(cam, k, sizes, CANVAS)
        pixels.append(project(transl, k))
        s = 2 * torch.sigmoid(cam[..., 2]) + 1e-6
        # the official formula (c_x / s, c_y / s, 2 f / (s S)) for the model's own camera
        official = torch.stack([cam[..., 0] / s, cam[..., 1] / s, 2 * focal / (s * CANVAS)], -1)
        assert torch.allclose(transl, official, rtol=1e-12, atol=1e-12)
    # equal up to the projection's z + 1e-6 (< 0.01 px here)
    for other in pixels[1:]:
        assert torch.allclose(other, pixels[0], rtol=0, atol=1e-2)
    expected_u = sizes[:, None, 1] / 2 + CANVAS * cam[..., 0] / 2
    assert torch.allclose(pixels[0][..., 0], expected_u.to(torch.float64), rtol=0, atol=1e-2)
    exact = (
        transl[..., :2] / transl[..., 2:] * 5000.0
        + torch.stack([sizes[:, 1], sizes[:, 0]], -1)[:, None] / 2
    )
    assert torch.allclose(exact[..., 0], expected_u.to(torch.float64), rtol=0, atol=1e-9)


def test_translation_with_known_off_centre_intrinsics() -> None:
    cam = torch.tensor([[[0.1, -0.2, 0.3]]], dtype=torch.float64)
    sizes = torch.tensor([[800, 1288]])
    k = torch.tensor(
        [[[1000.0, 0.0, 600.0], [0.0, 1010.0, 420.0], [0.0, 0.0, 1.0]]], dtype=torch.float64
    )
    transl = translation_from_camera(cam, k, sizes, CANVAS)
    u, v = project(transl, k)[0, 0]
    # the root stays at the pixel the network placed it at; depth = 2 fx / (s S)
    assert float(u) == pytest.approx(1288 / 2 + CANVAS * 0.1 / 2, abs=1e-3)  # z + 1e-6
    assert float(v) == pytest.approx(800 / 2 - CANVAS * 0.2 / 2, abs=1e-3)
    s = 2 * torch.sigmoid(torch.tensor(0.3, dtype=torch.float64)) + 1e-6
    assert float(transl[0, 0, 2]) == pytest.approx(float(2 * 1000.0 / (s * CANVAS)))


def test_rot6d_gives_rotations_and_the_spin_identity() -> None:
    x = torch.randn(1000, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    r = rot6d_to_matrix(x)
    eye = torch.eye(3, dtype=torch.float64)
    assert torch.allclose(r @ r.transpose(-1, -2), eye.expand_as(r), atol=1e-12)
    assert torch.allclose(torch.linalg.det(r), torch.ones(1000, dtype=torch.float64))
    identity = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])  # row-major 3x2: columns e_x, e_y
    assert torch.equal(rot6d_to_matrix(identity), torch.eye(3))
    # first column is the normalised (x0, x2, x4)
    assert torch.allclose(r[:, :, 0], torch.nn.functional.normalize(x[:, 0::2], dim=-1))


@pytest.mark.parametrize("angle", [1e-9, 1e-4, 0.5, 2.0, math.pi - 1e-6])
def test_axis_angle_round_trip(angle: float) -> None:
    axes = torch.nn.functional.normalize(
        torch.randn(200, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64), dim=-1
    )
    aa = axes * angle
    r = axis_angle_to_matrix(aa)
    back = matrix_to_axis_angle(r)
    assert torch.allclose(axis_angle_to_matrix(back), r, atol=1e-9)
    if angle < math.pi - 1e-3:  # at pi the sign of the axis is ambiguous
        assert torch.allclose(back, aa, atol=1e-9)


def test_projection() -> None:
    k = torch.tensor([[[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]]])
    points = torch.tensor([[[0.2, -0.1, 2.0], [0.0, 0.0, 5.0]]])
    pixels = project(points, k)
    assert torch.allclose(pixels, torch.tensor([[[370.0, 215.0], [320.0, 240.0]]]), atol=1e-3)
