"""Stage files, `extends`, overrides and strict validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from mahmr_train.config import (
    CompatConfig,
    ConfigError,
    apply_overrides,
    available_configs,
    config_from_dict,
    config_to_dict,
    load_config,
)


def test_every_shipped_stage_loads_with_the_official_weights() -> None:
    assert set(available_configs()) >= {
        "stage1",
        "stage2",
        "stage3",
        "ft_3dpw",
        "ft_hi4d",
        "ft_panoptic",
        "ft_rh",
        "tiny",
    }
    s1, s2, s3 = (load_config(f"stage{i}") for i in (1, 2, 3))
    assert (s1.model.variant, s1.model.denoising) == ("sat_hmr_stage1", True)
    assert s1.data.batch_size == 16
    assert s1.loss.weights.depths == 0.5 and s1.loss.weights.fov == 0.0
    # stage 2 extends stage 1: FoV head and loss, no DN, batch 32, same data
    assert (s2.model.variant, s2.model.denoising, s2.data.batch_size) == ("mahmr_fov", False, 32)
    assert (s2.loss.weights.fov, s2.loss.weights.depths) == (0.5, 0.0)
    assert s2.data.datasets == s1.data.datasets
    assert s3.model.variant == "mahmr" and s3.loss.weights.depths_mt == 0.5
    assert [d.name for d in s3.data.datasets] == ["agora", "bedlam", "dto_humans"]
    hi4d = load_config("ft_hi4d")
    assert (hi4d.loss.weights.betas, hi4d.loss.weights.fov, hi4d.optim.epochs) == (0.0, 1.0, 10)
    assert hi4d.data.augment.crop == 0.0 and hi4d.data.augment.scale == (1.0, 2.0)
    pan = load_config("ft_panoptic")
    assert pan.data.datasets[1].downsample == 4 and pan.data.augment.crop == 1.0
    for cfg in (s1, s2, s3, hi4d, pan):
        assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.grad_clip) == (1e-5, 1e-4, 1.0)


def test_overrides_parse_toml_values_and_index_lists() -> None:
    cfg = load_config(
        "tiny",
        [
            "optim.lr=2e-5",
            "data.datasets.0.num_images=3",
            "compat.fov_sum=true",
            "data.augment.scale=[1.0, 1.5]",
            "name=my run",
            "model.init=runs/s2/final",
        ],
    )
    assert cfg.optim.lr == 2e-5 and cfg.data.datasets[0].num_images == 3
    assert cfg.compat.fov_sum and cfg.data.augment.scale == (1.0, 1.5)
    assert cfg.name == "my run" and cfg.model.init == "runs/s2/final"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrr=1", "optim.lrr"),
        ("optim.lr=fast", "optim.lr: expected a number"),
        ("data.batch_size=0", "batch_size must be >= 1"),
        ("data.datasets.3.weight=1", "no item 3"),
        ("optim.precision=fp16", "not one of"),
        ("compat=1", "compat: expected a table"),
        ("nonsense", "not key=value"),
    ],
)
def test_bad_overrides_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("tiny", [override])


def test_files_extends_and_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('extends = "stage3"\nname = "mine"\n[optim]\nlr = 3e-5\n')
    cfg = load_config(path)
    assert cfg.name == "mine" and cfg.optim.lr == 3e-5 and cfg.model.variant == "mahmr"
    assert config_from_dict(config_to_dict(cfg)) == cfg
    loop = tmp_path / "loop.toml"
    loop.write_text(f'extends = "{loop}"\n')
    with pytest.raises(ConfigError, match="extends itself"):
        load_config(loop)
    with pytest.raises(ConfigError, match="unknown config 'stage9'"):
        load_config("stage9")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")


def test_mixed_weights_are_rejected_and_compat_official_sets_every_flag() -> None:
    data = apply_overrides(config_to_dict(load_config("stage3")), ["data.datasets.0.weight=2"])
    with pytest.raises(ConfigError, match="weight to every dataset"):
        config_from_dict(data)
    official = CompatConfig.official()
    assert all(getattr(official, name) for name in config_to_dict(official))
    assert not any(config_to_dict(CompatConfig()).values())
