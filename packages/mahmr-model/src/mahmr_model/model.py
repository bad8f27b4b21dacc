"""MA-HMR: metric-aware one-stage multi-person human mesh recovery.

"Towards Metric-Aware Multi-Person Mesh Recovery by Jointly Optimizing Human Crowd in Camera
Space" (MA-HMR), built on SAT-HMR ("Real-Time Multi-Person 3D Mesh Estimation via
Scale-Adaptive Tokens", Su et al., CVPR 2025) and DAB-DETR (Liu et al., ICLR 2022).

Image -> scale-adaptive DINOv2 ViT-B/14 encoder (the CLS token is the camera token) -> FoV head
(vertical FoV -> focal length) and DAB-DETR decoder (50 anchor-box queries, 6 layers) -> per
layer: confidence, box, SMPL pose (6D, residual on the mean pose), betas (residual on the mean
shape), weak-perspective camera lifted to a metric translation with the focal length -> SMPL.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from huggingface_hub.utils import HFValidationError, validate_repo_id
from torch import Tensor, nn

from .body import SMPLBody
from .checkpoint import (
    ARCHITECTURE,
    FORMAT_VERSION,
    CheckpointError,
    LoadReport,
    detect_official_variant,
    init_from_dinov2,
    load_checkpoint_file,
    load_official_state_dict,
    read_state_dict,
    save_safetensors,
)
from .config import MAHMRConfig, get_config
from .conventions import (
    CONF_PRIOR_PROB,
    FOV_HEAD_BIAS_INIT,
    FOV_HEAD_GAIN_INIT,
    IMAGENET_MEAN,
    IMAGENET_STD,
    NUM_SMPL_JOINTS,
)
from .decoder import Decoder
from .encoder import SATEncoder
from .geometry import (
    focal_from_fov,
    fov_from_focal,
    intrinsics_matrix,
    matrix_to_axis_angle,
    project,
    rot6d_to_matrix,
    translation_from_camera,
)
from .layers import MLP, sine_embedding_2d
from .preprocess import ImageBatch, ImageLike
from .tokens import TokenSet, sequence_positions

if TYPE_CHECKING:
    from .predict import ImagePrediction

__all__ = ["MAHMR", "DenoisingQueries", "LayerOutput", "MAHMROutput"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def _looks_like_path(text: str) -> bool:
    """True unless `text` is a valid Hub repo id (huggingface_hub's own rule)."""
    try:
        validate_repo_id(text)
    except HFValidationError:
        return True
    return False


IDENTITY_6D = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)  # identity rotation, row-major 3x2 (SPIN layout)
BodyLayers = Literal["last", "all", "none"]


@dataclass(frozen=True)
class DenoisingQueries:
    """Extra (denoising) queries prepended to the learned ones (stage-1 training).

    Attributes:
        content: (B, P, C) content queries; anchors: (B, P, 4) anchor logits.
        blocked: (P + Q, P + Q) bool, True where a query may NOT attend to another query.
    """

    content: Tensor
    anchors: Tensor
    blocked: Tensor


@dataclass(frozen=True)
class LayerOutput:
    """Predictions of one decoder layer for B images and N queries.

    Attributes:
        boxes: (B, N, 4) (cx, cy, w, h) divided by the canvas side S.
        conf_logits: (B, N) detection logits (`confs` = sigmoid).
        pose6d: (B, N, 144) 6D rotations of the 24 SMPL joints.
        rotmats: (B, N, 24, 3, 3) the same as rotation matrices.
        betas: (B, N, K) shape (the kid coefficient last when K = 11).
        cam: (B, N, 3) weak-perspective camera (c_x, c_y, c_s).
        transl: (B, N, 3) camera-space translation of the SMPL body frame, metres.
        depths: (B, N, 2) (t_z in metres, t_z / fx).
        joints: (B, N, 45, 3) camera-space joints (m), or None when SMPL was not run.
        joints_2d: (B, N, 45, 2) their projections, network-frame px, or None.
        vertices: (B, N, 6890, 3) camera-space vertices (m) when requested, else None.
    """

    boxes: Tensor
    conf_logits: Tensor
    pose6d: Tensor
    rotmats: Tensor
    betas: Tensor
    cam: Tensor
    transl: Tensor
    depths: Tensor
    joints: Tensor | None = None
    joints_2d: Tensor | None = None
    vertices: Tensor | None = None

    @property
    def confs(self) -> Tensor:
        return self.conf_logits.sigmoid()

    @property
    def poses(self) -> Tensor:
        """(B, N, 72) axis-angle pose (rad), joint 0 = global orientation."""
        return matrix_to_axis_angle(self.rotmats).flatten(-2)


@dataclass(frozen=True)
class MAHMROutput:
    """Forward output (the same type in training and inference).

    Attributes:
        layers: one `LayerOutput` per decoder layer (the last one is `final`).
        intrinsics: (B, 3, 3) camera used, network-frame px.
        fov: (B,) vertical field of view of that camera (rad).
        fov_raw: (B,) FoV head output before the lower clamp, or None without a FoV head.
        scale_logits: (B, H1, W1, 2) scale-map logits of the 28 px cells, or None.
        scale_inside: (B, H1, W1) bool, the cells of each image's own grid.
        tokens: the encoder tokens (levels, grid positions) of every image.
        num_denoising: P, the denoising queries at the front of every layer's outputs.
    """

    layers: tuple[LayerOutput, ...]
    intrinsics: Tensor
    fov: Tensor
    fov_raw: Tensor | None
    scale_logits: Tensor | None
    scale_inside: Tensor
    tokens: TokenSet
    num_denoising: int = 0

    @property
    def final(self) -> LayerOutput:
        return self.layers[-1]


MODEL_CARD_TEMPLATE = """
---
{{ card_data }}
---

# MA-HMR

Weights of the one-stage multi-person mesh recovery network of "Towards Metric-Aware Multi-Person
Mesh Recovery by Jointly Optimizing Human Crowd in Camera Space" (SAT-HMR on DINOv2 ViT-B/14 with a
camera token and FoV head), in the format of the `mahmr-model` package: `config.json` (variant and
architecture) and `model.safetensors`.

```python
from mahmr_model import MAHMR, SMPLBody

model = MAHMR.from_pretrained("this folder or its Hub repo id")
model.set_body(SMPLBody.from_dir("SMPL_MODEL_DIR"))  # licensed SMPL files, not included here
```

The SMPL body model is licensed separately (smpl.is.tue.mpg.de) and is never stored in these
files.
"""


class MAHMR(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="mahmr-model",
    tags=["human-mesh-recovery", "smpl", "multi-person", "metric-depth"],
    model_card_template=MODEL_CARD_TEMPLATE,
):
    """The SAT-HMR / MA-HMR network.

    Args:
        config: architecture (`mahmr_model.config`); the body model (`SMPLBody`, licensed files)
            is attached separately with `set_body` and never stored in checkpoints.
    """

    def __init__(self, config: MAHMRConfig) -> None:
        super().__init__()
        self.config = config
        c, dim = config.hidden_dim, config.embed_dim
        layers = config.dec_layers
        self.encoder = SATEncoder(config)
        self.level_embed = nn.Parameter(torch.zeros(len(config.grid_sizes), c))
        self.fov_head = MLP(dim, dim, 1, 4) if config.fov_head else None
        self.feature_proj = nn.Linear(dim, c)
        self.decoder = Decoder(c, config.dec_heads, config.dim_feedforward, layers)
        self.pose_heads = nn.ModuleList(MLP(c, c, NUM_SMPL_JOINTS * 6, 6) for _ in range(layers))
        self.shape_heads = nn.ModuleList(MLP(c, c, config.num_betas, 5) for _ in range(layers))
        self.cam_head = MLP(c, c // 2, 3, 3)
        self.conf_head = nn.Linear(c, 1)
        self.refpoint_embed = nn.Embedding(config.num_queries, 4)
        self.tgt_embed = nn.Embedding(config.num_queries, c)
        self.dn_enc = (
            nn.Linear(NUM_SMPL_JOINTS * 3 + config.num_betas, c) if config.denoising else None
        )
        self.register_buffer("mean_pose", torch.tensor(IDENTITY_6D).repeat(NUM_SMPL_JOINTS))
        self.register_buffer("mean_shape", torch.zeros(config.num_betas))
        self.body: SMPLBody | None
        self.register_module("body", None)
        self.init_weights()

    # ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def init_weights(self) -> None:
        """Official initialisation (the part not overwritten by DINOv2 or a checkpoint)."""
        self.encoder.init_weights()
        self.decoder.init_weights()
        nn.init.normal_(self.level_embed)
        if self.fov_head is not None:
            nn.init.xavier_uniform_(self.fov_head.layers[-1].weight, gain=FOV_HEAD_GAIN_INIT)
            nn.init.constant_(self.fov_head.layers[-1].bias, FOV_HEAD_BIAS_INIT)
        nn.init.constant_(
            self.conf_head.bias, -float(np.log((1 - CONF_PRIOR_PROB) / CONF_PRIOR_PROB))
        )
        for heads in (self.pose_heads, self.shape_heads):  # layer copies start identical
            for head in heads[1:]:
                for dst, src in zip(head.parameters(), heads[0].parameters(), strict=True):
                    dst.copy_(src)

    @torch.no_grad()
    def load_mean_params(self, path: str | os.PathLike[str]) -> None:
        """Mean pose / shape from SPIN's `smpl_mean_params.npz` ('pose' (144,), 'shape' (10,))."""
        with np.load(path) as data:
            pose, shape = (
                torch.from_numpy(data["pose"]).float(),
                torch.from_numpy(data["shape"]).float(),
            )
        if pose.shape != self.mean_pose.shape or shape.shape[0] != 10:
            raise ValueError(
                f"{path}: pose {tuple(pose.shape)} / shape {tuple(shape.shape)}, "
                "expected (144,) / (10,)"
            )
        self.mean_pose.copy_(pose)
        self.mean_shape.zero_()
        self.mean_shape[:10] = shape  # the kid coefficient starts at 0 (adult)

    def set_body(self, body: SMPLBody | None) -> MAHMR:
        """Attach the SMPL layer (moved with the model, not part of its state dict)."""
        if body is not None and body.num_betas != self.config.num_betas:
            raise ValueError(
                f"body model has {body.num_betas} betas, the {self.config.variant} model "
                f"{self.config.num_betas} (SMPLBody.from_dir(kid={self.config.num_betas == 11}))"
            )
        if body is not None:
            param = next(self.parameters())
            body = body.to(param.device if param.device.type != "meta" else "cpu")
        self.body = body
        return self

    def predict(self, images: Sequence[ImageLike], **kwargs: Any) -> list[ImagePrediction]:
        """`mahmr_model.predict.predict` with this model (see there for the arguments)."""
        from .predict import predict

        return predict(self, images, **kwargs)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.encoder.set_grad_checkpointing(enable)

    def compile_blocks(self, **compile_kwargs: object) -> None:
        """`torch.compile` the encoder blocks (optional; outputs unchanged up to rounding)."""
        self.encoder.compile_blocks(**compile_kwargs)

    # ---------------------------------------------------------------------------------------
    # checkpoints
    @classmethod
    def from_official(
        cls,
        checkpoint: str | os.PathLike[str] | dict[str, Tensor],
        *,
        denoising: bool = False,
        body: SMPLBody | None = None,
        map_location: str | torch.device = "cpu",
    ) -> tuple[MAHMR, LoadReport]:
        """Build the right variant for an official SAT-HMR `.pth` / MA-HMR `.bin` and load it.

        Args:
            checkpoint: the file (read with `torch.load(weights_only=True)`) or its state dict.
            denoising: keep the stage-1 denoising encoder `dn_enc` (for training); by default it
                is dropped, and listed in the report.
            body: SMPL layer to attach.
        """
        state = (
            checkpoint
            if isinstance(checkpoint, dict)
            else read_state_dict(checkpoint, map_location)
        )
        has_dn = any(k.startswith("dn_enc.") for k in state)
        if denoising and not has_dn:
            raise CheckpointError(
                "denoising=True but the checkpoint has no dn_enc (only stage 1 has one)"
            )
        with torch.device("meta"):
            model = cls(get_config(detect_official_variant(state), denoising=denoising))
        report = load_official_state_dict(model, state, assign=True)
        return model.set_body(body).eval(), report

    def load_dinov2(self, checkpoint: str | os.PathLike[str] | dict[str, Tensor]) -> LoadReport:
        """Initialise the encoder from DINOv2 (`dinov2_vitb14_pretrain.pth`, or the state dict of
        `timm.create_model("vit_base_patch14_dinov2.lvd142m", pretrained=True)`)."""
        state = checkpoint if isinstance(checkpoint, dict) else read_state_dict(checkpoint)
        return init_from_dinov2(self, state)

    def load_checkpoint(
        self, path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
    ) -> LoadReport:
        """Load our `model.safetensors` or an official checkpoint of this variant, strictly
        (assigning the tensors when the model was built on the meta device)."""
        on_meta = any(p.is_meta for p in self.parameters())
        return load_checkpoint_file(self, path, map_location, assign=on_meta)

    def _save_pretrained(self, save_directory: Path) -> None:
        """Hub mixin hook: `model.safetensors` (with metadata) and `config.json`."""
        save_safetensors(self, save_directory / WEIGHTS_FILE)
        config = {
            "architecture": ARCHITECTURE,
            "format_version": FORMAT_VERSION,
            "config": self.config.to_dict(),
        }
        (save_directory / CONFIG_FILE).write_text(
            json.dumps(config, indent=2, sort_keys=True) + "\n"
        )

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls,
        pretrained_model_name_or_path: str | os.PathLike[str],
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        force_download: bool = False,
        map_location: str | torch.device = "cpu",
        body: SMPLBody | None = None,
    ) -> MAHMR:
        """Load a model saved with `save_pretrained` / `push_to_hub` from a folder or a Hub repo id.

        Strict: the config must parse exactly (unknown keys are an error) and every weight must
        match (unlike the mixin's default `strict=False`). Works offline from a folder made by
        `hf download <repo> --local-dir DIR`.
        """
        source = Path(pretrained_model_name_or_path)
        if not source.is_dir() and _looks_like_path(str(pretrained_model_name_or_path)):
            raise FileNotFoundError(
                f"{source}: no such model folder (a Hub repo id looks like 'org/name')"
            )
        files = {}
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if source.is_dir():
                files[name] = source / name
                if not files[name].is_file():
                    raise FileNotFoundError(f"{files[name]} not found")
            else:
                files[name] = Path(
                    hf_hub_download(
                        str(pretrained_model_name_or_path), name, revision=revision,
                        cache_dir=cache_dir, local_files_only=local_files_only, token=token,
                        force_download=force_download,
                    )
                )  # fmt: skip
        try:
            saved = json.loads(files[CONFIG_FILE].read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{files[CONFIG_FILE]}: not valid JSON ({exc})") from exc
        if (
            not isinstance(saved, dict)
            or saved.get("architecture") != ARCHITECTURE
            or ("config" not in saved)
        ):
            raise CheckpointError(f"{files[CONFIG_FILE]} is not a {ARCHITECTURE} config")
        with torch.device("meta"):
            model = cls(MAHMRConfig.from_dict(saved["config"]))
        model.load_checkpoint(files[WEIGHTS_FILE], map_location)
        return model.set_body(body).eval()

    # ---------------------------------------------------------------------------------------
    def camera(
        self, camera_token: Tensor, image_sizes: Tensor, intrinsics: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """(K (B, 3, 3), vertical FoV (B,), raw FoV head output (B,) or None).

        K is `intrinsics` when given, else f from the predicted FoV clamped at `fov_min`
        (f = h / (2 tan(fov / 2))), or the fixed canvas focal without FoV head.
        """
        height = image_sizes[:, 0].float()
        fov_raw = None
        if self.fov_head is not None:
            fov_raw = self.fov_head(camera_token).float().squeeze(-1)
        if intrinsics is not None:
            k = intrinsics.to(height.device, torch.float32)
        elif fov_raw is not None:
            k = intrinsics_matrix(
                focal_from_fov(fov_raw.clamp(min=self.config.fov_min), height), image_sizes
            )
        else:
            k = intrinsics_matrix(torch.full_like(height, self.config.fixed_focal), image_sizes)
        return k, fov_from_focal(k[:, 1, 1], height), fov_raw

    def memory_positions(self, tokens: TokenSet) -> Tensor:
        """(N, C) sine encoding of token centres (normalised by the canvas) + level embedding."""
        grid = torch.tensor(
            self.config.grid_sizes, device=tokens.level.device, dtype=torch.float32
        )[tokens.level]
        u, v = (tokens.col.float() + 0.5) / grid, (tokens.row.float() + 0.5) / grid
        return sine_embedding_2d(u, v, self.config.hidden_dim) + self.level_embed[tokens.level]

    def forward(
        self,
        batch: ImageBatch,
        *,
        intrinsics: Tensor | None = None,
        body_layers: BodyLayers = "last",
        return_vertices: bool = False,
        packed: bool = False,
        scale_map: Tensor | None = None,
        full_resolution: bool = False,
        denoising: DenoisingQueries | None = None,
    ) -> MAHMROutput:
        """Run the network.

        Args:
            batch: images on the canvas (`ImageBatch`, RGB in [0, 1]).
            intrinsics: (B, 3, 3) known network-frame K replacing the predicted / fixed camera.
            body_layers: decoder layers whose predictions go through SMPL ("last" for
                inference, "all" for training with auxiliary losses, "none": no body model).
            return_vertices: also return vertices for those layers.
            packed: encoder attention on packed sequences (block-diagonal mask) instead of a
                padded batch; same result.
            scale_map: (B, H1, W1, 2) scale-map probabilities used for token selection
                instead of the predicted ones (ground truth in training).
            full_resolution: every 14 px token through the whole encoder, no scale map.
            denoising: extra queries in front of the learned ones (stage-1 training).
        """
        cfg = self.config
        pixels = batch.pixels
        if max(pixels.shape[2:]) > cfg.input_size:
            raise ValueError(
                f"canvas {tuple(pixels.shape[2:])} larger than input_size {cfg.input_size}"
            )
        if body_layers != "none" and self.body is None:
            raise RuntimeError(
                "no body model: call model.set_body(SMPLBody.from_dir(...)) "
                "or use body_layers='none'"
            )
        mean = torch.tensor(IMAGENET_MEAN, device=pixels.device, dtype=pixels.dtype).view(
            1, 3, 1, 1
        )
        std = torch.tensor(IMAGENET_STD, device=pixels.device, dtype=pixels.dtype).view(1, 3, 1, 1)
        normalised = (pixels - mean) / std
        enc = self.encoder(
            normalised,
            batch.grid_sizes,
            packed=packed,
            scale_map=scale_map,
            full_resolution=full_resolution,
        )
        num_images = pixels.shape[0]
        k, fov, fov_raw = self.camera(enc.camera, batch.image_sizes, intrinsics)

        # decoder memory: padded (B, L, C) with a key mask
        pos, lengths = sequence_positions(enc.tokens.batch, num_images)
        width = int(lengths.max())
        memory = self.feature_proj(enc.features)
        memory_pos = self.memory_positions(enc.tokens)
        padded = memory.new_zeros(num_images, width, memory.shape[-1])
        padded_pos = memory_pos.new_zeros(num_images, width, memory.shape[-1])
        padded[enc.tokens.batch, pos] = memory
        padded_pos[enc.tokens.batch, pos] = memory_pos.to(padded_pos.dtype)
        valid = torch.arange(width, device=pos.device)[None] < lengths[:, None]
        memory_mask = None if bool(valid.all()) else valid[:, None, None, :]

        queries = self.tgt_embed.weight.expand(num_images, -1, -1)
        anchors = self.refpoint_embed.weight.expand(num_images, -1, -1)
        self_mask, num_dn = None, 0
        if denoising is not None:
            queries = torch.cat([denoising.content.to(queries.dtype), queries], dim=1)
            anchors = torch.cat([denoising.anchors.to(anchors.dtype), anchors], dim=1)
            self_mask, num_dn = ~denoising.blocked[None, None], denoising.content.shape[1]
        hs, boxes = self.decoder(
            queries, anchors, padded, padded_pos.to(padded.dtype), memory_mask, self_mask
        )

        layers = []
        pose6d, betas = self.mean_pose.float(), self.mean_shape.float()
        for i in range(cfg.dec_layers):
            pose6d = pose6d + self.pose_heads[i](hs[i]).float()
            betas = betas + self.shape_heads[i](hs[i]).float()
            run_body = body_layers == "all" or (body_layers == "last" and i == cfg.dec_layers - 1)
            layers.append(
                self._layer_output(
                    hs[i],
                    boxes[i].float(),
                    pose6d,
                    betas,
                    k,
                    batch.image_sizes,
                    run_body,
                    return_vertices,
                )
            )
        return MAHMROutput(
            tuple(layers), k, fov, fov_raw, enc.scale_logits, enc.inside, enc.tokens, num_dn
        )

    def _layer_output(
        self,
        hs: Tensor,
        boxes: Tensor,
        pose6d: Tensor,
        betas: Tensor,
        k: Tensor,
        image_sizes: Tensor,
        run_body: bool,
        return_vertices: bool,
    ) -> LayerOutput:
        """Heads of one layer, camera geometry and (optionally) SMPL, in float32."""
        conf_logits = self.conf_head(hs).float().squeeze(-1)
        cam = self.cam_head(hs).float()
        with torch.autocast(device_type=hs.device.type, enabled=False):
            b, n = pose6d.shape[:2]
            rotmats = rot6d_to_matrix(pose6d.view(b, n, NUM_SMPL_JOINTS, 6))
            transl = translation_from_camera(cam, k, image_sizes, self.config.input_size)
            depths = torch.stack([transl[..., 2], transl[..., 2] / k[:, None, 0, 0]], dim=-1)
            joints = joints_2d = vertices = None
            if run_body:
                assert self.body is not None
                out = self.body(rotmats.flatten(0, 1), betas.flatten(0, 1))
                joints = out.joints.view(b, n, -1, 3) + transl[:, :, None]
                joints_2d = project(joints, k)
                if return_vertices:
                    vertices = out.vertices.view(b, n, -1, 3) + transl[:, :, None]
        return LayerOutput(
            boxes,
            conf_logits,
            pose6d,
            rotmats,
            betas,
            cam,
            transl,
            depths,
            joints,
            joints_2d,
            vertices,
        )
