"""The losses of MA-HMR (spec 9) and their aggregation over decoder layers and denoising queries.

Every term is a sum over its elements divided by a normaliser that is averaged over processes
(`reduce`), so that a step on W processes with batch B equals one step on one process with
batch W B. Terms are gated per image by the supervision it has: `has_3d` (pose, shape, 3D
joints, depths, relative metric), `has_camera` (FoV), depth layers (ordinal), `detect_all`
(negatives of the detection and scale-map focal losses).

Per-element functions (`focal_terms`, `box_l1`, ...) are public so that each is tested against a
hand-computed value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import box_convert, sigmoid_focal_loss

from mahmr_model import LayerOutput, MAHMROutput
from mahmr_model.geometry import axis_angle_to_matrix, fov_from_focal, matrix_to_axis_angle

from .config import CompatConfig, LossConfig, MatcherConfig
from .denoising import DenoisingPlan
from .matcher import Assignment, generalized_box_iou, hungarian_match, match_cost
from .targets import Targets

__all__ = [
    "Criterion",
    "LossOutput",
    "betas_l1",
    "box_l1",
    "focal_terms",
    "fov_terms",
    "giou_terms",
    "inverse_depth_l1",
    "joints2d_l1",
    "joints3d_l1",
    "ordinal_depth_terms",
    "pose_l1",
    "relative_metric_terms",
]

Reduce = Callable[[Tensor], Tensor]
THREE_D_TERMS = ("poses", "betas", "j3ds", "depths", "depths_mt")


# ----------------------------------------------------------------------------------------------
# per-element terms


def focal_terms(logits: Tensor, labels: Tensor, alpha: float, gamma: float) -> Tensor:
    """Sigmoid focal loss per element from logits: -alpha_t (1 - p_t)^gamma log p_t."""
    return sigmoid_focal_loss(logits.float(), labels.float(), alpha, gamma, reduction="none")


def box_l1(pred: Tensor, gt: Tensor) -> Tensor:
    """(M, 4), (M, 4) -> (M,) L1 distance summed over (cx, cy, w, h)."""
    return (pred - gt).abs().sum(-1)


def giou_terms(pred: Tensor, gt: Tensor) -> Tensor:
    """(M, 4), (M, 4) cxcywh -> (M,) 1 - GIoU."""
    a, b = box_convert(pred, "cxcywh", "xyxy"), box_convert(gt, "cxcywh", "xyxy")
    return 1 - generalized_box_iou(a[:, None], b[:, None])[:, 0, 0]


def pose_l1(pred_rotmats: Tensor, gt_pose: Tensor, axis_angle: bool = False) -> Tensor:
    """(M, 24, 3, 3) predicted rotations, (M, 72) GT axis-angle -> (M,) mean absolute error.

    Default: over the 24 x 9 rotation-matrix entries (continuous everywhere). `axis_angle`: the
    official loss over the 72 axis-angle numbers (discontinuous near pi, defect #8)."""
    gt = gt_pose.reshape(-1, 24, 3)
    if axis_angle:
        return (matrix_to_axis_angle(pred_rotmats) - gt).abs().flatten(1).mean(-1)
    return (pred_rotmats - axis_angle_to_matrix(gt)).abs().flatten(1).mean(-1)


def betas_l1(pred: Tensor, gt: Tensor, weights: Tensor) -> Tensor:
    """(M, K), (M, K), (K,) -> (M,) mean_k w_k |pred_k - gt_k|."""
    return (weights * (pred - gt).abs()).mean(-1)


def joints3d_l1(pred: Tensor, gt: Tensor) -> Tensor:
    """(M, J, 3) -> (M,) mean absolute error of root-relative joints (root = joint 0)."""
    return ((pred - pred[:, :1]) - (gt - gt[:, :1])).abs().flatten(1).mean(-1)


def joints2d_l1(pred: Tensor, gt: Tensor, mask: Tensor, canvas: int) -> Tensor:
    """(M, J, 2) px, (M, J) bool -> (M,) mean over all 2J entries of |pred - gt| mask / S."""
    return ((pred - gt).abs() * mask[..., None]).flatten(1).mean(-1) / canvas


def inverse_depth_l1(
    pred_depth: Tensor, pred_focal: Tensor, gt_focal: Tensor, gt_depth: Tensor
) -> Tensor:
    """(M,) -> (M,) |1 / (d~ + 1e-8) - 1 / (d + 1e-8)| with d~ = f_gt d_pred / f_pred, the depth the
    prediction would have with the GT focal length."""
    rescaled = gt_focal * pred_depth / pred_focal
    return (1 / (rescaled + 1e-8) - 1 / (gt_depth + 1e-8)).abs()


def _pairs(image: Tensor) -> tuple[Tensor, Tensor]:
    """Index pairs (i < j) of elements sharing an image; `image` (M,) sorted."""
    same = (image[:, None] == image[None, :]).triu(1)
    return same.nonzero(as_tuple=True)


def relative_metric_terms(
    pred_depth: Tensor, gt_depth: Tensor, image: Tensor, tau: float, per_image: bool
) -> tuple[Tensor, Tensor]:
    """Relative metric loss L_rm: (sum, count) over pairs i < j of one image with
    |d_j - d_i| <= tau of log(1 + |(d^_j - d^_i) - (d_j - d_i)|).

    `per_image`: each image's pairs are averaged first; count = images with a pair (fixed);
    otherwise count = pairs (official #4: crowded images dominate)."""
    i, j = _pairs(image)
    gap = gt_depth[j] - gt_depth[i]
    keep = gap.abs() <= tau
    i, j, gap = i[keep], j[keep], gap[keep]
    terms = torch.log1p(((pred_depth[j] - pred_depth[i]) - gap).abs())
    if not per_image:
        return terms.sum(), torch.tensor(float(len(terms)), device=terms.device)
    pair_image = image[i]
    sums = torch.zeros(int(image.max()) + 1 if len(image) else 0, device=terms.device)
    counts = torch.zeros_like(sums)
    sums = sums.index_add(0, pair_image, terms)
    counts = counts.index_add(0, pair_image, torch.ones_like(terms))
    has = counts > 0
    return (sums[has] / counts[has]).sum(), has.sum().float()


def ordinal_depth_terms(pred_depth: Tensor, layers: Tensor, image: Tensor) -> tuple[Tensor, Tensor]:
    """Ordinal depth loss of Relative Human: (sum, count) over pairs i < j of one image with known
    layers; Delta = d^_j - d^_i: same layer |Delta|, j in front log(1 + e^Delta), j behind
    log(1 + e^-Delta)."""
    i, j = _pairs(image)
    keep = (layers[i] >= 0) & (layers[j] >= 0)
    i, j = i[keep], j[keep]
    delta = pred_depth[j] - pred_depth[i]
    terms = torch.where(
        layers[j] == layers[i],
        delta.abs(),
        torch.where(layers[j] < layers[i], F.softplus(delta), F.softplus(-delta)),
    )
    return terms.sum(), torch.tensor(float(len(terms)), device=terms.device)


def fov_terms(pred_fov: Tensor, gt_fov: Tensor, overestimate: float) -> Tensor:
    """(B,) -> (B,) w (fov^ - fov)^2, w = `overestimate` when fov^ > fov, else 1."""
    weight = torch.where(pred_fov > gt_fov, overestimate, 1.0)
    return weight * (pred_fov - gt_fov) ** 2


# ----------------------------------------------------------------------------------------------
# aggregation


@dataclass(frozen=True)
class LossOutput:
    """`total` (weighted sum, differentiable) and every unweighted term by key (`name`,
    `name.<layer>` for auxiliary layers, `name_dn`, `name_dn.<layer>`)."""

    total: Tensor
    terms: dict[str, Tensor]
    assignment: Assignment


def _identity(x: Tensor) -> Tensor:
    return x


class _Normaliser:
    """n -> reduce(n) clamped at 1: a count averaged over processes (spec 9.2)."""

    def __init__(self, reduce: Reduce, device: torch.device) -> None:
        self.reduce, self.device = reduce, device

    def __call__(self, n: Tensor | float) -> Tensor:
        value = torch.as_tensor(n, dtype=torch.float32, device=self.device)
        return self.reduce(value).clamp(min=1.0)


class Criterion:
    """Matches queries to people and computes the weighted loss of a forward pass.

    Args:
        config: weights and constants; compat: official defects to reproduce;
        matcher: matching costs; canvas: the canvas side S (px).
    """

    def __init__(
        self, config: LossConfig, compat: CompatConfig, matcher: MatcherConfig, canvas: int
    ) -> None:
        self.config = config
        self.compat = compat
        self.matcher = matcher
        self.canvas = canvas
        self.weights = config.weights.active()

    # -- matching --------------------------------------------------------------------------
    def match(self, layer: LayerOutput, targets: Targets, start: int) -> Assignment:
        """Hungarian assignment of the learned queries (from index `start`) of one layer."""
        if layer.joints_2d is None:
            raise ValueError("matching needs 2D joints: run the model with body_layers='all'")
        mask = targets.joints_2d_mask
        if self.compat.j2d_mask_all:
            mask = torch.ones_like(mask)
        cost = match_cost(
            layer.conf_logits[:, start:],
            layer.boxes[:, start:],
            layer.joints_2d[:, start:],
            targets.boxes,
            targets.joints_2d,
            mask,
            self.canvas,
            self.matcher,
            self.config.focal_alpha,
            self.config.focal_gamma,
        )
        a = hungarian_match(cost, targets.num_people)
        return Assignment(a.batch, a.query + start, a.target)

    # -- one layer -------------------------------------------------------------------------
    def layer_terms(
        self,
        layer: LayerOutput,
        targets: Targets,
        assignment: Assignment,
        queries: slice,
        reduce: Reduce,
        *,
        intrinsics: Tensor | None,
        copies: int = 1,
        detect_all_mask: bool = True,
    ) -> dict[str, Tensor]:
        """Unweighted terms of one layer's queries `queries` with the given assignment.

        Args:
            intrinsics: the predicted K (B, 3, 3) for the depth terms (every layer uses the
                forward's camera).
            copies: each person is matched `copies` times (denoising groups): normalisers x G.
            detect_all_mask: confidence negatives only in detect-all images (False for DN).
        """
        cfg, compat, out = self.config, self.compat, {}
        w = self.weights
        b, q, t = assignment.batch, assignment.query, assignment.target
        device = layer.boxes.device
        count = _Normaliser(reduce, device)
        people = targets.num_people.sum() * copies

        if "confs" in w:
            logits = layer.conf_logits[:, queries].float()
            labels = torch.zeros_like(logits)
            labels[b, q - queries.start] = 1.0
            if detect_all_mask:
                valid = targets.detect_all[:, None].expand_as(logits).clone()
                valid[b, q - queries.start] = True
            else:
                valid = torch.ones_like(logits, dtype=torch.bool)
            terms = focal_terms(logits, labels, cfg.focal_alpha, cfg.focal_gamma)
            out["confs"] = (terms * valid).sum() / count(valid.sum())

        pred_boxes, gt_boxes = layer.boxes[b, q].float(), targets.boxes[b, t].float()
        if "boxes" in w:
            out["boxes"] = box_l1(pred_boxes, gt_boxes).sum() / count(people)
        if "giou" in w:
            out["giou"] = giou_terms(pred_boxes, gt_boxes).sum() / count(people)
        if "j2ds" in w:
            mask = targets.joints_2d_mask[b, t]
            if compat.j2d_mask_all:
                mask = torch.ones_like(mask)
            terms = joints2d_l1(layer.joints_2d[b, q], targets.joints_2d[b, t], mask, self.canvas)
            out["j2ds"] = terms.sum() / count(people)

        # 3D terms only on the pairs of 3D-supervised images (selected, so that whatever a
        # 2D-only image holds in its 3D fields never reaches a value or a gradient)
        keep = targets.has_3d[b]
        b3, q3, t3 = b[keep], q[keep], t[keep]
        people_3d = (targets.num_people * targets.has_3d).sum() * copies
        if "poses" in w:
            terms = pose_l1(layer.rotmats[b3, q3], targets.poses[b3, t3], compat.pose_axis_angle)
            out["poses"] = terms.sum() / count(people_3d)
        if "betas" in w:
            weights = torch.tensor(cfg.betas_weights[: layer.betas.shape[-1]], device=device)
            terms = betas_l1(layer.betas[b3, q3], targets.betas[b3, t3], weights)
            out["betas"] = terms.sum() / count(people_3d)
        if "j3ds" in w:
            terms = joints3d_l1(layer.joints[b3, q3], targets.joints_3d[b3, t3])
            out["j3ds"] = terms.sum() / count(people_3d)

        # fixed: the predicted pelvis z, the quantity of the GT; official: translation z (#7)
        source = layer.transl[..., 2] if compat.depth_transl else layer.joints[..., 0, 2]
        if "depths" in w and intrinsics is not None:
            terms = inverse_depth_l1(
                source[b3, q3], intrinsics[b3, 0, 0], targets.intrinsics[b3, 0, 0],
                targets.depths[b3, t3],
            )  # fmt: skip
            out["depths"] = terms.sum() / count(people_3d)
        if "depths_mt" in w:
            total, n = relative_metric_terms(
                source[b3, q3],
                targets.depths[b3, t3],
                b3,
                cfg.rm_tau,
                per_image=not compat.rm_pairs_batch_mean,
            )
            out["depths_mt"] = total / count(n)
        if "depths_re" in w:
            total, n = ordinal_depth_terms(source[b, q], targets.depth_layers[b, t], b)
            out["depths_re"] = total / count(n)
        return out

    def image_terms(
        self, output: MAHMROutput, targets: Targets, reduce: Reduce
    ) -> dict[str, Tensor]:
        """Once per forward: FoV (final camera) and the scale map."""
        cfg, w, out = self.config, self.weights, {}
        device = output.intrinsics.device
        count = _Normaliser(reduce, device)
        if "fov" in w:
            height = targets.image_sizes[:, 0].float()
            if self.compat.fov_sum:
                gt_fov = fov_from_focal(targets.intrinsics[:, 0, 0].float(), height)
            else:
                gt_fov = fov_from_focal(targets.intrinsics[:, 1, 1].float(), height)
            terms = fov_terms(output.fov.float(), gt_fov, cfg.fov_overestimate) * targets.has_camera
            if self.compat.fov_sum:
                out["fov"] = terms.sum()
            else:
                out["fov"] = terms.sum() / count(targets.has_camera.sum()) * cfg.fov_reference_batch
        if ("map_confs" in w or "map_scales" in w) and output.scale_logits is not None:
            logits = output.scale_logits.float()
            inside = output.scale_inside
            presence, scale = targets.scale_map[..., 0], targets.scale_map[..., 1]
            positive = (presence > 0.5) & inside
            if "map_confs" in w:
                valid = inside & (positive | targets.detect_all[:, None, None])
                terms = focal_terms(logits[..., 0], presence, cfg.focal_alpha, cfg.focal_gamma)
                out["map_confs"] = (terms * valid).sum() / count(valid.sum())
            if "map_scales" in w:
                terms = (logits[..., 1].sigmoid() - scale).abs()
                out["map_scales"] = (terms * positive).sum() / count(positive.sum())
        return out

    # -- everything ------------------------------------------------------------------------
    def __call__(
        self,
        output: MAHMROutput,
        targets: Targets,
        denoising: DenoisingPlan | None = None,
        reduce: Reduce = _identity,
    ) -> LossOutput:
        """Match every layer (learned queries), compute every term, weight and sum them."""
        start = output.num_denoising
        learned = slice(start, None)
        layers = output.layers
        terms: dict[str, Tensor] = {}
        final_assignment = Assignment.empty(output.intrinsics.device)
        last = len(layers) - 1
        for i, layer in enumerate(layers):
            if i < last and not self.config.aux:
                continue
            assignment = self.match(layer, targets, start)
            suffix = "" if i == last else f".{i}"
            for name, value in self.layer_terms(
                layer, targets, assignment, learned, reduce, intrinsics=output.intrinsics
            ).items():
                terms[name + suffix] = value
            if i == last:
                final_assignment = assignment
            if denoising is not None:
                for name, value in self.layer_terms(
                    layer,
                    targets,
                    denoising.assignment,
                    slice(0, start),
                    reduce,
                    intrinsics=output.intrinsics,
                    copies=denoising.groups,
                    detect_all_mask=False,
                ).items():
                    terms[f"{name}_dn{suffix}"] = value
        terms.update(self.image_terms(output, targets, reduce))
        total = sum(
            (
                self.weights[key.split(".")[0].removesuffix("_dn")] * value
                for key, value in terms.items()
            ),
            start=torch.zeros((), device=output.intrinsics.device),
        )
        return LossOutput(total, terms, final_assignment)
