"""The base of every torch adapter: a model in eval mode on a device, run in a dtype."""

from __future__ import annotations

from typing import Any

import torch

from .image import resolve_device

__all__ = ["TorchAdapter"]


class TorchAdapter:
    """Holds `model` in eval mode on `device` (CUDA when available if None) and its `config`.

    `dtype` float32 runs as is; bfloat16 / float16 run the forward under autocast, outputs are
    returned as float32 NumPy arrays either way.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        config: Any,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise ValueError(f"dtype must be float32, bfloat16 or float16, got {dtype}")
        self.config = config
        self.device = resolve_device(device)
        self.dtype = dtype
        self.model = model.to(self.device).eval()
