"""Small building blocks shared by the encoder, the decoder and the heads."""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .conventions import BOX_LOGIT_EPS, POS_TEMPERATURE

__all__ = ["MLP", "logit", "sine_embedding", "sine_embedding_2d"]


class MLP(nn.Module):
    """`num_layers` Linear layers in -> hidden -> ... -> hidden -> out, ReLU between them.

    The parameter names (`layers.i.weight`) are those of the official checkpoints.
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


def sine_embedding(a: Tensor, dim: int, temperature: float = POS_TEMPERATURE) -> Tensor:
    """DAB-DETR sine embedding of scalars in [0, 1]: (...,) -> (..., dim).

    `emb(a)_k = sin(2 pi a / T^(2 floor(k/2) / dim))` for even k and `cos(...)` for odd k.
    """
    k = torch.arange(dim, dtype=torch.float32, device=a.device)
    freqs = temperature ** (2 * torch.div(k, 2, rounding_mode="floor") / dim)
    angles = a.float()[..., None] * (2 * math.pi) / freqs  # (..., dim)
    return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=-1).flatten(-2)


def sine_embedding_2d(x: Tensor, y: Tensor, dim: int) -> Tensor:
    """Embedding of points (x, y) in [0, 1]^2: (...,), (...,) -> (..., dim) = [emb(y), emb(x)]."""
    return torch.cat([sine_embedding(y, dim // 2), sine_embedding(x, dim // 2)], dim=-1)


def logit(p: Tensor, eps: float = BOX_LOGIT_EPS) -> Tensor:
    """Inverse sigmoid with the input clamped to [eps, 1 - eps] (boxes stay finite)."""
    p = p.clamp(0.0, 1.0)
    return torch.log(p.clamp(min=eps) / (1.0 - p).clamp(min=eps))
