"""`teachers.toml`: where each teacher's weights are, its options, and the model ids of the cache.

```toml
[detector]                 # Mask R-CNN R50-FPN v2; options: DetectorConfig fields
weights = "COCO_V1"        # the torchvision file in $TORCH_HOME/hub/checkpoints, or a path
[keypoints]                # ViTPose-B; options: batch_size
weights = "usyd-community/vitpose-base-simple"
[hmr]                      # CameraHMR; smpl_dir: SMPL_NEUTRAL.pkl + SMPL_to_J19.pkl
weights = "ckpt/camerahmr_checkpoint_cleaned.ckpt"
smpl_dir = "data/smpl"     # default: $SMPL_MODEL_DIR
[fov]                      # HumanFoV, used without --pgt
weights = "ckpt/cam_model_cleaned.ckpt"
[age_gender]               # MiVOLO v2
weights = "iitolstykh/mivolo_v2"
[depth]                    # Depth-Anything-V2 per --depth-model size
S = "depth-anything/Depth-Anything-V2-Small-hf"
L = "ckpt/depth_anything_v2_vitl.pth"
[stage]                    # TeacherStage options
min_visible = 5
visible_thresh = 0.5
nms_ratio = 0.125
compat = false
```

A weight is a local file or folder, a Hub id (owner/name; resolved through the Hugging Face
cache, `HF_HUB_OFFLINE=1` for the cache only), or `"tiny"` with `seed = N` (a random test
instance: outputs are meaningless and the run is marked as such). Omitted tables take the
public defaults of `DEFAULT_WEIGHTS`; CameraHMR and HumanFoV have none (registration). A missing
file raises `MissingWeightsError` naming the teacher, the file, and where it comes from.

The model id of a cache stage is a digest of its teachers' descriptions: class, options, dtype,
and the weights' content (sha256 of local files, the commit of a Hub snapshot, or the tiny seed).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import MissingWeightsError, TeachersFileError, UsageError
from .profile import StageTimer

__all__ = [
    "DEFAULT_WEIGHTS",
    "DEPTH_SIZES",
    "SOURCES",
    "TeachersConfig",
    "Timed",
    "build_teachers",
    "load_teachers_config",
]

TEACHERS = ("detector", "keypoints", "hmr", "fov", "age_gender", "depth")
DEPTH_SIZES = {"S": "Small", "B": "Base", "L": "Large"}

DEFAULT_WEIGHTS: dict[str, str | None] = {
    "detector": "COCO_V1",
    "keypoints": "usyd-community/vitpose-base-simple",
    "hmr": None,
    "fov": None,
    "age_gender": "iitolstykh/mivolo_v2",
    **{
        f"depth.{s}": f"depth-anything/Depth-Anything-V2-{name}-hf"
        for s, name in DEPTH_SIZES.items()
    },
}
"""Public weights used when teachers.toml does not name any (None: no public default)."""

SOURCES: dict[str, str] = {
    "detector": "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth: "
    "https://download.pytorch.org/models/maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth (BSD-3-Clause)",
    "keypoints": "Hub repo usyd-community/vitpose-base-simple (Apache-2.0): "
    "hf download usyd-community/vitpose-base-simple",
    "hmr": "camerahmr_checkpoint_cleaned.ckpt from the CameraHMR site "
    "(camerahmr.is.tue.mpg.de, registration, non-commercial)",
    "fov": "cam_model_cleaned.ckpt from the CameraHMR site "
    "(camerahmr.is.tue.mpg.de, registration, non-commercial)",
    "age_gender": "Hub repo iitolstykh/mivolo_v2 (MiVOLO licence): "
    "hf download iitolstykh/mivolo_v2",
    "depth": "Hub repos depth-anything/Depth-Anything-V2-{Small,Base,Large}-hf, or the official "
    "depth_anything_v2_vit{s,b,l}.pth (S: Apache-2.0; B, L: CC-BY-NC-4.0)",
    "smpl": "SMPL_NEUTRAL.pkl from smpl.is.tue.mpg.de (registration) and SMPL_to_J19.pkl from "
    "the CameraHMR / 4D-Humans data; set [hmr] smpl_dir or $SMPL_MODEL_DIR",
}
"""Where each teacher's weights come from (the README's table), quoted by the errors."""


@dataclass(frozen=True)
class TeacherSpec:
    """One teacher: `weights` (path, Hub id or "tiny"), `seed` for tiny, `options`."""

    weights: str | None
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TeachersConfig:
    """The parsed teachers.toml (`load_teachers_config`): a spec per teacher ("depth.S" ...),
    the TeacherStage options, CameraHMR's body-model folder, and `simulated` (the [simulated]
    table: every teacher simulated on a folder of synthetic photos, `dto_pipeline.synthetic`)."""

    teachers: dict[str, TeacherSpec]
    stage: dict[str, Any]
    smpl_dir: str | None
    path: str | None = None
    simulated: dict[str, Any] | None = None


STAGE_OPTIONS = {"min_visible": int, "visible_thresh": float, "nms_ratio": float, "compat": bool}
TEACHER_OPTIONS = {
    "detector": {
        "score_thresh": float,
        "nms_thresh": float,
        "detections_per_img": int,
        "mask_thresh": float,
        "min_size": int,
        "max_size": int,
        "max_side": int,
        "batch_size": int,
    },
    "keypoints": {"batch_size": int},
    "hmr": {},
    "fov": {},
    "age_gender": {},
    "depth": {},
}


def _typed(where: str, key: str, value: Any, kind: type) -> Any:
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise TeachersFileError(f"{where}: {key} must be {kind.__name__}, got {value!r}")
    return value


def load_teachers_config(path: str | os.PathLike[str] | None) -> TeachersConfig:
    """Parse teachers.toml (None: every teacher at its default).

    Raises:
        TeachersFileError: an unknown table or key, or a value of the wrong type (named).
        FileNotFoundError: no such file.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"--teachers {path}: no such file")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise TeachersFileError(f"{path}: {exc}") from exc
    where = str(path or "teachers.toml")
    unknown = set(data) - {*TEACHERS, "stage", "simulated"}
    if unknown:
        raise TeachersFileError(
            f"{where}: unknown table(s) {sorted(unknown)}; tables: "
            + ", ".join((*TEACHERS, "stage", "simulated"))
        )
    simulated = None
    if "simulated" in data:
        simulated = dict(data["simulated"])
        others = set(data) & set(TEACHERS)
        if others:
            raise TeachersFileError(
                f"{where}: [simulated] replaces every teacher; remove {sorted(others)}"
            )
        if set(simulated) - {"photos", "min_pixels", "seed"} or "photos" not in simulated:
            raise TeachersFileError(
                f"{where}: [simulated] takes photos (a synthetic photo folder), min_pixels, seed"
            )
        photos = Path(_typed(f"{where} [simulated]", "photos", simulated["photos"], str))
        if path is not None and not photos.is_absolute():
            photos = Path(path).parent / photos
        simulated["photos"] = str(photos)
    stage = {}
    for key, value in data.get("stage", {}).items():
        if key not in STAGE_OPTIONS:
            raise TeachersFileError(
                f"{where}: [stage] {key}: unknown; options: {list(STAGE_OPTIONS)}"
            )
        stage[key] = _typed(f"{where} [stage]", key, value, STAGE_OPTIONS[key])

    teachers: dict[str, TeacherSpec] = {}
    smpl_dir = None
    for name in TEACHERS:
        table = dict(data.get(name, {}))
        if name == "depth":
            seed = _typed(f"{where} [depth]", "seed", table.pop("seed", 0), int)
            for size in DEPTH_SIZES:
                weights = table.pop(size, DEFAULT_WEIGHTS[f"depth.{size}"])
                teachers[f"depth.{size}"] = TeacherSpec(
                    _typed(f"{where} [depth]", size, weights, str), seed
                )
            if table:
                raise TeachersFileError(
                    f"{where}: [depth] {sorted(table)}: unknown; keys: S, B, L, seed"
                )
            continue
        weights = table.pop("weights", DEFAULT_WEIGHTS[name])
        if weights is not None:
            weights = _typed(f"{where} [{name}]", "weights", weights, str)
        seed = _typed(f"{where} [{name}]", "seed", table.pop("seed", 0), int)
        if name == "hmr" and "smpl_dir" in table:
            smpl_dir = _typed(f"{where} [hmr]", "smpl_dir", table.pop("smpl_dir"), str)
        options = {}
        for key, value in table.items():
            if key not in TEACHER_OPTIONS[name]:
                allowed = ["weights", "seed", *TEACHER_OPTIONS[name]] + (
                    ["smpl_dir"] if name == "hmr" else []
                )
                raise TeachersFileError(f"{where}: [{name}] {key}: unknown; keys: {allowed}")
            options[key] = _typed(f"{where} [{name}]", key, value, TEACHER_OPTIONS[name][key])
        teachers[name] = TeacherSpec(weights, seed, options)
    return TeachersConfig(teachers, stage, smpl_dir, None if path is None else str(path), simulated)


def files_digest(path: Path) -> str:
    """sha256 over the files under `path` (a file or a folder): relative names and contents."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(f"{file.relative_to(path) if path.is_dir() else file.name}\0".encode())
        with open(file, "rb") as f:
            while chunk := f.read(1 << 24):
                digest.update(chunk)
    return digest.hexdigest()


WEIGHT_FILE_SUFFIXES = (".ckpt", ".pth", ".pt", ".pkl", ".bin", ".safetensors", ".npz")
"""Names ending so are files, never Hub ids (`ckpt/model.ckpt` is a path)."""


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return (
        len(parts) == 2
        and all(parts)
        and not text.startswith((".", "/", "~"))
        and not text.lower().endswith(WEIGHT_FILE_SUFFIXES)
    )


def resolve(teacher: str, spec: TeacherSpec) -> tuple[Path | str, dict[str, Any]]:
    """The local weights of a teacher and its content description for the model id.

    Raises:
        MissingWeightsError: no weights given, or not found (with where to get them).
    """
    kind = teacher.split(".")[0]
    if spec.weights is None:
        raise MissingWeightsError(
            f"{teacher}: no weights given. Get {SOURCES[kind]} and set [{kind}] weights = PATH "
            "in teachers.toml (--teachers)"
        )
    if spec.weights == "tiny":
        return "tiny", {"tiny_seed": spec.seed}
    if teacher == "detector" and spec.weights in ("COCO_V1", "DEFAULT"):
        from dto_models.detector import torchvision_weights_path

        try:
            path = torchvision_weights_path(spec.weights)
        except FileNotFoundError as exc:
            raise MissingWeightsError(f"detector: {exc}. Source: {SOURCES['detector']}") from exc
        return path, {"sha256": files_digest(path)}
    path = Path(spec.weights).expanduser()
    if path.exists():
        return path, {"sha256": files_digest(path)}
    if not _looks_like_hub_id(spec.weights):
        raise MissingWeightsError(
            f"{teacher}: {spec.weights}: no such file or folder (and not a Hub id owner/name). "
            f"Get {SOURCES[kind]} and set [{kind}] weights in teachers.toml"
        )
    from huggingface_hub import snapshot_download

    try:
        snapshot = Path(snapshot_download(spec.weights))
    except Exception as exc:  # offline, unknown repo, network: all mean "not available here"
        raise MissingWeightsError(
            f"{teacher}: Hub repo {spec.weights} is not in the local Hugging Face cache and "
            f"could not be downloaded ({type(exc).__name__}: {exc}). Source: {SOURCES[kind]}"
        ) from exc
    return snapshot, {"hub": spec.weights, "revision": snapshot.name}


@dataclass
class Timed:
    """A teacher whose protocol method (`detect` or `estimate`) is timed as `stage`."""

    inner: Any
    stage: str
    timer: StageTimer

    def detect(self, *args: Any, **kwargs: Any) -> Any:
        with self.timer.stage(self.stage):
            return self.inner.detect(*args, **kwargs)

    def estimate(self, *args: Any, **kwargs: Any) -> Any:
        with self.timer.stage(self.stage):
            return self.inner.estimate(*args, **kwargs)


@dataclass
class Teachers:
    """The built teachers: `stage` (a TeacherStage without depth; timed), `depth` (timed), the
    model descriptions of the cache stages, and whether any weights are random (tiny)."""

    stage: Any
    depth: Any
    models: dict[str, dict[str, Any]]
    random_weights: bool
    simulated: bool = False


def resolve_device(device: str, dtype: str) -> tuple[str, str]:
    """`--device` / `--dtype` with "auto" resolved: CUDA when available; bfloat16 on CUDA,
    float32 on CPU."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    if dtype not in ("float32", "bfloat16"):
        raise UsageError(f"--dtype {dtype!r}: float32, bfloat16 or auto")
    return device, dtype


def build_teachers(
    config: TeachersConfig,
    *,
    depth_model: str,
    with_fov: bool,
    device: str,
    dtype: str,
    timer: StageTimer,
    extra_persons: dict[str, Any] | None = None,
    body: Any = None,
    smpl_dir: str | os.PathLike[str] | None = None,
) -> Teachers:
    """Load every teacher (checking all weights first, so a missing file fails before any
    image), wrapped for timing. `with_fov`: images without released intrinsics (no --pgt).
    `extra_persons`: more inputs of the persons stage for its model id (e.g. the release file).
    `body`: DTO's body model, which simulated teachers draw their photos' people with.
    `smpl_dir`: the SMPL folder (default: [hmr] smpl_dir, then $SMPL_MODEL_DIR).

    Raises:
        MissingWeightsError, TeachersFileError.
    """
    import torch

    from dto_models import (
        CameraHMR,
        DepthAnythingV2,
        HumanFoV,
        MaskRCNNDetector,
        MiVOLO,
        TeacherStage,
        ViTPoseEstimator,
    )
    from dto_models.camerahmr import load_body
    from dto_models.detector import DetectorConfig, build_maskrcnn

    if depth_model not in DEPTH_SIZES:
        raise UsageError(f"--depth-model {depth_model!r}: one of {', '.join(DEPTH_SIZES)}")
    smpl_dir = smpl_dir or config.smpl_dir or os.environ.get("SMPL_MODEL_DIR")
    if config.simulated is not None:
        return _simulated_teachers(config, depth_model, timer, body, smpl_dir)
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    person_teachers = ["detector", "keypoints", "hmr", "age_gender"] + (["fov"] if with_fov else [])
    depth_name = f"depth.{depth_model}"
    resolved = {t: resolve(t, config.teachers[t]) for t in [*person_teachers, depth_name]}

    if smpl_dir is None or not Path(smpl_dir).is_dir():
        raise MissingWeightsError(
            f"hmr: no body-model folder ({smpl_dir or 'none given'}). Get {SOURCES['smpl']}"
        )
    try:
        body, j19 = load_body(smpl_dir)
    except FileNotFoundError as exc:
        raise MissingWeightsError(f"hmr: {exc}. Get {SOURCES['smpl']}") from exc
    kw: dict[str, Any] = {"device": device, "dtype": torch_dtype}

    def build(name: str) -> Any:
        where, _ = resolved[name]
        spec = config.teachers[name]
        tiny = where == "tiny"
        if name == "detector":
            base = DetectorConfig.tiny() if tiny else DetectorConfig()
            det_config = dataclasses.replace(base, **spec.options)
            if tiny:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(spec.seed)
                    return MaskRCNNDetector(build_maskrcnn(det_config), det_config, **kw)
            return MaskRCNNDetector.from_pretrained(where, config=det_config, **kw)
        loaders: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
            "keypoints": (ViTPoseEstimator.tiny, ViTPoseEstimator.from_pretrained),
            "hmr": (CameraHMR.tiny, CameraHMR.from_pretrained),
            "fov": (HumanFoV.tiny, HumanFoV.from_pretrained),
            "age_gender": (MiVOLO.tiny, MiVOLO.from_pretrained),
            depth_name: (DepthAnythingV2.tiny, DepthAnythingV2.from_pretrained),
        }
        make_tiny, load = loaders[name]
        extra = dict(spec.options)
        if name == "hmr":
            extra["smpl_dir"] = smpl_dir
        return make_tiny(spec.seed, **kw, **extra) if tiny else load(where, **kw, **extra)

    loaded = {name: build(name) for name in resolved}
    stage = TeacherStage(
        Timed(loaded["detector"], "detection", timer),
        Timed(loaded["keypoints"], "keypoints", timer),
        Timed(loaded["hmr"], "hmr", timer),
        Timed(loaded["age_gender"], "age_gender", timer),
        None,
        Timed(loaded["fov"], "fov", timer) if with_fov else None,
        body_model=body,
        j19=j19,
        **config.stage,
    )

    def describe(name: str) -> dict[str, Any]:
        spec = config.teachers[name]
        return {"class": type(loaded[name]).__name__, "weights": resolved[name][1],
                "options": spec.options, "dtype": dtype}  # fmt: skip

    smpl = Path(smpl_dir)
    models = {
        "persons": {
            **{name: describe(name) for name in person_teachers},
            "stage": {**config.stage, "with_fov": with_fov},
            "smpl": {"j19": files_digest(_j19_file(smpl)), "model": _body_digest(smpl)},
            **(extra_persons or {}),
        },
        "depth": {depth_name: describe(depth_name)},
    }
    random_weights = any(where == "tiny" for where, _ in resolved.values())
    return Teachers(stage, Timed(loaded[depth_name], "depth", timer), models, random_weights)


def _j19_file(root: Path) -> Path:
    for folder in (root, root / "smpl"):
        if (folder / "SMPL_to_J19.pkl").is_file():
            return folder / "SMPL_to_J19.pkl"
    raise MissingWeightsError(f"hmr: SMPL_to_J19.pkl not in {root}. Get {SOURCES['smpl']}")


def _body_digest(root: Path) -> str:
    for folder in (root, root / "smpl"):
        for ext in (".pkl", ".npz"):
            if (folder / f"SMPL_NEUTRAL{ext}").is_file():
                return files_digest(folder / f"SMPL_NEUTRAL{ext}")
    raise MissingWeightsError(f"hmr: SMPL_NEUTRAL.pkl not in {root}. Get {SOURCES['smpl']}")


def random_images_note(random_weights: bool) -> str:
    """The warning a run with tiny random teachers prints and records."""
    return (
        "RANDOM TEACHER WEIGHTS (tiny test models): the rows are meaningless; never report them"
        if random_weights
        else ""
    )


def _simulated_teachers(
    config: TeachersConfig,
    depth_model: str,
    timer: StageTimer,
    body: Any,
    smpl_dir: str | os.PathLike[str] | None,
) -> Teachers:
    """The [simulated] teachers of a synthetic photo folder (`dto_pipeline.synthetic`)."""
    from dto_models import TeacherStage
    from dto_models.camerahmr import read_j19_regressor

    from .synthetic import SIDECAR, SimulatedTeachers, load_photos

    sim = dict(config.simulated or {})
    folder = Path(sim.pop("photos"))
    if smpl_dir is None or body is None:
        raise MissingWeightsError(f"simulated teachers need the body model. Get {SOURCES['smpl']}")
    photos, digests = load_photos(folder, body)
    j19 = read_j19_regressor(_j19_file(Path(smpl_dir)))
    teachers = SimulatedTeachers(photos, digests, body, j19, **sim)
    stage = TeacherStage(
        Timed(teachers.detector, "detection", timer),
        Timed(teachers.keypoints, "keypoints", timer),
        Timed(teachers.hmr, "hmr", timer),
        Timed(teachers.age_gender, "age_gender", timer),
        None,
        Timed(teachers.fov, "fov", timer),
        **config.stage,
    )
    description = {"simulated": files_digest(folder / SIDECAR), **sim}
    models = {
        "persons": {"simulated": description, "stage": config.stage},
        "depth": {f"depth.{depth_model}": {"simulated": description}},
    }
    return Teachers(stage, Timed(teachers.depth, "depth", timer), models, False, simulated=True)
