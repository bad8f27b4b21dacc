"""apps/demo: a web page for MA-HMR: upload a photo, see the people it finds, in metres.

    uv run apps/demo [--model DIR_OR_HUB_ID | --model tiny | --official CKPT] [--smpl-dir DIR]
        [--port 7860] [--host 127.0.0.1] [--device auto]

Open the printed address, upload a photo, optionally give the camera's vertical field of view,
and get the meshes over the photo, a bird's-eye view with everyone's height and distance, the
scene in 3D (GLB) and a table of the people (height, distance, confidence). The page is served
on 127.0.0.1 (this computer only) unless --host says otherwise. `--model tiny` (the default) has
random weights and a synthetic body model: it shows the page working offline; its people are
meaningless. Gradio is the demo's own dependency (the `demo` dependency group): on first use
`uv run apps/demo` installs it with `uv sync --all-packages --inexact --group demo`.
"""

from __future__ import annotations

import argparse
import errno
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

PROG = "apps/demo"
SYNCED = "METRIC_HMR_DEMO_SYNCED"  # set for the restarted demo: a sync that did not help stops
NEEDS = ("gradio", "mahmr_infer")  # what `--group demo` and the workspace members provide


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[2:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", default="tiny", help="model folder, Hub repo id, or 'tiny'")
    source.add_argument("--official", help="official SAT-HMR .pth / MA-HMR .bin")
    parser.add_argument("--smpl-dir", default=None, help="SMPL folder (default $SMPL_MODEL_DIR)")
    parser.add_argument("--port", type=int, default=7860, help="port of the web page")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (0.0.0.0: all)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    return parser.parse_args(argv)


def check_port(host: str, port: int) -> None:
    """Fail now, with the port named, if the page could not be served there."""
    if not 0 < port < 65536:
        raise SystemExit(f"{PROG}: error: --port {port}: choose a port in 1-65535")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server: a closed
        try:  # connection still in TIME_WAIT does not block it, a listening socket does
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise SystemExit(
                    f"{PROG}: error: --port {port}: {host}:{port} is already in use (another "
                    "demo?); stop it or pass another --port"
                ) from None
            raise SystemExit(f"{PROG}: error: --host {host} --port {port}: {exc}") from None


def ensure_environment() -> None:
    """Under `uv run`, install the demo group and the workspace once if they are missing, then
    start again; elsewhere, say what to install."""
    missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if not missing:
        return
    uv = os.environ.get("UV")  # set by `uv run`
    command = ["sync", "--all-packages", "--inexact", "--group", "demo"]
    if not uv or os.environ.get(SYNCED):
        raise SystemExit(
            f"{PROG}: error: {', '.join(missing)} not installed; run `uv {' '.join(command)}` "
            "in the workspace (or pip install gradio and the workspace packages)"
        )
    print(f"{PROG}: installing the demo's dependencies: uv {' '.join(command)}", file=sys.stderr)
    root = Path(__file__).resolve().parents[2]
    if subprocess.run([uv, *command], cwd=root).returncode:
        raise SystemExit(f"{PROG}: error: `uv {' '.join(command)}` failed: see above")
    os.environ[SYNCED] = "1"
    os.execv(sys.executable, [sys.executable, *sys.argv])


def build_page(loaded, workdir: Path):
    """The Gradio page over a loaded model (mahmr_infer.loading.LoadedModel)."""
    import gradio as gr
    import numpy as np

    from mahmr_infer.loading import SYNTHETIC_BANNER
    from mahmr_infer.pictures import render_views, write_glb
    from mahmr_infer.records import summarize
    from mahmr_model import predict

    faces = loaded.model.body.faces.cpu().numpy()
    columns = ["person", "height_m", "distance_m", "confidence"]

    def find_people(image, fov_deg, conf):
        if image is None:
            raise gr.Error("Upload a photo first.")
        fov_deg = fov_deg or None  # an empty box (Gradio sends 0) = the model's camera
        if fov_deg is not None and not 0 < fov_deg < 180:
            raise gr.Error("The vertical field of view lies between 0 and 180 degrees.")
        pixels = np.ascontiguousarray(image[..., :3])
        fov = None if fov_deg is None else float(np.radians(fov_deg))
        prediction = predict(
            loaded.model, [pixels], conf_thresh=float(conf), fov=fov, return_vertices=True
        )[0]
        summary = summarize(prediction, loaded.height_model)
        views = render_views(pixels, prediction, faces, summary, ("overlay", "bev"))
        glb = None
        if len(prediction.persons):
            glb = str(write_glb(workdir / f"scene_{uuid.uuid4().hex}.glb", prediction, faces))
        rows = [[r[c] for c in columns] for r in summary.rows()]
        camera = f"vertical FoV {np.degrees(prediction.fov):.1f} deg ({prediction.camera_source})"
        status = f"{len(rows)} people; {camera}"
        return views["overlay"], views["bev"], glb, rows, status

    with gr.Blocks(title="MA-HMR demo") as page:
        gr.Markdown("## MA-HMR: everybody in the photo, in metres")
        if loaded.synthetic:
            gr.Markdown(f"**{SYNTHETIC_BANNER}.**")
        with gr.Row():
            with gr.Column():
                photo = gr.Image(label="photo", type="numpy", image_mode="RGB")
                fov = gr.Number(
                    value=None, label="vertical field of view, degrees (empty or 0: predicted)"
                )
                conf = gr.Slider(0.0, 0.95, value=0.0 if loaded.synthetic else 0.3, step=0.05,
                                 label="confidence threshold")  # fmt: skip
                run = gr.Button("Find people", variant="primary")
                status = gr.Markdown(elem_id="status")
            with gr.Column():
                overlay = gr.Image(label="meshes over the photo", elem_id="overlay")
                bev = gr.Image(label="bird's-eye view (heights, distances)", elem_id="bev")
        with gr.Row():
            scene = gr.Model3D(label="3D scene (camera space)", elem_id="scene")
            table = gr.Dataframe(headers=columns, label="people", elem_id="people")
        run.click(find_people, [photo, fov, conf], [overlay, bev, scene, table, status])
    return page


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_port(args.host, args.port)
    ensure_environment()
    from mahmr_infer.inputs import (
        TINY,
        InputError,
        check_model_source,
        check_smpl_dir,
        parse_device,
    )

    try:
        source = check_model_source(args.model, args.official)
        parse_device(args.device)
        smpl_dir = None if source.kind == TINY else check_smpl_dir(args.smpl_dir, source.num_betas)
        from mahmr_infer.loading import SYNTHETIC_BANNER, load_model, resolve_device

        loaded = load_model(source, smpl_dir, resolve_device(args.device))
    except InputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if loaded.synthetic:
        print(f"*** {SYNTHETIC_BANNER} ***", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="mahmr-demo-") as workdir:
        page = build_page(loaded, Path(workdir))
        print(f"{PROG}: serving on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
        page.launch(server_name=args.host, server_port=args.port, allowed_paths=[workdir])
    return 0


if __name__ == "__main__":
    sys.exit(main())
