"""The SMPL body layer: smplx's linear blend skinning with explicit, non-persistent buffers.

Model files are licensed and never stored in our checkpoints: they are read from a directory
(argument or `SMPL_MODEL_DIR`) by `SMPLBody.from_dir`, through smplx's own loader (so pkl/npz
handling and the kid template are exactly smplx's). The layer holds no pose/shape parameters;
it maps rotation matrices and betas to vertices and the 45 smplx joints, always in float32
(autocast disabled).
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import smplx
import torch
from smplx.lbs import lbs
from smplx.utils import Struct
from torch import Tensor, nn

from dto_core.body import load_model_arrays  # restricted unpickling, refuses chumpy files

from .conventions import NUM_H36M_JOINTS, NUM_SMPL_JOINTS

__all__ = ["BodyOutput", "SMPLBody", "find_smpl_file"]

SMPL_DIR_ENV = "SMPL_MODEL_DIR"
KID_TEMPLATE_FILE = "smpl_kid_template.npy"  # AGORA / SMIL kid template, 6890 x 3
H36M_REGRESSOR_FILE = "J_regressor_h36m_correct.npy"  # SPIN, 17 x 6890


@dataclass(frozen=True)
class BodyOutput:
    """vertices: (N, 6890, 3) and joints: (N, 45, 3), body frame (no translation), metres."""

    vertices: Tensor
    joints: Tensor


def find_smpl_file(
    model_dir: str | os.PathLike[str] | None = None, gender: str = "neutral"
) -> Path:
    """`SMPL_<GENDER>.pkl` (or `.npz`) in `model_dir` or `model_dir/smpl`; default dir
    `$SMPL_MODEL_DIR`."""
    root = model_dir if model_dir is not None else os.environ.get(SMPL_DIR_ENV)
    if root is None:
        raise FileNotFoundError(
            f"no SMPL model directory: pass model_dir or set {SMPL_DIR_ENV} to a folder holding "
            f"SMPL_{gender.upper()}.pkl (licensed; smpl.is.tue.mpg.de)"
        )
    for folder in (Path(root), Path(root) / "smpl"):
        for ext in ("pkl", "npz"):
            if (folder / f"SMPL_{gender.upper()}.{ext}").is_file():
                return folder / f"SMPL_{gender.upper()}.{ext}"
    raise FileNotFoundError(f"SMPL_{gender.upper()}.pkl / .npz not found in {root} or {root}/smpl")


class SMPLBody(nn.Module):
    """SMPL (optionally with the kid blend shape as the last beta) as a stateless layer.

    Args:
        v_template: (V, 3) template; shapedirs: (V, 3, K) shape blend shapes (K = 10 or 11);
        posedirs: (207, 3 V) pose correctives; j_regressor: (24, V); parents: (24,) int;
        lbs_weights: (V, 24); faces: (F, 3) int; extra_joint_ids: (21,) vertices appended as
        joints 24..44 (smplx's face, feet and finger-tip vertices);
        h36m_regressor: optional (17, V) Human3.6M joint regressor for evaluation.
    """

    def __init__(
        self,
        v_template: Tensor,
        shapedirs: Tensor,
        posedirs: Tensor,
        j_regressor: Tensor,
        parents: Tensor,
        lbs_weights: Tensor,
        faces: Tensor,
        extra_joint_ids: Tensor,
        h36m_regressor: Tensor | None = None,
    ) -> None:
        super().__init__()
        num_vertices = v_template.shape[0]
        expected = {
            "v_template": (v_template, (num_vertices, 3)),
            "posedirs": (posedirs, (9 * (NUM_SMPL_JOINTS - 1), 3 * num_vertices)),
            "j_regressor": (j_regressor, (NUM_SMPL_JOINTS, num_vertices)),
            "parents": (parents, (NUM_SMPL_JOINTS,)),
            "lbs_weights": (lbs_weights, (num_vertices, NUM_SMPL_JOINTS)),
        }
        for name, (tensor, shape) in expected.items():
            if tuple(tensor.shape) != shape:
                raise ValueError(f"{name} has shape {tuple(tensor.shape)}, expected {shape}")
        if shapedirs.dim() != 3 or tuple(shapedirs.shape[:2]) != (num_vertices, 3):
            raise ValueError(
                f"shapedirs has shape {tuple(shapedirs.shape)}, expected ({num_vertices}, 3, K)"
            )
        if h36m_regressor is not None and tuple(h36m_regressor.shape) != (
            NUM_H36M_JOINTS,
            num_vertices,
        ):
            raise ValueError(
                f"h36m_regressor has shape {tuple(h36m_regressor.shape)}, expected (17, V)"
            )
        buffers = {
            "v_template": v_template.float(),
            "shapedirs": shapedirs.float(),
            "posedirs": posedirs.float(),
            "j_regressor": j_regressor.float(),
            "parents": parents.long(),
            "lbs_weights": lbs_weights.float(),
            "faces": faces.long(),
            "extra_joint_ids": extra_joint_ids.long(),
        }
        for name, tensor in buffers.items():
            self.register_buffer(name, tensor.contiguous(), persistent=False)
        self.h36m_regressor: Tensor | None
        self.register_buffer(
            "h36m_regressor",
            None if h36m_regressor is None else h36m_regressor.float(),
            persistent=False,
        )

    @property
    def num_betas(self) -> int:
        return int(self.shapedirs.shape[-1])

    @property
    def num_joints(self) -> int:
        return NUM_SMPL_JOINTS + int(self.extra_joint_ids.shape[0])

    @classmethod
    def from_dir(
        cls,
        model_dir: str | os.PathLike[str] | None = None,
        *,
        kid: bool = True,
        gender: str = "neutral",
        kid_template: str | os.PathLike[str] | None = None,
        h36m_regressor: str | os.PathLike[str] | None = None,
    ) -> SMPLBody:
        """Load SMPL from files with smplx.

        Args:
            model_dir: folder with `SMPL_<GENDER>.pkl|npz` (or its `smpl/` subfolder); default
                `$SMPL_MODEL_DIR`. Pickles are read with a restricted unpickler (arrays only).
            kid: append the kid template as an 11th shape direction (MA-HMR final model).
            kid_template: `smpl_kid_template.npy`; default: next to the SMPL file.
            h36m_regressor: `J_regressor_h36m_correct.npy`; default: next to the SMPL file if
                present, else the layer has no H36M regressor.
        """
        path = find_smpl_file(model_dir, gender)
        kwargs: dict[str, object] = {"gender": gender, "num_betas": 10}
        if kid:
            template = (
                Path(kid_template) if kid_template is not None else path.parent / KID_TEMPLATE_FILE
            )
            if not template.is_file():
                raise FileNotFoundError(
                    f"kid template {template} not found (AGORA {KID_TEMPLATE_FILE})"
                )
            kwargs.update(age="kid", kid_template_path=str(template))
        struct = Struct(**load_model_arrays(path))
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a 10-betas notice
            layer = smplx.SMPLLayer(model_path=str(path), data_struct=struct, **kwargs)
        folder = path.parent
        regressor_path = (
            Path(h36m_regressor) if h36m_regressor is not None else folder / H36M_REGRESSOR_FILE
        )
        if h36m_regressor is not None and not regressor_path.is_file():
            raise FileNotFoundError(f"H36M regressor {regressor_path} not found")
        regressor = torch.from_numpy(np.load(regressor_path)) if regressor_path.is_file() else None
        return cls(
            v_template=layer.v_template,
            shapedirs=layer.shapedirs,
            posedirs=layer.posedirs,
            j_regressor=layer.J_regressor,
            parents=layer.parents,
            lbs_weights=layer.lbs_weights,
            faces=layer.faces_tensor,
            extra_joint_ids=layer.vertex_joint_selector.extra_joints_idxs,
            h36m_regressor=regressor,
        )

    def forward(self, rotmats: Tensor, betas: Tensor) -> BodyOutput:
        """Pose and shape a batch of bodies.

        Args:
            rotmats: (N, 24, 3, 3) joint rotations (joint 0 = global orientation).
            betas: (N, K) shape coefficients, K = `num_betas`.
        """
        if betas.shape[-1] != self.num_betas:
            raise ValueError(
                f"betas have {betas.shape[-1]} coefficients, the body model {self.num_betas}"
            )
        n = rotmats.shape[0]
        if n == 0:
            empty = self.v_template.new_zeros
            return BodyOutput(empty(0, *self.v_template.shape), empty(0, self.num_joints, 3))
        with torch.autocast(device_type=rotmats.device.type, enabled=False):
            vertices, joints = lbs(
                betas.float(),
                rotmats.float(),
                self.v_template,
                self.shapedirs,
                self.posedirs,
                self.j_regressor,
                self.parents,
                self.lbs_weights,
                pose2rot=False,
            )
            joints = torch.cat([joints, vertices[:, self.extra_joint_ids]], dim=1)
        return BodyOutput(vertices, joints)

    def h36m_joints(self, vertices: Tensor) -> Tensor:
        """(N, V, 3) vertices -> (N, 17, 3) Human3.6M joints (evaluation protocol of 3DPW etc.)."""
        if self.h36m_regressor is None:
            raise RuntimeError(
                f"this body layer has no H36M regressor; pass {H36M_REGRESSOR_FILE} to from_dir"
            )
        return torch.einsum("jv,nvc->njc", self.h36m_regressor, vertices.float())
