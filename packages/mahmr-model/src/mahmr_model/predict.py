"""Inference: images of any size in, people in metres and original-image pixels out."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .geometry import focal_from_fov, fov_from_focal, intrinsics_matrix, matrix_to_axis_angle
from .model import MAHMR, MAHMROutput
from .preprocess import ImageLike, prepare_images

__all__ = ["ImagePrediction", "PersonPredictions", "predict"]


@dataclass(frozen=True)
class PersonPredictions:
    """The N people kept in one image (float32 numpy arrays, N may be 0).

    Attributes:
        scores: (N,) detection confidence in (0, 1), sorted decreasing.
        boxes: (N, 4) x0, y0, x1, y1 in original-image px.
        global_orient: (N, 3) and body_pose: (N, 69) SMPL axis-angle (rad).
        betas: (N, K) SMPL shape (K = 11: the kid coefficient last).
        transl: (N, 3) camera-space translation of the SMPL body frame (m).
        joints: (N, 45, 3) camera-space joints (m): 24 SMPL + 21 smplx vertex joints.
        keypoints_2d: (N, 45, 2) their projections, original-image px.
        vertices: (N, 6890, 3) camera-space vertices (m), or None unless requested.
    """

    scores: np.ndarray
    boxes: np.ndarray
    global_orient: np.ndarray
    body_pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    joints: np.ndarray
    keypoints_2d: np.ndarray
    vertices: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.scores.shape[0])


@dataclass(frozen=True)
class ImagePrediction:
    """One image.

    Attributes:
        image_size: (H, W) of the input image (px).
        fov: vertical field of view (rad) of the camera used.
        intrinsics: (3, 3) K in original-image px.
        camera_source: "predicted" (FoV head), "fixed" (60 degree canvas camera of models
            without FoV head), "fov" or "intrinsics" (given by the caller).
        persons: the people with confidence above the threshold.
    """

    image_size: tuple[int, int]
    fov: float
    intrinsics: np.ndarray
    camera_source: str
    persons: PersonPredictions

    @property
    def focal(self) -> float:
        """Vertical focal length (px) in the original image."""
        return float(self.intrinsics[1, 1])


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _per_image(value: float | Sequence[float] | np.ndarray | None, n: int, name: str) -> list:
    if value is None:
        return [None] * n
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return [float(array)] * n
    if array.shape[0] != n:
        raise ValueError(f"{name} has {array.shape[0]} entries for {n} images")
    return list(array)


@torch.no_grad()
def predict(
    model: MAHMR,
    images: Sequence[ImageLike],
    conf_thresh: float = 0.3,
    fov: float | Sequence[float] | None = None,
    intrinsics: np.ndarray | Sequence[np.ndarray] | None = None,
    *,
    batch_size: int = 4,
    return_vertices: bool = False,
    precision: str = "auto",
) -> list[ImagePrediction]:
    """Detect and reconstruct everybody in each image.

    Args:
        model: a loaded model with a body layer attached (`set_body`).
        images: paths, PIL RGB images, (H, W, 3) arrays or (3, H, W) tensors; any sizes.
        conf_thresh: keep queries with confidence above it (no NMS, as the official code).
        fov: known vertical field of view (rad), one for all or one per image, replacing the
            predicted / fixed camera.
        intrinsics: known (3, 3) K in original-image px, one for all or one per image.
        batch_size: images per forward pass.
        return_vertices: also return the meshes.
        precision: "auto" (bfloat16 autocast on CUDA, float32 on CPU), "fp32" or "bf16".
    """
    if fov is not None and intrinsics is not None:
        raise ValueError("pass fov or intrinsics, not both")
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision {precision!r}: choose 'auto', 'fp32' or 'bf16'")
    if not 0.0 <= conf_thresh < 1.0:
        raise ValueError(f"conf_thresh {conf_thresh} must lie in [0, 1)")
    n = len(images)
    fovs = _per_image(fov, n, "fov")
    if intrinsics is not None and np.asarray(intrinsics).ndim == 2:
        intrinsics = [np.asarray(intrinsics)] * n
    ks = [None] * n if intrinsics is None else _per_image(intrinsics, n, "intrinsics")
    device = next(model.parameters()).device
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext()
    )
    model.eval()
    results: list[ImagePrediction] = []
    for part in _chunks(n, batch_size):
        prepared = prepare_images(images[part], model.config.input_size, model.config.patch_size)
        batch = prepared.batch.to(device)
        scales = prepared.scales.float().to(device)
        k_net = _network_intrinsics(
            fovs[part], ks[part], prepared.original_sizes.to(device), batch.image_sizes, scales
        )
        with autocast:
            out = model(batch, intrinsics=k_net, return_vertices=return_vertices)
        source = "predicted" if model.config.fov_head else "fixed"
        if k_net is not None:
            source = "fov" if fovs[part][0] is not None else "intrinsics"
        results.extend(_collect(out, prepared.original_sizes, scales, conf_thresh, model, source))
    return results


def _network_intrinsics(
    fovs: list, ks: list, original: Tensor, image_sizes: Tensor, scales: Tensor
) -> Tensor | None:
    """(B, 3, 3) network-frame K from known FoVs or intrinsics, or None (use the model's)."""
    if all(f is None for f in fovs) and all(k is None for k in ks):
        return None
    if any(f is None for f in fovs) and any(k is None for k in ks):
        raise ValueError("give the camera for every image of a call or for none")
    if ks[0] is not None:
        k = torch.as_tensor(np.stack(ks), dtype=torch.float32, device=scales.device)
        focals = k[:, [0, 1], [0, 1]] if k.shape[1:] == (3, 3) else k.new_zeros(1)
        if not bool(torch.isfinite(k).all()) or bool((focals <= 0).any()):
            raise ValueError("intrinsics must be finite 3x3 matrices with positive focal lengths")
        k = k.clone()
        k[:, :2] *= scales[:, None, None]
        return k
    fov = torch.as_tensor(
        np.asarray(fovs, dtype=np.float64), dtype=torch.float32, device=scales.device
    )
    if not bool(((fov > 0) & (fov < torch.pi)).all()):
        raise ValueError("fov must be in (0, pi) radians")
    focal = focal_from_fov(fov, original[:, 0].float()) * scales
    return intrinsics_matrix(focal, image_sizes)


def _collect(
    out: MAHMROutput,
    original: Tensor,
    scales: Tensor,
    conf_thresh: float,
    model: MAHMR,
    source: str,
) -> list[ImagePrediction]:
    """Threshold and convert one batch's final-layer outputs to original-image units."""
    final, canvas = out.final, model.config.input_size
    results = []
    for b in range(final.boxes.shape[0]):
        scores = final.confs[b].float()
        keep = torch.nonzero(scores > conf_thresh).flatten()
        keep = keep[torch.argsort(scores[keep], descending=True)]
        scale = float(scales[b])
        cxcywh = final.boxes[b, keep] * canvas / scale
        boxes = torch.cat(
            [cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2], -1
        )
        poses = matrix_to_axis_angle(final.rotmats[b, keep]).flatten(1)
        k = out.intrinsics[b].clone()
        k[:2] /= scale
        numpy = lambda t: t.detach().float().cpu().numpy()  # noqa: E731
        persons = PersonPredictions(
            scores=numpy(scores[keep]),
            boxes=numpy(boxes),
            global_orient=numpy(poses[:, :3]),
            body_pose=numpy(poses[:, 3:]),
            betas=numpy(final.betas[b, keep]),
            transl=numpy(final.transl[b, keep]),
            joints=numpy(final.joints[b, keep]),
            keypoints_2d=numpy(final.joints_2d[b, keep] / scale),
            vertices=None if final.vertices is None else numpy(final.vertices[b, keep]),
        )
        height = original[b, 0].float()
        fov = float(fov_from_focal(k[1, 1].cpu(), height))
        size = (int(original[b, 0]), int(original[b, 1]))
        results.append(ImagePrediction(size, fov, numpy(k), source, persons))
    return results
