"""mahmr_train: training of MA-HMR (matcher, losses, denoising queries, data, stages, loop)."""

from .config import ConfigError, TrainConfig, available_configs, load_config

__version__ = "0.1.0"

__all__ = ["ConfigError", "TrainConfig", "available_configs", "load_config"]
