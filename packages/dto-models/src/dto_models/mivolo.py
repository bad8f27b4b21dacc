"""Age and gender of each person: MiVOLO v2 (face + body crops), spec B.7.

The network is MiVOLO's `mivolo_d1_384`: timm's VOLO-D1 whose patch embedding is replaced by a
dual stem (face channels 0..2 and body channels 3..5 each through their own conv stem and 4x4
projection) fused by a one-head cross bottleneck attention. It is re-implemented here as a subclass
of `timm.models.volo.VOLO` so that the weights of the Hub repository `iitolstykh/mivolo_v2`
(`model.safetensors` + `config.json`) load without `trust_remote_code` and without the `mivolo`
package (not on PyPI).

Where the layout comes from (read, not copied):
- `mivolo/model/mivolo_model.py` of github.com/WildChlamydia/MiVOLO (also vendored in
  gouba2333/DTO-Humans): `PatchEmbed` (attributes `conv1`, `conv2`, `proj1`, `proj2`, `map`; stem =
  conv7x7/2 + BN + ReLU + 2 x (conv3x3 + BN + ReLU)), `MiVOLOModel(VOLO)` (replaces
  `patch_embed`; forward = VOLO's, head = `head(cls) + 0.5 max_tokens aux_head(tokens)`) and the
  `mivolo_d1_384` entry point (layers (4,4,8,2), dims (192,384,384,384), heads (6,12,12,12)). timm's
  `build_model_with_cfg` passes `img_size=(384, 384)` from the pretrained cfg, so the cross
  attention works on 48x48 tokens and `pos_embed` is (1,24,24,384).
- `mivolo/modeling/cross_bottleneck_attn.py`: `CrossBottleneckAttn` (`qkv_f`, `qkv_p` 1x1 convs
  without bias, timm `PosEmbedRel` as `pos_embed`, `LayerNorm([2*dim, H, W])` as `norm`, timm conv
  `Mlp` as `mlp` with hidden 4*dim; face queries attend body keys/values and vice versa).
- Hub remote code `modeling_mivolo.py`: `MiVOLOForImageClassification.mivolo` (`MiVOLOModel`)
  `.model` (the timm network), so every file key is `mivolo.model.<timm name>`; outputs
  `[:, :2]` gender logits, `[:, 2]` raw age, `age = raw * (max_age - min_age) + avg_age`.
- Hub `image_processing_mivolo.py` -> `mivolo.data.misc.prepare_classification_images`: each BGR
  crop is letterboxed (`class_letterbox`, centred, black), converted BGR -> RGB, /255, ImageNet
  mean/std; a None crop is an all-zero image normalised. The official crops are BGR and the
  processor turns them into RGB, so our RGB crops are used as they are (no channel flip).
- DTO usage (`dto_framework.py` of DTO-Humans): keypoint face boxes, optional detector faces
  assigned with `assign_faces`, crops from the unmasked image, horizontal-flip test-time
  augmentation, P(male) per sample.

The face boxes come from the 44 keypoints by default (licence-clean: no YOLO face detector); a
face detector's boxes can be passed to `MiVOLO.estimate(..., face_boxes=...)`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from timm.layers import Mlp, make_divisible, trunc_normal_
from timm.layers.bottleneck_attn import PosEmbedRel
from timm.models.volo import VOLO
from torch import nn

from .adapter import TorchAdapter
from .checkpoint import load_checked, read_state_dict, resolve_weights
from .image import IMAGENET_MEAN, IMAGENET_STD, as_rgb_uint8, autocast
from .types import AgeGender

__all__ = [
    "FACE_KEYPOINTS",
    "CrossBottleneckAttn",
    "MiVOLO",
    "MiVOLOConfig",
    "MiVOLOModel",
    "MiVOLOPatchEmbed",
    "age_gender_from_outputs",
    "assign_faces",
    "crop_box",
    "estimate_face_boxes",
    "letterbox_crop",
    "prepare_inputs",
]

logger = logging.getLogger(__name__)

# nose, right eye, left eye, right ear, left ear in the 44-joint set
FACE_KEYPOINTS = (0, 15, 16, 17, 18)
CHECKPOINT_PREFIX = "mivolo.model."


@dataclass(frozen=True)
class MiVOLOConfig:
    """Architecture and age scaling of a MiVOLO model (defaults: `mivolo_d1_384`).

    `min_age`, `max_age`, `avg_age` (years) turn the raw age output into years; `from_pretrained`
    reads them from the checkpoint's `config.json`.
    """

    model_name: str = "mivolo_d1_384"
    layers: tuple[int, ...] = (4, 4, 8, 2)
    embed_dims: tuple[int, ...] = (192, 384, 384, 384)
    num_heads: tuple[int, ...] = (6, 12, 12, 12)
    stem_hidden_dim: int = 64
    img_size: int = 384
    patch_size: int = 8
    mlp_ratio: float = 3.0
    num_classes: int = 3
    in_chans: int = 6
    num_classes_gender: int = 2
    min_age: float = 1.0
    max_age: float = 95.0
    avg_age: float = 48.0

    @classmethod
    def tiny(cls) -> MiVOLOConfig:
        """The spec's tiny instance: 64 px input, 8x8 tokens, ages (0, 100, 50)."""
        return cls(
            model_name="mivolo_tiny",
            layers=(1, 1, 1, 1),
            embed_dims=(16, 32, 32, 32),
            num_heads=(1, 2, 2, 2),
            stem_hidden_dim=8,
            img_size=64,
            min_age=0.0,
            max_age=100.0,
            avg_age=50.0,
        )

    @classmethod
    def from_json(
        cls, path: str | os.PathLike[str], base: MiVOLOConfig | None = None
    ) -> MiVOLOConfig:
        """`base` (default `mivolo_d1_384`) with the age scaling of a Hub `config.json`.

        Raises:
            ValueError: the file describes a model other than `base` (another `model_name`,
                input size, class count, a faces-only or age-only model).
        """
        data = json.loads(Path(path).read_text())
        config = base if base is not None else cls()
        expected = {
            "model_name": config.model_name,
            "num_classes": config.num_classes,
            "in_chans": config.in_chans,
            "input_size": config.img_size,
            "with_persons_model": True,
            "only_age": False,
            "num_classes_gender": config.num_classes_gender,
        }
        wrong = {k: data[k] for k, v in expected.items() if k in data and data[k] != v}
        if wrong:
            raise ValueError(
                f"{path}: unsupported MiVOLO configuration {wrong}, expected {expected}"
            )
        ages = {k: float(data[k]) for k in ("min_age", "max_age", "avg_age") if k in data}
        if len(ages) < 3:
            logger.warning(
                "%s lacks some of min_age/max_age/avg_age; defaults used for those", path
            )
        return replace(config, **ages)


class CrossBottleneckAttn(nn.Module):
    """Fuses face and body feature maps (B, 2*dim, H, W) -> (B, dim_out, H, W).

    One bottleneck-attention pass per stream with relative position logits: face queries attend
    body keys/values and body queries attend face keys/values; the two results are concatenated,
    layer-normalised over (C, H, W) and mixed by a 1x1-conv MLP.
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        feat_size: tuple[int, int],
        num_heads: int = 1,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dim_head_qk = make_divisible(dim_out, divisor=8) // num_heads
        self.dim_head_v = dim_out // num_heads
        self.dim_out_qk = num_heads * self.dim_head_qk
        self.dim_out_v = num_heads * self.dim_head_v
        self.scale = self.dim_head_qk**-0.5

        self.qkv_f = nn.Conv2d(dim, self.dim_out_qk * 2 + self.dim_out_v, 1, bias=False)
        self.qkv_p = nn.Conv2d(dim, self.dim_out_qk * 2 + self.dim_out_v, 1, bias=False)
        self.pos_embed = PosEmbedRel(feat_size, dim_head=self.dim_head_qk, scale=self.scale)
        self.norm = nn.LayerNorm([self.dim_out_v * 2, *feat_size])
        self.mlp = Mlp(
            in_features=self.dim_out_v * 2,
            hidden_features=int(dim * mlp_ratio),
            out_features=dim_out,
            act_layer=nn.GELU,
            use_conv=True,
        )
        trunc_normal_(self.qkv_f.weight, std=self.qkv_f.weight.shape[1] ** -0.5)
        trunc_normal_(self.qkv_p.weight, std=self.qkv_p.weight.shape[1] ** -0.5)
        trunc_normal_(self.pos_embed.height_rel, std=self.scale)
        trunc_normal_(self.pos_embed.width_rel, std=self.scale)

    def _qkv(self, x: torch.Tensor, conv: nn.Conv2d) -> tuple[torch.Tensor, ...]:
        batch = x.shape[0]
        q, k, v = torch.split(conv(x), [self.dim_out_qk, self.dim_out_qk, self.dim_out_v], dim=1)
        q = q.reshape(batch * self.num_heads, self.dim_head_qk, -1).transpose(-1, -2)
        k = k.reshape(batch * self.num_heads, self.dim_head_qk, -1)  # kept transposed for q @ k
        v = v.reshape(batch * self.num_heads, self.dim_head_v, -1).transpose(-1, -2)
        return q, k, v

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, shape: tuple[int, ...]):
        batch, _, height, width = shape
        attn = ((q @ k) * self.scale + self.pos_embed(q)).softmax(dim=-1)
        return (attn @ v).transpose(-1, -2).reshape(batch, self.dim_out_v, height, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if (height, width) != (self.pos_embed.height, self.pos_embed.width):
            raise ValueError(
                f"cross attention built for {self.pos_embed.height}x{self.pos_embed.width} tokens, "
                f"got {height}x{width} (wrong input size?)"
            )
        face, body = x.chunk(2, dim=1)
        q_f, k_f, v_f = self._qkv(face, self.qkv_f)
        q_p, k_p, v_p = self._qkv(body, self.qkv_p)
        out_f = self._attend(q_f, k_p, v_p, x.shape)  # face queries, body keys/values
        out_p = self._attend(q_p, k_f, v_f, x.shape)  # body queries, face keys/values
        return self.mlp(self.norm(torch.cat((out_f, out_p), dim=1)))


def _stem(in_chans: int, hidden_dim: int) -> nn.Sequential:
    """VOLO's conv stem: 7x7 stride 2, then two 3x3, each with BatchNorm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_chans, hidden_dim, kernel_size=7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(hidden_dim),
        nn.ReLU(inplace=True),
        nn.Conv2d(hidden_dim, hidden_dim, kernel_size=3, stride=1, padding=1, bias=False),
        nn.BatchNorm2d(hidden_dim),
        nn.ReLU(inplace=True),
        nn.Conv2d(hidden_dim, hidden_dim, kernel_size=3, stride=1, padding=1, bias=False),
        nn.BatchNorm2d(hidden_dim),
        nn.ReLU(inplace=True),
    )


class MiVOLOPatchEmbed(nn.Module):
    """(B, 6, S, S) face|body images -> (B, embed_dim, S/patch, S/patch) fused tokens."""

    def __init__(self, img_size: int, patch_size: int, hidden_dim: int, embed_dim: int) -> None:
        super().__init__()
        stem_stride = 2
        self.conv1 = _stem(3, hidden_dim)
        self.conv2 = _stem(3, hidden_dim)
        kernel = patch_size // stem_stride
        self.proj1 = nn.Conv2d(hidden_dim, embed_dim, kernel_size=kernel, stride=kernel)
        self.proj2 = nn.Conv2d(hidden_dim, embed_dim, kernel_size=kernel, stride=kernel)
        tokens = img_size // patch_size
        self.map = CrossBottleneckAttn(embed_dim, embed_dim, feat_size=(tokens, tokens))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        face = self.proj1(self.conv1(x[:, :3]))
        body = self.proj2(self.conv2(x[:, 3:]))
        return self.map(torch.cat((face, body), dim=1))


class MiVOLOModel(VOLO):
    """MiVOLO network: VOLO with the dual patch embedding; (B, 6, S, S) -> (B, num_classes).

    Input channels 0..2 are the face crop, 3..5 the body crop (RGB, ImageNet-normalised).
    Output columns: `[:, :2]` gender logits (0 male, 1 female), `[:, 2]` raw age.
    """

    def __init__(self, config: MiVOLOConfig) -> None:
        super().__init__(
            layers=list(config.layers),
            img_size=config.img_size,
            in_chans=config.in_chans,
            num_classes=config.num_classes,
            global_pool="token",
            patch_size=config.patch_size,
            stem_hidden_dim=config.stem_hidden_dim,
            embed_dims=list(config.embed_dims),
            num_heads=list(config.num_heads),
            mlp_ratio=config.mlp_ratio,
            post_layers=("ca", "ca"),
            use_aux_head=True,
        )
        self.patch_embed = MiVOLOPatchEmbed(
            config.img_size, config.patch_size, config.stem_hidden_dim, config.embed_dims[0]
        )
        trunc_normal_(self.pos_embed, std=0.02)
        self.apply(self._init_weights)


def letterbox_crop(crop: np.ndarray, size: int = 384) -> np.ndarray:
    """A crop (h,w,3) uint8 scaled to fit `size` x `size` and padded black -> (size,size,3).

    MiVOLO's `class_letterbox`: scale r = min(size/h, size/w) (upscaling allowed), new size
    round(w*r) x round(h*r) by bilinear resizing, content CENTRED; with an odd padding the extra
    pixel goes to the bottom/right. Channel order is kept. A side that would round to 0 px is
    kept at 1 px (the official code would fail there).
    """
    height, width = crop.shape[:2]
    ratio = min(size / height, size / width)
    new_w = max(1, round(width * ratio))
    new_h = max(1, round(height * ratio))
    if (new_w, new_h) != (width, height):
        crop = cv2.resize(crop, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_w, pad_h = (size - new_w) / 2, (size - new_h) / 2
    top, bottom = round(pad_h - 0.1), round(pad_h + 0.1)
    left, right = round(pad_w - 0.1), round(pad_w + 0.1)
    return cv2.copyMakeBorder(crop, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(0, 0, 0))


def prepare_inputs(
    crops: Sequence[np.ndarray | None],
    size: int = 384,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """RGB uint8 crops -> network input (B, 3, size, size) float32.

    Each crop is letterboxed (`letterbox_crop`), divided by 255 and normalised with `mean`/`std`;
    None (no crop) becomes an all-zero image normalised, i.e. -mean/std.

    Raises:
        ValueError: a crop is an empty (0-size) array or not (h, w, 3) uint8.
    """
    mean_arr = np.asarray(mean, dtype=np.float64)
    std_arr = np.asarray(std, dtype=np.float64)
    out = np.empty((len(crops), 3, size, size), dtype=np.float32)
    for i, crop in enumerate(crops):
        if crop is None:
            image = np.zeros((size, size, 3), dtype=np.float64)
        else:
            if crop.size == 0:
                raise ValueError(f"crop {i} is empty {crop.shape}; pass None for a missing crop")
            if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
                raise ValueError(f"crop {i}: expected (h,w,3) uint8, got {crop.shape} {crop.dtype}")
            image = letterbox_crop(crop, size) / 255.0
        out[i] = ((image - mean_arr) / std_arr).transpose(2, 0, 1)
    return out


def estimate_face_boxes(keypoints_44: np.ndarray) -> np.ndarray:
    """Face boxes (N,4) int64 xyxy pixels from 44-joint keypoints (N,44,2+) in pixels.

    Uses nose, eyes and ears (`FACE_KEYPOINTS`). A person whose right eye lies right of the left
    eye (x_reye > x_leye) faces away and gets (0,0,0,0); otherwise a square of side
    1.2 x (max x - min x) centred on the bounding-box centre of the five points, corners truncated
    toward zero like Python's `int`.
    """
    keypoints_44 = np.asarray(keypoints_44, dtype=np.float64)
    if keypoints_44.ndim != 3 or keypoints_44.shape[1] != 44 or keypoints_44.shape[2] < 2:
        raise ValueError(f"expected keypoints (N,44,2), got {keypoints_44.shape}")
    face = keypoints_44[:, FACE_KEYPOINTS, :2]
    lo, hi = face.min(axis=1), face.max(axis=1)
    centre = (lo + hi) / 2
    half = (hi[:, 0] - lo[:, 0]) * 1.2 / 2
    boxes = np.stack(
        [centre[:, 0] - half, centre[:, 1] - half, centre[:, 0] + half, centre[:, 1] + half], axis=1
    )
    boxes = np.trunc(boxes).astype(np.int64)
    boxes[face[:, 1, 0] > face[:, 2, 0]] = 0
    return boxes


def assign_faces(
    face_boxes: np.ndarray, estimated_boxes: np.ndarray, iou_thresh: float = 0.3
) -> np.ndarray:
    """Index into `face_boxes` (M,4) for each estimated face box (N,4), -1 when none: (N,) int64.

    MiVOLO's `assign_faces` as DTO calls it: cost = (IoU + intersection / area(estimated)) / 2,
    Hungarian maximisation, pairs accepted when cost > `iou_thresh`. Estimated boxes of zero area
    (people facing away) take no part and stay unmatched (spec A.13 item 2: upstream divides 0/0
    there and SciPy rejects the NaN cost).
    """
    face_boxes = np.asarray(face_boxes, dtype=np.float64).reshape(-1, 4)
    estimated_boxes = np.asarray(estimated_boxes, dtype=np.float64).reshape(-1, 4)
    assigned = np.full(len(estimated_boxes), -1, dtype=np.int64)

    def area(boxes: np.ndarray) -> np.ndarray:
        return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(
            boxes[:, 3] - boxes[:, 1], 0, None
        )

    est_area = area(estimated_boxes)
    valid = np.flatnonzero(est_area > 0)
    if len(face_boxes) == 0 or len(valid) == 0:
        return assigned
    est = estimated_boxes[valid]
    lt = np.maximum(face_boxes[:, None, :2], est[None, :, :2])
    rb = np.minimum(face_boxes[:, None, 2:], est[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    union = area(face_boxes)[:, None] + est_area[valid][None, :] - inter
    cost = (inter / union + inter / est_area[valid][None, :]) / 2
    rows, cols = linear_sum_assignment(cost, maximize=True)
    for face, col in zip(rows, cols, strict=True):
        if cost[face, col] > iou_thresh:
            assigned[valid[col]] = face
    return assigned


def age_gender_from_outputs(
    raw_outputs: np.ndarray, min_age: float, max_age: float, avg_age: float
) -> AgeGender:
    """Head outputs (2n,3) of [originals, horizontally flipped] -> AgeGender of n people.

    age = raw_age * (max_age - min_age) + avg_age (years); per sample P(male) = the top-1 softmax
    probability if the top class is 0 (male) else 1 minus it; both averaged over the original and
    the flipped sample.
    """
    raw = np.asarray(raw_outputs, dtype=np.float64)
    if raw.ndim != 2 or raw.shape[1] != 3 or len(raw) % 2:
        raise ValueError(f"expected (2n,3) outputs (originals then flipped), got {raw.shape}")
    n = len(raw) // 2
    age = raw[:, 2] * (max_age - min_age) + avg_age
    logits = raw[:, :2] - raw[:, :2].max(axis=1, keepdims=True)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    top = probs.argmax(axis=1)  # ties -> class 0, like torch.topk
    top_prob = probs[np.arange(len(raw)), top]
    p_male = np.where(top == 0, top_prob, 1 - top_prob)
    return AgeGender(
        age=((age[:n] + age[n:]) / 2).astype(np.float32),
        p_male=((p_male[:n] + p_male[n:]) / 2).astype(np.float32),
    )


def crop_box(image: np.ndarray, box_xyxy: Sequence[float]) -> np.ndarray | None:
    """image[y1:y2, x1:x2] with corners truncated to int and clipped to the image; None if empty."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (int(v) for v in box_xyxy)
    x1, y1 = max(0, x1), max(0, y1)
    x2, y2 = max(0, min(width, x2)), max(0, min(height, y2))
    crop = image[y1:y2, x1:x2]
    return crop if crop.size > 0 else None


def _flip(crops: list[np.ndarray | None]) -> list[np.ndarray | None]:
    return [None if c is None else np.ascontiguousarray(c[:, ::-1]) for c in crops]


class MiVOLO(TorchAdapter):
    """Age and P(male) per person from body boxes and 44-joint keypoints (AgeGenderEstimator)."""

    def __init__(
        self,
        model: MiVOLOModel,
        config: MiVOLOConfig,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
        batch_size: int = 16,
    ) -> None:
        super().__init__(model, config, device=device, dtype=dtype)
        self.batch_size = batch_size

    @classmethod
    def tiny(cls, seed: int = 0, **kwargs) -> MiVOLO:
        """Randomly initialised tiny model (`MiVOLOConfig.tiny()`), deterministic in `seed`."""
        config = MiVOLOConfig.tiny()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = MiVOLOModel(config)
        return cls(model, config, **kwargs)

    @classmethod
    def from_pretrained(
        cls,
        path_or_hub_id: str | os.PathLike[str] = "iitolstykh/mivolo_v2",
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
        config: MiVOLOConfig | None = None,
    ) -> MiVOLO:
        """Load `model.safetensors` (keys `mivolo.model.*`) and the ages of `config.json`.

        `path_or_hub_id`: a directory with both files, the `.safetensors` file itself (a
        `config.json` beside it is used when present) or a Hub id. `config` is the architecture
        (default `mivolo_d1_384`; `MiVOLOConfig.tiny()` in tests); `config.json` sets its ages.

        Raises:
            CheckpointError: missing, unexpected or mis-shaped keys (named).
        """
        weights = resolve_weights(path_or_hub_id, "model.safetensors")
        if Path(path_or_hub_id).exists():
            config_path = weights.parent / "config.json"
        else:
            config_path = resolve_weights(path_or_hub_id, "config.json")
        config = config if config is not None else MiVOLOConfig()
        if config_path.is_file():
            config = MiVOLOConfig.from_json(config_path, base=config)
        else:
            logger.warning("no config.json beside %s; default ages %s", weights, config)
        model = MiVOLOModel(config)
        state = read_state_dict(weights)
        for name in model.state_dict():
            # BatchNorm step counters do not affect inference; tolerate files without them
            key = CHECKPOINT_PREFIX + name
            if name.endswith("num_batches_tracked") and key not in state:
                state[key] = torch.zeros((), dtype=torch.long)
        load_checked(model, state, key_map=_strip_prefix)
        return cls(model, config, device=device, dtype=dtype)

    def head_outputs(self, faces_input: torch.Tensor, body_input: torch.Tensor) -> torch.Tensor:
        """Network outputs (B,3) float32 on CPU for face and body inputs (B,3,S,S), chunked."""
        outputs = []
        with torch.inference_mode(), autocast(self.device, self.dtype):
            for start in range(0, len(faces_input), self.batch_size):
                stop = start + self.batch_size
                x = torch.cat((faces_input[start:stop], body_input[start:stop]), dim=1)
                outputs.append(self.model(x.to(self.device)).float().cpu())
        if not outputs:
            return torch.zeros((0, self.config.num_classes))
        return torch.cat(outputs)

    def estimate(
        self,
        image: np.ndarray,
        boxes_xyxy: np.ndarray,
        keypoints_44: np.ndarray,
        face_boxes: np.ndarray | None = None,
    ) -> AgeGender:
        """Age (N,) years and P(male) (N,) of N people in an RGB uint8 image.

        `boxes_xyxy` (N,4) body boxes in pixels, `keypoints_44` (N,44,2) pixels (face boxes are
        estimated from them), `face_boxes` (M,4) optional boxes of any face detector, assigned to
        the people with `assign_faces`. Crops come from the unmasked image; each person is run
        with its face and body crops and their horizontal mirror, and the two are averaged.
        """
        image = as_rgb_uint8(image)
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        keypoints = np.asarray(keypoints_44, dtype=np.float64)
        if len(boxes) == 0:
            return AgeGender(age=np.zeros(0, np.float32), p_male=np.zeros(0, np.float32))
        if keypoints.shape[:2] != (len(boxes), 44):
            raise ValueError(f"expected keypoints ({len(boxes)},44,2), got {keypoints.shape}")
        estimated = estimate_face_boxes(keypoints)
        assigned = np.full(len(boxes), -1)
        if face_boxes is not None:
            face_boxes = np.asarray(face_boxes, dtype=np.float64).reshape(-1, 4)
            assigned = assign_faces(face_boxes, estimated)
        faces = [
            crop_box(image, face_boxes[a] if a >= 0 else est)
            for a, est in zip(assigned, estimated, strict=True)
        ]
        bodies = [crop_box(image, box) for box in boxes]
        size = self.config.img_size
        faces_input = torch.from_numpy(prepare_inputs(faces + _flip(faces), size))
        body_input = torch.from_numpy(prepare_inputs(bodies + _flip(bodies), size))
        raw = self.head_outputs(faces_input, body_input).numpy()
        return age_gender_from_outputs(
            raw, self.config.min_age, self.config.max_age, self.config.avg_age
        )


def _strip_prefix(key: str) -> str:
    return key.removeprefix(CHECKPOINT_PREFIX)
