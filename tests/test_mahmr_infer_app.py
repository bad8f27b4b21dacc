"""apps/infer end to end on a saved tiny (random-weight) model and the synthetic SMPL files:
outputs, bad images skipped and reported, output names that cannot collide, one-line errors,
Ctrl-C, and no heavy import before the arguments are checked. The numbers of a random model
mean nothing; the plumbing is what is tested."""

from __future__ import annotations

import importlib.util
import io
import json
import math
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from dto_core.synthetic_body import write_synthetic_smpl_dir
from hmr_bench.predictions import read_predictions
from mahmr_model import MAHMR, tiny

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "apps" / "infer"


def load_app():
    spec = importlib.util.spec_from_file_location("infer_app", APP / "__main__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("infer_assets")
    torch.manual_seed(0)
    MAHMR(tiny()).save_pretrained(root / "model")
    write_synthetic_smpl_dir(root / "smpl")
    return {"model": root / "model", "smpl": root / "smpl"}


def write_image(path: Path, shape: tuple[int, ...], seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def png_0x0() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def run(args: list, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = load_app().main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_outputs_and_bad_images_skipped(assets, tmp_path, capsys) -> None:
    images = tmp_path / "images"
    write_image(images / "a.png", (120, 160, 3))
    write_image(images / "b.jpg", (90, 60), seed=1)
    (images / "notes.jpg").write_text("a text file saved as .jpg\n")
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 100, 50)).save(buffer, format="JPEG")
    (images / "cut.jpg").write_bytes(buffer.getvalue()[:300])
    (images / "empty.png").write_bytes(png_0x0())
    out = tmp_path / "out"
    code, stdout, stderr = run(
        [images, "--model", assets["model"], "--smpl-dir", assets["smpl"], "--conf", "0.0",
         "--fov-deg", "50", "--out", out, "--meshes", "--predictions", tmp_path / "bench.npz",
         "--profile", "--glb"],
        capsys,
    )  # fmt: skip
    assert code == 1  # some images were skipped
    for name in ("notes.jpg", "cut.jpg", "empty.png"):
        assert f"skipped {images / name}: " in stderr
    assert "3 image(s) skipped" in stderr and "Traceback" not in stderr
    assert "5 images: 2 done, 3 skipped" in stdout
    assert "100%" in stderr  # the progress bar ran to the end
    assert "a.png: 8 people" in stdout

    report = json.loads((out / "predictions.json").read_text())
    assert [Path(r["file"]).name for r in report["images"]] == ["a.png", "b.jpg"]
    reasons = {Path(s["file"]).name: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {"notes.jpg", "cut.jpg", "empty.png"}
    assert "Truncated" in reasons["cut.jpg"] and "not an image" in reasons["notes.jpg"]
    first = report["images"][0]
    assert first == json.loads((out / "a.people.json").read_text())  # written as it finished
    assert first["image_size"] == [120, 160] and first["camera_source"] == "fov"
    assert math.isclose(first["fov_deg"], 50.0, rel_tol=1e-5)
    person = first["persons"][0]
    assert len(person["betas"]) == 11 and len(person["joints"]) == len(person["keypoints_2d"]) == 45
    assert person["height_m"] > 0 and person["distance_m"] > 0
    for name, size in (("a", (120, 160)), ("b", (90, 60))):  # pictures of the good images
        assert Image.open(out / f"{name}.overlay.png").size == size[::-1]
        assert Image.open(out / f"{name}.bev.png").size == (768, 768)
        assert Image.open(out / f"{name}.side.png").size == (768, 432)
        assert len(trimesh.load(out / f"{name}.glb").geometry) == 8
    meshes = sorted(out.glob("*.obj"))
    assert len(meshes) == 16 and meshes[0].name == "a.person00.obj"
    lines = meshes[0].read_text().splitlines()
    vertices = np.array([[float(v) for v in line.split()[1:]] for line in lines if line[0] == "v"])
    faces = [line for line in lines if line.startswith("f ")]
    assert vertices.shape == (6890, 3) and len(faces) == 13776
    assert not list(out.glob("**/*.tmp")) and not list(out.glob("**/.*"))

    # hmr-bench's prediction file holds the same people as the JSON report, good images only
    bench = read_predictions(tmp_path / "bench.npz")
    assert bench.image_keys == ("a.png", "b.jpg")
    counts = [len(r["persons"]) for r in report["images"]]
    np.testing.assert_array_equal(bench.offsets, np.cumsum([0, *counts]))
    np.testing.assert_allclose(bench.fields["conf"][0], person["score"], rtol=1e-6)
    np.testing.assert_allclose(bench.fields["transl"][0], person["transl"], rtol=1e-6)
    np.testing.assert_allclose(
        bench.fields["pose"][0], person["global_orient"] + person["body_pose"], rtol=1e-6
    )
    np.testing.assert_allclose(bench.fields["joints24"][0], person["joints"][:24], rtol=1e-6)
    np.testing.assert_allclose(bench.fields["K"][0], first["intrinsics"], rtol=1e-6)
    np.testing.assert_allclose(bench.fields["verts"][0], vertices, atol=1e-5)

    # --profile: the stages of the issue, shares summing to 100 %
    table = stdout[stdout.index("MA-HMR tiny") :]
    stages = ("load / pre-process", "encoder", "decoder + heads", "body model", "rendering")
    for stage in (*stages, "writing"):
        assert stage in table
    shares = [float(line.split()[-1].rstrip("%")) for line in table.splitlines()[2:8]]
    assert math.isclose(sum(shares), 100.0, abs_tol=0.5)


def test_same_file_names_in_two_folders(assets, tmp_path, capsys) -> None:
    write_image(tmp_path / "day1" / "same.jpg", (64, 64, 3), seed=1)
    write_image(tmp_path / "day2" / "same.jpg", (64, 80, 3), seed=2)
    common = ["--model", assets["model"], "--smpl-dir", assets["smpl"], "--conf", "0.0"]
    common += ["--render", "none"]
    folders = [tmp_path / "day1", tmp_path / "day2"]
    # keys of the prediction file collide: refused before any work, nothing written
    code, _, stderr = run(
        [*folders, *common, "--out", tmp_path / "a", "--predictions", tmp_path / "p.npz"], capsys
    )
    assert code == 2 and "--key-depth 1" in stderr and "'same.jpg'" in stderr
    assert "raise --key-depth" in stderr and not (tmp_path / "a").exists()
    # outputs are named by the shortest distinguishing path tail
    code, _, _ = run(
        [*folders, *common, "--out", tmp_path / "b", "--meshes",
         "--predictions", tmp_path / "p.npz", "--key-depth", "2"],
        capsys,
    )  # fmt: skip
    assert code == 0
    day1 = json.loads((tmp_path / "b" / "day1" / "same.people.json").read_text())
    day2 = json.loads((tmp_path / "b" / "day2" / "same.people.json").read_text())
    assert day1["image_size"] == [64, 64] and day2["image_size"] == [64, 80]
    assert (tmp_path / "b" / "day2" / "same.person07.obj").is_file()
    assert read_predictions(tmp_path / "p.npz").image_keys == ("day1/same.jpg", "day2/same.jpg")


def test_errors_are_one_line_and_name_the_argument(assets, tmp_path, capsys, monkeypatch) -> None:
    image = write_image(tmp_path / "images" / "a.png", (64, 64, 3))
    (tmp_path / "no_images").mkdir()
    (tmp_path / "junk.pth").write_text("not a checkpoint\n")
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "config.json").write_text((assets["model"] / "config.json").read_text())
    weights = (assets["model"] / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    other = tmp_path / "other_format"
    other.mkdir()
    (other / "pytorch_model.bin").write_bytes(b"")
    smpl = ["--smpl-dir", assets["smpl"]]
    model = ["--model", assets["model"], *smpl]
    cases = [
        ([image, "--model", tmp_path / "nomodel", *smpl], "nomodel: no such folder"),
        ([image, "--official", tmp_path / "junk.pth", *smpl], "junk.pth: not a readable"),
        ([image, "--model", truncated, *smpl], "model.safetensors: not a readable"),
        ([image, "--model", other, *smpl], "not an MA-HMR model folder"),
        ([image, *model, "--batch-size", "0"], "--batch-size 0: must be at least 1"),
        ([image, *model, "--conf", "2"], "--conf 2.0: a confidence threshold lies in [0, 1)"),
        ([image, *model, "--fov-deg", "190"], "--fov-deg 190.0"),
        ([image, "--model", assets["model"]], "no SMPL model folder: pass --smpl-dir"),
        ([image, "--model", assets["model"], "--smpl-dir", tmp_path], "no SMPL_NEUTRAL.pkl"),
        ([tmp_path / "no_images", *model], "no_images: no images in this folder"),
        ([tmp_path / "missing.jpg", *model], "missing.jpg: no such image file or folder"),
        ([image, image, *model], "given twice"),
        ([image, *model, "--device", "gpu"], "--device gpu: expected auto, cpu"),
        ([image, *model, "--render", "overlay,top"], "--render overlay,top: choose from"),
    ]
    if not torch.cuda.is_available():
        cases.append(([image, *model, "--device", "cuda"], "--device cuda: no CUDA GPU"))
    monkeypatch.delenv("SMPL_MODEL_DIR", raising=False)
    for args, message in cases:
        code, _, stderr = run([*args, "--out", tmp_path / "out"], capsys)
        lines = stderr.strip().splitlines()
        assert code == 2, (args, stderr)
        assert len(lines) == 1 and lines[0].startswith("apps/infer: error: "), stderr
        assert message in lines[0], (message, lines[0])
        assert "weights_only" not in stderr and not (tmp_path / "out").exists()


def test_arguments_are_checked_before_heavy_imports(tmp_path) -> None:
    """--help and a path error never import torch (the --help time is measured in
    tools/bench/bench_apps_startup.py, not here)."""
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['apps/infer'] + sys.argv[1:]\n"
        "try:\n"
        f"    runpy.run_path({str(APP)!r}, run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    print('exit', exc.code, 'torch' in sys.modules, 'PIL' in sys.modules)\n"
    )
    for args, code in ((["--help"], 0), ([str(tmp_path / "x.jpg"), "--model", "tiny"], 2)):
        proc = subprocess.run(
            [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True
        )
        assert proc.stdout.strip().endswith(f"exit {code} False False"), proc.stdout


def test_tiny_model_offline_and_ctrl_c_leaves_whole_files(tmp_path) -> None:
    """`--model tiny` runs without any file; Ctrl-C stops it with every written file whole."""
    for i in range(12):
        write_image(tmp_path / "images" / f"im{i:02d}.png", (48, 64, 3), seed=i)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, str(APP), tmp_path / "images", "--model", "tiny", "--out", out,
         "--meshes", "--render", "none", "--batch-size", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "SMPL_MODEL_DIR": str(tmp_path / "nowhere")},
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not list(out.glob("*.people.json")) and proc.poll() is None:
        assert time.monotonic() < deadline, "no output within 120 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert "RANDOM weights and a SYNTHETIC body model" in stderr
    assert proc.returncode == 130, stderr
    assert "interrupted after" in stderr and "Traceback" not in stderr
    assert not (out / "predictions.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]
    done = sorted(out.glob("*.people.json"))
    assert 1 <= len(done) < 12
    for path in done:
        assert len(json.loads(path.read_text())["persons"]) == 8  # complete; tiny: threshold 0
    for path in out.glob("*.obj"):  # those written before the interrupt
        lines = path.read_text().splitlines()
        assert sum(ln.startswith("v ") for ln in lines) == 6890  # complete
        assert sum(ln.startswith("f ") for ln in lines) == 13776
