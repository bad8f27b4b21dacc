"""What every protocol shares: the result record, errors, and predictions aligned to images."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hmr_bench.datasets import guess_benchmark
from hmr_bench.predictions import PredictionError, Predictions
from hmr_bench.protocols.config import ProtocolConfig

__all__ = [
    "EvalResult",
    "Progress",
    "ProtocolError",
    "align_predictions",
    "check_image_keys",
    "confident",
    "resolve_config",
    "to_native",
]

Progress = Callable[[int], None]
"""Called with the number of images just finished (apps draw progress bars with it)."""


class ProtocolError(ValueError):
    """The input cannot be evaluated under the chosen protocol; the message says why."""


@dataclass(frozen=True, eq=False)
class EvalResult:
    """metrics: named results (errors in mm, rates as fractions) as the spec lists per
    benchmark; persons: per ground-truth person columns (N,) (image index, person index within
    the image, matched prediction row or -1, per-person metric values, NaN where undefined);
    image_keys index the `image` column; notes: caveats attached to these numbers."""

    benchmark: str
    config: ProtocolConfig
    metrics: dict[str, Any]
    persons: dict[str, np.ndarray]
    image_keys: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def mode(self) -> str:
        return self.config.mode


def confident(conf: np.ndarray, thresh: float, float32: bool) -> np.ndarray:
    """conf > thresh (N,) bool; with float32, as MA-HMR's float32 tensors compare with a Python
    float: both sides rounded to float32 (a float64 copy of float32(0.3) is not above 0.3)."""
    if float32:
        return np.asarray(conf).astype(np.float32) > np.float32(thresh)
    return np.asarray(conf) > thresh


def resolve_config(mode: str, config: ProtocolConfig | None) -> ProtocolConfig:
    """config if given (its mode must agree), else ProtocolConfig.for_mode(mode)."""
    if config is None:
        return ProtocolConfig.for_mode(mode)
    if config.mode != mode:
        raise ValueError(f"mode {mode!r} disagrees with config.mode {config.mode!r}")
    return config


def check_image_keys(predictions: Predictions, image_keys: tuple[str, ...], benchmark: str) -> None:
    """Raise if predictions hold image keys the ground truth does not have, saying which
    benchmark they look like when it is another one."""
    known = set(image_keys)
    unknown = [k for k in predictions.image_keys if k not in known]
    if not unknown:
        return
    other = guess_benchmark(unknown)
    hint = (
        f": they look like {other} image keys (predictions for another benchmark?)"
        if other not in (None, benchmark)
        else "; keys must equal the loader's image keys"
    )
    raise PredictionError(
        f"{len(unknown)} of {predictions.num_images} predicted image key(s) are not {benchmark} "
        f"ground-truth images, e.g. {unknown[:3]}{hint}"
    )


def align_predictions(
    predictions: Predictions, image_keys: tuple[str, ...], benchmark: str
) -> np.ndarray:
    """(I + 1,)-like table: for each ground-truth image, its prediction rows as (start, stop)
    pairs (I, 2); images without an entry get an empty range. Predictions for images the
    ground truth does not have raise (nothing is dropped silently)."""
    check_image_keys(predictions, image_keys, benchmark)
    ranges = np.zeros((len(image_keys), 2), np.int64)
    for i, key in enumerate(image_keys):
        rows = predictions.rows(key)
        ranges[i] = rows.start, rows.stop
    return ranges


def to_native(value: Any) -> Any:
    """numpy scalars -> Python numbers (for JSON)."""
    if isinstance(value, dict):
        return {k: to_native(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value
