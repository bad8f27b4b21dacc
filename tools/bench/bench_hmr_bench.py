"""Benchmark of hmr-bench: metric and matcher throughput, and a 3DPW-sized evaluation.

    uv run python tools/bench/bench_hmr_bench.py [--people 35000] [--metric-people 1000000]

Part 1 times every metric and matcher on synthetic arrays (people/s), next to the same
arithmetic done person by person as the official evaluators loop it (MA-HMR's
`cal_3d_position_error` / `rigid_align`, `_scale_to_gt`, the RH PCK loop, `match_2d_greedy`),
measured in the same process, and their ratio.

Part 2 runs the full 3DPW protocol (evaluate_ground_truth, paper mode) on a 3DPW-sized test set
built in memory (file reading excluded): --people ground-truth people, one or two per
1080 x 1920 image, 10 % extra false-positive predictions, predicted meshes as float32 like
MA-HMR's outputs, on the SYNTHETIC SMPL-format model; three times in the same process: without
the posed ground-truth cache (the ground truth posed in float64 during the evaluation, as before
the cache existed), writing the cache, and reading it. Each total is split into the stages it
spends its time in (each wrapped with a timer), and the metric changes between the first and the
last run are printed (float32 against float64 meshes).

    uv run python tools/bench/bench_hmr_bench.py --skip-metrics   # Part 2 only
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
from pathlib import Path

import numpy as np

import hmr_bench.protocols.mesh as mesh
import hmr_bench.protocols.posed_gt as posed_gt
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
from hmr_bench.protocols.derive import PredictionGeometry
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


def build_3dpw(people: int, models: BodyModels, workdir: Path, seed: int = 0):
    """A 3DPW-sized ground truth and predictions (GT meshes + noise + 10 % false positives),
    the predicted meshes written in place, in their final order, into a file-backed array in
    workdir (page cache instead of 3 GB of process memory)."""
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
    extra = rng.random(n) < 0.1  # false positives: copies moved aside, right after the original
    owner = np.concatenate([image, image[extra]])
    order = np.argsort(owner, kind="stable")
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    copy_of = np.full(n, -1)
    copy_of[extra] = position[n + np.arange(extra.sum())]
    verts = np.lib.format.open_memmap(
        workdir / "pred_verts.npy", mode="w+", dtype=np.float32, shape=(len(owner), 6890, 3)
    )
    joints = np.empty((len(owner), 24, 3))
    noise = rng.normal(0, 0.02, (n, 1, 3))
    for g_name in ("male", "female"):
        model = models.model(g_name)
        for b in range(base):
            rows = np.flatnonzero((which == b) & (gender == g_name))
            if rows.size == 0:
                continue
            orient, tc = camera_frame_params(
                gt.global_orient[rows], gt.transl[rows], gt.betas[rows], cam_rot[rows],
                gt.cam_trans[rows], model,
            )  # fmt: skip
            pose = np.concatenate([orient[:1], gt.body_pose[rows[:1]]], 1)
            body = pose_bodies(model, gt.betas[rows[:1]], pose, tc[:1])
            wobble = rng.normal(0, 0.01, body.verts.shape)  # per-vertex noise, per base body
            jitter = rng.normal(0, 0.01, body.joints24.shape)
            shift = (tc - tc[:1])[:, None, :] + noise[rows]
            verts[position[rows]] = body.verts + wobble + shift
            joints[position[rows]] = body.joints24 + jitter + shift
            copies = rows[extra[rows]]
            verts[copy_of[copies]] = verts[position[copies]] + np.float32(1.2)
            joints[copy_of[copies]] = joints[position[copies]] + 1.2
    conf = np.where(np.arange(len(owner)) < n, 0.9, 0.8)
    fields = {
        "conf": conf[order],
        "verts": verts,
        "joints24": joints,
        "betas": np.concatenate([gt.betas, gt.betas[extra]])[order],
        "K": np.tile(k, (len(owner), 1, 1)),
    }
    offsets = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=images))])
    preds = Predictions(gt.image_keys, offsets, fields, {}, {"K": np.tile(k, (images, 1, 1))})
    return gt, preds


def timed(table: dict, name: str, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            table[name] += time.perf_counter() - start

    return wrapper


STAGES = (  # (label, timed functions summed)
    ("GT: cache key, camera frame, cache files", ("__init__",)),
    ("GT: posing, heights, H36M, cache writes / reads", ("chunk",)),
    ("   of which the gendered SMPL forward (dto_core.body)", ("pose_bodies",)),
    ("predictions: H36M regression", ("h36m",)),
    ("predictions: T-pose heights (dto_core.body)", ("_pred_heights",)),
    ("2D projections", ("project",)),
    ("greedy 2D matching", ("match_keypoints_2d_images",)),
    ("MPJPE + PA-MPJPE + PVE + PA-PVE", ("mpjpe", "pa_mpjpe", "pve", "pa_pve")),
)


def run_3dpw(gt, preds, model_dir, cache_dir) -> dict:
    """One timed evaluate_ground_truth (paper mode), its time split into STAGES."""
    stages: dict[str, float] = defaultdict(float)
    patched = [(mesh, name) for name in ("match_keypoints_2d_images", "mpjpe", "pa_mpjpe", "pve",
                                         "pa_pve", "project", "_pred_heights")]  # fmt: skip
    patched += [(posed_gt, "pose_bodies"), (PredictionGeometry, "h36m")]
    patched += [(posed_gt.PosedGroundTruth, "chunk"), (posed_gt.PosedGroundTruth, "__init__")]
    originals = [(owner, name, getattr(owner, name)) for owner, name in patched]
    for owner, name, fn in originals:
        setattr(owner, name, timed(stages, name, fn))
    try:
        start, cpu = time.perf_counter(), time.process_time()
        result = evaluate_ground_truth(
            "3dpw", gt, preds, ProtocolConfig.paper(), model_dir=model_dir, cache_dir=cache_dir
        )
        total, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        for owner, name, fn in originals:
            setattr(owner, name, fn)
    return {"total": total, "cpu": cpu, "stages": dict(stages), "result": result}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=35000)
    parser.add_argument("--metric-people", type=int, default=1_000_000)
    parser.add_argument("--skip-metrics", action="store_true", help="run Part 2 only")
    parser.add_argument(
        "--sparse-regressor",
        action="store_true",
        help="keep the synthetic model's sparse H36M regressor (default: make it dense, the "
        "worst case for the real J_regressor_h36m_correct.npy)",
    )
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {platform.processor() or 'cpu'}")
    if not args.skip_metrics:
        print(f"\nPart 1: metrics and matchers ({args.metric_people} people where applicable)\n")
        print(f"{'':40s} {'people/s':>12s} {'per-person loop':>16s} {'ratio':>7s}")
        metric_table(args.metric_people)

    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic_smpl_dir(tmp)
        h36m_path = write_synthetic_regressors(tmp)[0]
        if not args.sparse_regressor:  # every vertex gets a small weight; rows still sum to 1
            weights = np.load(h36m_path) + 1e-4
            np.save(h36m_path, weights / weights.sum(axis=1, keepdims=True))
        start = time.perf_counter()
        gt, preds = build_3dpw(args.people, BodyModels.load(tmp, convention="correct"), Path(tmp))
        build = time.perf_counter() - start
        cache = Path(tmp) / "cache"
        runs = {
            "no cache": run_3dpw(gt, preds, tmp, None),
            "cache written": run_3dpw(gt, preds, tmp, cache),
            "cache read": run_3dpw(gt, preds, tmp, cache),
        }
        cache_mb = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) / 1e6
    print(
        f"\nPart 2: 3DPW protocol, {gt.num_people} people in {gt.num_images} images, "
        f"{preds.num_people} predictions (SYNTHETIC model, "
        f"{'sparse' if args.sparse_regressor else 'dense'} H36M regressor; built in {build:.1f} s; "
        f"ground-truth cache {cache_mb:,.0f} MB)\n"
    )
    print(f"{'stage, s':55s}" + "".join(f"{name:>15s}" for name in runs))
    for label, names in STAGES:
        row = [sum(r["stages"].get(k, 0.0) for k in names) for r in runs.values()]
        print(f"{label:55s}" + "".join(f"{v:15.2f}" for v in row))
    known = {  # the SMPL forward is part of the chunks
        name: sum(r["stages"].get(k, 0.0) for _, ks in STAGES for k in ks if k != "pose_bodies")
        for name, r in runs.items()
    }
    rest = [r["total"] - known[name] for name, r in runs.items()]
    print(
        f"{'rest (visibility filter, focal, bookkeeping)':55s}"
        + "".join(f"{v:15.2f}" for v in rest)
    )
    print(
        f"{'total evaluate_ground_truth':55s}"
        + "".join(f"{r['total']:15.2f}" for r in runs.values())
    )
    print(
        f"{'people/s':55s}" + "".join(f"{gt.num_people / r['total']:15,.0f}" for r in runs.values())
    )
    print(
        f"{'CPU time of the process, s':55s}" + "".join(f"{r['cpu']:15.2f}" for r in runs.values())
    )
    old, new = runs["no cache"]["total"], runs["cache read"]["total"]
    print(f"\ncache read vs no cache: {old / new:.1f}x faster")
    print("metric change, cache read (float32 meshes) - no cache (float64 meshes):")
    a, b = runs["no cache"]["result"].metrics, runs["cache read"]["result"].metrics
    for key in ("mpjpe", "pa_mpjpe", "pve", "pa_pve", "height_error_mm", "focal_mae_px"):
        print(f"  {key:16s} {a[key]:10.4f} mm  {b[key] - a[key]:+.2e} mm")
    print(f"  {'recall':16s} {a['recall']:10.4f}     {b['recall'] - a['recall']:+.2e}")
    m = a
    print(
        f"\n(sanity: recall {m['recall']:.3f}, MPJPE {m['mpjpe']:.1f} mm, PVE {m['pve']:.1f} mm, "
        f"{m['n_false_positives']} false positives)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
