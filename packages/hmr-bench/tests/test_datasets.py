"""Loaders: official -> converter -> processed equals the processed fixture; RH joint maps;
bad or partial folders give errors naming the file and key."""

import subprocess
import sys

import numpy as np
import pytest

from hmr_bench.datasets import (
    DatasetError,
    detect_layout,
    hi4d,
    load_ground_truth,
    mupots,
    panoptic,
    pw3d,
)
from hmr_bench.datasets.common import image_size, load_annots_npz, save_annots_npz
from hmr_bench.fixtures import make_pw3d_fixture, make_rh_fixture
from hmr_bench.fixtures.mupots import MUPOTS_IMAGE_SIZES
from hmr_bench.joints import BK19_TO_CP14

CONVERTERS = {
    "3dpw": (pw3d.convert_official_to_processed, "annots_smpl_test_genders.npz"),
    "hi4d": (hi4d.convert_official_to_processed, "hi4d_smpl_test.npz"),
    "mupots": (mupots.convert_official_to_processed, "mupots_annots.npz"),
    "panoptic": (panoptic.convert_official_to_processed, "annots_test.npz"),
}


def assert_same(a, b, where=""):
    """Same containers, keys, types, shapes, dtypes and values (floats to 1e-12)."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, (
            f"{where}: {a.dtype}{a.shape} {b.dtype}{b.shape}"
        )
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=where)
        else:
            np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("benchmark", sorted(CONVERTERS))
def test_official_converted_equals_processed(benchmark, data, tmp_path):
    convert, name = CONVERTERS[benchmark]
    out = convert(data(benchmark, "official"), tmp_path)
    assert out == tmp_path / name
    assert_same(
        load_annots_npz(out), load_annots_npz(data(benchmark, "processed") / name), benchmark
    )
    assert detect_layout(benchmark, data(benchmark, "official")) == "official"
    assert detect_layout(benchmark, data(benchmark, "processed")) == "processed"
    a = load_ground_truth(benchmark, data(benchmark, "official"))
    b = load_ground_truth(benchmark, data(benchmark, "processed"))
    assert a.image_keys == b.image_keys
    np.testing.assert_array_equal(a.offsets, b.offsets)


NO_TORCH = """
import sys
sys.modules["torch"] = None  # any import of torch (or torch.*) now fails
import numpy as np
from hmr_bench.datasets import pw3d
for folder in sys.argv[1:]:
    gt = pw3d.load_processed(folder)
    print(gt.betas.dtype, gt.betas.shape, float(np.abs(gt.body_pose).sum()))
"""


def test_pw3d_processed_file_is_what_mahmr_reads(tmp_path, data):
    """The converter and the fixture write the SMPL parameters as torch tensors, which MA-HMR's
    reader concatenates; hmr-bench reads them, and torch's own tensor pickles, without torch."""
    torch = pytest.importorskip("torch")
    make_pw3d_fixture(tmp_path / "torch", tensor_factory=torch.from_numpy)  # torch's pickles
    for folder in (data("3dpw"), tmp_path / "torch"):
        annots = np.load(folder / "annots_smpl_test_genders.npz", allow_pickle=True)["annots"][()]
        for frame in annots.values():  # MA-HMR datasets/pw3d.py get_raw_data
            poses = torch.cat([frame["global_orient"], frame["body_pose"]], dim=1)
            betas = torch.cat([frame["betas"], torch.zeros((len(frame["betas"]), 1))], dim=1)
            assert poses.shape == (len(betas), 72) and poses.dtype == torch.float32
            assert betas.shape == (len(poses), 11) and isinstance(frame["transl"], torch.Tensor)
            assert torch.tensor(frame["cam_intrinsics"]).shape == (3, 3)
    converted = pw3d.convert_official_to_processed(data("3dpw", "official"), tmp_path / "conv")
    assert isinstance(
        next(iter(np.load(converted, allow_pickle=True)["annots"][()].values()))["betas"],
        torch.Tensor,
    )
    folders = [str(data("3dpw")), str(tmp_path / "torch")]
    proc = subprocess.run(
        [sys.executable, "-c", NO_TORCH, *folders], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()
    assert first == second and first.startswith("float64 (9, 10)")
    a, b = pw3d.load_processed(tmp_path / "torch"), pw3d.load_processed(data("3dpw"))
    for name in ("betas", "global_orient", "body_pose", "transl", "cam_rot", "K"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_data_pickles_run_no_code(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ("ran",))

    save_annots_npz(tmp_path / "evil.npz", {"a": Boom()})
    with pytest.raises(DatasetError, match=r"builtins\.print is not allowed in a data pickle"):
        load_annots_npz(tmp_path / "evil.npz")


def test_mupots_fixture_has_the_images_mahmr_asserts(data):
    """MA-HMR's prepare_mupots.py asserts img_%06d.jpg for every frame of annot.mat."""
    for layout in ("official", "processed"):
        root = data("mupots", layout) / "MultiPersonTestSet"
        for seq, (width, height) in MUPOTS_IMAGE_SIZES.items():
            frames = 2 if seq == 1 else 3
            images = sorted((root / f"TS{seq}").glob("img_*.jpg"))
            assert [p.name for p in images] == [f"img_{t:06d}.jpg" for t in range(frames)]
            assert all(image_size(p) == (width, height) for p in images)
    gt = load_ground_truth("mupots", data("mupots", "processed"))
    assert all((data("mupots", "processed") / "MultiPersonTestSet" / k).is_file()
               for k in gt.image_keys)  # fmt: skip


def test_pw3d_processed_content(data):
    gt = load_ground_truth("3dpw", data("3dpw"))
    # flat_guitar_01 frame 1: the actor without a valid camera pose is absent
    assert np.diff(gt.offsets).tolist() == [2, 2, 2, 1, 2]
    assert gt.gender.tolist()[:2] == ["male", "female"]
    assert gt.width.tolist() == [48] * 5 and gt.height.tolist() == [64] * 5
    assert gt.sequence[0] == "downtown_arguing_00"


def test_rh_joint_maps_and_labels(data):
    gt = load_ground_truth("rh", data("rh"))
    assert gt.image_keys[:3] == ("bk00001.jpg", "och_000002.jpg", "cp100003.jpg")
    assert gt.source_joints.tolist()[:8] == [19, 19, 19, 0, 19, 19, 19, 14]
    neck = 13
    assert not gt.has_kp2d[3] and np.all(gt.kp2d[3, :, :2] == -2)  # kp2d None
    assert np.all(gt.kp2d[0, :, 2] == 0) and np.all(gt.kp2d[0, :, :2] == -2)  # all invalid
    assert gt.kp2d[1, neck, 2] == 0 and np.all(gt.kp2d[1, neck, :2] == -2)  # 19 joints: no neck
    assert gt.kp2d[7, neck, 2] == 1  # CrowdPose annotation: its neck is used
    assert gt.age[6] == -1 and gt.depth_id[6] == -1
    assert gt.annotation_index.tolist()[:5] == [0, 1, 2, 3, 0]


def test_rh_bk_vs_ochuman_by_basename_length(tmp_path):
    flat = np.zeros((19, 3))
    flat[:, 0] = np.arange(19)
    flat[:, 2] = 1
    person = {"bbox": [0, 0, 1, 1], "kp2d": flat.reshape(-1).tolist(), "depth_id": 0, "age": 0}
    save_annots_npz(
        tmp_path / "test_annots.npz", {"abcdefg.jpg": [person], "abcdefgh.jpg": [person]}
    )
    gt = load_ground_truth("rh", tmp_path)
    bk, och = gt.kp2d[0, :13, 0], gt.kp2d[1, :13, 0]
    np.testing.assert_array_equal(bk, np.array(BK19_TO_CP14[:13], float))
    np.testing.assert_array_equal(och, [3, 0, 4, 1, 5, 2, 9, 6, 10, 7, 11, 8, 12])


def test_missing_and_malformed_inputs(tmp_path, data):
    with pytest.raises(DatasetError, match="no 3dpw data found"):
        load_ground_truth("3dpw", tmp_path)
    with pytest.raises(DatasetError, match="data folder not found"):
        load_ground_truth("mupots", tmp_path / "nowhere")
    with pytest.raises(DatasetError, match=r"test_annots\.npz: file not found"):
        load_ground_truth("rh", tmp_path, layout="official")
    np.savez(tmp_path / "test_annots.npz", other=np.zeros(1))
    with pytest.raises(DatasetError, match=r"no 'annots' entry \(found \['other'\]\)"):
        load_ground_truth("rh", tmp_path)
    save_annots_npz(tmp_path / "test_annots.npz", {"a.jpg": [{"bbox": [0, 0, 1, 1], "age": 0}]})
    with pytest.raises(DatasetError, match=r"image 'a.jpg' person 0: missing key 'depth_id'"):
        load_ground_truth("rh", tmp_path)
    # 3DPW: an unknown gender string, a wrong shape, a missing image
    raw = load_annots_npz(data("3dpw") / "annots_smpl_test_genders.npz")
    key = next(iter(raw))
    for change, message in (
        ({"genders": ["x", "f"]}, "unknown gender 'x'"),
        ({"body_pose": np.zeros((2, 23))}, r"'body_pose' has shape \(2, 23\), expected \(2, 69\)"),
    ):
        bad = {key: {**raw[key], **change}}
        save_annots_npz(tmp_path / "annots_smpl_test_genders.npz", bad)
        with pytest.raises(DatasetError, match=message):
            pw3d.load_processed(tmp_path)
    save_annots_npz(tmp_path / "annots_smpl_test_genders.npz", {key: raw[key]})
    with pytest.raises(DatasetError, match="image not found"):
        pw3d.load_processed(tmp_path)


def test_partial_official_folders(tmp_path, data):
    import shutil

    mu = shutil.copytree(data("mupots", "official"), tmp_path / "mu")
    (mu / "MultiPersonTestSet" / "TS7" / "occlusion.mat").unlink()
    with pytest.raises(DatasetError, match=r"TS7/occlusion\.mat: file not found"):
        load_ground_truth("mupots", mu)
    hi = shutil.copytree(data("hi4d", "official"), tmp_path / "hi")
    (hi / "pair00" / "hug00" / "meta.npz").unlink()
    with pytest.raises(DatasetError, match=r"meta\.npz: file not found"):
        load_ground_truth("hi4d", hi)
    pa = shutil.copytree(data("panoptic", "official"), tmp_path / "pa")
    (pa / "160422_mafia2" / "calibration_160422_mafia2.json").write_text("{}")
    with pytest.raises(DatasetError, match="no 'cameras' list"):
        load_ground_truth("panoptic", pa)
    pw = shutil.copytree(data("3dpw", "official"), tmp_path / "pw")
    (pw / "sequenceFiles" / "test" / "flat_guitar_01.pkl").write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match=r"flat_guitar_01\.pkl: not a readable pickle"):
        load_ground_truth("3dpw", pw)


def test_rh_fixture_writer_is_deterministic(tmp_path):
    make_rh_fixture(tmp_path / "a")
    make_rh_fixture(tmp_path / "b")
    assert (tmp_path / "a" / "test_annots.npz").read_bytes() == (
        tmp_path / "b" / "test_annots.npz"
    ).read_bytes()
