"""Converters into the DTO-Humans schema, each validating its input and reporting what it skips.

- `convert_released_opt`: the released `{INSTA,COCO,AIC,MPII}_CHMR_SMPL_OPT.npz` (DTO-Humans;
  MA-HMR `prepare_dto.py`): `{'annots': {image_key: [person, ...]}}`, person =
  `{'smpl_param': {'shape': (11,), 'pose': (72,), 'trans': (3,)},
    'cam_param': {'focal': (2,), 'princpt': (2,)}}`. The same layout with 10 betas
  (`*_CHMR_SMPL.npz`, MA-HMR `prepare_chmr.py`) is CameraHMR's pGT, not DTO's, and is labelled
  so (betas padded with 0). Also the official DTO code's per-source output `*_opt.npz`
  (`dto_framework.py`: `np.savez(path, **{image_key: {'pose_cam': (N, 72), 'shape': (N, 11),
  'trans_cam': (N, 3), 'cam_int': (N, 3, 3), 'is_released': (N,), 'is_optimize': bool}})`), the
  only file recording which people CameraHMR released.
- `convert_camerahmr_release`: CameraHMR's instance-level
  `{insta1,insta2,coco,mpii,aic}-release.npz` (the 4D-Humans pGT, the paper's "w. 4D" baseline),
  grouped into images as MA-HMR does.
- `convert_dto_run`: this project's DTO outputs (`dto_core.optimize.CrowdResult` plus the bodies
  after `dto_core.update.update_bodies`).

File-level problems (truncated archive, missing field, inconsistent lengths) raise
`AnnotationFileError` naming the file and field; image-level problems (wrong shape, non-finite
values) reject that image with a reason in `Conversion.rejected`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np

from dto_core.body import BodyModel
from dto_core.optimize import CrowdResult, PersonStatus
from dto_core.priors import PriorClass, prior_class
from dto_humans_hub.batch import AnnotationBatch, concat_batches
from dto_humans_hub.conventions import (
    ANNOTATION_SOURCES,
    BOX_SCALE_PX,
    DTO_STATUSES,
    INSTA_KEY_PREFIX,
    KEY_PATH_DEPTH,
    NUM_BETAS,
    NUM_BODY_JOINTS,
    NUM_KEYPOINTS,
    NUM_SMPL_BETAS,
    POSTERIOR_SCORE_THRESHOLD,
    SOURCE_FILE_PREFIXES,
    SOURCE_LABELS,
    SOURCES,
    SYNTHETIC_MARKER,
    UNKNOWN_SIZE,
)
from dto_humans_hub.npzio import AnnotationFileError, load_npz
from dto_humans_hub.writer import file_sha256

__all__ = [
    "Conversion",
    "DTORun",
    "DuplicateImageKeyError",
    "InputFile",
    "Rejection",
    "body_heights",
    "convert_camerahmr_release",
    "convert_dto_run",
    "convert_released_opt",
    "merge_conversions",
    "some",
    "source_from_filename",
]

PRINCIPAL_POINT_TOLERANCE_PX = 1e-3
"""2 c_x must be this close to an integer to be taken as the image width (likewise height)."""

HEIGHT_CHUNK = 4096
"""People per chunk when computing T-pose heights (bounds the (chunk, 6890) temporary)."""


class DuplicateImageKeyError(ValueError):
    """The same (source, image key) appears twice among the inputs."""


@dataclass(frozen=True)
class Rejection:
    """An input image that was not converted: its file, key, and why (`kind`: "invalid" input or
    "filtered" by DTO's posterior filter)."""

    file: str
    image_key: str
    reason: str
    kind: Literal["invalid", "filtered"] = "invalid"


@dataclass(frozen=True)
class InputFile:
    """An input: file name, size (bytes), sha256, images it holds, and whether it is a synthetic
    file of `dto_humans_hub.fixtures` (it holds SYNTHETIC_MARKER)."""

    name: str
    size: int
    sha256: str
    num_images: int
    synthetic: bool = False


@dataclass(frozen=True)
class Conversion:
    """Converted images, what was rejected, the inputs, and each image's input (index, (M,))."""

    batch: AnnotationBatch
    rejected: tuple[Rejection, ...]
    inputs: tuple[InputFile, ...]
    input_index: np.ndarray

    @property
    def synthetic(self) -> bool:
        """Some input is a synthetic fixture file."""
        return any(f.synthetic for f in self.inputs)


def some(names: Sequence[object], limit: int = 5) -> str:
    """The first `limit` names, and how many more (error messages name a few keys, not 100k)."""
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:limit])
    return f"{shown} and {len(names) - limit} more" if len(names) > limit else shown


def source_from_filename(path: str | os.PathLike[str]) -> str:
    """Source of a release file from its name (`COCO_CHMR_SMPL_OPT.npz`, `insta2-release.npz`)."""
    name = Path(path).name.lower()
    for source, prefix in SOURCE_FILE_PREFIXES.items():
        if name.startswith(prefix):
            return source
    raise AnnotationFileError(
        f"{path}: cannot tell the source from the file name; rename it to start with one of "
        f"{', '.join(SOURCES)} (e.g. COCO_CHMR_SMPL_OPT.npz), or pass source= (--source)"
    )


def _source_index(source: str, path: object) -> int:
    """The label of a release file's source (one of SOURCES)."""
    if source not in SOURCES:
        raise ValueError(
            f"{path}: source must be one of {SOURCES} (the collections with release "
            f"files), got {source!r}"
        )
    return SOURCES.index(source)


def body_heights(model: BodyModel, betas: np.ndarray) -> np.ndarray:
    """T-pose heights (P,) m of betas (P, 11): vertex y-extent at zero pose, as
    `BodyModel.tpose_height`, computed on the y coordinate only and in chunks."""
    betas = np.asarray(betas, dtype=np.float64)
    if model.num_betas == NUM_BETAS - 1:
        if np.any(betas[:, NUM_BETAS - 1] != 0):
            raise ValueError(
                "betas use the kid coefficient (11th) but the body model has 10 shape directions; "
                "load it with its kid template (BodyModel.from_dir(..., kid_template=...), "
                "--kid-template smpl_kid_template.npy)"
            )
        betas = betas[:, : NUM_BETAS - 1]
    elif model.num_betas != NUM_BETAS:
        raise ValueError(f"body model has {model.num_betas} shape directions, expected 10 or 11")
    y_template = model.v_template[:, 1]
    y_dirs = model.shapedirs[:, 1, :]  # (V, B)
    out = np.empty(len(betas), dtype=np.float64)
    for start in range(0, len(betas), HEIGHT_CHUNK):
        y = y_template + betas[start : start + HEIGHT_CHUNK] @ y_dirs.T  # (chunk, V)
        out[start : start + HEIGHT_CHUNK] = y.max(axis=1) - y.min(axis=1)
    return out.astype(np.float32)


def _heights(body_model: BodyModel | None, betas: np.ndarray) -> np.ndarray:
    """(P,) T-pose heights m of betas (P, 11), or NaN without a body model."""
    if body_model is None:
        return np.full(len(betas), np.nan, np.float32)
    return body_heights(body_model, np.nan_to_num(betas))


def _pad_betas(betas: np.ndarray) -> np.ndarray:
    """(P, 10 or 11) -> (P, 11): 10-beta SMPL shapes get a zero kid coefficient (MA-HMR)."""
    if betas.shape[1] == NUM_BETAS:
        return betas
    return np.concatenate([betas, np.zeros((len(betas), NUM_BETAS - betas.shape[1]))], axis=1)


def _size_from_principal_point(principal: np.ndarray) -> np.ndarray:
    """(M, 2) c_x, c_y -> (M, 2) int32 width, height = 2 c (CameraHMR's K has the principal point
    at the image centre); -1 where 2 c is not an integer (then the size is unknown)."""
    doubled = 2.0 * principal.astype(np.float64)
    rounded = np.round(doubled)
    ok = np.isfinite(doubled) & (np.abs(doubled - rounded) <= PRINCIPAL_POINT_TOLERANCE_PX)
    ok &= rounded > 0
    return np.where(ok, rounded, UNKNOWN_SIZE).astype(np.int32)


def _check_shape(value: object, shape: tuple[int, ...], what: str) -> np.ndarray:
    array = np.asarray(value)
    if array.shape != shape:
        raise ValueError(f"{what} has shape {array.shape}, expected {shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{what} has dtype {array.dtype}, expected numbers")
    return array


def _finite_rows(*arrays: np.ndarray) -> np.ndarray:
    """(P,) True where every value of the row is finite in all arrays."""
    ok = np.ones(len(arrays[0]), dtype=bool)
    for a in arrays:
        a = np.asarray(a)
        ok &= np.isfinite(a).all(axis=tuple(range(1, a.ndim)))
    return ok


def _image_reasons(
    offsets: np.ndarray, bad_person: np.ndarray, reason: str, reasons: dict[int, str]
) -> None:
    """Record `reason` (with the first bad person index) for images holding a bad person."""
    for p in np.flatnonzero(bad_person):
        image = int(np.searchsorted(offsets, p, side="right") - 1)
        reasons.setdefault(image, f"person {p - offsets[image]}: {reason}")


def _input_file(path: Path, num_images: int, arrays: dict[str, np.ndarray]) -> InputFile:
    synthetic = SYNTHETIC_MARKER in arrays
    return InputFile(path.name, path.stat().st_size, file_sha256(path), num_images, synthetic)


def _finish(
    batch: AnnotationBatch, reasons: dict[int, str], file: InputFile, keys: Sequence[str]
) -> Conversion:
    keep = np.setdiff1d(np.arange(batch.num_images), np.fromiter(reasons, np.int64, len(reasons)))
    rejected = tuple(Rejection(file.name, keys[i], reasons[i]) for i in sorted(reasons))
    kept = batch if len(keep) == batch.num_images else batch.take(keep)
    return Conversion(kept, rejected, (file,), np.zeros(kept.num_images, dtype=np.int64))


def convert_released_opt(
    path: str | os.PathLike[str],
    *,
    source: str | None = None,
    annotation: str | None = None,
    body_model: BodyModel | None = None,
    kept_only: bool = False,
) -> Conversion:
    """Convert a released `*_CHMR_SMPL_OPT.npz`, its 10-beta CameraHMR counterpart
    `*_CHMR_SMPL.npz`, or an official DTO output `*_opt.npz` (the layout is read from the file).

    source:      one of SOURCES; default: from the file name.
    annotation:  "dto_humans_release" or "camerahmr_release"; default: from the layout (11 betas:
                 DTO-Humans, `dto_status = kept`; 10 betas: CameraHMR's pGT, `not_run`) and the
                 name (`_OPT` or not); an error when the two disagree. A `*_opt.npz` is
                 "dto_official_run".
    body_model:  an 11-beta SMPL-A model (BodyModel with a kid template) to fill `body_height`.
    kept_only:   `*_opt.npz` only: the file was written with `--save_all_annots False` (as for
                 DTO-Humans), so its optimised images are the ones the posterior filter kept.
    """
    path = Path(path)
    src = _source_index(source or source_from_filename(path), path)
    arrays = load_npz(path)
    if "annots" not in arrays:
        images = [k for k in arrays if k != SYNTHETIC_MARKER]
        if images and all(_is_dto_output(arrays[k]) for k in images[:3]):
            if annotation not in (None, "dto_official_run"):
                raise ValueError(f"{path}: an official DTO output is not {annotation!r}")
            return _convert_dto_output(path, arrays, SOURCES[src], body_model, kept_only)
        raise AnnotationFileError(
            f"{path}: neither a DTO-Humans annotation file (an 'annots' entry) nor an official "
            f"DTO output (entries image key -> {{'pose_cam', 'shape', 'trans_cam', 'cam_int', "
            f"'is_released'}}); found {some(sorted(arrays))}"
        )
    annots = arrays["annots"]
    if annots.shape != () or not isinstance(annots.item(), dict):
        raise AnnotationFileError(f"{path}: 'annots' must hold one dict image_key -> people")
    annots = annots.item()
    keys: list[str] = []
    counts: list[int] = []
    beta_sizes: set[int] = set()
    pose, betas, transl, focal, principal = [], [], [], [], []
    reasons: dict[int, str] = {}
    for key, people in annots.items():
        image = len(keys)
        keys.append(str(key))
        try:
            if not isinstance(people, list | tuple):
                raise ValueError(f"value is a {type(people).__name__}, expected a list of people")
            rows = []
            for j, person in enumerate(people):
                try:
                    smpl, cam = person["smpl_param"], person["cam_param"]
                    shape = np.asarray(smpl["shape"])
                    if shape.shape not in ((NUM_BETAS,), (NUM_SMPL_BETAS,)):
                        raise ValueError(
                            f"smpl_param.shape has shape {shape.shape}, expected (11,)"
                        )
                    beta_sizes.add(len(shape))
                    rows.append((
                        _check_shape(smpl["pose"], (3 * NUM_BODY_JOINTS,), "smpl_param.pose"),
                        _pad_betas(shape[None].astype(np.float64))[0],
                        _check_shape(smpl["trans"], (3,), "smpl_param.trans"),
                        _check_shape(cam["focal"], (2,), "cam_param.focal"),
                        _check_shape(cam["princpt"], (2,), "cam_param.princpt"),
                    ))  # fmt: skip
                except (KeyError, TypeError, ValueError) as exc:
                    detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
                    raise ValueError(f"person {j}: {detail}") from exc
        except ValueError as exc:
            reasons[image] = str(exc)
            counts.append(0)
            focal.append(np.full(2, np.nan))
            principal.append(np.full(2, np.nan))
            continue
        counts.append(len(rows))
        for row in rows:
            pose.append(row[0])
            betas.append(row[1])
            transl.append(row[2])
        # the format copies the image's first cam_int into every person: use the first
        focal.append(rows[0][3] if rows else np.full(2, np.nan))
        principal.append(rows[0][4] if rows else np.full(2, np.nan))

    label = _released_provenance(path, beta_sizes, annotation)
    offsets = np.zeros(len(keys) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    p = int(offsets[-1])
    pose_a = np.asarray(pose, dtype=np.float32).reshape(p, NUM_BODY_JOINTS, 3)
    betas_a = np.asarray(betas, dtype=np.float32).reshape(p, NUM_BETAS)
    transl_a = np.asarray(transl, dtype=np.float32).reshape(p, 3)
    focal_a = np.asarray(focal, dtype=np.float64).reshape(-1, 2)
    principal_a = np.asarray(principal, dtype=np.float64).reshape(-1, 2)
    _image_reasons(offsets, ~_finite_rows(pose_a, betas_a, transl_a), "non-finite SMPL", reasons)
    cam_bad = ~(_finite_rows(focal_a, principal_a) & (focal_a > 0).all(axis=1))
    cam_bad &= np.diff(offsets) > 0
    for image in np.flatnonzero(cam_bad):
        reasons.setdefault(int(image), "cam_param: focal must be finite and > 0, princpt finite")

    intrinsics = np.zeros((len(keys), 3, 3), dtype=np.float64)
    intrinsics[:, 0, 0], intrinsics[:, 1, 1] = focal_a[:, 0], focal_a[:, 1]
    intrinsics[:, 0, 2], intrinsics[:, 1, 2] = principal_a[:, 0], principal_a[:, 1]
    intrinsics[:, 2, 2] = 1.0
    size = _size_from_principal_point(principal_a)
    heights = _heights(body_model, betas_a)
    dto = label == "dto_humans_release"
    batch = AnnotationBatch.create(
        image_key=keys,
        offsets=offsets,
        source=np.full(len(keys), src),
        annotation=ANNOTATION_SOURCES.index(label),
        intrinsics=intrinsics,
        smpl_pose=pose_a,
        smpl_betas=betas_a,
        transl_cam=transl_a,
        width=size[:, 0],
        height=size[:, 1],
        dto_status=np.full(len(keys), DTO_STATUSES.index("kept" if dto else "not_run")),
        body_height=heights,
        **({} if dto else {"origin": np.zeros(p, np.int64)}),  # CameraHMR's people: released
    )
    return _finish(batch, reasons, _input_file(path, len(keys), arrays), keys)


def _released_provenance(path: Path, beta_sizes: set[int], annotation: str | None) -> str:
    """DTO-Humans (11 betas, `*_CHMR_SMPL_OPT.npz`) or CameraHMR's pGT (10 betas,
    `*_CHMR_SMPL.npz`), from the people's numbers of betas and the file name; `annotation`
    overrides both."""
    labels = ("dto_humans_release", "camerahmr_release")
    if annotation is not None:
        if annotation not in labels:
            raise ValueError(f"{path}: annotation must be one of {labels}, got {annotation!r}")
        return annotation
    by_size = {NUM_BETAS: labels[0], NUM_SMPL_BETAS: labels[1]}
    by_betas = by_size[next(iter(beta_sizes))] if len(beta_sizes) == 1 else None
    name = path.name.upper()
    by_name = labels[0] if "_OPT" in name else labels[1] if "_CHMR_SMPL" in name else None
    if by_betas and by_name and by_betas != by_name:
        raise AnnotationFileError(
            f"{path}: the name says {by_name} but the people have {next(iter(beta_sizes))} "
            f"betas ({by_betas}); pass annotation= (--annotation) to say which it is"
        )
    label = by_betas or by_name
    if label is None:
        raise AnnotationFileError(
            f"{path}: cannot tell DTO-Humans (11 betas) from CameraHMR's pGT (10 betas); pass "
            "annotation= (--annotation)"
        )
    return label


_DTO_OUTPUT_FIELDS = ("pose_cam", "shape", "trans_cam", "cam_int", "is_released")


def _is_dto_output(value: np.ndarray) -> bool:
    return (
        value.dtype == object
        and value.shape == ()
        and isinstance(value.item(), dict)
        and all(f in value.item() for f in _DTO_OUTPUT_FIELDS)
    )


def _convert_dto_output(
    path: Path,
    arrays: dict[str, np.ndarray],
    source: str,
    body_model: BodyModel | None,
    kept_only: bool,
) -> Conversion:
    """The official DTO code's `*_opt.npz`: per image key a dict of per-person arrays."""
    keys: list[str] = []
    counts: list[int] = []
    pose, betas, transl, released = [], [], [], []
    intrinsics, optimised = [], []
    reasons: dict[int, str] = {}
    for raw_key, value in arrays.items():
        if raw_key == SYNTHETIC_MARKER:
            continue
        image = len(keys)
        keys.append(_image_key(raw_key, source))
        try:
            if not _is_dto_output(value):
                raise ValueError(f"not a dict with {', '.join(_DTO_OUTPUT_FIELDS)}")
            entry = value.item()
            n = len(np.asarray(entry["trans_cam"]))
            rows = (
                _check_shape(np.reshape(entry["pose_cam"], (n, -1)), (n, 3 * NUM_BODY_JOINTS),
                             "pose_cam"),
                _pad_betas(_check_shape(entry["shape"], (n, np.shape(entry["shape"])[-1]),
                                        "shape").astype(np.float64)),
                _check_shape(entry["trans_cam"], (n, 3), "trans_cam"),
                _check_shape(entry["cam_int"], (n, 3, 3), "cam_int"),
                np.asarray(entry["is_released"], dtype=bool).reshape(n),
            )  # fmt: skip
            if rows[1].shape != (n, NUM_BETAS):
                raise ValueError(f"shape has {np.shape(entry['shape'])[-1]} betas, expected 10/11")
            if n == 0:
                raise ValueError("no people")
        except (TypeError, ValueError) as exc:
            reasons[image] = str(exc)
            counts.append(0)
            intrinsics.append(np.full((3, 3), np.nan))
            optimised.append(False)
            continue
        counts.append(n)
        pose.append(rows[0])
        betas.append(rows[1])
        transl.append(rows[2])
        released.append(rows[4])
        intrinsics.append(rows[3][0])  # the image's camera: the first person's, as prepare_dto.py
        optimised.append(bool(entry.get("is_optimize", False)))
    offsets = np.zeros(len(keys) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    p = int(offsets[-1])

    def stack(parts: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
        return np.concatenate(parts).reshape(p, *shape) if parts else np.zeros((0, *shape))

    pose_a = stack(pose, (NUM_BODY_JOINTS, 3)).astype(np.float32)
    betas_a = stack(betas, (NUM_BETAS,)).astype(np.float32)
    transl_a = stack(transl, (3,)).astype(np.float32)
    k = np.asarray(intrinsics, dtype=np.float64).reshape(-1, 3, 3)
    _image_reasons(offsets, ~_finite_rows(pose_a, betas_a, transl_a), "non-finite SMPL", reasons)
    cam_bad = ~(_finite_rows(k) & (k[:, 0, 0] > 0) & (k[:, 1, 1] > 0)) & (np.diff(offsets) > 0)
    for image in np.flatnonzero(cam_bad):
        reasons.setdefault(int(image), "cam_int: focal must be finite and > 0")
    optimised_a = np.array(optimised, dtype=bool)
    if kept_only and not optimised_a[np.diff(offsets) > 0].all():
        raise AnnotationFileError(
            f"{path}: holds images DTO did not optimise (is_optimize False), so it was not written "
            "with --save_all_annots False; convert it without kept_only (--kept-only)"
        )
    status = np.where(
        optimised_a,
        DTO_STATUSES.index("kept" if kept_only else "optimised"),
        DTO_STATUSES.index("not_optimised"),
    )
    size = _size_from_principal_point(k[:, :2, 2])
    heights = _heights(body_model, betas_a)
    batch = AnnotationBatch.create(
        image_key=keys,
        offsets=offsets,
        source=np.full(len(keys), SOURCES.index(source)),
        annotation=ANNOTATION_SOURCES.index("dto_official_run"),
        intrinsics=k,
        smpl_pose=pose_a,
        smpl_betas=betas_a,
        transl_cam=transl_a,
        width=size[:, 0],
        height=size[:, 1],
        dto_status=status,
        body_height=heights,
        origin=np.where(np.concatenate(released) if released else np.zeros(0, bool), 0, 1),
    )
    return _finish(batch, reasons, _input_file(path, len(keys), arrays), keys)


_RELEASE_FIELDS = {
    "imgname": ("imgname",),
    "pose_cam": ("pose_cam", "pose"),
    "shape": ("shape",),
    "trans_cam": ("trans_cam", "cam_t", "trans"),
    "cam_int": ("cam_int",),
    "center": ("center",),
    "scale": ("scale",),
}
"""CameraHMR release fields and their accepted aliases (DTO-Humans `dto_framework.py`)."""


def _release_field(arrays: dict[str, np.ndarray], field: str, path: Path) -> np.ndarray:
    for alias in _RELEASE_FIELDS[field]:
        if alias in arrays:
            return arrays[alias]
    raise AnnotationFileError(
        f"{path}: no {field!r} field (aliases {_RELEASE_FIELDS[field]}; found "
        f"{some(sorted(arrays))})"
    )


def _image_key(imgname: str, source: str) -> str:
    parts = PurePosixPath(str(imgname).replace("\\", "/")).parts
    key = "/".join(parts[-KEY_PATH_DEPTH[source] :])
    return INSTA_KEY_PREFIX + key if source == "insta" else key


def convert_camerahmr_release(
    paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    source: str | None = None,
    body_model: BodyModel | None = None,
) -> Conversion:
    """Convert CameraHMR `*-release.npz` files of ONE source (e.g. insta1 + insta2) to images.

    Rows are grouped by image key (the last 1, or 3 for InstaVariety, components of `imgname`,
    InstaVariety keys prefixed `insta-train/`, as MA-HMR), people in file order; the image's
    intrinsics are its first row's `cam_int`. Boxes: the square of side 200 x `scale` around
    `center`; keypoints: the first 44 rows of `gtkps` (NaN if absent); 10 betas padded to 11.
    """
    paths = [Path(paths)] if isinstance(paths, str | os.PathLike) else [Path(p) for p in paths]
    if not paths:
        raise ValueError("no release files given")
    sources = {source or source_from_filename(p) for p in paths}
    if len(sources) != 1:
        raise ValueError(f"release files of one source expected, got {sorted(sources)}")
    src_name = sources.pop()
    src = _source_index(src_name, paths[0])

    columns: dict[str, list[np.ndarray]] = {k: [] for k in (*_RELEASE_FIELDS, "gtkps")}
    row_file: list[np.ndarray] = []
    inputs = []
    synthetic = []
    for file_index, path in enumerate(paths):
        arrays = load_npz(path)
        synthetic.append(SYNTHETIC_MARKER in arrays)
        fields = {k: _release_field(arrays, k, path) for k in _RELEASE_FIELDS}
        n = len(fields["imgname"])
        expected = {
            "pose_cam": (3 * NUM_BODY_JOINTS,), "shape": (NUM_SMPL_BETAS,), "trans_cam": (3,),
            "cam_int": (3, 3), "center": (2,),
        }  # fmt: skip
        for name, trailing in expected.items():
            value = fields[name]
            if name == "shape" and value.ndim == 2 and value.shape[1] == NUM_BETAS:
                continue
            if value.shape != (n, *trailing):
                raise AnnotationFileError(
                    f"{path}: {name} has shape {value.shape}, expected {(n, *trailing)}"
                )
        fields["scale"] = fields["scale"].reshape(n, -1)
        if fields["scale"].shape != (n, 1):
            raise AnnotationFileError(f"{path}: scale must hold one value per row")
        if "gtkps" in arrays:
            kps = arrays["gtkps"]
            if kps.ndim != 3 or len(kps) != n or kps.shape[1] < NUM_KEYPOINTS or kps.shape[2] != 3:
                raise AnnotationFileError(
                    f"{path}: gtkps has shape {kps.shape}, expected ({n}, >= {NUM_KEYPOINTS}, 3)"
                )
            fields["gtkps"] = kps[:, :NUM_KEYPOINTS]
        else:
            fields["gtkps"] = np.full((n, NUM_KEYPOINTS, 3), np.nan, np.float32)
        for name, value in fields.items():
            columns[name].append(value)
        row_file.append(np.full(n, file_index))
        inputs.append(path)

    imgname = np.concatenate(columns["imgname"]).astype(str)
    keys_per_row = np.array([_image_key(name, src_name) for name in imgname], dtype=object)
    unique, first, inverse = np.unique(keys_per_row, return_index=True, return_inverse=True)
    image_order = np.argsort(first, kind="stable")  # images in order of first appearance
    rank = np.empty_like(image_order)
    rank[image_order] = np.arange(len(image_order))
    row_image = rank[inverse]
    rows = np.argsort(row_image, kind="stable")  # rows grouped by image, file order within
    counts = np.bincount(row_image, minlength=len(unique))
    offsets = np.zeros(len(unique) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    keys = unique[image_order].tolist()

    def col(name: str) -> np.ndarray:
        return np.concatenate(columns[name])[rows].astype(np.float64)

    pose, betas, transl, cam_int = col("pose_cam"), col("shape"), col("trans_cam"), col("cam_int")
    center, scale, kps = col("center"), col("scale")[:, 0], col("gtkps")
    file_of_row = np.concatenate(row_file)[rows]
    reasons: dict[int, str] = {}
    _image_reasons(offsets, ~_finite_rows(pose, betas, transl), "non-finite SMPL", reasons)
    focal_ok = (cam_int[:, 0, 0] > 0) & (cam_int[:, 1, 1] > 0)
    bad_cam = ~(_finite_rows(cam_int, center) & np.isfinite(scale) & (scale > 0) & focal_ok)
    _image_reasons(offsets, bad_cam, "cam_int/center/scale non-finite or not > 0", reasons)

    first_row = offsets[:-1]
    intrinsics = cam_int[first_row]
    size = _size_from_principal_point(intrinsics[:, :2, 2])
    half = 0.5 * BOX_SCALE_PX * scale[:, None]
    bbox = np.concatenate([center - half, center + half], axis=1)
    betas = _pad_betas(betas)
    heights = _heights(body_model, betas)
    batch = AnnotationBatch.create(
        image_key=keys,
        offsets=offsets,
        source=np.full(len(keys), src),
        annotation=ANNOTATION_SOURCES.index("camerahmr_release"),
        intrinsics=intrinsics,
        smpl_pose=pose.reshape(-1, NUM_BODY_JOINTS, 3),
        smpl_betas=betas,
        transl_cam=transl,
        width=size[:, 0],
        height=size[:, 1],
        bbox_xyxy=bbox,
        keypoints_2d=kps,
        origin=np.zeros(len(betas), np.int64),  # every person of the release is "released"
        body_height=heights,
    )
    files = [
        InputFile(p.name, p.stat().st_size, file_sha256(p), int(np.sum(file_of_row == i)),
                  synthetic[i])
        for i, p in enumerate(inputs)
    ]  # fmt: skip
    keep = np.setdiff1d(np.arange(len(keys)), np.fromiter(reasons, np.int64, len(reasons)))
    first_file = file_of_row[first_row] if len(keys) else np.zeros(0, np.int64)
    rejected = tuple(
        Rejection(files[first_file[i]].name, keys[i], reasons[i]) for i in sorted(reasons)
    )
    return Conversion(batch.take(keep), rejected, tuple(files), first_file[keep])


@dataclass(frozen=True)
class DTORun:
    """A DTO run over S images with N people (as passed to `dto_core.optimize_scenes`).

    Per image (S,): source (SOURCE_LABELS index: SOURCES or `photos`), image_key, image_size
    (S, 2) (height, width) px, intrinsics (S, 3, 3) px. offsets (S + 1,). Per person (N,),
    bodies AFTER the update (`dto_core.update.update_bodies`): smpl_pose (N, 24, 3) or (N, 72)
    rad, smpl_betas (N, 11), transl_cam (N, 3) m; is_released (N,) bool, age (N,) years,
    p_male (N,); optional bbox_xyxy (N, 4) px and keypoints_2d (N, 44, 3). result: the
    CrowdResult of the run. synthetic: the run's scenes are synthetic (or its teachers random):
    the built dataset is then marked so. S = 0 is allowed.
    """

    source: np.ndarray
    image_key: Sequence[str]
    image_size: np.ndarray
    intrinsics: np.ndarray
    offsets: np.ndarray
    smpl_pose: np.ndarray
    smpl_betas: np.ndarray
    transl_cam: np.ndarray
    is_released: np.ndarray
    age: np.ndarray
    p_male: np.ndarray
    result: CrowdResult
    bbox_xyxy: np.ndarray | None = None
    keypoints_2d: np.ndarray | None = None
    name: str = "dto-run"
    synthetic: bool = False


def convert_dto_run(run: DTORun, *, keep: Literal["kept", "all"] = "kept") -> Conversion:
    """Convert a DTO run. People REMOVED by DTO's cue rejection are dropped (as the official
    output); with keep="kept" images the posterior filter rejects are reported as "filtered"."""
    offsets = np.asarray(run.offsets, dtype=np.int64)
    s, n = len(offsets) - 1, int(offsets[-1])
    res = run.result
    if not np.array_equal(np.asarray(res.offsets), offsets):
        raise ValueError(f"{run.name}: result.offsets differ from the run's offsets")
    keys = [str(k) for k in run.image_key]
    if len(keys) != s:
        raise ValueError(f"{run.name}: {len(keys)} image keys for {s} images")
    pose = np.asarray(run.smpl_pose, dtype=np.float64).reshape(n, NUM_BODY_JOINTS, 3)
    betas = np.asarray(run.smpl_betas, dtype=np.float64)
    betas = _pad_betas(betas.reshape(n, betas.size // n if n else betas.shape[-1]))
    if betas.shape != (n, NUM_BETAS):
        raise ValueError(f"{run.name}: smpl_betas must be (N, 10 or 11), got {betas.shape}")
    source = np.broadcast_to(np.asarray(run.source, dtype=np.int64), (s,))
    seen: dict[tuple[int, str], int] = {}
    for i, key in enumerate(keys):
        if (int(source[i]), key) in seen:
            raise DuplicateImageKeyError(
                f"{run.name}: duplicate image key {SOURCE_LABELS[source[i]]}/{key} "
                f"(images {seen[int(source[i]), key]} and {i})"
            )
        seen[int(source[i]), key] = i

    reasons: dict[int, str] = {}
    _image_reasons(offsets, ~_finite_rows(pose, betas, run.transl_cam), "non-finite SMPL", reasons)
    filtered: dict[int, str] = {}
    if keep == "kept":
        for i in np.flatnonzero(~res.kept):
            filtered[int(i)] = (
                f"rejected by the posterior filter (score {res.score[i]:.3f} >= "
                f"{POSTERIOR_SCORE_THRESHOLD})"
                if res.optimised[i]
                else "not optimised (no group optimised >= 2 people)"
            )
    elif keep != "all":
        raise ValueError(f"keep must be 'kept' or 'all', got {keep!r}")

    rejected_status = np.where(
        res.optimised, DTO_STATUSES.index("rejected_score"), DTO_STATUSES.index("not_optimised")
    )
    status = np.where(res.kept, DTO_STATUSES.index("kept"), rejected_status)
    age_group = np.minimum(prior_class(run.age, run.p_male), PriorClass.ADULT_FEMALE)
    size = np.asarray(run.image_size, dtype=np.int64).reshape(s, 2)
    batch = AnnotationBatch.create(
        image_key=keys,
        offsets=offsets,
        source=source,
        annotation=ANNOTATION_SOURCES.index("dto_run"),
        intrinsics=run.intrinsics,
        smpl_pose=pose,
        smpl_betas=betas,
        transl_cam=run.transl_cam,
        width=size[:, 1],
        height=size[:, 0],
        dto_status=status,
        dto_score=res.score,
        depth_scale=res.group_scale,
        depth_shift=res.group_shift,
        bbox_xyxy=run.bbox_xyxy,
        keypoints_2d=run.keypoints_2d,
        age_group=age_group,
        p_male=run.p_male,
        height_prior_mean=res.prior_mean,
        height_prior_std=res.prior_std,
        body_height=res.height,
        origin=np.where(np.asarray(run.is_released, dtype=bool), 0, 1),
        height_residual=res.residual,
        person_status=res.status,
        depth_group=res.is_far.astype(np.int64),
    )
    # drop the people DTO removed, then the rejected images
    kept_people = np.asarray(res.status) != PersonStatus.REMOVED
    if not kept_people.all():
        batch = _drop_people(batch, kept_people)
    file = InputFile(run.name, 0, "", s, run.synthetic)
    drop = {**filtered, **reasons}
    keep_images = np.setdiff1d(np.arange(s), np.fromiter(drop, np.int64, len(drop)))
    rejected = tuple(
        Rejection(run.name, keys[i], reasons[i]) if i in reasons
        else Rejection(run.name, keys[i], filtered[i], "filtered")
        for i in sorted(drop)
    )  # fmt: skip
    kept = batch.take(keep_images)
    return Conversion(kept, rejected, (file,), np.zeros(kept.num_images, dtype=np.int64))


def _drop_people(batch: AnnotationBatch, keep: np.ndarray) -> AnnotationBatch:
    """The batch without the people where keep (P,) is False."""
    image_of = np.repeat(np.arange(batch.num_images), batch.num_people)
    counts = np.bincount(image_of[keep], minlength=batch.num_images)
    offsets = np.zeros(batch.num_images + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    values = {}
    for name in (
        "smpl_pose", "smpl_betas", "transl_cam", "bbox_xyxy", "keypoints_2d", "age_group",
        "p_male", "height_prior_mean", "height_prior_std", "body_height", "origin",
        "height_residual", "person_status", "depth_group",
    ):  # fmt: skip
        value = getattr(batch, name)
        values[name] = None if value is None else value[keep]
    return replace(batch, offsets=offsets, **values)


def merge_conversions(conversions: Sequence[Conversion]) -> Conversion:
    """One Conversion of several; raises DuplicateImageKeyError naming both files of a key."""
    if not conversions:
        raise ValueError("no conversions to merge")
    inputs: list[InputFile] = []
    index_parts = []
    for c in conversions:
        index_parts.append(c.input_index + len(inputs))
        inputs.extend(c.inputs)
    batch = concat_batches([c.batch for c in conversions])
    input_index = np.concatenate(index_parts)
    ids = np.array([f"{s}/{k}" for s, k in zip(batch.source, batch.image_key, strict=True)])
    order = np.argsort(ids, kind="stable")
    dup = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if dup.size:
        a, b = order[dup[0]], order[dup[0] + 1]
        raise DuplicateImageKeyError(
            f"duplicate image key {SOURCE_LABELS[batch.source[a]]}/{batch.image_key[a]} in "
            f"{inputs[input_index[a]].name} and {inputs[input_index[b]].name}"
        )
    rejected = tuple(r for c in conversions for r in c.rejected)
    return Conversion(batch, rejected, tuple(inputs), input_index)
