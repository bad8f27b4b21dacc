"""mahmr_infer: MA-HMR over image files, shared by apps/infer, apps/demo and apps/eval.

Light at import (no torch): `inputs` checks arguments and paths before anything heavy loads.
The other modules import torch and mahmr_model: `loading` (model + body model), `runner`
(batched runs that skip unreadable images, stage timings), `records` (JSON, OBJ, hmr-bench
prediction fields), `benchmarks` (a benchmark's images through the model into a resumable
prediction cache).
"""

from .inputs import InputError

__version__ = "0.1.0"

__all__ = ["InputError"]
