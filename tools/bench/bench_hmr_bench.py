"""Benchmark of hmr-bench: metric and matcher throughput, and a 3DPW-sized evaluation.

    uv run python tools/bench/bench_hmr_bench.py [--people 35000] [--metric-people 1000000]

Part 1 times every metric and matcher on synthetic arrays (people/s), next to the same
arithmetic done person by person as the official evaluators loop it (MA-HMR's
`cal_3d_position_error` / `rigid_align`, `_scale_to_gt`, the RH PCK loop, `match_2d_greedy`),
measured in the same process, and their ratio.

Part 2 runs the full 3DPW protocol (evaluate_ground_truth, paper mode) on a 3DPW-sized test set
built in memory (file reading excluded): --people ground-truth people, one or two per
1080 x 1920 image, 10 % extra false-positive predictions, predicted meshes as float32 like
MA-HMR's outputs, on the SYNTHETIC SMPL-format model. The total is split into the stages it
spends its time in (each wrapped with a timer): ground-truth posing through dto_core.body
(gendered SMPL forward), the H36M regressor, 2D matching, the metrics, and the rest.
"""

from __future__ import annotations

import os

# Single-threaded BLAS, as the other benches: on this 2-core VM OpenBLAS's second thread makes
# the small matrix products of the SMPL forward pass ~5x slower (measured), not faster.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import platform
import tempfile
import time
from collections import defaultdict
from itertools import product

import numpy as np

import hmr_bench.protocols.mesh as mesh
from dto_core.body import BodyModel
from dto_core.synthetic_body import write_synthetic_smpl_dir
from hmr_bench import Predictions, ProtocolConfig
from hmr_bench.body import BodyModels, camera_frame_params, pose_bodies
from hmr_bench.datasets.smpl_gt import SMPLGroundTruth
from hmr_bench.matching import match_keypoints_2d, match_mupots
from hmr_bench.metrics import (
    joint_errors,
    mpjpe,
    pa_mpjpe,
    pa_pve,
    panoptic_mpjpe,
    pcdr,
    pck2d,
    pve,
)
from hmr_bench.protocols import evaluate_ground_truth
from hmr_bench.regressors import JointRegressor, write_synthetic_regressors

MUPOTS_PARENTS = (1, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, 14, 14, 1)
MUPOTS_ORDER = (14, 15, 1, 0, 16, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)


def best_time(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


# ---- person-by-person baselines (the official evaluators' arithmetic, looped as they loop) ----


def rigid_align_loop(p, g):
    """MA-HMR utils/transforms.py rigid_transform_3D + rigid_align, then the mean error."""
    out = []
    for a, b in zip(p, g, strict=True):
        ca, cb = a.mean(0), b.mean(0)
        h = (a - ca).T @ (b - cb) / len(a)
        u, s, v = np.linalg.svd(h)
        r = v.T @ u.T
        if np.linalg.det(r) < 0:
            s[-1], v[2] = -s[-1], -v[2]
            r = v.T @ u.T
        c = s.sum() / np.var(a, axis=0).sum()
        t = cb - c * r @ ca
        out.append(np.sqrt(((a @ (c * r).T + t - b) ** 2).sum(1)).mean() * 1000)
    return out


def mpjpe_loop(p, g):
    return [
        np.sqrt((((a - a[0]) - (b - b[0])) ** 2).sum(1)).mean() * 1000
        for a, b in zip(p, g, strict=True)
    ]


def pck_loop(pred, gt):
    out = []
    for p, g in zip(pred, gt, strict=True):
        v = (g > -1).sum(-1) == 2
        gv = g[v]
        scale = np.sqrt(
            (gv[:, 0].max() - gv[:, 0].min()) ** 2 + (gv[:, 1].max() - gv[:, 1].min()) ** 2
        )
        out.append((np.linalg.norm(p[v] - gv, axis=-1) / scale < 0.143).mean())
    return out


def scale_loop(pred, gt):
    """MA-HMR mupots_utils._scale_to_gt + error, per person."""
    out = []
    for p, g in zip(pred, gt, strict=True):
        p, g = p - p[14], g - g[14]
        r = p.copy()
        for j in MUPOTS_ORDER:
            parent = MUPOTS_PARENTS[j]
            bone = p[j] - p[parent]
            r[j] = r[parent] + bone * np.linalg.norm(g[j] - g[parent]) / (
                np.linalg.norm(bone) + 1e-8
            )
        out.append(np.sqrt(((r - g) ** 2).sum(1)))
    return out


def pcdr_loop(z, layer, image):
    correct = total = 0
    for i in np.unique(image):
        rows = np.flatnonzero(image == i)
        for a, b in zip(*np.triu_indices(len(rows), 1), strict=True):
            ra, rb = rows[a], rows[b]
            if layer[ra] < 0 or layer[rb] < 0:
                continue
            dd, dz = layer[rb] - layer[ra], z[rb] - z[ra]
            correct += abs(dz) < 0.2 if dd == 0 else (dz < -0.2 if dd < 0 else dz > 0.2)
            total += 1
    return correct / total


def box_area(q):
    return (np.ptp(q[:, 0]) + 1) * (np.ptp(q[:, 1]) + 1)


def greedy_loop(pred_kps, gt_kps, iou_thresh=0.1):
    """agora_evaluation / MA-HMR match_2d_greedy: product of pairs, dict of errors, argmin."""
    combs = list(product(range(len(pred_kps)), range(len(gt_kps))))
    errors = np.array([np.linalg.norm(pred_kps[p] - gt_kps[g], 2) for p, g in combs])
    gt_taken = np.zeros(len(gt_kps), bool)
    op_taken = np.zeros(len(pred_kps), bool)
    matches, fp = [], 0
    while gt_taken.sum() < len(gt_taken) and op_taken.sum() + fp < len(pred_kps):
        while True:
            k = int(np.argmin(errors))
            p, g = combs[k]
            a, b = pred_kps[p], gt_kps[g]
            x1, y1 = max(a[:, 0].min(), b[:, 0].min()), max(a[:, 1].min(), b[:, 1].min())
            x2, y2 = min(a[:, 0].max(), b[:, 0].max()), min(a[:, 1].max(), b[:, 1].max())
            inter = max(0, x2 - x1 + 1) * max(0, y2 - y1 + 1)
            iou = inter / (box_area(a) + box_area(b) - inter)
            errors[k] = np.inf
            if not op_taken[p] and not gt_taken[g] and iou >= iou_thresh:
                matches.append((p, g))
                op_taken[p] = gt_taken[g] = True
                break
            if iou < iou_thresh:
                fp += 1
                break
    return matches


def print_row(name: str, people: int, fast, slow=None, slow_people: int = 0) -> None:
    """people/s of `fast` (best of 3) and of the person-by-person `slow` (1 run) and their ratio."""
    rate = people / best_time(fast)
    if slow is None:
        print(f"{name:40s} {rate:12,.0f} {'-':>16s} {'-':>7s}")
        return
    base = slow_people / best_time(slow, 1)
    print(f"{name:40s} {rate:12,.0f} {base:16,.0f} {rate / base:6.0f}x")


def metric_table(n: int) -> None:
    rng = np.random.default_rng(0)
    loop_n = 20000
    g = rng.normal(size=(n, 14, 3)) * 0.3
    p = g + 0.03 * rng.normal(size=g.shape)
    pl, gl = p[:loop_n], g[:loop_n]
    print_row("MPJPE, 14 joints, root-aligned", n, lambda: mpjpe(p, g, root=0),
              lambda: mpjpe_loop(pl, gl), loop_n)  # fmt: skip
    print_row("PA-MPJPE, 14 joints", n, lambda: pa_mpjpe(p, g),
              lambda: rigid_align_loop(pl, gl), loop_n)  # fmt: skip
    nv = 2000
    gv = rng.normal(size=(nv, 6890, 3)) * 0.3
    pv = (gv + 0.03 * rng.normal(size=gv.shape)).astype(np.float32)
    root_p, root_g = pv[:, 0].astype(np.float64), gv[:, 0]
    pvl = pv[:200].astype(np.float64)
    print_row("PVE, 6890 vertices (float32 prediction)", nv,
              lambda: pve(pv, gv, pred_root=root_p, gt_root=root_g),
              lambda: mpjpe_loop(pvl, gv[:200]), 200)  # fmt: skip
    print_row("PA-PVE, 6890 vertices", nv, lambda: pa_pve(pv, gv),
              lambda: rigid_align_loop(pvl, gv[:200]), 200)  # fmt: skip
    dense = JointRegressor(rng.random((17, 6890)))
    sparse = JointRegressor(np.where(rng.random((17, 6890)) < 0.005, 1.0, 0.0))
    for name, reg in (("dense", dense), ("sparse, 0.5 %", sparse)):
        print_row(f"H36M regression, {name} 17 x 6890", nv, lambda r=reg: r(gv),
                  lambda r=reg: [r.weights @ x for x in gv[:200]], 200)  # fmt: skip
    counts = rng.integers(2, 13, n // 7)
    counts = counts[np.cumsum(counts) <= n]
    image = np.repeat(np.arange(len(counts)), counts)
    z, layer = rng.uniform(1, 10, len(image)), rng.integers(-1, 5, len(image))
    age = rng.integers(-1, 4, len(image))
    k = int(np.searchsorted(image, 3000))
    print_row("PCDR_0.2, images of 2-12 people", len(image),
              lambda: pcdr(z, layer, age, image_index=image),
              lambda: pcdr_loop(z[:k], layer[:k], image[:k]), k)  # fmt: skip
    g2 = rng.uniform(0, 500, (n, 14, 2))
    p2 = g2 + rng.normal(0, 10, g2.shape)
    print_row("RH 2D PCK, 14 joints", n, lambda: pck2d(p2, g2),
              lambda: pck_loop(p2[:loop_n], g2[:loop_n]), loop_n)  # fmt: skip
    g3 = rng.normal(size=(n, 17, 3)) * 300
    p3 = g3 + rng.normal(size=g3.shape) * 30
    print_row("MuPoTS bone rescaling + joint errors", n,
              lambda: joint_errors(p3, g3, np.ones(n, bool)),
              lambda: scale_loop(p3[:loop_n], g3[:loop_n]), loop_n)  # fmt: skip
    vis = rng.random((n, 17)) > 0.2
    print_row("Panoptic MPJPE (/17, visibility)", n,
              lambda: panoptic_mpjpe(p3 / 1e3, g3 / 1e3, vis))  # fmt: skip

    images = 20000  # 3DPW-like images: 1-2 people, 0-1 false positive, 24 joints
    gts = [rng.uniform(0, 1000, (int(rng.integers(1, 3)), 24, 2)) for _ in range(images)]
    preds = [
        np.concatenate(
            [
                g_ + rng.normal(0, 5, g_.shape),
                rng.uniform(0, 1000, (int(rng.integers(0, 2)), 24, 2)),
            ]
        )
        for g_ in gts
    ]
    pairs = list(zip(preds, gts, strict=True))
    people = sum(len(g_) for g_ in gts)
    print_row("greedy 2D matcher, 3DPW-like images", people,
              lambda: [match_keypoints_2d(q, g_, iou_thresh=0.1) for q, g_ in pairs],
              lambda: [greedy_loop(q, g_) for q, g_ in pairs[:2000]],
              sum(len(g_) for g_ in gts[:2000]))  # fmt: skip
    hungarian = {"iou_thresh": 0.1, "matcher": "hungarian"}
    print_row("Hungarian 2D matcher", people,
              lambda: [match_keypoints_2d(q, g_, **hungarian) for q, g_ in pairs])  # fmt: skip
    mg = [rng.uniform(0, 2000, (3, 13, 2)) for _ in range(images)]
    mp = [m + rng.normal(0, 10, m.shape) for m in mg]
    print_row("MuPoTS 40 px identity matcher", 3 * images,
              lambda: [match_mupots(a, b) for a, b in zip(mg, mp, strict=True)])  # fmt: skip


def build_3dpw(people: int, models: BodyModels, seed: int = 0):
    """A 3DPW-sized ground truth and predictions (GT meshes + noise + 10 % false positives)."""
    rng = np.random.default_rng(seed)
    counts = []
    while sum(counts) < people:
        counts.append(int(min(rng.integers(1, 3), people - sum(counts))))
    n, images = sum(counts), len(counts)
    image = np.repeat(np.arange(images), counts)
    slot = np.arange(n) - np.repeat(np.cumsum([0, *counts[:-1]]), counts)
    k = np.array([[1500.0, 0.0, 540.0], [0.0, 1500.0, 960.0], [0.0, 0.0, 1.0]])
    cam_rot = np.tile(np.diag([1.0, -1.0, -1.0]), (n, 1, 1))  # world y up -> camera y down
    base = 256  # distinct bodies, each posed once; replicas differ by their world translation
    gender = np.array(["male", "female"])[rng.integers(0, 2, n)]
    betas_b = rng.normal(0, 0.8, (base, 10))
    pose_b = rng.normal(0, 0.15, (base, 72))
    pose_b[:, :3] = [0.0, 1.0, 0.0] * rng.uniform(-0.5, 0.5, (base, 1))
    which = rng.integers(0, base, n)
    transl = np.column_stack(
        [0.9 * (slot - 0.5) + rng.uniform(-0.1, 0.1, n), np.zeros(n), -rng.uniform(4, 7, n)]
    )
    gt = SMPLGroundTruth(
        benchmark="3dpw",
        image_keys=tuple(f"imageFiles/bench/image_{i:06d}.jpg" for i in range(images)),
        width=np.full(images, 1080),
        height=np.full(images, 1920),
        sequence=("bench",) * images,
        offsets=np.concatenate([[0], np.cumsum(counts)]),
        betas=betas_b[which],
        global_orient=pose_b[which, :3],
        body_pose=pose_b[which, 3:],
        transl=transl,
        cam_rot=cam_rot,
        cam_trans=np.zeros((n, 3)),
        K=np.tile(k, (n, 1, 1)),
        gender=gender,
    )
    verts = np.empty((n, 6890, 3), np.float32)
    joints = np.empty((n, 24, 3))
    pose_cam, transl_cam = np.empty((n, 72)), np.empty((n, 3))
    for g_name in ("male", "female"):
        model = models.model(g_name)
        for b in range(base):
            rows = np.flatnonzero((which == b) & (gender == g_name))
            if rows.size == 0:
                continue
            orient, tc = camera_frame_params(
                gt.global_orient[rows],
                gt.transl[rows],
                gt.betas[rows],
                cam_rot[rows],
                gt.cam_trans[rows],
                model,
            )
            pose_cam[rows] = np.concatenate([orient, gt.body_pose[rows]], 1)
            transl_cam[rows] = tc
            body = pose_bodies(model, gt.betas[rows[:1]], pose_cam[rows[:1]], tc[:1])
            shift = (tc - tc[:1])[:, None, :]
            wobble = rng.normal(0, 0.01, body.verts.shape)  # per-vertex noise, per base body
            verts[rows] = body.verts + wobble + shift
            joints[rows] = body.joints24 + rng.normal(0, 0.01, body.joints24.shape) + shift
    noise = rng.normal(0, 0.02, (n, 1, 3))
    verts += noise.astype(np.float32)
    joints += noise
    extra = rng.random(n) < 0.1  # false positives: copies moved aside
    fields = {
        "conf": np.concatenate([np.full(n, 0.9), np.full(extra.sum(), 0.8)]),
        "verts": np.concatenate([verts, verts[extra] + np.float32(1.2)]),
        "joints24": np.concatenate([joints, joints[extra] + 1.2]),
        "betas": np.concatenate([gt.betas, gt.betas[extra]]),
        "K": np.tile(k, (n + extra.sum(), 1, 1)),
    }
    owner = np.concatenate([image, image[extra]])
    order = np.argsort(owner, kind="stable")
    preds = Predictions(
        gt.image_keys,
        np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=images))]),
        {k_: v[order] for k_, v in fields.items()},
    )
    return gt, preds


def timed(table: dict, name: str, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            table[name] += time.perf_counter() - start

    return wrapper


def run_3dpw(people: int, model_dir) -> dict:
    models = BodyModels.load(model_dir, convention="correct")  # the instance evaluate uses
    start = time.perf_counter()
    gt, preds = build_3dpw(people, models)
    build = time.perf_counter() - start
    stages: dict[str, float] = defaultdict(float)
    originals = {
        name: getattr(mesh, name)
        for name in (
            "pose_bodies",
            "match_keypoints_2d",
            "mpjpe",
            "pa_mpjpe",
            "pve",
            "pa_pve",
            "project",
        )
    }
    for name, fn in originals.items():
        setattr(mesh, name, timed(stages, name, fn))
    h36m = models.h36m
    models.h36m = timed(stages, "h36m", h36m)
    tpose_height = BodyModel.tpose_height
    BodyModel.tpose_height = timed(stages, "tpose_height", tpose_height)
    try:
        start = time.perf_counter()
        result = evaluate_ground_truth(
            "3dpw", gt, preds, ProtocolConfig.paper(), model_dir=model_dir
        )
        total = time.perf_counter() - start
    finally:
        for name, fn in originals.items():
            setattr(mesh, name, fn)
        models.h36m = h36m
        BodyModel.tpose_height = tpose_height
    return {
        "gt": gt,
        "preds": preds,
        "build": build,
        "total": total,
        "stages": dict(stages),
        "result": result,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=35000)
    parser.add_argument("--metric-people", type=int, default=1_000_000)
    parser.add_argument(
        "--sparse-regressor",
        action="store_true",
        help="keep the synthetic model's sparse H36M regressor (default: make it dense, the "
        "worst case for the real J_regressor_h36m_correct.npy)",
    )
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {platform.processor() or 'cpu'}")
    print(f"\nPart 1: metrics and matchers ({args.metric_people} people where applicable)\n")
    print(f"{'':40s} {'people/s':>12s} {'per-person loop':>16s} {'ratio':>7s}")
    metric_table(args.metric_people)

    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic_smpl_dir(tmp)
        h36m_path = write_synthetic_regressors(tmp)[0]
        if not args.sparse_regressor:  # every vertex gets a small weight; rows still sum to 1
            weights = np.load(h36m_path) + 1e-4
            np.save(h36m_path, weights / weights.sum(axis=1, keepdims=True))
        run = run_3dpw(args.people, tmp)
    gt, res, stages = run["gt"], run["result"], run["stages"]
    body_model = stages.get("pose_bodies", 0.0) + stages.get("tpose_height", 0.0)
    metrics = sum(stages.get(k, 0.0) for k in ("mpjpe", "pa_mpjpe", "pve", "pa_pve"))
    others = ("match_keypoints_2d", "h36m", "project")
    known = body_model + metrics + sum(stages.get(k, 0.0) for k in others)
    print(
        f"\nPart 2: 3DPW protocol, {gt.num_people} people in {gt.num_images} images, "
        f"{run['preds'].num_people} predictions (SYNTHETIC model, "
        f"{'sparse' if args.sparse_regressor else 'dense'} H36M regressor; "
        f"built in {run['build']:.1f} s)\n"
    )
    rows = [
        ("GT posing (dto_core.body, gendered SMPL forward)", stages.get("pose_bodies", 0.0)),
        ("T-pose heights (dto_core.body)", stages.get("tpose_height", 0.0)),
        ("H36M regression (GT + predictions)", stages.get("h36m", 0.0)),
        ("2D projections", stages.get("project", 0.0)),
        ("greedy 2D matching", stages.get("match_keypoints_2d", 0.0)),
        ("MPJPE + PA-MPJPE + PVE + PA-PVE", metrics),
        ("rest (camera-frame GT, visibility filter, bookkeeping)", run["total"] - known),
    ]
    for name, seconds in rows:
        print(f"{name:55s} {seconds:7.2f} s")
    own = run["total"] - body_model
    print(f"{'total evaluate_ground_truth':55s} {run['total']:7.2f} s", end="")
    print(f"  ({gt.num_people / run['total']:,.0f} people/s)")
    print(f"{'total without dto_core.body (posing, heights)':55s} {own:7.2f} s", end="")
    print(f"  ({gt.num_people / own:,.0f} people/s)")
    m = res.metrics
    print(
        f"\n(sanity: recall {m['recall']:.3f}, MPJPE {m['mpjpe']:.1f} mm, PVE {m['pve']:.1f} mm, "
        f"{m['n_false_positives']} false positives)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
