"""Checkpoint folders for the Hub: safetensors weights + config.json + a model card, no torch.

A checkpoint folder holds `model.safetensors` (or shards `model-NNNNN-of-MMMMM.safetensors` with
`model.safetensors.index.json`, as `huggingface_hub.save_torch_state_dict` writes them),
`config.json` (the model's constructor arguments, with an `architecture` name) and `README.md`.
That is also what `PyTorchModelHubMixin.save_pretrained` writes. Pickle-based weights (`.ckpt`,
`.pt`, `.pth`, `.bin`, `.pkl`) are refused: only safetensors go on the Hub.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from huggingface_hub import ModelCard, ModelCardData
from safetensors import safe_open
from safetensors.numpy import save

from dto_humans_hub.conventions import DATA_LICENSE, REPO_ID
from dto_humans_hub.writer import write_atomic

__all__ = [
    "PICKLE_SUFFIXES",
    "Checkpoint",
    "CheckpointError",
    "checkpoint_files",
    "load_checkpoint",
    "render_model_card",
    "save_checkpoint",
]

WEIGHTS = "model.safetensors"
INDEX = "model.safetensors.index.json"
CONFIG = "config.json"
CARD = "README.md"
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
"""Weight formats that execute pickle code when loaded; never published."""

NUMPY_DTYPES = ("BOOL", "U8", "I8", "U16", "I16", "F16", "U32", "I32", "F32", "U64", "I64", "F64")
"""safetensors dtypes NumPy holds as they are."""

BF16 = "BF16"
"""bfloat16 (what mixed-precision training saves): NumPy has no such type, so `load_checkpoint`
returns these tensors as float32, exactly (bfloat16 is the upper half of a float32)."""


class CheckpointError(ValueError):
    """A checkpoint folder is incomplete or holds something that must not be published."""


@dataclass(frozen=True)
class Checkpoint:
    """Weights (name -> array), the config and the safetensors metadata (str -> str)."""

    tensors: dict[str, np.ndarray]
    config: dict[str, object]
    metadata: dict[str, str]


def render_model_card(
    config: Mapping[str, object],
    *,
    repo_id: str,
    dataset_repo_id: str | None = None,
    license: str = DATA_LICENSE,
    library_name: str = "mahmr-model",
    description: str = "",
) -> ModelCard:
    """A model card: YAML (library, licence, pipeline tag, tags, training dataset) + usage."""
    architecture = str(config.get("architecture", "unknown"))
    data = ModelCardData(
        library_name=library_name,
        license=license,
        pipeline_tag="image-to-3d",
        tags=["smpl", "human-mesh-recovery", "multi-person", "metric-depth", "safetensors"],
        datasets=[dataset_repo_id] if dataset_repo_id else None,
    )
    body = f"""# {repo_id.split("/")[-1]}

{description or f"`{architecture}` weights for metric-scale multi-person 3D human mesh recovery."}

Files: `{WEIGHTS}` (safetensors: no pickle code runs on load), `{CONFIG}` (the constructor
arguments, `architecture` = `{architecture}`) and this card.

## Download

```bash
hf download {repo_id} --local-dir ./checkpoint
```

```python
from dto_humans_hub.checkpoint import load_checkpoint

ckpt = load_checkpoint("{repo_id}")      # numpy arrays + config + metadata, no torch needed
```

Pin a release with `--revision` / `revision=` (a tag of this repository).

## Licence

{license}. Trained on data under non-commercial terms (DTO-Humans is CC-BY-NC-4.0); the SMPL body
model needed to use the outputs is licensed separately (https://smpl.is.tue.mpg.de).
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def save_checkpoint(
    directory: str | os.PathLike[str],
    tensors: Mapping[str, np.ndarray],
    config: Mapping[str, object],
    *,
    metadata: Mapping[str, str] | None = None,
    repo_id: str | None = None,
    dataset_repo_id: str | None = REPO_ID,
    license: str = DATA_LICENSE,
) -> list[Path]:
    """Write model.safetensors (arrays, metadata str -> str), config.json and, given the Hub
    `repo_id` the card is for, README.md (without one, `apps/publish` writes the card for the
    repo it publishes to), each atomically. Returns the paths."""
    directory = Path(directory)
    metadata = {"format": "np", **(metadata or {})}
    bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise CheckpointError(f"safetensors metadata must map str -> str; bad keys: {bad}")
    blob = save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=metadata)
    config_text = json.dumps(dict(config), indent=2, sort_keys=True) + "\n"
    files = [(WEIGHTS, blob), (CONFIG, config_text.encode())]
    if repo_id is not None:
        card = render_model_card(
            config, repo_id=repo_id, dataset_repo_id=dataset_repo_id, license=license
        )
        files.append((CARD, str(card).encode()))
    written = []
    for name, data in files:
        write_atomic(directory / name, lambda f, d=data: f.write(d))
        written.append(directory / name)
    return written


def checkpoint_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The files of a checkpoint folder to publish, validated: safetensors weights (one file, or
    shards listed by an index), a JSON config, optional README.md; raises CheckpointError on
    pickle files, missing or unreadable weights or config."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: not a directory")
    files = sorted(p for p in directory.rglob("*") if p.is_file() and not _hidden(p, directory))
    pickles = [p.relative_to(directory).as_posix() for p in files if p.suffix in PICKLE_SUFFIXES]
    if pickles:
        raise CheckpointError(
            f"{directory}: pickle-based weights must not be published: {pickles}; convert them "
            "to safetensors"
        )
    if not (directory / CONFIG).is_file():
        raise CheckpointError(f"{directory}: no {CONFIG}")
    try:
        json.loads((directory / CONFIG).read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{directory / CONFIG}: invalid JSON ({exc})") from exc
    if (directory / INDEX).is_file():
        weight_map = json.loads((directory / INDEX).read_text()).get("weight_map", {})
        weights = sorted({directory / name for name in weight_map.values()})
        if not weights:
            raise CheckpointError(f"{directory / INDEX}: empty weight_map")
    elif (directory / WEIGHTS).is_file():
        weights = [directory / WEIGHTS]
    else:
        raise CheckpointError(f"{directory}: no {WEIGHTS} (nor {INDEX})")
    for path in weights:
        if not path.is_file():
            raise CheckpointError(f"{path}: listed in the index but missing")
        try:
            with safe_open(path, framework="np") as f:
                f.metadata()
        except Exception as exc:  # safetensors raises its own SafetensorError
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc
        for name, dtype in _dtypes(path).items():
            if dtype not in (*NUMPY_DTYPES, BF16):
                raise CheckpointError(
                    f"{path}: tensor {name!r} is {dtype}, which load_checkpoint cannot return as "
                    "NumPy; save it as float32, float16 or bfloat16"
                )
    return files


def _header(path: Path) -> tuple[dict[str, dict], int]:
    """The safetensors JSON header (tensor name -> dtype, shape, data_offsets) and the byte
    offset of the data that data_offsets count from."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
    header.pop("__metadata__", None)
    return header, 8 + size


def _dtypes(path: Path) -> dict[str, str]:
    return {name: info["dtype"] for name, info in _header(path)[0].items()}


def _read_bf16(path: Path, info: dict, data_start: int) -> np.ndarray:
    """A bfloat16 tensor as float32: each 16-bit pattern becomes the upper half of a float32."""
    begin, end = info["data_offsets"]
    raw = np.fromfile(path, dtype="<u2", count=(end - begin) // 2, offset=data_start + begin)
    return (raw.astype(np.uint32) << 16).view(np.float32).reshape(info["shape"])


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def load_checkpoint(
    path_or_repo_id: str | os.PathLike[str],
    *,
    revision: str | None = None,
    local_files_only: bool = False,
) -> Checkpoint:
    """Load a checkpoint folder, or download one from the Hub (`snapshot_download` of the
    safetensors, JSON and README files only) and load it. Arrays come back as NumPy (bfloat16
    tensors as float32, exactly)."""
    directory = Path(path_or_repo_id)
    if not directory.is_dir():
        text = str(path_or_repo_id)
        if directory.exists() or text.startswith((".", "/", "~")) or text.count("/") != 1:
            raise CheckpointError(
                f"{text}: not a checkpoint folder, nor a Hub repo id ORG/NAME; give the folder "
                "holding model.safetensors and config.json"
            )
        from huggingface_hub import snapshot_download

        directory = Path(
            snapshot_download(
                str(path_or_repo_id),
                revision=revision,
                allow_patterns=["*.safetensors", "*.json", CARD],
                local_files_only=local_files_only,
            )
        )
    files = checkpoint_files(directory)
    tensors: dict[str, np.ndarray] = {}
    metadata: dict[str, str] = {}
    for path in (p for p in files if p.suffix == ".safetensors"):
        header, data_start = _header(path)
        with safe_open(path, framework="np") as f:
            metadata.update(f.metadata() or {})
            for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                info = header[key]
                tensors[key] = (
                    _read_bf16(path, info, data_start) if info["dtype"] == BF16
                    else f.get_tensor(key)
                )  # fmt: skip
    config = json.loads((directory / CONFIG).read_text())
    return Checkpoint(tensors, config, metadata)
