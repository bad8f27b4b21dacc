"""Checks of everything a run is given, before any heavy import: image paths, output names,
the model source, the SMPL folder, numbers. Standard library only (plus huggingface_hub's repo
id rule), so that a command line fails in well under a second on a wrong argument.

Every problem raises `InputError` with one line that names the argument or file and says what
to do.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "IMAGE_SUFFIXES",
    "TINY",
    "InputError",
    "ModelSource",
    "check_conf",
    "check_fov_deg",
    "check_model_source",
    "check_positive",
    "check_smpl_dir",
    "check_views",
    "find_images",
    "image_keys",
    "output_names",
    "parse_device",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
TINY = "tiny"
"""`--model tiny`: the random tiny model with the synthetic body model (offline try-out)."""
SMPL_DIR_ENV = "SMPL_MODEL_DIR"
_KID_TEMPLATE = "smpl_kid_template.npy"  # mahmr_model.body.KID_TEMPLATE_FILE (not imported: torch)


class InputError(ValueError):
    """A command-line input is wrong; the message names it and says what to do."""


def find_images(inputs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Image files given directly, plus the images (by suffix) directly inside given folders.

    Raises InputError for a path that does not exist, a folder without images, and a file
    given twice (directly or through its folder)."""
    images: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise InputError(
                    f"{item}: no images in this folder (looked for {', '.join(IMAGE_SUFFIXES)})"
                )
            images += found
        elif item.is_file():
            images.append(item)
        else:
            raise InputError(f"{item}: no such image file or folder")
    seen: dict[Path, Path] = {}
    for image in images:
        real = image.resolve()
        if real in seen:
            raise InputError(f"{image}: given twice (also as {seen[real]}); give it once")
        seen[real] = image
    return images


def output_names(images: Sequence[Path]) -> list[str]:
    """A distinct output name per image (no suffix; may hold '/'): the file stem when stems are
    unique, else the shortest tail of the path that tells them apart (`a/same`, `b/same`), with
    the suffix kept only where needed (`x.jpg`, `x.png` -> `x_jpg`, `x_png`)."""
    parts = [image.resolve().parts[1:] for image in images]  # without the root
    depth = max((len(p) for p in parts), default=1)
    for keep_suffix in (False, True):
        for k in range(1, depth + 1):
            names = []
            for path, p in zip(images, parts, strict=True):
                last = path.name.replace(".", "_") if keep_suffix else path.stem
                names.append("/".join([*p[-k:-1], last]))
            if len(set(names)) == len(names):
                return names
    raise InputError("two inputs resolve to the same file; give each image once")


def image_keys(images: Sequence[Path], key_depth: int) -> list[str]:
    """hmr-bench image keys: the last `key_depth` path components; collisions raise up front."""
    keys = ["/".join(image.parts[-key_depth:]) for image in images]
    first: dict[str, Path] = {}
    for image, key in zip(images, keys, strict=True):
        if key in first:
            raise InputError(
                f"--key-depth {key_depth}: {first[key]} and {image} both give the image key "
                f"{key!r} in the --predictions file; raise --key-depth to tell them apart"
            )
        first[key] = image
    return keys


@dataclass(frozen=True)
class ModelSource:
    """Where the weights come from.

    kind: "tiny" (random tiny model, synthetic body), "folder" (save_pretrained layout),
    "hub" (a Hub repo id) or "official" (an official SAT-HMR .pth / MA-HMR .bin).
    num_betas: from the folder's config.json when known (11: the kid template is needed).
    """

    kind: str
    value: str
    num_betas: int | None = None


def check_model_source(model: str | None, official: str | None = None) -> ModelSource:
    """Check `--model` (folder, Hub id or `tiny`) / `--official` (file) before loading."""
    if official is not None:
        path = Path(official)
        if not path.is_file():
            raise InputError(
                f"--official {official}: no such file (an official SAT-HMR .pth or MA-HMR .bin)"
            )
        return ModelSource("official", str(path))
    if model is None:
        raise InputError("give --model DIR_OR_HUB_ID (or --model tiny to try it offline)")
    if model == TINY:
        return ModelSource(TINY, TINY, num_betas=11)
    path = Path(model)
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file() or not (path / "model.safetensors").is_file():
            raise InputError(
                f"--model {model}: not an MA-HMR model folder (needs config.json and "
                "model.safetensors, as save_pretrained or `hf download` write them); "
                "for an official .pth / .bin file use --official"
            )
        try:
            num_betas = int(json.loads(config.read_text())["config"]["num_betas"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"--model {model}: {config} is not an MA-HMR config ({exc!r}); "
                "export the model again with save_pretrained"
            ) from None
        return ModelSource("folder", str(path), num_betas=num_betas)
    if path.is_file():
        raise InputError(
            f"--model {model}: is a file; --model takes a model folder or a Hub repo id "
            "(use --official for an official .pth / .bin checkpoint)"
        )
    if not _is_repo_id(model):
        raise InputError(
            f"--model {model}: no such folder, and not a Hub repo id ('org/name'); "
            "give a model folder, a Hub repo id, or 'tiny' to try it offline"
        )
    return ModelSource("hub", model)


def _is_repo_id(text: str) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if text.startswith(("/", ".", "~")):
        return False
    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return True


def check_smpl_dir(
    smpl_dir: str | os.PathLike[str] | None, num_betas: int | None, flag: str = "--smpl-dir"
) -> Path:
    """The SMPL folder from the argument `flag` or $SMPL_MODEL_DIR, holding SMPL_NEUTRAL.pkl /
    .npz (and the kid template for 11-beta models), checked as mahmr_model.SMPLBody looks."""
    where = flag if smpl_dir is not None else f"${SMPL_DIR_ENV}"
    root = smpl_dir if smpl_dir is not None else os.environ.get(SMPL_DIR_ENV)
    if root is None:
        raise InputError(
            f"no SMPL model folder: pass {flag} DIR or set {SMPL_DIR_ENV} to a folder with "
            "SMPL_NEUTRAL.pkl (licensed: smpl.is.tue.mpg.de), or try --model tiny"
        )
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{where} {root}: no such folder (it should hold SMPL_NEUTRAL.pkl)")
    for folder in (root, root / "smpl"):
        if any((folder / f"SMPL_NEUTRAL.{ext}").is_file() for ext in ("pkl", "npz")):
            if num_betas == 11 and not (folder / _KID_TEMPLATE).is_file():
                raise InputError(
                    f"{where} {root}: no {_KID_TEMPLATE} next to SMPL_NEUTRAL (AGORA's kid "
                    "template, needed by the 11-beta MA-HMR model)"
                )
            return root
    raise InputError(
        f"{where} {root}: no SMPL_NEUTRAL.pkl or .npz in it (or in its smpl/ subfolder); "
        "download the SMPL files (smpl.is.tue.mpg.de) or try --model tiny"
    )


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def parse_device(text: str) -> str:
    """`auto`, `cpu`, `mps`, `cuda` or `cuda:N` (availability is checked once torch is loaded)."""
    if not _DEVICE.match(text):
        raise InputError(f"--device {text}: expected auto, cpu, cuda, cuda:N or mps")
    return text


def check_conf(conf: float) -> float:
    if not 0.0 <= conf < 1.0:
        raise InputError(f"--conf {conf}: a confidence threshold lies in [0, 1), e.g. 0.3")
    return conf


def check_fov_deg(fov_deg: float | None) -> float | None:
    if fov_deg is not None and not 0.0 < fov_deg < 180.0:
        raise InputError(f"--fov-deg {fov_deg}: a vertical field of view lies in (0, 180) degrees")
    return fov_deg


def check_positive(name: str, value: int) -> int:
    if value < 1:
        raise InputError(f"{name} {value}: must be at least 1")
    return value


VIEWS = ("overlay", "side", "bev")
"""The pictures of a run (drawn by mahmr_infer.pictures): the meshes over the photo, the side
view, the bird's-eye view."""


def check_views(text: str) -> tuple[str, ...]:
    """`--render overlay,side,bev` (any subset) or `none` -> the views, in VIEWS order."""
    if text.strip() == "none":
        return ()
    asked = [v.strip() for v in text.split(",") if v.strip()]
    unknown = sorted(set(asked) - set(VIEWS))
    if unknown or not asked:
        raise InputError(
            f"--render {text}: choose from {','.join(VIEWS)} (comma-separated) or none"
        )
    return tuple(v for v in VIEWS if v in asked)
