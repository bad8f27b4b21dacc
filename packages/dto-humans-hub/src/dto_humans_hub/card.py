"""The dataset card: README.md with the YAML header `datasets` and the Hub read (configs,
dataset_info, licence, tags) and the prose, rendered from the schema, the manifest and the
statistics of a built dataset."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from datasets import DatasetInfo, SplitDict, SplitInfo
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard, DatasetCardData

from dto_humans_hub.conventions import (
    ANNOTATIONS_CONFIG,
    DATA_LICENSE,
    DATASET_NAME,
    IMAGES_CONFIG,
)
from dto_humans_hub.schema import features, field_table_markdown
from dto_humans_hub.stats import FIGURES, compute_statistics, plot_statistics
from dto_humans_hub.writer import SPLIT, read_manifest, write_atomic

__all__ = ["DEFAULT_REPO_ID", "render_card", "write_card"]

DEFAULT_REPO_ID = f"<org>/{DATASET_NAME}"
TASK_CATEGORIES = ["image-to-3d", "keypoint-detection"]
TAGS = ["smpl", "human-mesh-recovery", "multi-person", "pseudo-ground-truth", "metric-depth"]
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                   (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"))  # fmt: skip
"""The Hub's size-category ids by number of rows."""
STAT_LABELS = {
    "people_per_image_mean": "people per image (mean)",
    "fov_y_deg_p5_p50_p95": "vertical FoV (degrees), 5th / 50th / 95th percentile",
    "body_height_m_p5_p50_p95": "body height (m), 5th / 50th / 95th percentile",
    "minors_fraction": "minors (< 15 years) among people with a known age group",
}


def _size_category(rows: int) -> str:
    for limit, name in SIZE_CATEGORIES:
        if rows < limit:
            return name
    return "n>1T"


def _card_data(manifest: dict[str, Any], pretty_name: str) -> DatasetCardData:
    configs = manifest["configs"]
    rows = configs[ANNOTATIONS_CONFIG]["splits"][SPLIT]["num_rows"]
    data = DatasetCardData(
        license=DATA_LICENSE,
        pretty_name=pretty_name,
        task_categories=TASK_CATEGORIES,
        tags=TAGS,
        size_categories=[_size_category(rows)],
        annotations_creators=["machine-generated"],
        source_datasets=["extended"],
    )
    metadata = MetadataConfigs()
    infos = DatasetInfosDict()
    for name, entry in configs.items():
        metadata[name] = {
            "data_files": [{"split": SPLIT, "path": f"data/{name}/{SPLIT}-*.parquet"}],
            **({"default": True} if name == ANNOTATIONS_CONFIG else {}),
        }
        split = entry["splits"][SPLIT]
        infos[name] = DatasetInfo(
            features=features(images=name == IMAGES_CONFIG),
            splits=SplitDict(
                {
                    SPLIT: SplitInfo(
                        name=SPLIT, num_bytes=split["arrow_bytes"], num_examples=split["num_rows"]
                    )
                },
                dataset_name=None,
            ),
            download_size=split["num_bytes"],
            dataset_size=split["arrow_bytes"],
        )
    metadata.to_dataset_card_data(data)
    infos.to_dataset_card_data(data)
    return data


def _config_table(manifest: dict[str, Any]) -> str:
    lines = [
        "| config | split | rows (images) | people | shards | bytes |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in manifest["configs"].items():
        for split, info in entry["splits"].items():
            lines.append(
                f"| `{name}` | {split} | {info['num_rows']} | {info['num_people']} | "
                f"{len(info['shards'])} | {info['num_bytes']} |"
            )
    return "\n".join(lines)


def _stats_table(summary: dict[str, Any]) -> str:
    def fmt(value: object) -> str:
        if isinstance(value, dict):
            return ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
        if isinstance(value, list):
            return " / ".join(str(v) for v in value)
        return "-" if value is None else str(value)

    lines = ["| statistic | value |", "|---|---|"]
    for key, value in summary.items():
        label = STAT_LABELS.get(key, key.replace("_", " "))
        lines.append(f"| {label} | {fmt(value)} |")
    return "\n".join(lines)


def render_card(
    root: str | os.PathLike[str],
    *,
    repo_id: str | None = None,
    pretty_name: str = "DTO-Humans",
    summary: dict[str, Any] | None = None,
) -> DatasetCard:
    """The dataset card of a built dataset (statistics computed if `summary` is None)."""
    root = Path(root)
    manifest = read_manifest(root)
    if ANNOTATIONS_CONFIG not in manifest["configs"]:
        raise FileNotFoundError(f"{root}: no {ANNOTATIONS_CONFIG!r} config built")
    if summary is None:
        summary = compute_statistics(root).summary
    figures = "\n".join(
        f"![{key}]({path})" for key, path in FIGURES.items() if (root / path).is_file()
    )
    annotations = manifest["configs"][ANNOTATIONS_CONFIG]
    template = Template(resources.files(__package__).joinpath("card_template.md").read_text())
    body = template.substitute(
        schema_version=manifest["schema_version"],
        generator_version=manifest.get("generator", {}).get("dto_humans_hub", "?"),
        num_images=annotations["splits"][SPLIT]["num_rows"],
        num_people=annotations["splits"][SPLIT]["num_people"],
        repo_id=repo_id or DEFAULT_REPO_ID,
        config_table=_config_table(manifest),
        field_table=field_table_markdown(),
        stats_table=_stats_table(summary),
        figures=figures,
        num_rejected=len(annotations.get("rejected", [])),
    )
    data = _card_data(manifest, pretty_name)
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def write_card(
    root: str | os.PathLike[str], *, repo_id: str | None = None, figures: bool = True
) -> Path:
    """Compute statistics, write the figures (if `figures`) and README.md (atomically)."""
    root = Path(root)
    stats = compute_statistics(root, name=DATASET_NAME)
    if figures:
        plot_statistics(stats, root)
    card = render_card(root, repo_id=repo_id, summary=stats.summary)
    path = root / "README.md"
    text = str(card)
    write_atomic(path, lambda f: f.write(text.encode()))
    return path
