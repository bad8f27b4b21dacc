"""CameraHMR: layout vs the official checkpoint, geometry, rotations, keypoints, batching."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from dto_core.body import BodyModel, rodrigues
from dto_core.camera import project
from dto_core.synthetic_body import write_synthetic_smpl_dir
from dto_models.camerahmr import (
    CameraHMR,
    CameraHMRConfig,
    CameraHMRModel,
    bbox_info,
    box_centers_sizes,
    crop_to_full_translation,
    keypoints_44,
    preprocess_crop,
    read_j19_regressor,
    rot6d_to_rotmat,
    rotmat_to_axis_angle,
    tiny_model,
)
from dto_models.checkpoint import CheckpointError, manifest, manifest_mismatches, read_manifest
from dto_models.image import ImageError
from dto_models.types import Detections, SingleHMR

FIXTURE = Path(__file__).parent / "fixtures" / "camerahmr_state_dict.json"
MEAN = np.array([0.485, 0.456, 0.406]) * 255.0
STD = np.array([0.229, 0.224, 0.225]) * 255.0
K = np.array([[500.0, 0.0, 160.0], [0.0, 500.0, 120.0], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def smpl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("smpl")
    write_synthetic_smpl_dir(folder)
    return folder


@pytest.fixture(scope="module")
def hmr(smpl_dir: Path) -> CameraHMR:
    return CameraHMR.tiny(0, smpl_dir=smpl_dir, device="cpu")


def _scene(seed: int = 0) -> tuple[np.ndarray, Detections]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    boxes = np.array([[40, 30, 120, 210], [150, 60, 230, 200], [200, 10, 330, 250]], np.float32)
    masks = np.zeros((3, 240, 320), bool)
    for mask, (x0, y0, x1, y1) in zip(masks, boxes.astype(int), strict=True):
        mask[y0:y1, x0:x1] = True
    return image, Detections(boxes, np.array([0.9, 0.8, 0.7], np.float32), masks)


# --- checkpoint layout ---------------------------------------------------------------------------


def test_full_size_layout_matches_the_official_checkpoint() -> None:
    with torch.device("meta"):
        model = CameraHMRModel(CameraHMRConfig())
    ours, official = manifest(model), read_manifest(FIXTURE)
    assert manifest_mismatches(ours, official) == []
    assert len(ours) == 505
    assert sum(p.numel() for p in model.parameters()) == 670_712_053


def _official_file(tmp_path: Path, state: dict[str, torch.Tensor]) -> Path:
    path = tmp_path / "camerahmr_checkpoint_cleaned.ckpt"
    torch.save({"state_dict": state, "epoch": 3, "global_step": 10}, path)
    return path


def test_tiny_lightning_checkpoint_round_trips(tmp_path: Path) -> None:
    reference = tiny_model(seed=5)
    state = {k: torch.randn_like(v) for k, v in reference.state_dict().items()}
    state["smpl.J_regressor_extra"] = torch.zeros(9, 6890)  # extra key: ignored, as officially
    hmr = CameraHMR.from_pretrained(
        _official_file(tmp_path, state), config=CameraHMRConfig.tiny(), device="cpu"
    )
    loaded = hmr.model.state_dict()
    assert set(loaded) == set(state) - {"smpl.J_regressor_extra"}
    for key, value in loaded.items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    # the directory holding the file resolves to the same weights
    again = CameraHMR.from_pretrained(tmp_path, config=CameraHMRConfig.tiny(), device="cpu")
    torch.testing.assert_close(
        again.model.state_dict()["backbone.pos_embed"], state["backbone.pos_embed"]
    )


def test_missing_and_misshaped_keys_are_named(tmp_path: Path) -> None:
    state = tiny_model(seed=1).state_dict()
    missing = dict(state)
    del missing["smpl_head.deccam.bias"]
    with pytest.raises(CheckpointError, match=r"smpl_head\.deccam\.bias"):
        CameraHMR.from_pretrained(_official_file(tmp_path, missing), config=CameraHMRConfig.tiny())
    bad = dict(state)
    bad["backbone.blocks.1.attn.qkv.weight"] = torch.zeros(3, 3)
    with pytest.raises(CheckpointError, match=r"backbone\.blocks\.1\.attn\.qkv\.weight"):
        CameraHMR.from_pretrained(_official_file(tmp_path, bad), config=CameraHMRConfig.tiny())


def test_mean_params_fill_missing_buffers_only(tmp_path: Path, smpl_dir: Path) -> None:
    state = tiny_model(seed=1).state_dict()
    means = np.load(smpl_dir / "smpl_mean_params.npz")
    without = {k: v for k, v in state.items() if not k.startswith("smpl_head.init_")}
    hmr = CameraHMR.from_pretrained(
        _official_file(tmp_path, without),
        config=CameraHMRConfig.tiny(),
        mean_params=smpl_dir / "smpl_mean_params.npz",
    )
    head = hmr.model.smpl_head
    np.testing.assert_array_equal(head.init_body_pose[0].numpy(), means["pose"].astype(np.float32))
    np.testing.assert_array_equal(head.init_betas[0].numpy(), means["shape"].astype(np.float32))
    np.testing.assert_array_equal(head.init_cam[0].numpy(), means["cam"].astype(np.float32))
    state["smpl_head.init_cam"] = torch.tensor([[0.5, 0.1, 0.2]])
    hmr = CameraHMR.from_pretrained(
        _official_file(tmp_path, state),
        config=CameraHMRConfig.tiny(),
        mean_params=smpl_dir / "smpl_mean_params.npz",
    )
    torch.testing.assert_close(hmr.model.smpl_head.init_cam, torch.tensor([[0.5, 0.1, 0.2]]))


# --- rotations -----------------------------------------------------------------------------------


def test_rot6d_gram_schmidt_by_columns() -> None:
    rotations = Rotation.random(50, random_state=0).as_matrix()
    six_d = np.concatenate([rotations[:, :, 0], rotations[:, :, 1]], axis=1)
    got = rot6d_to_rotmat(torch.from_numpy(six_d)).numpy()
    np.testing.assert_allclose(got, rotations, atol=1e-12)
    # hand-computed: a1 = (2,0,0) -> b1 = x; a2 = (1,3,0) -> b2 = y; b3 = z
    got = rot6d_to_rotmat(torch.tensor([[2.0, 0.0, 0.0, 1.0, 3.0, 0.0]], dtype=torch.float64))
    np.testing.assert_allclose(got[0].numpy(), np.eye(3), atol=1e-15)
    # a1 = (0,0,5), a2 = (1,0,1) -> b1 = z, b2 = x, b3 = z x x = y
    got = rot6d_to_rotmat(torch.tensor([[0.0, 0.0, 5.0, 1.0, 0.0, 1.0]], dtype=torch.float64))
    np.testing.assert_allclose(got[0].numpy(), [[0, 1, 0], [0, 0, 1], [1, 0, 0]], atol=1e-15)


def test_axis_angle_recovers_rotvecs_including_near_pi() -> None:
    rng = np.random.default_rng(0)
    axes = rng.normal(size=(400, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.concatenate([
        rng.uniform(0, np.pi, 100), rng.uniform(0, 1e-7, 100), np.pi - rng.uniform(0, 1e-6, 100),
        rng.uniform(3.0, np.pi, 100),
    ])  # fmt: skip
    rotvecs = axes * angles[:, None]
    matrices = Rotation.from_rotvec(rotvecs).as_matrix()
    got = rotmat_to_axis_angle(matrices)
    np.testing.assert_allclose(got, rotvecs, atol=1e-7)
    np.testing.assert_allclose(rodrigues(got), matrices, atol=1e-7)  # independent inverse
    batched = rotmat_to_axis_angle(matrices.reshape(20, 20, 3, 3))
    np.testing.assert_array_equal(batched, got.reshape(20, 20, 3))
    exact_pi = Rotation.from_rotvec(axes[:20] * np.pi).as_matrix()
    got = rotmat_to_axis_angle(exact_pi)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), np.pi, atol=1e-7)
    np.testing.assert_allclose(Rotation.from_rotvec(got).as_matrix(), exact_pi, atol=1e-7)
    assert rotmat_to_axis_angle(np.eye(3)).tolist() == [0.0, 0.0, 0.0]


# --- crop and camera geometry ----------------------------------------------------------------


def test_crop_places_pixels_and_normalises() -> None:
    image = np.full((300, 400, 3), 100, np.uint8)
    image[150, 200] = (255, 0, 50)  # the box centre
    image[150, 200 + 25] = (0, 255, 0)  # 25 px right = 32 crop px at b = 200
    crop = preprocess_crop(image, np.array([200.0, 150.0]), 200.0)
    assert crop.shape == (3, 256, 192) and crop.dtype == np.float32
    np.testing.assert_allclose(crop[:, 128, 96], (np.array([255, 0, 50]) - MEAN) / STD, atol=1e-5)
    np.testing.assert_allclose(
        crop[:, 128, 96 + 32], (np.array([0, 255, 0]) - MEAN) / STD, atol=1e-5
    )
    np.testing.assert_allclose(crop[:, 10, 10], (100 - MEAN) / STD, atol=1e-5)
    # a box at the image corner: what lies outside the image is the constant-0 border
    crop = preprocess_crop(image, np.array([0.0, 0.0]), 100.0)
    np.testing.assert_allclose(crop[:, 20, 20], (0 - MEAN) / STD, atol=1e-5)
    np.testing.assert_allclose(crop[:, 200, 150], (100 - MEAN) / STD, atol=1e-5)


def test_crop_masks_the_image_first_and_only_reads_a_window() -> None:
    import cv2

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (180, 260, 3), dtype=np.uint8)
    mask = rng.random((180, 260)) > 0.3
    center, size = np.array([101.3, 77.6]), 93.7
    crop = preprocess_crop(image, center, size, mask)
    k = 256 / size
    matrix = np.array([[k, 0, 128 - k * center[0]], [0, k, 128 - k * center[1]]])
    full = cv2.warpAffine(
        image * mask[..., None].astype(np.uint8), matrix, (256, 256), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )  # fmt: skip
    expected = ((full[:, 32:224] - MEAN) / STD).transpose(2, 0, 1)
    assert np.abs(crop - expected).max() * STD.min() <= 1.0 + 1e-6  # at most one grey level


def test_bbox_info_hand_computed() -> None:
    centers, sizes = box_centers_sizes(np.array([[100.0, 20.0, 200.0, 220.0]]))
    np.testing.assert_array_equal(centers, [[150.0, 120.0]])
    np.testing.assert_array_equal(sizes, [200.0])
    info = bbox_info(centers, sizes, K)
    np.testing.assert_allclose(info, [[(150 - 160) / 500, 0.0, 200 / 500]], atol=1e-7)
    assert info.dtype == np.float32


def test_translation_recovers_a_synthetic_camera() -> None:
    """Spec B.10 item 1: a body at T seen through K and a crop (c, b) has the weak-perspective
    crop camera s = 2f/(b T_z), t_crop = T_xy - 2(c - p)/(b s); the formula recovers T, and
    s (X + t_crop) is the point's crop position in [-1, 1] units for points at the root depth."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        k = np.array([[rng.uniform(300, 2000), 0, rng.uniform(100, 500)],
                      [0, 0, rng.uniform(100, 500)], [0, 0, 1.0]])  # fmt: skip
        k[1, 1] = k[0, 0]
        transl = np.array([rng.uniform(-2, 2), rng.uniform(-1, 1), rng.uniform(3, 30)])
        center, size = rng.uniform(0, 600, 2), rng.uniform(30, 400)
        f, p = k[0, 0], k[:2, 2]
        s = 2 * f / (size * transl[2])
        t_crop = transl[:2] - 2 * (center - p) / (size * s)
        got = crop_to_full_translation(np.r_[s, t_crop][None], center[None], [size], k)
        np.testing.assert_allclose(got[0], transl, rtol=1e-12)
        point = np.r_[rng.uniform(-0.5, 0.5, 2), 0.0]
        pixel = project(point + transl, k)
        np.testing.assert_allclose(2 * (pixel - center) / size, s * (point[:2] + t_crop), atol=1e-9)


# --- keypoints -----------------------------------------------------------------------------------


def test_44_keypoints_match_smplx_and_the_j19_rows(smpl_dir: Path) -> None:
    smplx = pytest.importorskip("smplx")
    rng = np.random.default_rng(4)
    params = {
        "betas": rng.normal(0, 1, (3, 10)), "body_pose": rng.normal(0, 0.4, (3, 69)),
        "global_orient": rng.normal(0, 1, (3, 3)), "transl": rng.normal(0, 1, (3, 3)),
    }  # fmt: skip
    body = BodyModel.from_dir(smpl_dir).forward(**params)
    j19 = read_j19_regressor(smpl_dir / "SMPL_to_J19.pkl")
    ours = keypoints_44(body.vertices, body.joints, j19)
    reference = smplx.SMPL(str(smpl_dir / "SMPL_NEUTRAL.pkl"), dtype=torch.float64)
    with torch.no_grad():
        out = reference(**{k: torch.from_numpy(v) for k, v in params.items()})
    joints45, vertices = out.joints.numpy(), out.vertices.numpy()
    assert joints45.shape[1] == 45
    openpose = [24, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 25, 26, 27, 28, 29, 30, 31,
                32, 33, 34]  # fmt: skip
    expected = np.concatenate([joints45[:, openpose], np.einsum("jv,nvk->njk", j19, vertices)], 1)
    np.testing.assert_allclose(ours, expected, atol=1e-6)
    np.testing.assert_allclose(ours[:, 37], j19[12] @ body.vertices, atol=1e-12)  # neck
    np.testing.assert_allclose(ours[:, 38], j19[13] @ body.vertices, atol=1e-12)  # head top
    np.testing.assert_allclose(ours[:, 8], body.joints[:, 0], atol=1e-12)  # OpenPose mid-hip
    np.testing.assert_allclose(ours[:, 0], body.vertices[:, 332], atol=1e-12)  # nose vertex


def test_j19_reader_refuses_code(tmp_path: Path) -> None:
    path = tmp_path / "SMPL_to_J19.pkl"
    path.write_bytes(pickle.dumps(Path("x")))
    with pytest.raises(pickle.UnpicklingError):
        read_j19_regressor(path)


# --- adapter -------------------------------------------------------------------------------------


def test_estimate_shapes_dtypes_and_protocol(hmr: CameraHMR) -> None:
    assert isinstance(hmr, SingleHMR)
    image, detections = _scene()
    out = hmr.estimate(image, detections, K)
    shapes = {k: getattr(out, k).shape for k in ("global_orient", "body_pose", "betas", "transl")}
    assert shapes == {
        "global_orient": (3, 3), "body_pose": (3, 69), "betas": (3, 10), "transl": (3, 3)
    }  # fmt: skip
    assert out.keypoints_2d.shape == (3, 44, 2) and out.keypoints_2d.dtype == np.float32
    assert all(getattr(out, k).dtype == np.float32 for k in shapes)
    assert np.all(out.transl[:, 2] > 0) and np.isfinite(out.keypoints_2d).all()
    # keypoints are the projection of the posed body at transl
    body = hmr.body_model.forward(out.betas, out.body_pose, out.global_orient, out.transl)
    points = keypoints_44(body.vertices, body.joints, hmr.j19)
    np.testing.assert_allclose(out.keypoints_2d, project(points, K), rtol=1e-4, atol=1e-2)


def test_without_body_model_keypoints_are_none() -> None:
    hmr = CameraHMR.tiny(0, device="cpu")
    image, detections = _scene()
    assert hmr.estimate(image, detections, K).keypoints_2d is None


def test_batch_equals_one_by_one_and_is_deterministic(hmr: CameraHMR) -> None:
    image, detections = _scene()
    batched = hmr.estimate(image, detections, K)
    chunked = CameraHMR(hmr.model, body_model=hmr.body_model, j19=hmr.j19, batch_size=2)
    again = chunked.estimate(image, detections, K)
    for i in range(len(detections)):
        single = Detections(
            detections.boxes_xyxy[i : i + 1],
            detections.scores[i : i + 1],
            detections.masks[i : i + 1],
        )
        one = hmr.estimate(image, single, K)
        np.testing.assert_allclose(one.body_pose[0], batched.body_pose[i], atol=1e-5)
        np.testing.assert_allclose(one.transl[0], batched.transl[i], rtol=1e-5)
        np.testing.assert_allclose(one.keypoints_2d[0], batched.keypoints_2d[i], atol=1e-3)
    np.testing.assert_allclose(again.transl, batched.transl, rtol=1e-5)
    np.testing.assert_array_equal(hmr.estimate(image, detections, K).transl, batched.transl)
    seeded = tiny_model(0).state_dict()
    for key, value in hmr.model.state_dict().items():
        torch.testing.assert_close(value, seeded[key], rtol=0, atol=0)
    assert not torch.equal(
        tiny_model(1).state_dict()["smpl_head.decpose.weight"], seeded["smpl_head.decpose.weight"]
    )


def test_moved_person_moves_bbox_info_and_translation(smpl_dir: Path) -> None:
    """The same pixels shifted by (dx, dy) with their box: identical crop, bbox_info shifted by
    (dx, dy)/f and, with a camera readout independent of the input, the projected translation
    moves by exactly (dx, dy)."""
    hmr = CameraHMR.tiny(0, smpl_dir=smpl_dir, device="cpu")
    torch.nn.init.zeros_(hmr.model.smpl_head.deccam.weight)
    image, detections = _scene()
    dx, dy = 30, 12
    moved = np.zeros_like(image)
    moved[dy:, dx:] = image[:-dy, :-dx]
    box = detections.boxes_xyxy[:1]
    shifted = box + np.array([dx, dy, dx, dy], np.float32)
    centers, sizes = box_centers_sizes(box)
    centers_moved, _ = box_centers_sizes(shifted)
    np.testing.assert_allclose(
        bbox_info(centers_moved, sizes, K) - bbox_info(centers, sizes, K),
        [[dx / 500, dy / 500, 0.0]], atol=1e-6,
    )  # fmt: skip
    np.testing.assert_array_equal(
        preprocess_crop(moved, centers_moved[0], sizes[0]),
        preprocess_crop(image, centers[0], sizes[0]),
    )
    a = hmr.estimate(image, Detections(box, detections.scores[:1], None), K)
    b = hmr.estimate(moved, Detections(shifted, detections.scores[:1], None), K)
    np.testing.assert_allclose(project(b.transl, K) - project(a.transl, K), [[dx, dy]], atol=1e-3)
    np.testing.assert_allclose(b.transl[:, 2], a.transl[:, 2], rtol=1e-6)


def test_masks_blank_other_pixels(hmr: CameraHMR) -> None:
    image, detections = _scene()
    empty_masks = Detections(
        detections.boxes_xyxy, detections.scores, np.zeros_like(detections.masks)
    )
    masked = hmr.estimate(image, empty_masks, K)
    black = hmr.estimate(np.zeros_like(image), empty_masks, K)
    np.testing.assert_array_equal(masked.betas, black.betas)
    unmasked = hmr.estimate(image, detections, K)
    assert not np.allclose(unmasked.betas, black.betas)
    resized = Detections(detections.boxes_xyxy, detections.scores, detections.masks[:, ::2])
    with pytest.raises(ValueError, match=r"masks \(3, 120, 320\) do not match 3 detections"):
        hmr.estimate(image, resized, K)


def test_no_person_and_bad_inputs(hmr: CameraHMR) -> None:
    image, _ = _scene()
    none = Detections(
        np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 240, 320), bool)
    )
    out = hmr.estimate(image, none, K)
    assert out.global_orient.shape == (0, 3) and out.body_pose.shape == (0, 69)
    assert out.betas.shape == (0, 10) and out.transl.shape == (0, 3)
    assert out.keypoints_2d.shape == (0, 44, 2) and len(out) == 0
    assert out.transl.dtype == np.float32
    _, detections = _scene()
    gray = hmr.estimate(image[..., 0], detections, K)
    np.testing.assert_array_equal(
        gray.transl, hmr.estimate(np.repeat(image[..., :1], 3, 2), detections, K).transl
    )
    with pytest.raises(ImageError):
        hmr.estimate(np.zeros((0, 0, 3), np.uint8), detections, K)
    with pytest.raises(ValueError, match="K"):
        hmr.estimate(image, detections, np.eye(2))
