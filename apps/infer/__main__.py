"""apps/infer: images -> people in metres (MA-HMR).

    uv run apps/infer IMAGE_OR_DIR... (--model DIR_OR_HUB_ID | --model tiny | --official CKPT)
        [--out DIR] [--render overlay,side,bev | none] [--glb] [--meshes] [--smpl-dir DIR]
        [--conf 0.3] [--fov-deg DEG] [--batch-size 4] [--device auto]
        [--predictions FILE.npz [--key-depth 1]] [--profile] [--compile]

Try it offline in one command: `uv run apps/infer photo.jpg --model tiny` (random weights and a
synthetic body model: the outputs are meaningless, the files and their layout are real).

`--model` takes a folder written by `save_pretrained` (or `hf download <repo> --local-dir DIR`)
or a Hub repo id; `--official` an official SAT-HMR `.pth` / MA-HMR `.bin`. The SMPL files come
from `--smpl-dir` or `$SMPL_MODEL_DIR`. Written to `--out` as each image finishes:
`<name>.people.json` (the camera: vertical FoV, focal length, intrinsics in image pixels; per
person: confidence, box, SMPL parameters, translation (m), 3D joints (m, camera frame), 2D
keypoints (px), T-pose height (m), distance from the camera (m)); the pictures of `--render`:
`<name>.overlay.png` (the meshes over the photo), `<name>.side.png` and `<name>.bev.png` (side
and bird's-eye views with a metric grid, the camera frustum, each person's height and
distance); with `--glb`, `<name>.glb` (the scene in camera space, one node per person, for any
3D viewer); with `--meshes`, `<name>.personNN.obj` (camera coordinates). At the end:
`predictions.json` (every image, and the images that were skipped with the reason) and, with
`--predictions`, hmr-bench's prediction file for `uv run apps/eval` (image keys are the last
`--key-depth` path components: 1 for Relative Human's basenames, 3 for 3DPW's
"imageFiles/<seq>/image_%05d.jpg"). `<name>` is the file stem, or the shortest tail of the path
that tells two inputs apart. Unreadable images are skipped and reported; the exit status is 1
if any was. `--profile` prints the mean time per image of each stage.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

try:
    from mahmr_infer.inputs import (
        TINY,
        InputError,
        check_conf,
        check_fov_deg,
        check_model_source,
        check_positive,
        check_smpl_dir,
        check_views,
        find_images,
        image_keys,
        output_names,
        parse_device,
    )
except ModuleNotFoundError as missing:  # the light `uv run` install
    raise SystemExit(
        f"apps/infer: {missing.name} is not installed: this app needs the whole workspace; run "
        "`uv run --all-packages apps/infer ...` once (later a plain `uv run` keeps it)"
    ) from None

PROG = "apps/infer"
EXIT_SKIPPED, EXIT_INTERRUPTED = 1, 130


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[2:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("images", nargs="+", help="image files or folders")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="save_pretrained folder, Hub repo id, or 'tiny'")
    source.add_argument("--official", help="official SAT-HMR .pth / MA-HMR .bin")
    parser.add_argument("--smpl-dir", default=None, help="SMPL folder (default $SMPL_MODEL_DIR)")
    parser.add_argument(
        "--conf", type=float, default=None, help="confidence threshold (0.3; 0 with tiny)"
    )
    parser.add_argument("--fov-deg", type=float, default=None, help="known vertical FoV (deg)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per forward pass")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--out", type=Path, default=Path("infer_out"), help="output folder")
    parser.add_argument(
        "--render", default="overlay,side,bev", help="pictures per image: overlay,side,bev or none"
    )
    parser.add_argument("--glb", action="store_true", help="the 3D scene as <name>.glb")
    parser.add_argument("--meshes", action="store_true", help="one OBJ per person")
    parser.add_argument("--predictions", type=Path, default=None, help="hmr-bench .npz file")
    parser.add_argument(
        "--key-depth", type=int, default=1, help="path components in the --predictions keys"
    )
    parser.add_argument("--profile", action="store_true", help="per-stage runtime table")
    parser.add_argument("--compile", action="store_true", help="torch.compile the encoder")
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> tuple[list[Path], list[str], list[str] | None]:
    """Every check that needs no model: (images, output names, --predictions keys)."""
    args.source = check_model_source(args.model, args.official)
    if args.conf is None:
        args.conf = 0.0 if args.source.kind == TINY else 0.3
    check_conf(args.conf)
    check_fov_deg(args.fov_deg)
    check_positive("--batch-size", args.batch_size)
    check_positive("--key-depth", args.key_depth)
    parse_device(args.device)
    args.views = check_views(args.render)
    if args.source.kind != TINY:
        args.smpl_dir = check_smpl_dir(args.smpl_dir, args.source.num_betas)
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"--out {args.out}: is a file; --out takes a folder")
    if args.predictions is not None and args.predictions.is_dir():
        raise InputError(f"--predictions {args.predictions}: is a folder; give a .npz file name")
    images = find_images(args.images)
    keys = image_keys(images, args.key_depth) if args.predictions is not None else None
    return images, output_names(images), keys


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        images, names, keys = check_args(args)
    except InputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2

    from tqdm import tqdm

    from hmr_render import save_png
    from mahmr_infer.loading import SYNTHETIC_BANNER, load_model, resolve_device
    from mahmr_infer.pictures import render_views, write_glb
    from mahmr_infer.records import (
        UNITS,
        benchmark_predictions,
        image_record,
        summarize,
        write_json,
        write_obj,
    )
    from mahmr_infer.runner import StageTimes, run_images

    try:
        device = resolve_device(args.device)
        loaded = load_model(args.source, args.smpl_dir, device, compile_blocks=args.compile)
    except InputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if loaded.synthetic:
        print(f"*** {SYNTHETIC_BANNER} ***", file=sys.stderr)
    for key, reason in sorted(loaded.dropped.items()):
        print(f"  dropped {key}: {reason}", file=sys.stderr)

    faces = loaded.model.body.faces.cpu().numpy()
    times = StageTimes(device)
    records: dict[int, dict] = {}
    predictions: dict[int, object] = {}
    skipped: list[dict[str, str]] = []
    fov = None if args.fov_deg is None else math.radians(args.fov_deg)
    bar = tqdm(total=len(images), unit="img", desc=PROG, file=sys.stderr)
    try:
        for result in run_images(
            loaded.model, images, conf_thresh=args.conf, fov=fov, batch_size=args.batch_size,
            return_vertices=bool(args.views) or args.glb or args.meshes or keys is not None,
            keep_pixels="overlay" in args.views, times=times,
        ):  # fmt: skip
            bar.update()
            if not result.ok:
                skipped.append({"file": str(result.path), "reason": result.error})
                tqdm.write(f"skipped {result.path}: {result.error}", file=sys.stderr)
                continue
            name, prediction = names[result.index], result.prediction
            summary = summarize(prediction, loaded.height_model)
            record = image_record(result.path, prediction, summary)
            with times.stage("rendering"):
                pictures = render_views(result.pixels, prediction, faces, summary, args.views)
            with times.stage("writing"):
                write_json(args.out / f"{name}.people.json", record)
                for view, picture in pictures.items():
                    save_png(args.out / f"{name}.{view}.png", picture)
                if args.glb and len(prediction.persons):
                    write_glb(args.out / f"{name}.glb", prediction, faces)
                if args.meshes:
                    for i, vertices in enumerate(prediction.persons.vertices):
                        write_obj(args.out / f"{name}.person{i:02d}.obj", vertices, faces)
            records[result.index] = record
            if args.predictions is not None:
                predictions[result.index] = prediction
            tqdm.write(
                f"{result.path.name}: {len(prediction.persons)} people, "
                f"vertical FoV {record['fov_deg']:.1f} deg"
            )
    except KeyboardInterrupt:
        bar.close()
        print(
            f"{PROG}: interrupted after {len(records)} of {len(images)} images; their files are "
            f"complete in {args.out} (predictions.json was not written)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    bar.close()

    payload = {
        "model": loaded.description,
        "seconds": sum(times.seconds.values()),
        "units": UNITS,
        "images": [records[i] for i in sorted(records)],
        "skipped": skipped,
    }
    if loaded.synthetic:
        payload["warning"] = SYNTHETIC_BANNER
    write_json(args.out / "predictions.json", payload)
    if args.predictions is not None:
        if predictions:
            order = sorted(predictions)
            meta = {"method": "MA-HMR", **loaded.description}
            bench = benchmark_predictions(
                [keys[i] for i in order], [predictions[i] for i in order], meta
            )

            from hmr_bench.predictions import write_predictions

            write_predictions(args.predictions, bench)
            print(f"hmr-bench predictions -> {args.predictions}")
        else:
            print(f"{PROG}: no image was readable: {args.predictions} not written", file=sys.stderr)
    if args.profile:
        title = f"MA-HMR {loaded.model.config.variant} on {device} ({times.images} images)"
        print(times.table(title))
    print(
        f"{len(images)} images: {len(records)} done, {len(skipped)} skipped "
        f"in {sum(times.seconds.values()):.1f} s -> {args.out}"
    )
    if skipped:
        print(f"{PROG}: {len(skipped)} image(s) skipped (listed above and in predictions.json)",
              file=sys.stderr)  # fmt: skip
        return EXIT_SKIPPED
    return 0


if __name__ == "__main__":
    sys.exit(main())
