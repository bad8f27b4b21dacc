"""Dataset statistics and the paper's figures (supp. Sec. 7, Figs. 6-8) from any built dataset.

Fig. 6: persons per image; Fig. 7: field of view; Fig. 8: the distribution of body heights against
the height distribution of a population with uniformly distributed ages (0-80 years: minors 15/80 =
18.75 %) built from the height priors, optionally with a second dataset (e.g. the CameraHMR
4D-Humans pGT) for comparison. Also the share of minors among people with a known age group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from matplotlib.figure import Figure

from dto_core.priors import PAPER_PRIORS, PriorClass
from dto_humans_hub.conventions import (
    AGE_GROUPS,
    ANNOTATION_SOURCES,
    ANNOTATIONS,
    DTO_STATUSES,
    SOURCE_LABELS,
)
from dto_humans_hub.writer import family_shards, read_manifest, write_atomic

__all__ = [
    "CROWD_SIZE",
    "NO_HEIGHTS",
    "POPULATION_MAX_AGE",
    "DatasetStatistics",
    "compute_statistics",
    "plot_statistics",
    "population_height_density",
]

POPULATION_MAX_AGE = 80.0
"""Uniform-age population: ages uniform on [0, 80) years (paper supp. Sec. 7: minors 15/80)."""

CROWD_SIZE = 10
"""Images with at least this many people are counted as crowds (paper: 50.9K images)."""

AGE_BIN_EDGES = (0.0, 3.0, 8.0, 15.0, POPULATION_MAX_AGE)
"""Age groups baby / kid / teen / adult in years (dto_core.priors.AGE_SPLIT)."""

NO_HEIGHTS = (
    "no body heights: built without a SMPL model\n(give --smpl-model-dir and --kid-template)"
)
"""Said on the height figure, and in the card, when every `body_height` is NaN: the release
files hold betas, not heights, which need the (licensed) SMPL model."""

FIGURES = {
    "persons": "figures/persons_per_image.png",
    "fov": "figures/fov.png",
    "height": "figures/height.png",
}


@dataclass(frozen=True)
class DatasetStatistics:
    """Per image: people (M,), fov_y (M,) rad, source (M,), annotation (M,), dto_status (M,);
    per person: body_height (P,) m and age_group (P,) (-1 unknown)."""

    name: str
    people: np.ndarray
    fov_y: np.ndarray
    source: np.ndarray
    annotation: np.ndarray
    dto_status: np.ndarray
    body_height: np.ndarray
    age_group: np.ndarray
    summary: dict[str, object] = field(default_factory=dict)

    @property
    def num_images(self) -> int:
        return len(self.people)

    @property
    def num_people(self) -> int:
        return int(self.people.sum())

    @property
    def minors_fraction(self) -> float:
        """Share of minors (baby, kid, teen) among people with a known age group; NaN if none."""
        known = self.age_group >= 0
        if not known.any():
            return float("nan")
        return float(np.mean(self.age_group[known] < AGE_GROUPS.index("adult")))


def compute_statistics(
    root: str | os.PathLike[str], *, name: str | None = None
) -> DatasetStatistics:
    """Statistics of a built dataset's annotations, all splits (reads only the needed columns)."""
    root = Path(root)
    manifest = read_manifest(root)
    if ANNOTATIONS not in manifest["families"]:
        raise FileNotFoundError(f"{root}: no {ANNOTATIONS!r} config built")
    shards = family_shards(manifest, ANNOTATIONS)
    columns = [
        "source", "annotation", "num_people", "fov_y", "dto_status", "body_height", "age_group"
    ]
    tables = [pq.read_table(root / s["path"], columns=columns) for s in shards]

    def image_col(col: str) -> np.ndarray:
        return np.concatenate([t.column(col).to_numpy() for t in tables])

    def person_col(col: str) -> np.ndarray:
        parts = [pc.list_flatten(t.column(col)).to_numpy(zero_copy_only=False) for t in tables]
        return np.concatenate(parts) if parts else np.zeros(0)

    stats = DatasetStatistics(
        name=name or root.name,
        people=image_col("num_people").astype(np.int64),
        fov_y=image_col("fov_y").astype(np.float64),
        source=image_col("source").astype(np.int64),
        annotation=image_col("annotation").astype(np.int64),
        dto_status=image_col("dto_status").astype(np.int64),
        body_height=person_col("body_height").astype(np.float64),
        age_group=person_col("age_group").astype(np.int64),
    )
    return _with_summary(stats)


def _quantiles(x: np.ndarray, scale: float = 1.0) -> list[float] | None:
    x = x[np.isfinite(x)]
    if not x.size:
        return None
    return [round(float(v) * scale, 4) for v in np.quantile(x, [0.05, 0.5, 0.95])]


def _with_summary(s: DatasetStatistics) -> DatasetStatistics:
    summary: dict[str, object] = {
        "images": s.num_images,
        "people": s.num_people,
        "people_per_image_mean": round(s.num_people / max(s.num_images, 1), 3),
        "images_without_people": int(np.sum(s.people == 0)),
        f"images_with_{CROWD_SIZE}_or_more_people": int(np.sum(s.people >= CROWD_SIZE)),
        "images_per_source": {
            name: int(np.sum(s.source == i))
            for i, name in enumerate(SOURCE_LABELS)
            if (s.source == i).any()
        },
        "images_per_annotation": {
            name: int(np.sum(s.annotation == i))
            for i, name in enumerate(ANNOTATION_SOURCES)
            if (s.annotation == i).any()
        },
        "images_per_dto_status": {
            name: int(np.sum(s.dto_status == i))
            for i, name in enumerate(DTO_STATUSES)
            if (s.dto_status == i).any()
        },
        "fov_y_deg_p5_p50_p95": _quantiles(s.fov_y, 180.0 / np.pi),
        "body_height_m_p5_p50_p95": _quantiles(s.body_height),
        "people_with_known_age_group": int(np.sum(s.age_group >= 0)),
        "minors_fraction": None if np.isnan(s.minors_fraction) else round(s.minors_fraction, 4),
    }
    object.__setattr__(s, "summary", summary)
    return s


def population_height_density(height: np.ndarray) -> np.ndarray:
    """Density (1/m) of heights (m) in a population with ages uniform on [0, 80) years: age
    groups weighted by their span (3, 5, 7, 65 years of 80), adults half male, half female, each
    group's Gaussian height prior (paper values, dto_core.priors.PAPER_PRIORS)."""
    mean, std = PAPER_PRIORS.arrays()
    spans = np.diff(AGE_BIN_EDGES) / POPULATION_MAX_AGE
    components = [
        (spans[0], PriorClass.BABY), (spans[1], PriorClass.KID), (spans[2], PriorClass.TEEN),
        (spans[3] / 2, PriorClass.ADULT_MALE), (spans[3] / 2, PriorClass.ADULT_FEMALE),
    ]  # fmt: skip
    h = np.asarray(height, dtype=np.float64)
    density = np.zeros_like(h)
    for weight, cls in components:
        z = (h - mean[cls]) / std[cls]
        density += weight * np.exp(-0.5 * z * z) / (std[cls] * np.sqrt(2 * np.pi))
    return density


def _axes() -> tuple[Figure, object]:
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    return fig, fig.subplots()


def _save(fig: Figure, path: Path) -> None:
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=110))


def plot_statistics(
    stats: DatasetStatistics,
    root: str | os.PathLike[str],
    *,
    compare: DatasetStatistics | None = None,
) -> list[Path]:
    """Write figures/persons_per_image.png, fov.png, height.png under `root`; their paths."""
    root = Path(root)
    written = []

    fig, ax = _axes()
    top = max(int(stats.people.max(initial=0)), CROWD_SIZE)
    clipped = np.minimum(stats.people, min(top, 30))
    ax.bar(*np.unique(clipped, return_counts=True), color="tab:blue")
    ax.set_xlabel("persons per image (last bar: 30 or more)" if top > 30 else "persons per image")
    ax.set_ylabel("images")
    ax.set_title(f"{stats.name}: {stats.num_images} images, {stats.num_people} people")
    _save(fig, root / FIGURES["persons"])
    written.append(root / FIGURES["persons"])

    fig, ax = _axes()
    fov = np.rad2deg(stats.fov_y[np.isfinite(stats.fov_y)])
    if fov.size:
        ax.hist(fov, bins=60, color="tab:green")
    else:
        ax.text(0.5, 0.5, "no image heights recorded", ha="center", transform=ax.transAxes)
    ax.set_xlabel("vertical field of view (degrees)")
    ax.set_ylabel("images")
    ax.set_title(f"{stats.name}: FoV distribution")
    _save(fig, root / FIGURES["fov"])
    written.append(root / FIGURES["fov"])

    fig, ax = _axes()
    bins = np.linspace(0.4, 2.2, 91)
    grid = 0.5 * (bins[1:] + bins[:-1])
    for s, color in ((stats, "tab:orange"), (compare, "tab:gray")):
        if s is None:
            continue
        h = s.body_height[np.isfinite(s.body_height)]
        if h.size:
            ax.hist(h, bins=bins, density=True, alpha=0.6, color=color, label=s.name)
        elif s.num_people:
            ax.text(0.03, 0.8 if s is stats else 0.62, f"{s.name}: {NO_HEIGHTS}", ha="left",
                    va="top", fontsize=8, transform=ax.transAxes,
                    bbox={"facecolor": "white", "edgecolor": color})  # fmt: skip
    ax.plot(grid, population_height_density(grid), "k-", label="uniform-age population (0-80 y)")
    ax.set_xlabel("body height (m)")
    ax.set_ylabel("density (1/m)")
    ax.set_title("height distribution")
    ax.legend(fontsize=8)
    _save(fig, root / FIGURES["height"])
    written.append(root / FIGURES["height"])
    return written
