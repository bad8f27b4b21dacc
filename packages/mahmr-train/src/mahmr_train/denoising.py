"""Denoising queries of stage 1 (spec 7; DN-DETR / DINO), fed to the model's `denoising=` input.

With K_b people in image b, K = max_b K_b and G groups, every image gets 2 G K denoising queries
in chunks of K: chunk 2g holds noised copies of the people (positives of group g), chunk 2g + 1
more strongly noised copies (negatives); slots of images with fewer people stay empty (zero
content, zero anchor logits). Positive query (g, t) is supervised by person t.

Noise: each box corner coordinate moves by `sign u (half the box extent) box_noise`, and each
content entry (axis-angle pose, betas) by `sign u content_noise`, with a random sign and
u ~ U[0, 1) for positives, U[1, 2) for negatives.

Attention mask (True = blocked): the learned (matching) queries see no denoising query; each
group sees no other group; denoising queries see the learned queries.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchvision.ops import box_convert

from mahmr_model import DenoisingQueries
from mahmr_model.layers import logit

from .config import DenoisingConfig
from .matcher import Assignment
from .targets import Targets

__all__ = ["DenoisingPlan", "build_denoising", "denoising_mask"]


@dataclass(frozen=True)
class DenoisingPlan:
    """What the loss needs to know about the denoising queries of a batch.

    Attributes:
        queries: the model input.
        assignment: positive query index -> person (fixed matching).
        positives: (B, 2 G K) bool, the positive slots holding a person.
        groups: G.
    """

    queries: DenoisingQueries
    assignment: Assignment
    positives: Tensor
    groups: int

    @property
    def size(self) -> int:
        return int(self.positives.shape[1])


def denoising_mask(num_denoising: int, group_size: int, num_queries: int) -> Tensor:
    """(D + Q, D + Q) bool attention mask, True where a query may NOT attend to a key.

    D = groups x group_size denoising queries first, then Q learned queries."""
    total = num_denoising + num_queries
    blocked = torch.zeros(total, total, dtype=torch.bool)
    blocked[num_denoising:, :num_denoising] = True
    group = torch.arange(num_denoising) // group_size
    blocked[:num_denoising, :num_denoising] = group[:, None] != group[None, :]
    return blocked


def _signed_noise(shape: tuple[int, ...], negative: Tensor, generator: torch.Generator) -> Tensor:
    """sign * u with u ~ U[0, 1) (positives) or U[1, 2) (negatives); `negative` broadcasts."""
    sign = torch.randint(0, 2, shape, generator=generator).float() * 2 - 1
    u = torch.rand(shape, generator=generator) + negative.float()
    return sign * u


def build_denoising(
    targets: Targets,
    dn_encoder: nn.Module,
    config: DenoisingConfig,
    num_queries: int,
    generator: torch.Generator,
    pgt_content: bool = False,
) -> DenoisingPlan | None:
    """Denoising queries for a batch (None when the batch has nobody).

    Args:
        targets: the batch's ground truth (`boxes`, `poses`, `betas`, `has_3d`, `has_smpl`).
        dn_encoder: the model's `dn_enc` (Linear(72 + K_betas, C)).
        generator: CPU generator of the noise (seeded per step for exact resumption).
        pgt_content: official behaviour (#17): content from the (pseudo-)GT pose and shape of
            every image; otherwise only 3D-supervised images carry their pose and shape.
    """
    device = targets.boxes.device
    batch, max_people = targets.mask.shape
    if max_people == 0 or not bool(targets.mask.any()):
        return None
    groups = config.groups
    chunk = max_people
    size = 2 * groups * chunk
    # slot layout (B, G, 2, K): group, positive / negative, person
    person = targets.mask[:, None, None, :].expand(batch, groups, 2, chunk).cpu()
    negative = torch.zeros(1, 1, 2, 1, 1, dtype=torch.bool)
    negative[:, :, 1] = True

    boxes = targets.boxes.float().cpu()[:, None, None].expand(batch, groups, 2, chunk, 4)
    corners = box_convert(boxes, "cxcywh", "xyxy")
    half = torch.cat([boxes[..., 2:] / 2, boxes[..., 2:] / 2], dim=-1)
    corners = corners + _signed_noise(corners.shape, negative, generator) * half * config.box_noise
    noised = box_convert(corners.clamp(0.0, 1.0), "xyxy", "cxcywh")
    anchors = torch.where(person[..., None], logit(noised), torch.zeros(()))

    use = targets.has_smpl if pgt_content else targets.has_smpl & targets.has_3d
    content = torch.cat([targets.poses.float(), targets.betas.float()], dim=-1).cpu()
    content = content * use.cpu()[:, None, None].float()
    content = content[:, None, None].expand(batch, groups, 2, chunk, content.shape[-1])
    content = content + _signed_noise(content.shape, negative, generator) * config.content_noise
    encoded = dn_encoder(content.to(device)) * person[..., None].to(device)

    positives = (person & ~negative[..., 0]).reshape(batch, size)
    b_idx, slot = positives.nonzero(as_tuple=True)
    target = slot % chunk
    queries = DenoisingQueries(
        content=encoded.reshape(batch, size, -1),
        anchors=anchors.reshape(batch, size, 4).to(device),
        blocked=denoising_mask(size, 2 * chunk, num_queries).to(device),
    )
    assignment = Assignment(b_idx.to(device), slot.to(device), target.to(device))
    return DenoisingPlan(queries, assignment, positives.to(device), groups)
