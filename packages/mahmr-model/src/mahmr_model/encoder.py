"""Scale-adaptive DINOv2 ViT encoder of SAT-HMR (Su et al., CVPR 2025), reused by MA-HMR.

A coarse pass over 28 px cells (copies of the first ViT blocks) predicts a per-cell scale map
(person presence, person size). Cells of small people are re-tokenised at 14 px, background
2x2 groups are max-pooled into 56 px tokens, large-person cells stay at 28 px, and the mixed
sequence runs through the remaining blocks. The ViT's CLS token serves as the camera token.
Blocks are timm's DINOv2 blocks (`vit_base_patch14_dinov2`), driven on packed or padded
variable-length sequences with `scaled_dot_product_attention` masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from timm.models.vision_transformer import Block
from torch import Tensor, nn

from .config import MAHMRConfig
from .layers import MLP
from .tokens import TokenSet, concat_levels, lvl1_cells, pack, select_tokens, unpack

__all__ = ["EncoderOutput", "SATEncoder", "patchify"]

_CHILD_OFFSETS = ((0, 0), (0, 1), (1, 0), (1, 1))  # (row, col) of 2x2 children, raster order


@dataclass(frozen=True)
class EncoderOutput:
    """Encoder outputs of a batch of B images.

    Attributes:
        features: (N, C) final-norm patch tokens, packed image after image.
        tokens: their levels and grid positions.
        camera: (B, C) final camera (CLS) token, before the final norm.
        scale_logits: (B, H1, W1, 2) scale-map logits (presence, scale) of every 28 px cell of
            the batch canvas, or None on the full-resolution path.
        inside: (B, H1, W1) bool, the cells of each image's own padded grid.
    """

    features: Tensor
    tokens: TokenSet
    camera: Tensor
    scale_logits: Tensor | None
    inside: Tensor


def patchify(images: Tensor, patch: int) -> Tensor:
    """(B, 3, H, W) -> (B, H/p, W/p, 3 p p) patches flattened in Conv2d weight order (c, y, x)."""
    b, c, h, w = images.shape
    x = images.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, h // patch, w // patch, c * patch * patch)


def _embed(patches: Tensor, conv: nn.Conv2d) -> Tensor:
    """The stride-p patch Conv2d applied to gathered patches: (N, 3 p p) -> (N, C)."""
    return F.linear(patches, conv.weight.flatten(1), conv.bias)


class SATEncoder(nn.Module):
    """DINOv2 ViT with scale-adaptive tokens.

    Args:
        config: model config (encoder width, depth, heads, patch, canvas, thresholds).
    """

    def __init__(self, config: MAHMRConfig) -> None:
        super().__init__()
        self.config = config
        dim, patch = config.embed_dim, config.patch_size
        block = partial(
            Block,
            dim=dim,
            num_heads=config.num_heads,
            mlp_ratio=config.mlp_ratio,
            qkv_bias=True,
            init_values=config.layer_scale_init,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
        )
        self.patch_embed_fine = nn.Conv2d(3, dim, patch, stride=patch)  # 14 px tokens
        self.patch_embed_coarse = nn.Conv2d(3, dim, patch, stride=patch)  # 28 px cells at 1/2
        grid = config.grid_sizes[0]
        self.pos_embed = nn.Parameter(torch.zeros(grid, grid, dim))  # on the 14 px grid
        self.camera_token = nn.Parameter(torch.zeros(1, dim))  # DINOv2 CLS + its position
        self.blocks = nn.ModuleList(block() for _ in range(config.depth))
        self.map_blocks = nn.ModuleList(block() for _ in range(config.num_map_blocks))
        for blk in (*self.blocks, *self.map_blocks):
            blk.attn.fused_attn = True  # SDPA with boolean masks (also if TIMM_FUSED_ATTN=0)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.map_norm = nn.LayerNorm(dim, eps=1e-6)
        self.scale_head = MLP(dim, dim, 2, 4)
        self.grad_checkpointing = False
        self._compiled: dict[str, list[nn.Module]] = {}

    # ----------------------------------------------------------------------------------------
    def init_weights(self) -> None:
        """timm ViT init; the coarse-pass copies start equal to their originals."""
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.camera_token, std=1e-6)
        self.copy_map_branch()

    @torch.no_grad()
    def copy_map_branch(self) -> None:
        """Initialise the coarse-pass copies from the main branch (as when built from DINOv2)."""
        for src, dst in zip(self.blocks, self.map_blocks, strict=False):
            dst.load_state_dict(src.state_dict())
        self.patch_embed_coarse.load_state_dict(self.patch_embed_fine.state_dict())
        self.map_norm.load_state_dict(self.norm.state_dict())

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def compile_blocks(self, **compile_kwargs: object) -> None:
        """Run the transformer blocks through `torch.compile` (dynamic sequence lengths)."""
        options = {"dynamic": True, **compile_kwargs}
        self._compiled = {
            name: [torch.compile(b, **options) for b in getattr(self, name)]
            for name in ("blocks", "map_blocks")
        }

    # ----------------------------------------------------------------------------------------
    def coarse_pos_embed(self) -> Tensor:
        """(G1, G1, C) position table of 28 px cells: bicubic resize of the 14 px table."""
        grid = self.config.grid_sizes[1]
        table = self.pos_embed.permute(2, 0, 1)[None].float()
        resized = F.interpolate(
            table, size=(grid, grid), mode="bicubic", align_corners=False, antialias=False
        )
        return resized[0].permute(1, 2, 0).to(self.pos_embed.dtype)

    def _run(
        self,
        name: str,
        start: int,
        stop: int,
        prefix: Tensor,
        tokens: Tensor,
        batch: Tensor,
        packed: bool,
    ) -> tuple[Tensor, Tensor]:
        """Blocks `name[start:stop]` on [prefix_b, tokens_b] of every image b."""
        blocks = self._compiled.get(name, getattr(self, name))[start:stop]
        sequence, mask, index = pack(prefix, tokens, batch, packed)
        for blk in blocks:
            if self.grad_checkpointing and self.training:
                sequence = torch.utils.checkpoint.checkpoint(
                    blk, sequence, mask, use_reentrant=False
                )
            else:
                sequence = blk(sequence, attn_mask=mask)
        return unpack(sequence, index, prefix.shape[0])

    def forward(
        self,
        pixels: Tensor,
        grid_sizes: Tensor,
        *,
        packed: bool = False,
        scale_map: Tensor | None = None,
        full_resolution: bool = False,
    ) -> EncoderOutput:
        """Encode a batch.

        Args:
            pixels: (B, 3, H, W) normalised images on a canvas whose sides are multiples of
                4 patches (56 px); each image at the top-left of its own padded grid.
            grid_sizes: (B, 2) int64 rows and columns of each image's own 28 px grid.
            packed: attention on one block-diagonal sequence instead of a padded batch.
            scale_map: (B, H1, W1, 2) probabilities that replace the predicted scale map for
                token selection (ground-truth maps in training); the logits are still returned.
            full_resolution: skip the scale map and run every 14 px token through all blocks
                (the baseline that scale-adaptive tokens accelerate).
        """
        num_images, _, height, width = pixels.shape
        patch, cfg = self.config.patch_size, self.config
        h1, w1 = height // (2 * patch), width // (2 * patch)
        inside = (
            torch.arange(h1, device=pixels.device)[None, :, None] < grid_sizes[:, 0, None, None]
        ) & (torch.arange(w1, device=pixels.device)[None, None, :] < grid_sizes[:, 1, None, None])
        if scale_map is not None and tuple(scale_map.shape) != (num_images, h1, w1, 2):
            raise ValueError(
                f"scale_map has shape {tuple(scale_map.shape)}, expected {(num_images, h1, w1, 2)}"
            )
        camera = self.camera_token.expand(num_images, -1)
        fine_patches = patchify(pixels, patch)  # (B, 2 H1, 2 W1, 3 p p)
        if full_resolution:
            return self._forward_full(fine_patches, grid_sizes, camera, inside, packed)

        # 1. every 28 px cell as one token: the cell averaged to 14 px (= bilinear 1/2 resize)
        cells = lvl1_cells(grid_sizes)
        coarse_patches = patchify(F.avg_pool2d(pixels, 2), patch)
        x1 = _embed(coarse_patches[cells.batch, cells.row, cells.col], self.patch_embed_coarse)
        x1 = x1 + self.coarse_pos_embed()[cells.row, cells.col]

        # 2. coarse pass through the block copies -> scale map
        camera1, x1 = self._run(
            "map_blocks", 0, cfg.num_map_blocks, camera, x1, cells.batch, packed
        )
        logits = self.scale_head(self.map_norm(x1))  # (N1, 2)
        scale_logits = logits.new_zeros(num_images, h1, w1, 2)
        scale_logits[cells.batch, cells.row, cells.col] = logits
        probs = scale_map if scale_map is not None else scale_logits.detach().float().sigmoid()
        to_lvl0, keep_lvl1, to_lvl2 = select_tokens(
            probs[..., 0],
            probs[..., 1],
            inside,
            cfg.conf_thresh,
            cfg.scale_thresh,
            cfg.merge_early_exit,
        )
        where = (cells.batch, cells.row, cells.col)

        # 3. small-person cells: four 14 px tokens each, through the main first blocks
        sat = cells.subset(to_lvl0[where])
        rows0 = torch.stack([2 * sat.row + dy for dy, _ in _CHILD_OFFSETS], 1).flatten()
        cols0 = torch.stack([2 * sat.col + dx for _, dx in _CHILD_OFFSETS], 1).flatten()
        batch0 = sat.batch.repeat_interleave(len(_CHILD_OFFSETS))
        x0 = _embed(fine_patches[batch0, rows0, cols0], self.patch_embed_fine)
        x0 = x0 + self.pos_embed[rows0, cols0]
        if len(batch0):
            _, x0 = self._run("blocks", 0, cfg.num_map_blocks, camera, x0, batch0, packed)
        lvl0 = TokenSet(batch0, torch.zeros_like(batch0), rows0, cols0)

        # 4. background 2x2 groups: element-wise max of the four coarse-pass tokens
        index1 = torch.full((num_images, h1, w1), -1, dtype=torch.long, device=pixels.device)
        index1[where] = torch.arange(len(cells), device=pixels.device)
        heads = cells.subset(to_lvl2[where] & (cells.row % 2 == 0) & (cells.col % 2 == 0))
        children = torch.stack(
            [index1[heads.batch, heads.row + dy, heads.col + dx] for dy, dx in _CHILD_OFFSETS], 1
        )
        x2 = x1[children].amax(dim=1)  # (N2, C)
        lvl2 = TokenSet(
            heads.batch, torch.full_like(heads.batch, 2), heads.row // 2, heads.col // 2
        )

        # 5. [camera, 14 px, kept 28 px, 56 px] per image through the remaining blocks
        kept = keep_lvl1[where]
        x, tokens = concat_levels([(x0, lvl0), (x1[kept], cells.subset(kept)), (x2, lvl2)])
        camera, x = self._run(
            "blocks", cfg.num_map_blocks, cfg.depth, camera1, x, tokens.batch, packed
        )
        return EncoderOutput(self.norm(x), tokens, camera, scale_logits, inside)

    def _forward_full(
        self, fine_patches: Tensor, grid_sizes: Tensor, camera: Tensor, inside: Tensor, packed: bool
    ) -> EncoderOutput:
        """Every 14 px token of each image's own grid through all blocks (no scale map)."""
        cells = lvl1_cells(grid_sizes)
        rows = torch.stack([2 * cells.row + dy for dy, _ in _CHILD_OFFSETS], 1).flatten()
        cols = torch.stack([2 * cells.col + dx for _, dx in _CHILD_OFFSETS], 1).flatten()
        batch = cells.batch.repeat_interleave(len(_CHILD_OFFSETS))
        x = (
            _embed(fine_patches[batch, rows, cols], self.patch_embed_fine)
            + self.pos_embed[rows, cols]
        )
        camera, x = self._run("blocks", 0, self.config.depth, camera, x, batch, packed)
        tokens = TokenSet(batch, torch.zeros_like(batch), rows, cols)
        return EncoderOutput(self.norm(x), tokens, camera, None, inside)
