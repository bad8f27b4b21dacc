"""hmr-bench: metrics, benchmark loaders and paper-style tables for multi-person 3D human mesh
recovery (Relative Human, 3DPW, CMU Panoptic, MuPoTS-3D, Hi4D). NumPy + SciPy; no torch."""

from importlib.metadata import PackageNotFoundError, version

from hmr_bench import metrics
from hmr_bench.datasets import BENCHMARKS, DatasetError, load_ground_truth
from hmr_bench.predictions import PredictionError, Predictions, read_predictions, write_predictions
from hmr_bench.protocols import EvalResult, ProtocolConfig, ProtocolError, evaluate
from hmr_bench.tables import format_like_mahmr, format_table, write_results

try:
    __version__ = version("hmr-bench")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = [
    "BENCHMARKS",
    "DatasetError",
    "EvalResult",
    "PredictionError",
    "Predictions",
    "ProtocolConfig",
    "ProtocolError",
    "__version__",
    "evaluate",
    "format_like_mahmr",
    "format_table",
    "load_ground_truth",
    "metrics",
    "read_predictions",
    "write_predictions",
    "write_results",
]
