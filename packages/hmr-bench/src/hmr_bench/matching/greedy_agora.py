"""AGORA-style 2D matching of predicted to ground-truth people (3DPW, Hi4D, Relative Human).

Cost of a (prediction, ground truth) pair: the matrix 2-norm (largest singular value, NOT the
Frobenius norm) of the K x 2 keypoint residual, restricted to the ground truth's valid joints for
Relative Human. Gate: IoU of the two keypoint bounding boxes with the +1 pixel convention
(width = x2 - x1 + 1, intersection likewise, clipped at 0), threshold 0.1 (3DPW / Hi4D) or 0.05
(RH). The +1 makes IoU depend on the pixel frame, so the frame is part of the protocol.

`greedy_match` reproduces `match_2d_greedy` (agora_evaluation; MA-HMR utils/evaluation.py; RH
RH_evaluation/matching.py): candidates in increasing cost; a candidate whose two members are free
and whose IoU >= threshold is a match and ends the round; a candidate with IoU < threshold ends
the round WITHOUT a match and increments a counter; one with a taken member is skipped within the
round. The loop runs while some ground truth is free and #matched preds + counter < #preds.
The counter counts low-IoU candidates, not real false positives, so it stops the loop early
(quirk B7): `fp_counter_quirk=False` skips low-IoU candidates instead and stops only when every
prediction or ground truth is matched or the candidates run out. The original also spins forever
once the candidates are exhausted; here the loop always stops there.

`hungarian_match` (clean alternative): among all one-to-one assignments on pairs with
IoU >= threshold, the one with the most matches, then the least total cost (scipy
linear_sum_assignment).

`match_keypoints_2d_images` matches many images at once (3DPW / Hi4D): the costs and IoUs of all
same-image pairs in one vectorised pass, then each image's small greedy loop in plain Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = [
    "IOU_THRESH_PW3D",
    "IOU_THRESH_RH",
    "DegenerateBoxError",
    "Matching",
    "box_iou_plus1",
    "greedy_match",
    "hungarian_match",
    "keypoint_boxes",
    "match_keypoints_2d",
    "match_keypoints_2d_images",
    "spectral_norm_cost",
]

IOU_THRESH_PW3D = 0.1
"""match_2d_greedy default (3DPW, Hi4D, AGORA)."""
IOU_THRESH_RH = 0.05
"""Relative Human evaluator."""


class DegenerateBoxError(ValueError):
    """A keypoint box with zero width or height reached the IoU test (the original asserts)."""


@dataclass(frozen=True, eq=False)
class Matching:
    """pairs (M, 2) int64 of (prediction, ground truth) in match order; unmatched predictions
    (false positives) and ground truths (misses), ascending."""

    pairs: np.ndarray
    unmatched_pred: np.ndarray
    unmatched_gt: np.ndarray

    @classmethod
    def from_pairs(cls, pairs: np.ndarray, num_pred: int, num_gt: int) -> Matching:
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        free_pred = np.ones(num_pred, bool)
        free_gt = np.ones(num_gt, bool)
        free_pred[pairs[:, 0]] = False
        free_gt[pairs[:, 1]] = False
        return cls(pairs, np.flatnonzero(free_pred), np.flatnonzero(free_gt))

    def gt_to_pred(self, num_gt: int) -> np.ndarray:
        """(G,) index of the prediction matched to each ground truth, -1 for a miss."""
        out = np.full(num_gt, -1, np.int64)
        out[self.pairs[:, 1]] = self.pairs[:, 0]
        return out


def keypoint_boxes(kps: np.ndarray) -> np.ndarray:
    """Tight boxes (N, 4) x1, y1, x2, y2 of keypoints (N, K, 2)."""
    kps = np.asarray(kps, dtype=np.float64)
    return np.concatenate([kps.min(axis=1), kps.max(axis=1)], axis=1)


def box_iou_plus1(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU (A, B) of boxes (A, 4), (B, 4) with the +1 pixel convention of agora_evaluation."""
    a = np.asarray(boxes_a, dtype=np.float64)[:, None, :]
    b = np.asarray(boxes_b, dtype=np.float64)[None, :, :]
    inter_w = np.maximum(
        0.0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1
    )
    inter_h = np.maximum(
        0.0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1
    )
    inter = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    return inter / (area_a + area_b - inter)


def spectral_norm_cost(
    pred: np.ndarray, gt: np.ndarray, gt_valid: np.ndarray | None = None
) -> np.ndarray:
    """Matrix 2-norm (P, G) of the residuals pred[p] - gt[g] (K x 2 px), rows where gt_valid
    (G, K) is False removed (zeroing a row leaves the singular values of the rest unchanged).

    Closed form: the square root of the largest eigenvalue of the 2 x 2 Gram matrix r^T r.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    r = pred[:, None] - gt[None, :]  # (P, G, K, 2)
    if gt_valid is not None:
        r = r * np.asarray(gt_valid, dtype=np.float64)[None, :, :, None]
    a = np.einsum("pgk,pgk->pg", r[..., 0], r[..., 0])
    c = np.einsum("pgk,pgk->pg", r[..., 1], r[..., 1])
    b = np.einsum("pgk,pgk->pg", r[..., 0], r[..., 1])
    return np.sqrt(0.5 * (a + c) + np.hypot(0.5 * (a - c), b))


def greedy_match(
    cost: np.ndarray,
    iou: np.ndarray,
    iou_thresh: float,
    fp_counter_quirk: bool = True,
    degenerate: np.ndarray | None = None,
) -> Matching:
    """Greedy matching on cost (P, G) gated by iou (P, G) >= iou_thresh; see the module doc.
    degenerate (P, G) bool marks pairs with a zero-size box: DegenerateBoxError is raised when
    one is reached (the original's assert), unless its IoU was already set to 0 by the caller."""
    cost = np.asarray(cost, dtype=np.float64)
    num_pred, num_gt = cost.shape
    if np.isnan(cost).any():
        raise ValueError("matching cost contains NaN (NaN keypoints?)")
    # plain Python on these small matrices: a few microseconds instead of numpy call overheads
    flat = cost.ravel().tolist()
    order = sorted(range(len(flat)), key=flat.__getitem__)  # stable: argmin's tie rule
    gated = (np.asarray(iou) >= iou_thresh).ravel().tolist()
    flat_box = None if degenerate is None else np.asarray(degenerate).ravel().tolist()
    pred_taken, gt_taken = [False] * num_pred, [False] * num_gt
    pairs: list[tuple[int, int]] = []
    fp_counter = k = 0
    while k < len(order) and len(pairs) < num_gt and len(pairs) + fp_counter < num_pred:
        while k < len(order):
            index = order[k]
            p, g = divmod(index, num_gt)
            k += 1
            if flat_box is not None and flat_box[index]:
                raise DegenerateBoxError(
                    f"prediction {p} / ground truth {g}: a keypoint box has zero width or height"
                )
            if gated[index] and not pred_taken[p] and not gt_taken[g]:
                pairs.append((p, g))
                pred_taken[p] = gt_taken[g] = True
                break
            if not gated[index] and fp_counter_quirk:
                fp_counter += 1
                break
    return Matching.from_pairs(np.array(pairs), num_pred, num_gt)


def hungarian_match(cost: np.ndarray, iou: np.ndarray, iou_thresh: float) -> Matching:
    """Most matches among pairs with iou >= iou_thresh, then least total cost (one-to-one).
    Pairs are listed in increasing cost."""
    cost = np.asarray(cost, dtype=np.float64)
    num_pred, num_gt = cost.shape
    if np.isnan(cost).any():
        raise ValueError("matching cost contains NaN (NaN keypoints?)")
    allowed = np.asarray(iou) >= iou_thresh
    if not allowed.any():
        return Matching.from_pairs(np.zeros((0, 2)), num_pred, num_gt)
    # a forbidden pair costs more than all allowed pairs together: the optimum uses as few as
    # possible (= maximum cardinality on allowed pairs), then minimises the allowed cost
    big = 2.0 * (np.abs(cost[allowed]).sum() + 1.0)
    rows, cols = linear_sum_assignment(np.where(allowed, cost, big))
    keep = allowed[rows, cols]
    rows, cols = rows[keep], cols[keep]
    order = np.argsort(cost[rows, cols], kind="stable")
    return Matching.from_pairs(np.stack([rows[order], cols[order]], 1), num_pred, num_gt)


def match_keypoints_2d(
    pred_kps: np.ndarray,
    gt_kps: np.ndarray,
    *,
    iou_thresh: float,
    gt_valid: np.ndarray | None = None,
    gt_box_kps: np.ndarray | None = None,
    matcher: Literal["greedy", "hungarian"] = "greedy",
    fp_counter_quirk: bool = True,
    degenerate_boxes: Literal["raise", "zero_iou"] = "raise",
) -> Matching:
    """Match predictions (P, K, 2) to ground truths (G, K, 2) px.

    gt_valid (G, K): joints entering the cost (default all). gt_box_kps (G, K', 2): points of the
    ground-truth IoU box (default gt_kps; RH passes every joint, invalid ones at (-2, -2)).
    degenerate_boxes: "raise" a DegenerateBoxError when a zero-size box is reached (as the
    original's assert), or give such pairs IoU 0.
    """
    pred_kps = np.asarray(pred_kps, dtype=np.float64)
    gt_kps = np.asarray(gt_kps, dtype=np.float64)
    num_pred, num_gt = len(pred_kps), len(gt_kps)
    if num_pred == 0 or num_gt == 0:
        return Matching.from_pairs(np.zeros((0, 2)), num_pred, num_gt)
    if pred_kps.shape[1:] != gt_kps.shape[1:] or pred_kps.shape[-1] != 2:
        raise ValueError(
            f"predicted keypoints {pred_kps.shape[1:]} and ground truth {gt_kps.shape[1:]} "
            "must both be (K, 2)"
        )
    cost = spectral_norm_cost(pred_kps, gt_kps, gt_valid)
    pred_boxes = keypoint_boxes(pred_kps)
    gt_boxes = keypoint_boxes(gt_kps if gt_box_kps is None else gt_box_kps)
    iou = box_iou_plus1(pred_boxes, gt_boxes)
    degenerate = _flat_boxes(pred_boxes)[:, None] | _flat_boxes(gt_boxes)[None, :]
    return _match(cost, iou, degenerate, iou_thresh, matcher, fp_counter_quirk, degenerate_boxes)


def _flat_boxes(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])


def _match(
    cost: np.ndarray,
    iou: np.ndarray,
    degenerate: np.ndarray,
    iou_thresh: float,
    matcher: str,
    fp_counter_quirk: bool,
    degenerate_boxes: str,
) -> Matching:
    """The matcher on a (P, G) cost and IoU with zero-size box pairs marked in degenerate."""
    if degenerate_boxes == "zero_iou":
        iou = np.where(degenerate, 0.0, iou)
    if matcher == "hungarian":
        if degenerate_boxes == "raise" and degenerate.any():
            p, g = np.argwhere(degenerate)[0]
            raise DegenerateBoxError(f"prediction {p} / ground truth {g}: zero-size keypoint box")
        return hungarian_match(cost, iou, iou_thresh)
    return greedy_match(
        cost, iou, iou_thresh, fp_counter_quirk,
        degenerate if degenerate_boxes == "raise" else None,
    )  # fmt: skip


def match_keypoints_2d_images(
    pred_kps: np.ndarray,
    gt_kps: np.ndarray,
    pred_counts: np.ndarray,
    gt_counts: np.ndarray,
    *,
    iou_thresh: float,
    matcher: Literal["greedy", "hungarian"] = "greedy",
    fp_counter_quirk: bool = True,
    degenerate_boxes: Literal["raise", "zero_iou"] = "raise",
    names: Sequence[str] | None = None,
) -> list[Matching]:
    """match_keypoints_2d (all joints valid, boxes from the keypoints) for many images: image i
    has the next pred_counts[i] rows of pred_kps (P, K, 2) and the next gt_counts[i] rows of
    gt_kps (G, K, 2); its Matching indexes them from 0. A DegenerateBoxError names the image
    (names[i], else its index)."""
    pred_kps = np.asarray(pred_kps, dtype=np.float64)
    gt_kps = np.asarray(gt_kps, dtype=np.float64)
    pred_counts = np.asarray(pred_counts, dtype=np.int64)
    gt_counts = np.asarray(gt_counts, dtype=np.int64)
    if len(pred_kps) and len(gt_kps) and pred_kps.shape[1:] != gt_kps.shape[1:]:
        raise ValueError(f"keypoints {pred_kps.shape[1:]} and {gt_kps.shape[1:]} differ")
    p_start = np.concatenate([[0], np.cumsum(pred_counts)])
    g_start = np.concatenate([[0], np.cumsum(gt_counts)])
    sizes = pred_counts * gt_counts
    # every same-image pair, image by image, row-major within an image
    image = np.repeat(np.arange(len(sizes)), sizes)
    within = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    pair_p = p_start[image] + within // np.maximum(gt_counts[image], 1)
    pair_g = g_start[image] + within % np.maximum(gt_counts[image], 1)
    r = pred_kps[pair_p] - gt_kps[pair_g]  # (M, K, 2)
    a = np.einsum("mk,mk->m", r[..., 0], r[..., 0])
    c = np.einsum("mk,mk->m", r[..., 1], r[..., 1])
    b = np.einsum("mk,mk->m", r[..., 0], r[..., 1])
    cost = np.sqrt(0.5 * (a + c) + np.hypot(0.5 * (a - c), b))  # see spectral_norm_cost
    pred_boxes, gt_boxes = keypoint_boxes(pred_kps), keypoint_boxes(gt_kps)
    pb, gb = pred_boxes[pair_p], gt_boxes[pair_g]
    inter = np.maximum(0.0, np.minimum(pb[:, 2], gb[:, 2]) - np.maximum(pb[:, 0], gb[:, 0]) + 1)
    inter *= np.maximum(0.0, np.minimum(pb[:, 3], gb[:, 3]) - np.maximum(pb[:, 1], gb[:, 1]) + 1)
    area_p = (pb[:, 2] - pb[:, 0] + 1) * (pb[:, 3] - pb[:, 1] + 1)
    area_g = (gb[:, 2] - gb[:, 0] + 1) * (gb[:, 3] - gb[:, 1] + 1)
    iou = inter / (area_p + area_g - inter)
    degenerate = _flat_boxes(pred_boxes)[pair_p] | _flat_boxes(gt_boxes)[pair_g]
    out = []
    start = 0
    for i, (num_pred, num_gt) in enumerate(zip(pred_counts.tolist(), gt_counts.tolist(),
                                               strict=True)):  # fmt: skip
        if num_pred == 0 or num_gt == 0:
            out.append(Matching.from_pairs(np.zeros((0, 2)), num_pred, num_gt))
            continue
        block = slice(start, start + num_pred * num_gt)
        start = block.stop
        shape = (num_pred, num_gt)
        try:
            out.append(_match(
                cost[block].reshape(shape), iou[block].reshape(shape),
                degenerate[block].reshape(shape), iou_thresh, matcher, fp_counter_quirk,
                degenerate_boxes,
            ))  # fmt: skip
        except DegenerateBoxError as exc:
            name = repr(names[i]) if names is not None else str(i)
            raise DegenerateBoxError(f"image {name}: {exc}") from exc
    return out
