"""apps/infer: images -> people in metres (MA-HMR).

    uv run apps/infer IMAGE_OR_DIR... (--model DIR_OR_HUB_ID | --official CKPT)
        [--smpl-dir DIR] [--conf 0.3] [--fov-deg DEG] [--batch-size 4] [--device auto]
        [--out predictions.json] [--meshes DIR] [--predictions FILE.npz [--key-depth 1]]
        [--compile]

`--model` takes a folder written by `save_pretrained` (or `hf download <repo> --local-dir DIR`)
or a Hub repo id; `--official` an official SAT-HMR `.pth` / MA-HMR `.bin`. The SMPL model files
come from `--smpl-dir` or `$SMPL_MODEL_DIR`. Writes one JSON file with, per image, the camera
(vertical FoV, focal length, intrinsics in image pixels) and, per person, the confidence, box,
SMPL parameters, translation (m), 3D joints (m, camera frame) and 2D keypoints (px); with
`--meshes`, one OBJ per person in camera coordinates. `--predictions` also writes hmr-bench's
prediction file (conf, pose, betas, transl, joints24, K, verts) for `uv run apps/eval`; image keys
are the last `--key-depth` path components (1 for Relative Human's basenames, 3 for 3DPW's
"imageFiles/<seq>/image_%05d.jpg").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hmr_bench.predictions import Predictions, write_predictions
from mahmr_model import MAHMR, ImagePrediction, SMPLBody, predict

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def find_images(inputs: list[str]) -> list[Path]:
    images: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            images += sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif item.is_file():
            images.append(item)
        else:
            raise SystemExit(f"error: {item} is neither an image file nor a folder")
    if not images:
        raise SystemExit("error: no images found")
    return images


def load_model(args: argparse.Namespace, device: torch.device) -> MAHMR:
    if args.official:
        model, report = MAHMR.from_official(args.official, map_location=device)
        for key in sorted(report.dropped):
            print(f"  dropped {key}: {report.dropped[key]}", file=sys.stderr)
    else:
        model = MAHMR.from_pretrained(args.model, map_location=device)
    body = SMPLBody.from_dir(args.smpl_dir, kid=model.config.num_betas == 11)
    model = model.to(device).set_body(body)
    if args.compile:
        model.compile_blocks()
    return model


def person_records(result: ImagePrediction) -> list[dict]:
    p = result.persons
    return [
        {
            "score": float(p.scores[i]),
            "box_xyxy": p.boxes[i].tolist(),
            "global_orient": p.global_orient[i].tolist(),
            "body_pose": p.body_pose[i].tolist(),
            "betas": p.betas[i].tolist(),
            "transl": p.transl[i].tolist(),
            "joints": p.joints[i].tolist(),
            "keypoints_2d": p.keypoints_2d[i].tolist(),
        }
        for i in range(len(p))
    ]


def benchmark_predictions(
    paths: list[Path], results: list[ImagePrediction], key_depth: int, meta: dict
) -> Predictions:
    """hmr-bench's flat per-person arrays of all images (metres, original-image pixels)."""
    keys = ["/".join(path.parts[-key_depth:]) for path in paths]
    counts = [len(r.persons) for r in results]
    people = [r.persons for r in results]

    def stack(get) -> np.ndarray:  # an image with nobody contributes (0, ...) arrays
        rows = [np.asarray(get(r, p), np.float64) for r, p in zip(results, people, strict=True)]
        return np.concatenate(rows)

    fields = {
        "conf": stack(lambda r, p: p.scores),
        "pose": stack(lambda r, p: np.concatenate([p.global_orient, p.body_pose], axis=1)),
        "betas": stack(lambda r, p: p.betas),
        "transl": stack(lambda r, p: p.transl),
        "joints24": stack(lambda r, p: p.joints[:, :24]),
        "K": stack(lambda r, p: np.broadcast_to(r.intrinsics, (len(p), 3, 3))),
    }
    if all(p.vertices is not None for p in people):
        fields["verts"] = stack(lambda r, p: p.vertices)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return Predictions(image_keys=keys, offsets=offsets, fields=fields, meta=meta)


def write_obj(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    lines = [f"v {x:.5f} {y:.5f} {z:.5f}" for x, y, z in vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    path.write_text("\n".join(lines) + "\n")


def write_json_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as f:
        json.dump(payload, f)
    os.replace(f.name, path)


def main() -> None:
    parser = argparse.ArgumentParser(prog="apps/infer", description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", help="image files or folders")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="save_pretrained folder or Hub repo id")
    source.add_argument("--official", help="official SAT-HMR .pth / MA-HMR .bin")
    parser.add_argument(
        "--smpl-dir", default=None, help="SMPL model folder (default $SMPL_MODEL_DIR)"
    )
    parser.add_argument("--conf", type=float, default=0.3, help="confidence threshold")
    parser.add_argument("--fov-deg", type=float, default=None, help="known vertical FoV (degrees)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--out", type=Path, default=Path("predictions.json"))
    parser.add_argument("--meshes", type=Path, default=None, help="folder for one OBJ per person")
    parser.add_argument(
        "--predictions", type=Path, default=None, help="also write hmr-bench's prediction .npz"
    )
    parser.add_argument(
        "--key-depth", type=int, default=1, help="path components in the --predictions image keys"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the encoder blocks")
    args = parser.parse_args()

    device = (
        torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if args.device == "auto"
        else torch.device(args.device)
    )
    images = find_images(args.images)
    model = load_model(args, device)
    fov = None if args.fov_deg is None else math.radians(args.fov_deg)
    start = time.perf_counter()
    results = predict(
        model, [str(p) for p in images], conf_thresh=args.conf, fov=fov,
        batch_size=args.batch_size,
        return_vertices=args.meshes is not None or args.predictions is not None,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    records = []
    faces = model.body.faces.cpu().numpy()
    for path, result in zip(images, results, strict=True):
        fov_deg = math.degrees(result.fov)
        print(f"{path.name}: {len(result.persons)} people, vertical FoV {fov_deg:.1f} deg")
        records.append(
            {
                "file": str(path),
                "image_size": list(result.image_size),
                "fov_deg": fov_deg,
                "focal_px": result.focal,
                "intrinsics": result.intrinsics.tolist(),
                "camera_source": result.camera_source,
                "persons": person_records(result),
            }
        )
        if args.meshes is not None:
            args.meshes.mkdir(parents=True, exist_ok=True)
            for i, vertices in enumerate(result.persons.vertices):
                write_obj(args.meshes / f"{path.stem}_{i:02d}.obj", vertices, faces)
    payload = {
        "model": {"variant": model.config.variant, "source": args.official or args.model},
        "device": str(device),
        "seconds": elapsed,
        "units": {"3d": "metres, OpenCV camera frame", "2d": "pixels of the input image"},
        "images": records,
    }
    write_json_atomic(args.out, payload)
    if args.predictions is not None:
        meta = {"method": "MA-HMR", "variant": model.config.variant,
                "source": args.official or args.model}  # fmt: skip
        write_predictions(
            args.predictions, benchmark_predictions(images, results, args.key_depth, meta)
        )
        print(f"hmr-bench predictions -> {args.predictions}")
    print(f"{len(images)} images in {elapsed:.1f} s -> {args.out}")


if __name__ == "__main__":
    main()
