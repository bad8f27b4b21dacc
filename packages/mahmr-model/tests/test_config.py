"""Configs: exact parameter counts of the full variants, per-module counts against the official
manifests, validation."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
import torch

from mahmr_model import MAHMR, MAHMRConfig, get_config, mahmr, sat_hmr_stage1, tiny
from mahmr_model.checkpoint import to_official_name


def _count(config: MAHMRConfig) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in MAHMR(config).parameters())


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (sat_hmr_stage1(), 221_885_956),  # SAT-HMR / MA stage 1 without dn_enc (spec, paper 221.9M)
        (sat_hmr_stage1(denoising=True), 221_949_700),  # + dn_enc, the released stage-1 files
        (get_config("mahmr_fov"), 223_658_501),  # MA stage 2
        (mahmr(), 223_663_115),  # MA-HMR final (paper 223.7M)
    ],
    ids=["sat_hmr_stage1", "sat_hmr_stage1+dn", "mahmr_fov", "mahmr"],
)
def test_full_parameter_counts(config: MAHMRConfig, expected: int) -> None:
    assert _count(config) == expected


@pytest.mark.parametrize(("variant", "denoising"), [("sat_hmr_stage1", True), ("mahmr", False)])
def test_counts_per_official_module(
    variant: str, denoising: bool, load_manifest: Callable[[str], dict]
) -> None:
    """Parameters grouped by the official top-level module equal the manifest's groups."""
    manifest = load_manifest(variant)
    with torch.device("meta"):
        model = MAHMR(get_config(variant, denoising=denoising))
    counts: Counter[str] = Counter()
    for name, parameter in model.named_parameters():
        counts[to_official_name(name).split(".")[0]] += parameter.numel()
    expected = {
        k: v["parameters"]
        for k, v in manifest["parameter_count_by_top_module"].items()
        if v["parameters"]
    }
    assert dict(counts) == expected
    assert sum(counts.values()) == manifest["total_parameter_count"]


def test_tiny_is_small_with_the_same_structure() -> None:
    config = tiny()
    assert _count(config) == 206_743
    assert (config.fov_head, config.num_betas) == (mahmr().fov_head, mahmr().num_betas)
    assert config.grid_sizes == (16, 8, 4)
    assert mahmr().grid_sizes == (92, 46, 23)
    assert mahmr().fixed_focal == pytest.approx(1288 / (2 * 0.5773502691896257))


def test_config_round_trip_and_unknown_keys() -> None:
    config = mahmr(num_queries=60)
    assert MAHMRConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown MAHMRConfig keys \\['typo'\\]"):
        MAHMRConfig.from_dict({**config.to_dict(), "typo": 1})
    with pytest.raises(ValueError, match="unknown variant"):
        get_config("mahmr_large")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"input_size": 1300}, "multiple of 4 \\* patch_size = 56"),
        ({"num_betas": 16}, "num_betas 16"),
        ({"num_map_blocks": 13}, "num_map_blocks 13"),
        ({"conf_thresh": 1.5}, "conf_thresh"),
        ({"hidden_dim": 770}, "hidden_dim 770"),
    ],
)
def test_invalid_configs_are_rejected(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mahmr(**overrides)
