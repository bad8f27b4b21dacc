"""Scale-adaptive token bookkeeping: grids, z-order, selection masks, packed/padded sequences.

Tokens of a batch are kept *packed*: one flat tensor, image after image, with per-token integer
metadata (image index, level, row and column on the level's grid). Attention runs either on a
padded batch (B, L_max, C) with a key-padding mask or on one packed sequence with a
block-diagonal mask; both give the same result (no attention across images).

Levels: 0 = 14 px cells (small people), 1 = 28 px cells (large people), 2 = 56 px cells
(background, the element-wise max of four 28 px tokens). Within each level tokens follow the
Morton (z-) order of their 28 px parent cells, as the official code, so the four children of a
56 px cell are consecutive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "TokenSet",
    "block_diagonal_mask",
    "concat_levels",
    "lvl1_cells",
    "morton_code",
    "pack",
    "select_tokens",
    "sequence_positions",
    "sibling_any",
    "unpack",
    "z_order_table",
]


@dataclass(frozen=True)
class TokenSet:
    """Metadata of packed tokens; all (N,) int64 tensors, `batch` non-decreasing."""

    batch: Tensor
    level: Tensor
    row: Tensor
    col: Tensor

    def __len__(self) -> int:
        return int(self.batch.shape[0])

    def subset(self, index: Tensor) -> TokenSet:
        """Tokens at a boolean mask or index tensor, order kept."""
        return TokenSet(self.batch[index], self.level[index], self.row[index], self.col[index])

    def lengths(self, num_images: int) -> Tensor:
        """(B,) number of tokens of each image."""
        return torch.bincount(self.batch, minlength=num_images)


def morton_code(row: Tensor, col: Tensor) -> Tensor:
    """Z-order key of grid cells: column bit i -> bit 2i, row bit i -> bit 2i + 1."""
    code = torch.zeros_like(row)
    num_bits = int(torch.maximum(row.max(), col.max())).bit_length() if row.numel() else 0
    for bit in range(num_bits):
        code |= ((col >> bit) & 1) << (2 * bit) | ((row >> bit) & 1) << (2 * bit + 1)
    return code


def z_order_table(depth: int) -> tuple[Tensor, Tensor, Tensor]:
    """The official `z_order_map`, `y_coords`, `x_coords` buffers: (2^depth, 2^depth) int64."""
    ys, xs = torch.meshgrid(torch.arange(1 << depth), torch.arange(1 << depth), indexing="ij")
    return morton_code(ys, xs), ys.clone(), xs.clone()


def lvl1_cells(grid_sizes: Tensor) -> TokenSet:
    """All 28 px cells of every image, each image in z-order.

    Args:
        grid_sizes: (B, 2) int64 (rows, cols) of each image's own 28 px grid.
    """
    batch, rows, cols = [], [], []
    for b, (h, w) in enumerate(grid_sizes.tolist()):
        r, c = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        r, c = r.flatten(), c.flatten()
        order = torch.argsort(morton_code(r, c))
        rows.append(r[order])
        cols.append(c[order])
        batch.append(torch.full((h * w,), b, dtype=torch.int64))
    device = grid_sizes.device
    row, col = torch.cat(rows).to(device), torch.cat(cols).to(device)
    return TokenSet(torch.cat(batch).to(device), torch.ones_like(row), row, col)


def sibling_any(mask: Tensor) -> Tensor:
    """(B, H, W) bool with H, W even -> True where any cell of its 2x2 group is True."""
    b, h, w = mask.shape
    groups = mask.reshape(b, h // 2, 2, w // 2, 2).any(dim=4).any(dim=2)  # (B, H/2, W/2)
    return groups.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)


def select_tokens(
    conf: Tensor,
    scale: Tensor,
    inside: Tensor,
    conf_thresh: float,
    scale_thresh: float,
    merge_early_exit: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """Which 28 px cells become 14 px tokens, stay 28 px, or merge into 56 px tokens.

    Args:
        conf, scale: (B, H1, W1) scale-map probabilities of every 28 px cell.
        inside: (B, H1, W1) bool, cells of each image's own (padded) grid.
        merge_early_exit: official defect: if no 2x2 group of the batch is background, keep
            every 28 px cell (small-person cells are then encoded at 14 and 28 px).

    Returns:
        (to_lvl0, keep_lvl1, to_lvl2), each (B, H1, W1) bool and inside the own grids:
        `to_lvl0 = conf > t_c & scale < t_s`; `keep_lvl1 = any-sibling-valid & ~to_lvl0`;
        `to_lvl2 = ~any-sibling-valid` (always whole 2x2 groups).
    """
    valid = (conf > conf_thresh) & inside
    to_lvl0 = valid & (scale < scale_thresh)
    group_valid = sibling_any(valid)
    to_lvl2 = ~group_valid & inside
    keep_lvl1 = group_valid & ~to_lvl0 & inside
    if merge_early_exit and not bool(to_lvl2.any()):
        keep_lvl1 = inside.clone()
    return to_lvl0, keep_lvl1, to_lvl2


def concat_levels(parts: Sequence[tuple[Tensor, TokenSet]]) -> tuple[Tensor, TokenSet]:
    """Merge packed token groups into one packed set ordered by image, then by group order."""
    x = torch.cat([p[0] for p in parts])
    meta = TokenSet(
        *(torch.cat([getattr(p[1], f) for p in parts]) for f in TokenSet.__dataclass_fields__)
    )
    order = torch.argsort(meta.batch, stable=True)
    return x[order], meta.subset(order)


def sequence_positions(batch: Tensor, num_images: int) -> tuple[Tensor, Tensor]:
    """Position of each packed token within its image's sequence, and the (B,) lengths."""
    lengths = torch.bincount(batch, minlength=num_images)
    starts = torch.cumsum(lengths, 0) - lengths
    return torch.arange(batch.shape[0], device=batch.device) - starts[batch], lengths


def pack(
    prefix: Tensor, tokens: Tensor, batch: Tensor, packed: bool
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Build the attention input [prefix_b, tokens_b] for every image b.

    Args:
        prefix: (B, C) one leading token per image (the camera token).
        tokens: (N, C) packed tokens; batch: (N,) their image index.
        packed: one sequence (1, B + N, C) with a block-diagonal mask, else a padded batch
            (B, 1 + L_max, C) with a key-padding mask.

    Returns:
        (sequence, attn_mask or None when nothing is masked, index): `index` (B + N,) gives
        the flat position in `sequence.flatten(0, 1)` of each prefix (first B) and token.
    """
    num_images = prefix.shape[0]
    pos, lengths = sequence_positions(batch, num_images)
    images = torch.arange(num_images, device=batch.device)
    if packed:
        starts = torch.cumsum(lengths + 1, 0) - (lengths + 1)
        index = torch.cat([starts, starts[batch] + 1 + pos])
        total = int(num_images + lengths.sum())
        segment = torch.repeat_interleave(images, lengths + 1, output_size=total)
        mask = block_diagonal_mask(segment) if num_images > 1 else None
        shape = (1, total)
    else:
        width = int(lengths.max()) + 1 if len(batch) else 1
        index = torch.cat([images * width, batch * width + 1 + pos])
        valid = torch.arange(width, device=batch.device)[None, :] <= lengths[:, None]
        mask = None if bool(valid.all()) else valid[:, None, None, :]
        shape = (num_images, width)
    sequence = prefix.new_zeros(shape[0] * shape[1], prefix.shape[1])
    sequence[index] = torch.cat([prefix, tokens.to(prefix.dtype)])
    return sequence.view(*shape, -1), mask, index


def unpack(sequence: Tensor, index: Tensor, num_images: int) -> tuple[Tensor, Tensor]:
    """Inverse of `pack`: (prefix (B, C), tokens (N, C)) from the attention output."""
    flat = sequence.flatten(0, 1)[index]
    return flat[:num_images], flat[num_images:]


def block_diagonal_mask(segment: Tensor) -> Tensor:
    """(T,) segment ids -> (1, 1, T, T) bool, True where query and key share a segment."""
    return (segment[:, None] == segment[None, :])[None, None]
