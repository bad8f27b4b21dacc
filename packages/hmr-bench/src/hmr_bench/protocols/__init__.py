"""The five benchmark protocols and `evaluate`, which loads data, predictions and models."""

from __future__ import annotations

import os
from typing import Any

from hmr_bench.body import BodyModels
from hmr_bench.datasets import BENCHMARKS, load_ground_truth
from hmr_bench.predictions import Predictions, read_predictions
from hmr_bench.protocols.common import EvalResult, Progress, ProtocolError, check_image_keys
from hmr_bench.protocols.config import MODES, ProtocolConfig
from hmr_bench.protocols.mesh import evaluate_hi4d, evaluate_pw3d
from hmr_bench.protocols.mupots import evaluate_mupots
from hmr_bench.protocols.panoptic import evaluate_panoptic
from hmr_bench.protocols.rh import evaluate_rh

__all__ = [
    "MODES",
    "EvalResult",
    "ProtocolConfig",
    "ProtocolError",
    "evaluate",
    "evaluate_ground_truth",
    "evaluate_hi4d",
    "evaluate_mupots",
    "evaluate_panoptic",
    "evaluate_pw3d",
    "evaluate_rh",
    "needs_body_models",
]

_PARAMS = ("betas", "pose", "transl")


def needs_body_models(benchmark: str, predictions: Predictions, config: ProtocolConfig) -> bool:
    """Whether evaluating needs the SMPL model files (and regressors): always for 3DPW and
    Hi4D, otherwise only to derive missing joints from meshes or SMPL parameters."""
    if benchmark in ("3dpw", "hi4d"):
        return True
    derivable = predictions.has("verts") or all(predictions.has(k) for k in _PARAMS)
    if benchmark in ("panoptic", "mupots"):
        return not predictions.has("h36m17") and derivable
    needs_kp = not predictions.has("kp2d")
    needs_pelvis = config.rh_depth_source == "pelvis" and not (
        predictions.has("pelvis") or predictions.has("h36m17")
    )
    return (needs_kp or needs_pelvis) and derivable


def evaluate_ground_truth(
    benchmark: str,
    ground_truth: Any,
    predictions: Predictions,
    config: ProtocolConfig,
    *,
    model_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> EvalResult:
    """Evaluate predictions on an already loaded ground truth (see `evaluate`)."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; known: {BENCHMARKS}")
    check_image_keys(predictions, ground_truth.image_keys, benchmark)  # before loading models
    models = None
    if needs_body_models(benchmark, predictions, config):
        models = BodyModels.load(model_dir, convention=config.h36m_regressor_convention)
    kwargs = {"config": config, "progress": progress, "models": models}
    if benchmark in ("3dpw", "hi4d"):
        kwargs["cache_dir"] = cache_dir
    evaluator = {
        "rh": evaluate_rh,
        "3dpw": evaluate_pw3d,
        "hi4d": evaluate_hi4d,
        "panoptic": evaluate_panoptic,
        "mupots": evaluate_mupots,
    }[benchmark]
    return evaluator(predictions, ground_truth, config.mode, **kwargs)  # type: ignore[operator]


def evaluate(
    benchmark: str,
    data_dir: str | os.PathLike[str],
    predictions: Predictions | str | os.PathLike[str],
    mode: str = "paper",
    *,
    config: ProtocolConfig | None = None,
    model_dir: str | os.PathLike[str] | None = None,
    layout: str = "auto",
    progress: Progress | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    **flags: Any,
) -> EvalResult:
    """Evaluate predictions (a Predictions object or a prediction file) on the test split of a
    benchmark stored in data_dir (official or processed layout, detected).

    mode "paper" reproduces the official evaluators, "clean" fixes their quirks; `flags`
    override single ProtocolConfig switches. model_dir holds the SMPL files and regressors
    (default $SMPL_MODEL_DIR), needed by 3DPW and Hi4D and to derive joints from meshes.
    cache_dir: 3DPW / Hi4D pose the ground truth once and keep it there (protocols.posed_gt,
    e.g. posed_gt.default_cache_dir()); None computes it every time.
    """
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; known: {BENCHMARKS}")
    if config is None:
        config = ProtocolConfig.for_mode(mode, **flags)
    else:
        if config.mode != mode:
            raise ValueError(f"mode {mode!r} disagrees with config.mode {config.mode!r}")
        config = config.replace(**flags)
    if not isinstance(predictions, Predictions):
        predictions = read_predictions(predictions)
    ground_truth = load_ground_truth(benchmark, data_dir, layout)  # type: ignore[arg-type]
    return evaluate_ground_truth(
        benchmark, ground_truth, predictions, config,
        model_dir=model_dir, progress=progress, cache_dir=cache_dir,
    )  # fmt: skip
