"""DAB-DETR decoder (Liu et al., ICLR 2022) as used by SAT-HMR / MA-HMR.

Queries are learned content vectors plus learned anchor boxes (cx, cy, w, h). Every layer
embeds the current anchors with sine functions, runs pre-norm self-attention, conditional
cross-attention (content and position halves concatenated per head) and an FFN, and refines
the anchors with its own box MLP. Layer 0 adds the query position to the content query and key
(`ca_qpos_proj`); later layers do not (`keep_query_pos=False`). Parameter names follow the
official checkpoints (`sa_*`, `ca_*`, `norm1..3`, `linear1/2`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import MLP, logit, sine_embedding_2d

__all__ = ["Decoder", "DecoderLayer"]


def _heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, N, C) -> (B, heads, N, C / heads)."""
    b, n, c = x.shape
    return x.view(b, n, num_heads, c // num_heads).transpose(1, 2)


def _merge(x: Tensor) -> Tensor:
    """(B, heads, N, D) -> (B, N, heads D)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


class DecoderLayer(nn.Module):
    """Pre-norm DAB-DETR decoder layer.

    Args:
        dim: width C; num_heads: attention heads; dim_feedforward: FFN hidden width.
        first: layer 0, which also owns `ca_qpos_proj`.
    """

    def __init__(self, dim: int, num_heads: int, dim_feedforward: int, first: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.first = first
        linear = lambda: nn.Linear(dim, dim)  # noqa: E731
        self.sa_qcontent_proj, self.sa_qpos_proj = linear(), linear()
        self.sa_kcontent_proj, self.sa_kpos_proj = linear(), linear()
        self.sa_v_proj, self.sa_out_proj = linear(), linear()
        self.norm1 = nn.LayerNorm(dim)
        self.ca_qcontent_proj = linear()
        self.ca_qpos_proj = linear() if first else None
        self.ca_kcontent_proj, self.ca_kpos_proj = linear(), linear()
        self.ca_v_proj, self.ca_qpos_sine_proj, self.ca_out_proj = linear(), linear(), linear()
        self.linear1 = nn.Linear(dim, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(
        self,
        x: Tensor,
        query_pos: Tensor,
        query_sine: Tensor,
        memory: Tensor,
        memory_pos: Tensor,
        memory_mask: Tensor | None,
        self_mask: Tensor | None,
    ) -> Tensor:
        """One layer.

        Args:
            x: (B, N, C) queries; query_pos, query_sine: (B, N, C) anchor embeddings.
            memory, memory_pos: (B, L, C) encoder tokens and their positional encodings.
            memory_mask: (B, 1, 1, L) bool, True for real (non-padding) memory tokens.
            self_mask: (B or 1, 1, N, N) bool, True where a query may attend to a query.
        """
        h = self.num_heads
        # self-attention: q = Wqc t + Wqp pos, k = Wkc t + Wkp pos, v = Wv t (head dim C/h)
        t = self.norm1(x)
        q = self.sa_qcontent_proj(t) + self.sa_qpos_proj(query_pos)
        k = self.sa_kcontent_proj(t) + self.sa_kpos_proj(query_pos)
        out = F.scaled_dot_product_attention(
            _heads(q, h), _heads(k, h), _heads(self.sa_v_proj(t), h), attn_mask=self_mask
        )
        x = x + self.sa_out_proj(_merge(out))

        # conditional cross-attention: per head [content | sine position] of width 2 C/h,
        # softmax scale 1/sqrt(2 C/h) (SDPA's default for that query width)
        t = self.norm2(x)
        q_content = self.ca_qcontent_proj(t)
        k_content = self.ca_kcontent_proj(memory)
        k_pos = self.ca_kpos_proj(memory_pos)
        if self.ca_qpos_proj is not None:
            q_content = q_content + self.ca_qpos_proj(query_pos)
            k_content = k_content + k_pos
        q = torch.cat([_heads(q_content, h), _heads(self.ca_qpos_sine_proj(query_sine), h)], -1)
        k = torch.cat([_heads(k_content, h), _heads(k_pos, h)], -1)
        out = F.scaled_dot_product_attention(
            q, k, _heads(self.ca_v_proj(memory), h), attn_mask=memory_mask
        )
        x = x + self.ca_out_proj(_merge(out))

        # feed-forward
        return x + self.linear2(F.relu(self.linear1(self.norm3(x))))


class Decoder(nn.Module):
    """Decoder layers, anchor-box machinery and one box-refinement MLP per layer.

    Args:
        dim, num_heads, dim_feedforward: layer sizes; num_layers: decoder depth.
    """

    def __init__(self, dim: int, num_heads: int, dim_feedforward: int, num_layers: int) -> None:
        super().__init__()
        self.dim = dim
        self.layers = nn.ModuleList(
            DecoderLayer(dim, num_heads, dim_feedforward, first=i == 0) for i in range(num_layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.query_scale = MLP(dim, dim, dim, 2)
        self.ref_point_head = MLP(2 * dim, dim, dim, 2)
        self.ref_anchor_head = MLP(dim, dim, 2, 2)
        self.box_heads = nn.ModuleList(MLP(dim, dim, 4, 3) for _ in range(num_layers))

    def init_weights(self) -> None:
        """Official init: xavier-uniform matrices, zero out-projection biases, zero box deltas."""
        for name, p in self.named_parameters():
            if p.dim() > 1 and not name.startswith("box_heads"):
                nn.init.xavier_uniform_(p)
        for layer in self.layers:
            nn.init.zeros_(layer.sa_out_proj.bias)
            nn.init.zeros_(layer.ca_out_proj.bias)
        for head in self.box_heads:
            nn.init.zeros_(head.layers[-1].weight)
            nn.init.zeros_(head.layers[-1].bias)

    def forward(
        self,
        queries: Tensor,
        anchors: Tensor,
        memory: Tensor,
        memory_pos: Tensor,
        memory_mask: Tensor | None,
        self_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Decode.

        Args:
            queries: (B, N, C) content queries; anchors: (B, N, 4) anchor boxes as logits of
                (cx, cy, w, h) normalised by the canvas side.
            memory, memory_pos, memory_mask, self_mask: as in `DecoderLayer.forward`.

        Returns:
            hs: (D, B, N, C) normalised outputs of every layer.
            boxes: (D, B, N, 4) refined boxes (cx, cy, w, h) in [0, 1] of every layer. Layer l's
                box is `sigmoid(box_head_l(hs_l) + logit(box_{l-1}))`; the next layer is fed the
                detached box, so layer l's box gradient reaches box heads l and l-1 only.
        """
        c = self.dim
        x = queries
        reference = anchors.sigmoid()  # fed to the layer (detached after layer 0)
        previous = reference  # box of the previous layer, not detached
        hs, boxes = [], []
        for i, layer in enumerate(self.layers):
            sine = torch.cat(
                [
                    sine_embedding_2d(reference[..., 0], reference[..., 1], c),
                    sine_embedding_2d(reference[..., 2], reference[..., 3], c),
                ],
                dim=-1,
            ).to(x.dtype)  # (B, N, 2C) = [emb(cy), emb(cx), emb(h), emb(w)]
            query_pos = self.ref_point_head(sine)
            centre = sine[..., :c] if i == 0 else sine[..., :c] * self.query_scale(x)
            # modulated HW attention: rescale the y half by h_ref / h and the x half by w_ref / w
            ref_wh = self.ref_anchor_head(x).sigmoid()
            y_half = centre[..., : c // 2] * (ref_wh[..., 1] / reference[..., 3])[..., None]
            x_half = centre[..., c // 2 :] * (ref_wh[..., 0] / reference[..., 2])[..., None]
            query_sine = torch.cat([y_half, x_half], dim=-1)

            x = layer(x, query_pos, query_sine, memory, memory_pos, memory_mask, self_mask)
            out = self.norm(x)
            delta = self.box_heads[i](out)
            refined = (delta + logit(reference)).sigmoid()
            hs.append(out)
            boxes.append((delta + logit(previous)).sigmoid())
            previous, reference = refined, refined.detach()
        return torch.stack(hs), torch.stack(boxes)
