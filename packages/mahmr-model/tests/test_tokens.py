"""Scale-adaptive token bookkeeping: z-order, selection masks, packing."""

from __future__ import annotations

import itertools

import pytest
import torch

from mahmr_model.tokens import (
    block_diagonal_mask,
    lvl1_cells,
    morton_code,
    pack,
    select_tokens,
    unpack,
    z_order_table,
)


def _official_z_map(depth: int) -> torch.Tensor:
    """The official `build_z_map`, written as a plain loop over cells and bits."""
    size = 1 << depth
    z = torch.zeros(size, size, dtype=torch.int64)
    for y, x in itertools.product(range(size), repeat=2):
        for i in range(depth):
            z[y, x] |= ((x >> i) & 1) << (2 * i) | ((y >> i) & 1) << (2 * i + 1)
    return z


def test_z_order_table_matches_the_official_buffers() -> None:
    z_map, ys, xs = z_order_table(6)  # 64 x 64 = ceil(log2(46)) for the 1288 canvas
    assert torch.equal(z_map, _official_z_map(6))
    assert torch.equal(ys[:, 0], torch.arange(64)) and torch.equal(xs[0], torch.arange(64))


@pytest.mark.parametrize(("rows", "cols"), [(46, 46), (34, 46), (46, 6), (2, 2)])
def test_z_order_grouping_equals_2d_reshape(rows: int, cols: int) -> None:
    """Consecutive quadruples in z-order are exactly the 2x2 groups of a 2D reshape, in raster
    order within each group."""
    cells = lvl1_cells(torch.tensor([[rows, cols]]))
    by_z = torch.stack([cells.row, cells.col], -1).reshape(-1, 4, 2)
    grid_r, grid_c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    groups = torch.stack([grid_r, grid_c], -1).reshape(rows // 2, 2, cols // 2, 2, 2)
    groups = groups.permute(0, 2, 1, 3, 4).reshape(-1, 4, 2)  # 2x2 groups, raster inside
    as_sets = lambda g: {tuple(map(tuple, q.tolist())) for q in g}  # noqa: E731
    assert as_sets(by_z) == as_sets(groups)
    assert torch.equal(
        by_z[:, :, 0] - by_z[:, :1, 0], torch.tensor([0, 0, 1, 1]).expand(len(by_z), 4)
    )
    assert torch.equal(
        by_z[:, :, 1] - by_z[:, :1, 1], torch.tensor([0, 1, 0, 1]).expand(len(by_z), 4)
    )
    assert torch.all(morton_code(cells.row, cells.col).diff() > 0)


def _select_loop(conf, scale, inside, tc, ts):
    """Cell-by-cell oracle of `select_tokens` (no early exit)."""
    b_, h, w = conf.shape
    out = [torch.zeros_like(inside) for _ in range(3)]
    for b, r, c in itertools.product(range(b_), range(h), range(w)):
        if not inside[b, r, c]:
            continue
        r0, c0 = r - r % 2, c - c % 2
        group_valid = any(
            bool(conf[b, r0 + i, c0 + j] > tc) for i, j in itertools.product(range(2), repeat=2)
        )
        small = bool(conf[b, r, c] > tc) and bool(scale[b, r, c] < ts)
        out[0][b, r, c] = small
        out[1][b, r, c] = group_valid and not small
        out[2][b, r, c] = not group_valid
    return out


def test_selection_masks_against_a_loop() -> None:
    generator = torch.Generator().manual_seed(0)
    conf = torch.rand(3, 8, 10, generator=generator) ** 3
    scale = torch.rand(3, 8, 10, generator=generator)
    inside = torch.ones(3, 8, 10, dtype=torch.bool)
    inside[1, 6:] = False
    inside[2, :, 4:] = False
    got = select_tokens(conf, scale, inside, 0.3, 0.5)
    for mask, expected in zip(got, _select_loop(conf, scale, inside, 0.3, 0.5), strict=True):
        assert torch.equal(mask, expected)
    # each inside cell goes exactly to one level (lvl2 by whole groups)
    total = got[0].int() + got[1].int() + got[2].int()
    assert torch.equal(total, inside.int())


def test_merge_early_exit_keeps_every_lvl1_cell() -> None:
    conf = torch.full((1, 4, 4), 0.9)
    scale = torch.full((1, 4, 4), 0.9)
    scale[0, 0, 0] = 0.1  # one small-person cell, no background group anywhere
    inside = torch.ones(1, 4, 4, dtype=torch.bool)
    to0, keep1, to2 = select_tokens(conf, scale, inside, 0.3, 0.5)
    assert int(to0.sum()) == 1 and int(keep1.sum()) == 15 and int(to2.sum()) == 0
    to0, keep1, _ = select_tokens(conf, scale, inside, 0.3, 0.5, merge_early_exit=True)
    assert int(to0.sum()) == 1 and int(keep1.sum()) == 16  # the official defect: encoded twice


@pytest.mark.parametrize("packed", [False, True])
def test_pack_unpack_round_trip(packed: bool) -> None:
    prefix = torch.arange(3 * 2, dtype=torch.float32).view(3, 2)
    batch = torch.tensor([0, 0, 0, 2, 2])  # image 1 has no tokens
    tokens = 100 + torch.arange(5 * 2, dtype=torch.float32).view(5, 2)
    sequence, mask, index = pack(prefix, tokens, batch, packed)
    assert sequence.shape == ((1, 8, 2) if packed else (3, 4, 2))
    p, t = unpack(sequence, index, 3)
    assert torch.equal(p, prefix) and torch.equal(t, tokens)
    if packed:
        assert torch.equal(mask, block_diagonal_mask(torch.tensor([0, 0, 0, 0, 1, 2, 2, 2])))
    else:
        assert mask[:, 0, 0].tolist() == [
            [True] * 4,
            [True, False, False, False],
            [True] * 3 + [False],
        ]
