"""Shared fixtures: the synthetic SMPL-format body model, tiny models, official manifests."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from dto_core.synthetic_body import write_synthetic_smpl_dir
from mahmr_model import MAHMR, MAHMRConfig, SMPLBody, get_config, tiny
from mahmr_model.checkpoint import SMPL_BUFFERS, official_derived_buffers

FIXTURES = Path(__file__).parent / "fixtures"
MANIFESTS = {
    "sat_hmr_stage1": FIXTURES / "sat_hmr_state_dict.json",  # official SAT-HMR / MA stage 1
    "mahmr": FIXTURES / "mahmr_full_state_dict.json",  # official MA-HMR stage 3
}


@pytest.fixture(scope="session")
def smpl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("smpl")
    write_synthetic_smpl_dir(directory, seed=0)
    return directory


@pytest.fixture(scope="session")
def kid_body(smpl_dir: Path) -> SMPLBody:
    return SMPLBody.from_dir(smpl_dir, kid=True)


@pytest.fixture(scope="session")
def adult_body(smpl_dir: Path) -> SMPLBody:
    return SMPLBody.from_dir(smpl_dir, kid=False)


@pytest.fixture
def make_tiny(kid_body: SMPLBody) -> Callable[..., MAHMR]:
    """A seeded tiny model (11 betas, FoV head) with the synthetic kid body attached."""

    def make(seed: int = 0, config: MAHMRConfig | None = None) -> MAHMR:
        torch.manual_seed(seed)
        model = MAHMR(config or tiny())
        return model.set_body(kid_body if model.config.num_betas == 11 else None).eval()

    return make


def _load_manifest(variant: str) -> dict:
    return json.loads(MANIFESTS[variant].read_text())


@pytest.fixture(scope="session")
def load_manifest() -> Callable[[str], dict]:
    """Official state-dict manifest (names, shapes, dtypes, aliases, counts) of a variant."""
    return _load_manifest


@pytest.fixture(scope="session")
def official_state_dict() -> Callable[..., dict]:
    """`(variant, seed=0, body=None) -> state dict` in the official layout, random values."""
    return lambda variant, seed=0, body=None: dict(_random_official_state_dict(variant, seed, body))


@functools.lru_cache(maxsize=4)
def _random_official_state_dict(variant: str, seed: int, body: SMPLBody | None) -> dict:
    """Random tensors (std 0.02, so that a forward pass stays finite) with every name, shape
    and dtype of an official manifest; aliases share their target's tensor, derived buffers
    hold the official values, `human_model.*` the body's buffers when a body is given.
    Cached: callers get a shallow copy and must not modify tensors in place."""
    manifest = _load_manifest(variant)
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for entry in manifest["entries"]:
        if "alias_of" in entry:
            continue
        dtype = getattr(torch, entry["dtype"])
        if dtype.is_floating_point:
            state[entry["name"]] = 0.02 * torch.randn(
                entry["shape"], generator=generator, dtype=dtype
            )
        else:
            state[entry["name"]] = torch.randint(0, 100, entry["shape"], generator=generator)
    for entry in manifest["entries"]:
        if "alias_of" in entry:
            state[entry["name"]] = state[entry["alias_of"]]
    state.update(official_derived_buffers(get_config(variant)))
    if body is not None:
        for official, ours in SMPL_BUFFERS.items():
            state[f"human_model.layer_n.{official}"] = getattr(body, ours).clone()
    return state
