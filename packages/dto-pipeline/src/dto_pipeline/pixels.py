"""The pixel path of `apps/dto demo --pixels`: synthetic photos through the same code as
`apps/dto run`, with ground truth, for the ablation of the paper's Table 6.

`pixel_ablation` writes synthetic photos (`dto_pipeline.synthetic`) and the synthetic SMPL-format
body model into a work folder, runs `run_job` once with the simulated teachers (teacher stage,
body model, renderer, cues, solve, update, filter, writer; official variant with the intra-human
bound), then `solve_job` from its cache for each row of the table (paper / official, with and
without the intra-human scale bound X). It returns, per method, every evaluated person's depth
and height next to the simulator's truth. Evaluated people: those the teacher stage returned for
photos that reached DTO, minus those DTO's cue checks removed, in every method alike; depth is
the SMPL translation's z (m), height the T-pose height of the betas (m).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from dto_core import CueStatus
from dto_core.atomic import write_atomic
from dto_core.synthetic import DepthErrors, SyntheticCrowds

from .outcome import ImageOutcome, load_part

__all__ = ["METHODS", "pixel_ablation", "subset_crowds"]

METHODS = (("paper", False), ("paper", True), ("official", False), ("official", True))
"""(variant, intra-human bound X) of each DTO row of the table."""


def subset_crowds(crowds: SyntheticCrowds, persons: np.ndarray) -> SyntheticCrowds:
    """The crowds restricted to `persons` (ascending indices); scenes keep their numbering,
    scene offsets are recomputed."""
    persons = np.asarray(persons, dtype=np.int64)
    n = len(crowds.height)
    counts = np.bincount(crowds.scene_index[persons], minlength=crowds.num_scenes)

    def take(value: Any) -> Any:
        if isinstance(value, np.ndarray) and value.shape[:1] == (n,):
            return value[persons]
        return value

    changes = {f.name: take(getattr(crowds, f.name)) for f in dataclasses.fields(crowds)}
    changes["offsets"] = np.concatenate([[0], np.cumsum(counts)])
    changes["cues"] = crowds.cues.select(persons)
    errors = crowds.depth_errors
    changes["depth_errors"] = DepthErrors(
        errors.scale, errors.shift, errors.vertical_bias,
        errors.person_error[persons], errors.slope_gain[persons],
    )  # fmt: skip
    return dataclasses.replace(crowds, **changes)


def _outcomes(run: Path) -> list[ImageOutcome]:
    parts = sorted((run / "ranks").glob("rank-*/parts/part-*.npz"))
    return [o for part in parts for o in load_part(part)]


def pixel_ablation(
    work: str | Path,
    num_photos: int,
    *,
    seed: int = 0,
    image_size: tuple[int, int] = (240, 320),
    progress: Any = None,
) -> dict[str, Any]:
    """Run the ablation in `work` (created; reused if it holds the same run). Returns
    {"crowds": the evaluated people (`subset_crowds`, `depth` = true translation z),
    "methods": {name: {"depth", "height", "kept_fraction"}}, "photos", "reached_dto"}."""
    from dto_core.synthetic_body import write_synthetic_smpl_dir

    from .job import _no_progress, body_model, run_job, solve_job
    from .synthetic import load_photos, make_photos, write_photos

    work = Path(work)
    smpl = work / "smpl"
    if not (smpl / "SMPL_NEUTRAL.pkl").is_file():
        write_synthetic_smpl_dir(smpl)
    body = body_model(smpl, None)[0]
    images = work / "images"
    if not (images / "synthetic.json").is_file():
        write_photos(images, make_photos(body, num_photos, seed=seed, image_size=image_size), body)
    photos, _ = load_photos(images, body)
    write_atomic(work / "simulated.toml", lambda f: f.write(b'[simulated]\nphotos = "images"\n'))
    progress = progress or _no_progress
    run = work / "run"
    run_job(
        images=images, out=run, teachers=work / "simulated.toml", device="cpu", keep="all",
        smpl_dir=smpl, progress=progress, figures=False,
    )  # fmt: skip
    runs = {}
    for variant, intra in METHODS:
        name = f"{variant} +D" + ("+X" if intra else "")
        out = work / name.replace(" ", "_").replace("+", "")
        solve_job(cache=run, out=out, variant=variant, overrides={"intra_scale": intra},
                  keep="all", progress=progress, figures=False)  # fmt: skip
        runs[name] = _outcomes(out)

    # the evaluated people: the teacher stage's people of photos that reached DTO, kept by the
    # cue checks (the same people in every method: cues do not depend on the variant's solve)
    from dto_models.camerahmr import read_j19_regressor

    from .synthetic import SimulatedTeachers

    truth = SimulatedTeachers(photos, [], body, read_j19_regressor(smpl / "SMPL_to_J19.pkl"))
    crowds = photos.crowds
    reference = runs["official +D+X"]
    scene_of = {name: i for i, name in enumerate(photos.names)}
    person_rows: list[int] = []
    teacher_depth: list[float] = []
    teacher_height: list[np.ndarray] = []
    picks: list[tuple[int, np.ndarray]] = []  # (outcome index, rows of its solution)
    for index, outcome in enumerate(reference):
        s = outcome.solution
        if s is None:
            continue
        scene = scene_of[outcome.path]
        detected = truth.detected_people(scene)
        ok = np.flatnonzero(s.cue_status == CueStatus.OK)
        picks.append((index, ok))
        person_rows += list(crowds.scene(scene).start + detected[s.detection_index[ok]])
        teacher_depth += list(s.transl_in[ok, 2])
        teacher_height.append(body.tpose_height(s.betas_in[ok]) if ok.size else np.zeros(0))
    order = np.argsort(person_rows, kind="stable")
    rows = np.asarray(person_rows, dtype=np.int64)[order]
    evaluated = subset_crowds(crowds, rows)
    evaluated = dataclasses.replace(evaluated, depth=photos.transl[rows, 2])

    def gather(outcomes: list[ImageOutcome]) -> dict[str, Any]:
        depth, height, kept = [], [], []
        for index, ok in picks:
            s = outcomes[index].solution
            depth += list(s.transl[ok, 2])
            height.append(body.tpose_height(s.betas[ok]) if ok.size else np.zeros(0))
            kept.append(outcomes[index].reason == "")
        return {
            "depth": np.asarray(depth)[order],
            "height": np.concatenate(height)[order],
            "kept_fraction": float(np.mean(kept)) if kept else 0.0,
        }

    methods = {"teacher": {
        "depth": np.asarray(teacher_depth)[order],
        "height": np.concatenate(teacher_height)[order],
        "kept_fraction": None,
    }}  # fmt: skip
    methods.update({name: gather(outcomes) for name, outcomes in runs.items()})
    return {
        "crowds": evaluated,
        "methods": methods,
        "photos": len(photos),
        "reached_dto": len(picks),
        "image_size": list(image_size),
    }
