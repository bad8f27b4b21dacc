"""Loading the network and its body model for a run, with errors that name the argument."""

from __future__ import annotations

import os
import pickle
import tempfile
from dataclasses import dataclass, field

import torch
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

from dto_core.body import BodyModel
from dto_core.synthetic_body import write_synthetic_smpl_dir
from mahmr_model import MAHMR, CheckpointError, SMPLBody, tiny
from mahmr_model.body import KID_TEMPLATE_FILE, find_smpl_file

from .inputs import TINY, InputError, ModelSource

__all__ = ["SYNTHETIC_BANNER", "LoadedModel", "load_model", "resolve_device"]

SYNTHETIC_BANNER = (
    "--model tiny: RANDOM weights and a SYNTHETIC body model, to try the command offline; "
    "the people, heights and distances it outputs are meaningless"
)


@dataclass
class LoadedModel:
    """A model ready for `predict`, and what it was loaded from.

    height_model: the same SMPL files in dto-core's NumPy model (with the kid template for 11
    betas), for T-pose heights. synthetic: random weights and the synthetic body model
    (`--model tiny`): outputs are meaningless and every report says so. dropped: keys an
    official checkpoint did not load, with the reason.
    """

    model: MAHMR
    source: ModelSource
    device: torch.device
    height_model: BodyModel
    synthetic: bool = False
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def description(self) -> dict[str, object]:
        """For output files: variant, source, device, synthetic."""
        return {
            "variant": self.model.config.variant,
            "source": self.source.value,
            "kind": self.source.kind,
            "device": str(self.device),
            "synthetic": self.synthetic,
        }


def resolve_device(text: str) -> torch.device:
    """`auto` -> CUDA if present, else CPU; an unavailable device raises InputError."""
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(text)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {text}: no CUDA GPU is available; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(
                f"--device {text}: only {torch.cuda.device_count()} CUDA device(s); "
                f"use cuda:0 .. cuda:{torch.cuda.device_count() - 1}"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"--device {text}: MPS is not available here; use --device cpu")
    return device


def load_model(
    source: ModelSource,
    smpl_dir: str | os.PathLike[str] | None,
    device: torch.device,
    *,
    compile_blocks: bool = False,
    seed: int = 0,
) -> LoadedModel:
    """The network on `device` with its SMPL layer attached.

    `tiny`: MAHMR(tiny()) initialised from `seed` (the global RNG is left untouched) with the
    synthetic SMPL-format body model of dto-core. Otherwise the folder / Hub id / official file
    of `source` and the SMPL files of `smpl_dir` (checked by `inputs.check_smpl_dir`)."""
    dropped: dict[str, str] = {}
    if source.kind == TINY:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = MAHMR(tiny())
        with tempfile.TemporaryDirectory(prefix="mahmr-synthetic-smpl-") as folder:
            write_synthetic_smpl_dir(folder, seed=seed)
            body, height_model = _load_body(folder, kid=True)
    else:
        model, dropped = _load_weights(source, device)
        body, height_model = _load_body(smpl_dir, kid=model.config.num_betas == 11)
    model = model.to(device).set_body(body.to(device)).eval()
    if compile_blocks:
        model.compile_blocks()
    return LoadedModel(
        model, source, device, height_model, synthetic=source.kind == TINY, dropped=dropped
    )


def _load_weights(source: ModelSource, device: torch.device) -> tuple[MAHMR, dict[str, str]]:
    flag = "--official" if source.kind == "official" else "--model"
    try:
        if source.kind == "official":
            model, report = MAHMR.from_official(source.value, map_location=device)
            return model, dict(report.dropped)
        return MAHMR.from_pretrained(source.value, map_location=device), {}
    except (CheckpointError, FileNotFoundError) as exc:
        raise InputError(f"{flag} {source.value}: {_first_line(exc)}") from None
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        raise InputError(
            f"--model {source.value}: not in the local Hub cache and the Hub is not reachable "
            f"({type(exc).__name__}); download it once with `hf download {source.value} "
            "--local-dir DIR` and pass --model DIR"
        ) from None
    except HfHubHTTPError as exc:
        raise InputError(
            f"--model {source.value}: the Hub refused it ({_first_line(exc)}); check the repo "
            "id and your access (hf auth login for a private repo)"
        ) from None


def _load_body(smpl_dir: str | os.PathLike[str] | None, kid: bool) -> tuple[SMPLBody, BodyModel]:
    """The torch layer of the network and dto-core's NumPy model of the same files."""
    where = f"--smpl-dir {smpl_dir}" if smpl_dir is not None else "$SMPL_MODEL_DIR"
    try:
        body = SMPLBody.from_dir(smpl_dir, kid=kid)
        path = find_smpl_file(smpl_dir)
        template = path.parent / KID_TEMPLATE_FILE if kid else None
        return body, BodyModel.from_file(path, kid_template=template)
    except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as exc:
        raise InputError(
            f"{where}: the SMPL files cannot be loaded ({_first_line(exc)}); "
            "use the files from smpl.is.tue.mpg.de"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
