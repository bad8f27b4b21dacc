"""Tests of dto_core.body (NumPy SMPL model) and dto_core.synthetic_body (synthetic SMPL files)."""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.spatial.transform import Rotation

from dto_core.body import BodyModel, load_model_arrays, load_pickled_array, rodrigues
from dto_core.synthetic_body import (
    GRID,
    SMPL_PARENTS,
    make_synthetic_kid_template,
    make_synthetic_smpl,
    write_synthetic_smpl_dir,
)

NUM_VERTICES, NUM_FACES = 6890, 13776
L_SHOULDER, L_ELBOW, L_WRIST, HEAD = 16, 18, 20, 15
ATOL = 1e-12


@pytest.fixture(scope="module")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory in the smplx layout: ROOT/smpl/SMPL_*.pkl."""
    root = tmp_path_factory.mktemp("models")
    write_synthetic_smpl_dir(root / "smpl")
    return root


@pytest.fixture(scope="module")
def model(model_root: Path) -> BodyModel:
    return BodyModel.from_file(model_root / "smpl" / "SMPL_NEUTRAL.pkl")


def _random_pose(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "betas": rng.normal(0.0, 1.0, (n, 10)),
        "body_pose": rng.normal(0.0, 0.5, (n, 69)),
        "global_orient": rng.normal(0.0, 1.0, (n, 3)),
        "transl": rng.normal(0.0, 3.0, (n, 3)),
    }


# --- loading -------------------------------------------------------------------------------------


def test_pkl_and_npz_give_identical_models(model_root: Path) -> None:
    from_pkl = BodyModel.from_file(model_root / "smpl" / "SMPL_NEUTRAL.pkl")
    from_npz = BodyModel.from_file(model_root / "smpl" / "SMPL_NEUTRAL.npz")
    for name in (
        "v_template",
        "shapedirs",
        "posedirs",
        "J_regressor",
        "weights",
        "parents",
        "faces",
    ):
        np.testing.assert_array_equal(
            getattr(from_pkl, name), getattr(from_npz, name), err_msg=name
        )
    assert from_pkl.parents.tolist() == list(SMPL_PARENTS)


def test_chumpy_pickle_is_refused_with_conversion_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_ch = types.ModuleType("chumpy.ch")

    class Ch:
        pass

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    fake_ch.Ch = Ch
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", fake_ch)
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps({"v_template": Ch()}, protocol=2))
    monkeypatch.delitem(sys.modules, "chumpy.ch")  # the loader must not need chumpy at all
    with pytest.raises(ValueError, match=r"chumpy arrays.*clean_ch\.py") as info:
        BodyModel.from_file(path)
    assert str(path) in str(info.value)


def test_arbitrary_classes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"v_template": Path("x")}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        load_model_arrays(path)


def test_load_pickled_array_dense_sparse_and_refusals(tmp_path: Path) -> None:
    dense = np.arange(12, dtype=np.float32).reshape(3, 4)
    (tmp_path / "dense.pkl").write_bytes(pickle.dumps(dense, protocol=2))
    out = load_pickled_array(tmp_path / "dense.pkl")
    assert out.dtype == np.float64 and np.array_equal(out, dense)
    (tmp_path / "sparse.pkl").write_bytes(pickle.dumps(sp.csc_matrix(dense), protocol=2))
    assert np.array_equal(load_pickled_array(tmp_path / "sparse.pkl"), dense)
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps({"a": dense}, protocol=2))
    with pytest.raises(ValueError, match="expected one array, got dict"):
        load_pickled_array(tmp_path / "dict.pkl")
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps([Path("x")], protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        load_pickled_array(tmp_path / "evil.pkl")


def test_missing_key_error_names_key_and_file(tmp_path: Path) -> None:
    data = make_synthetic_smpl()
    del data["weights"]
    path = tmp_path / "SMPL_BROKEN.pkl"
    path.write_bytes(pickle.dumps(data, protocol=2))
    with pytest.raises(ValueError, match=r"SMPL_BROKEN\.pkl.*'weights'"):
        BodyModel.from_file(path)


def test_wrong_shape_is_refused(model: BodyModel) -> None:
    with pytest.raises(ValueError, match=r"weights has shape \(6890, 23\)"):
        BodyModel(
            model.v_template, model.shapedirs, model.posedirs, model.J_regressor,
            model.weights[:, :23], model.parents, model.faces,
        )  # fmt: skip


def test_num_betas_truncates_and_is_bounded(model_root: Path) -> None:
    path = model_root / "smpl" / "SMPL_NEUTRAL.pkl"
    full, five = BodyModel.from_file(path), BodyModel.from_file(path, num_betas=5)
    assert five.num_betas == 5
    np.testing.assert_array_equal(five.shapedirs, full.shapedirs[..., :5])
    with pytest.raises(ValueError, match="num_betas"):
        BodyModel.from_file(path, num_betas=11)


def test_from_dir_env_and_smpl_subfolder(model_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMPL_MODEL_DIR", str(model_root))  # the model lies in ROOT/smpl/
    female = BodyModel.from_dir(gender="female")
    expected = make_synthetic_smpl("female")["v_template"]
    np.testing.assert_array_equal(female.v_template, expected)
    direct = BodyModel.from_dir(model_root / "smpl", gender="female")  # DIR/SMPL_FEMALE.pkl
    np.testing.assert_array_equal(direct.v_template, expected)


def test_from_dir_lists_tried_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError) as info:
        BodyModel.from_dir(tmp_path, gender="male")
    for tried in ("SMPL_MALE.pkl", "SMPL_MALE.npz", "smpl/SMPL_MALE.pkl", "smpl/SMPL_MALE.npz"):
        assert str(tmp_path / tried) in str(info.value)
    monkeypatch.delenv("SMPL_MODEL_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="SMPL_MODEL_DIR"):
        BodyModel.from_dir()


# --- synthetic model ----------------------------------------------------------------------------


def test_synthetic_model_has_smpl_layout() -> None:
    data = make_synthetic_smpl()
    assert sum(r * s + 2 for r, s in GRID) == NUM_VERTICES
    assert data["f"].dtype == np.uint32 and data["f"].shape == (NUM_FACES, 3)
    assert sp.isspmatrix_csc(data["J_regressor"])
    np.testing.assert_allclose(data["J_regressor"].sum(axis=1), 1.0, atol=ATOL)
    assert data["kintree_table"].dtype == np.uint32
    assert data["kintree_table"][0].tolist() == [4294967295, *SMPL_PARENTS[1:]]
    np.testing.assert_allclose(data["J"], data["J_regressor"] @ data["v_template"], atol=ATOL)
    assert (data["bs_style"], data["bs_type"]) == ("lbs", "lrotmin")


def test_synthetic_model_is_deterministic_per_seed() -> None:
    a, b, c = make_synthetic_smpl(seed=5), make_synthetic_smpl(seed=5), make_synthetic_smpl(seed=6)
    for key in ("v_template", "shapedirs", "posedirs", "weights", "f"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["posedirs"], c["posedirs"])
    np.testing.assert_array_equal(a["f"], c["f"])  # one topology for every model


def test_joints_are_anatomical(model: BodyModel) -> None:
    j = model.J_regressor @ model.v_template
    left = [1, 4, 7, 10, 13, 16, 18, 20, 22]
    assert np.all(j[left, 0] > 0.05) and np.allclose(j[left, 0], -j[[i + 1 for i in left], 0])
    spine_up = [8, 5, 2, 0, 3, 6, 9, 12, 15]  # R ankle, knee, hip, pelvis, spine 1-3, neck, head
    assert np.all(np.diff(j[spine_up, 1]) > 0)
    arm = [16, 18, 20, 22]  # T-pose: the arm is horizontal, along +x
    assert np.ptp(j[arm, 1]) < 0.03 and np.all(np.diff(j[arm, 0]) > 0.05)
    assert abs(j[0, 1] + 0.23) < 0.02  # pelvis near SMPL's


def test_mesh_is_closed_oriented_genus_zero(model: BodyModel) -> None:
    f = model.faces
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    codes = edges[:, 0] * NUM_VERTICES + edges[:, 1]
    assert np.unique(codes).size == codes.size  # each directed edge once: consistently oriented
    assert np.all(np.isin(edges[:, 1] * NUM_VERTICES + edges[:, 0], codes))  # closed
    num_edges = codes.size // 2
    assert NUM_VERTICES - num_edges + len(f) == 2  # Euler characteristic of a sphere
    graph = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), (NUM_VERTICES,) * 2)
    assert connected_components(graph, directed=False)[0] == 1
    v = model.v_template[f]
    volume = np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6.0
    assert 0.04 < volume < 0.1  # m^3, outward-facing


def test_skinning_weights_are_convex(model: BodyModel) -> None:
    np.testing.assert_allclose(model.weights.sum(axis=1), 1.0, atol=ATOL)
    assert model.weights.min() >= 0.0
    blended = np.count_nonzero(model.weights > 0.01, axis=1) > 1
    assert 0.1 < blended.mean() < 0.7  # smooth across joints, yet mostly rigid parts


def test_tpose_heights(model_root: Path, model: BodyModel) -> None:
    heights = {
        g: BodyModel.from_dir(model_root, gender=g).tpose_height(np.zeros(10))[0]
        for g in ("male", "female")
    }
    neutral = model.tpose_height(np.zeros(10))[0]
    assert 1.65 <= neutral <= 1.75
    assert heights["female"] + 0.04 < neutral < heights["male"] - 0.04
    kid = np.ptp(make_synthetic_kid_template()[:, 1])
    assert 0.8 <= kid <= 0.9


def test_beta0_drives_height(model: BodyModel) -> None:
    step = 0.5
    betas = np.concatenate([np.eye(10) * step, -np.eye(10) * step])
    h = model.tpose_height(betas)
    slope = (h[:10] - h[10:]) / (2 * step)
    assert 0.05 < slope[0] < 0.09  # m per unit beta_0
    assert np.all(np.abs(slope[1:]) < 0.25 * slope[0])
    assert np.linalg.norm(model.shapedirs[..., 1:], axis=(0, 1)).min() > 0.1  # all 10 are used


def test_kid_blend_is_smplx_blend(model_root: Path) -> None:
    kid_path = model_root / "smpl" / "smpl_kid_template.npy"
    kid_model = BodyModel.from_dir(model_root, kid_template=kid_path)
    assert kid_model.num_betas == 11
    kid = np.load(kid_path)
    kid_only, adult = np.zeros(11), np.zeros(11)
    kid_only[10] = 1.0
    shaped = kid_model.shaped_vertices(np.stack([kid_only, adult]))
    np.testing.assert_allclose(shaped[0], kid - kid.mean(axis=0), atol=ATOL)
    np.testing.assert_array_equal(shaped[1], kid_model.v_template)
    from_array = BodyModel.from_dir(model_root, kid_template=kid)
    np.testing.assert_array_equal(from_array.shapedirs, kid_model.shapedirs)


# --- forward kinematics and skinning ------------------------------------------------------------


def test_rodrigues_matches_scipy() -> None:
    rotvecs = np.random.default_rng(0).normal(0.0, 1.5, (50, 3))
    expected = Rotation.from_rotvec(rotvecs).as_matrix()
    np.testing.assert_allclose(rodrigues(rotvecs), expected, atol=1e-7)  # smplx's 1e-8 offset
    np.testing.assert_array_equal(rodrigues(np.zeros(3)), np.eye(3))


def test_zero_pose_is_shaped_mesh_plus_translation(model: BodyModel) -> None:
    rng = np.random.default_rng(1)
    betas, transl = rng.normal(0.0, 1.0, (3, 10)), rng.normal(0.0, 2.0, (3, 3))
    out = model.forward(betas, np.zeros((3, 23, 3)), np.zeros((3, 3)), transl)
    shaped = model.shaped_vertices(betas)
    np.testing.assert_allclose(out.vertices, shaped + transl[:, None], atol=ATOL)
    joints = np.einsum("jv,nvk->njk", model.J_regressor, shaped)
    np.testing.assert_allclose(out.joints, joints + transl[:, None], atol=ATOL)


def test_global_orient_rotates_about_root_joint(model: BodyModel) -> None:
    rng = np.random.default_rng(2)
    inputs = _random_pose(rng, 1)
    rotvec = np.array([[0.3, -1.1, 0.7]])
    base = model.forward(inputs["betas"], inputs["body_pose"], np.zeros((1, 3)))
    turned = model.forward(inputs["betas"], inputs["body_pose"], rotvec)
    root = base.joints[0, 0]
    rot = Rotation.from_rotvec(rotvec[0]).as_matrix()
    np.testing.assert_allclose(
        turned.vertices[0], (base.vertices[0] - root) @ rot.T + root, atol=1e-7
    )
    np.testing.assert_allclose(turned.joints[0], (base.joints[0] - root) @ rot.T + root, atol=1e-7)


def test_elbow_bend_moves_only_the_forearm(model: BodyModel) -> None:
    pose = np.zeros((23, 3))
    pose[L_ELBOW - 1] = (0.0, -1.2, 0.0)
    bent = model.forward(np.zeros(10), pose, np.zeros(3))
    rest = model.forward(np.zeros(10), np.zeros((23, 3)), np.zeros(3))
    moved = np.linalg.norm(bent.vertices[0] - rest.vertices[0], axis=1)
    head = model.weights[:, HEAD] > 0.99
    assert moved[head].max() == 0.0
    j_bent, j_rest = bent.joints[0], rest.joints[0]
    np.testing.assert_allclose(j_bent[: L_ELBOW + 1], j_rest[: L_ELBOW + 1], atol=ATOL)
    bone = j_rest[L_WRIST] - j_rest[L_ELBOW]
    assert np.linalg.norm(j_bent[L_WRIST] - j_bent[L_ELBOW]) == pytest.approx(np.linalg.norm(bone))
    # the wrist moves along the chord of a 1.2 rad turn about the (world y) elbow axis
    radius = np.linalg.norm(bone[[0, 2]])
    chord = np.linalg.norm(j_bent[L_WRIST] - j_rest[L_WRIST])
    assert chord == pytest.approx(2.0 * radius * np.sin(0.6), rel=1e-7)  # smplx eps


def test_batch_equals_loop_and_broadcasts(model: BodyModel) -> None:
    inputs = _random_pose(np.random.default_rng(3), 4)
    batch = model.forward(**inputs)
    for i in range(4):
        single = model.forward(**{k: v[i] for k, v in inputs.items()})
        np.testing.assert_allclose(single.vertices[0], batch.vertices[i], atol=ATOL)
        np.testing.assert_allclose(single.joints[0], batch.joints[i], atol=ATOL)
    shared = model.forward(inputs["betas"][:1], inputs["body_pose"], inputs["global_orient"])
    again = model.forward(
        np.repeat(inputs["betas"][:1], 4, axis=0), inputs["body_pose"], inputs["global_orient"]
    )
    np.testing.assert_array_equal(shared.vertices, again.vertices)
