"""Shared fixtures: the synthetic SMPL-format body model, tiny models, fake model outputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from dto_core.synthetic_body import write_synthetic_smpl_dir
from mahmr_model import MAHMR, LayerOutput, MAHMROutput, SMPLBody, tiny
from mahmr_model.tokens import TokenSet
from mahmr_train.targets import Targets


@pytest.fixture(scope="session")
def smpl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("smpl")
    write_synthetic_smpl_dir(directory, seed=0)
    return directory


@pytest.fixture(scope="session")
def kid_body(smpl_dir: Path) -> SMPLBody:
    return SMPLBody.from_dir(smpl_dir, kid=True)


@pytest.fixture
def make_tiny(kid_body: SMPLBody) -> Callable[..., MAHMR]:
    def make(seed: int = 0, **overrides: object) -> MAHMR:
        torch.manual_seed(seed)
        return MAHMR(tiny(**overrides)).set_body(kid_body)

    return make


def fake_output(
    num_images: int, num_queries: int, *, layers: int = 1, seed: int = 0, grid: int = 2
) -> MAHMROutput:
    """Random predictions (requiring grad) shaped like a forward pass with SMPL on every layer."""
    g = torch.Generator().manual_seed(seed)
    b, n = num_images, num_queries

    def rand(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (scale * torch.rand(*shape, generator=g)).requires_grad_()

    outs = []
    for _ in range(layers):
        boxes = (0.2 + 0.5 * torch.rand(b, n, 4, generator=g)).requires_grad_()
        joints = rand(b, n, 45, 3)
        outs.append(
            LayerOutput(
                boxes=boxes,
                conf_logits=rand(b, n),
                pose6d=rand(b, n, 144),
                rotmats=torch.eye(3).expand(b, n, 24, 3, 3).clone().requires_grad_(),
                betas=rand(b, n, 11),
                cam=rand(b, n, 3),
                transl=rand(b, n, 3),
                depths=rand(b, n, 2),
                joints=joints,
                joints_2d=rand(b, n, 45, 2, scale=200.0),
            )
        )
    k = torch.tensor([[500.0, 0, 112], [0, 500.0, 112], [0, 0, 1]]).expand(b, 3, 3).clone()
    empty = torch.zeros(0, dtype=torch.long)
    return MAHMROutput(
        layers=tuple(outs),
        intrinsics=k,
        fov=rand(b),
        fov_raw=None,
        scale_logits=rand(b, grid, grid, 2),
        scale_inside=torch.ones(b, grid, grid, dtype=torch.bool),
        tokens=TokenSet(empty, empty, empty, empty),
    )


def fake_targets(
    counts: list[int],
    *,
    seed: int = 1,
    has_3d: list[bool] | None = None,
    grid: int = 2,
    num_betas: int = 11,
) -> Targets:
    """Random ground truth of len(counts) images with counts[b] people each."""
    g = torch.Generator().manual_seed(seed)
    b, p = len(counts), max(counts)
    mask = torch.arange(p)[None] < torch.tensor(counts)[:, None]
    boxes = torch.cat(
        [
            0.3 + 0.4 * torch.rand(b, p, 2, generator=g),
            0.1 + 0.3 * torch.rand(b, p, 2, generator=g),
        ],
        -1,
    )
    depths = 2 + 5 * torch.rand(b, p, generator=g)
    joints = torch.rand(b, p, 45, 3, generator=g)
    joints[..., 0, 2] = depths
    return Targets(
        mask=mask,
        boxes=boxes,
        joints_2d=200 * torch.rand(b, p, 45, 2, generator=g),
        joints_2d_mask=torch.ones(b, p, 45, dtype=torch.bool),
        joints_3d=joints,
        poses=0.2 * torch.randn(b, p, 72, generator=g),
        betas=torch.randn(b, p, num_betas, generator=g),
        depths=depths,
        depth_layers=torch.full((b, p), -1),
        intrinsics=torch.tensor([[600.0, 0, 112], [0, 600.0, 112], [0, 0, 1]]).expand(b, 3, 3),
        image_sizes=torch.tensor([[224, 224]] * b),
        has_3d=torch.tensor(has_3d if has_3d is not None else [True] * b),
        has_smpl=torch.ones(b, dtype=torch.bool),
        has_camera=torch.ones(b, dtype=torch.bool),
        detect_all=torch.ones(b, dtype=torch.bool),
        scale_map=torch.rand(b, grid, grid, 2, generator=g).round(),
    )


@pytest.fixture
def make_output() -> Callable[..., MAHMROutput]:
    return fake_output


@pytest.fixture
def make_targets() -> Callable[..., Targets]:
    return fake_targets


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every training dataset format, tiny, under one data root (MA-HMR layout)."""
    from mahmr_train.data.fixtures import write_training_fixtures

    return write_training_fixtures(tmp_path_factory.mktemp("data"))
