"""The dataset card: README.md with the YAML header `datasets` and the Hub read (configs,
dataset_info, licence, tags) and the prose, rendered from the schema, the manifest and the
statistics of a built dataset."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from datasets import DatasetInfo, SplitDict, SplitInfo
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard, DatasetCardData

from dto_humans_hub.conventions import (
    ALL_CONFIG,
    ANNOTATIONS,
    DATA_LICENSE,
    DATASET_NAME,
    IMAGES,
    PHOTOS,
    REPO_ID,
    SOURCE_LABELS,
    SPLITS,
)
from dto_humans_hub.schema import features, field_table_markdown
from dto_humans_hub.stats import FIGURES, NO_HEIGHTS, compute_statistics, plot_statistics
from dto_humans_hub.writer import family_shards, read_manifest, write_atomic

__all__ = ["CardConfig", "card_configs", "render_card", "write_card"]

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


@dataclass(frozen=True)
class CardConfig:
    """A config of the card: name, shard family, source (None: all) and its shards by split."""

    name: str
    family: str
    source: str | None
    shards: dict[str, list[dict[str, Any]]]

    def glob(self, split: str) -> str:
        return f"data/{self.family}/{self.source or '*'}/{split}-*.parquet"


def card_configs(manifest: dict[str, Any]) -> list[CardConfig]:
    """The configs of a built dataset: `all` (default: every source's annotations), one per
    source present, and `images` if built; each with the splits it has rows in."""
    configs = []
    for family, name, source in (
        (ANNOTATIONS, ALL_CONFIG, None),
        *((ANNOTATIONS, s, s) for s in SOURCE_LABELS),
        (IMAGES, IMAGES, None),
    ):
        shards = [
            s for s in family_shards(manifest, family) if source is None or s["source"] == source
        ]
        by_split = {
            split: [s for s in shards if s["split"] == split]
            for split in SPLITS
            if any(s["split"] == split for s in shards)
        }
        if by_split:
            configs.append(CardConfig(name, family, source, by_split))
    return configs


def _size_category(rows: int) -> str:
    for limit, name in SIZE_CATEGORIES:
        if rows < limit:
            return name
    return "n>1T"


def _card_data(manifest: dict[str, Any], pretty_name: str, synthetic: bool) -> DatasetCardData:
    rows = sum(s["num_rows"] for s in family_shards(manifest, ANNOTATIONS))
    data = DatasetCardData(
        license=DATA_LICENSE,
        pretty_name=pretty_name,
        task_categories=TASK_CATEGORIES,
        tags=[*TAGS, "synthetic"] if synthetic else TAGS,
        size_categories=[_size_category(rows)],
        annotations_creators=["machine-generated"],
        source_datasets=["extended"],
    )
    metadata = MetadataConfigs()
    infos = DatasetInfosDict()
    for config in card_configs(manifest):
        metadata[config.name] = {
            "data_files": [{"split": sp, "path": config.glob(sp)} for sp in config.shards],
            **({"default": True} if config.name == ALL_CONFIG else {}),
        }
        splits = SplitDict(
            {
                sp: SplitInfo(
                    name=sp,
                    num_bytes=sum(s["arrow_bytes"] for s in shards),
                    num_examples=sum(s["num_rows"] for s in shards),
                )
                for sp, shards in config.shards.items()
            },
            dataset_name=None,
        )
        every = [s for shards in config.shards.values() for s in shards]
        infos[config.name] = DatasetInfo(
            features=features(images=config.family == IMAGES),
            splits=splits,
            download_size=sum(s["num_bytes"] for s in every),
            dataset_size=sum(s["arrow_bytes"] for s in every),
        )
    metadata.to_dataset_card_data(data)
    infos.to_dataset_card_data(data)
    return data


def _config_table(manifest: dict[str, Any]) -> str:
    lines = [
        "| config | split | rows (images) | people | shards | bytes |",
        "|---|---|---|---|---|---|",
    ]
    for config in card_configs(manifest):
        for split, shards in config.shards.items():
            lines.append(
                f"| `{config.name}` | {split} | {sum(s['num_rows'] for s in shards)} | "
                f"{sum(s['num_people'] for s in shards)} | {len(shards)} | "
                f"{sum(s['num_bytes'] for s in shards)} |"
            )
    return "\n".join(lines)


def _load_snippet(manifest: dict[str, Any], repo_id: str) -> str:
    configs = {c.name: c for c in card_configs(manifest)}
    lines = [
        "from datasets import load_dataset",
        "",
        f'ds = load_dataset("{repo_id}", split="train")  # every source (default config "all")',
    ]
    source = next((c for c in configs.values() if c.source is not None), None)
    if source is not None:
        lines.append(
            f'one = load_dataset("{repo_id}", "{source.name}", split="train")  # one source'
        )
    if "validation" in configs[ALL_CONFIG].shards:
        lines.append(f'val = load_dataset("{repo_id}", split="validation")  # held-out images')
    lines += [
        f'stream = load_dataset("{repo_id}", split="train", streaming=True)  # no download',
        'row = ds.with_format("numpy")[0]',
        'row["smpl_pose"].shape  # (N, 24, 3); (0, 24, 3) if empty',
    ]
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


def _photos_note(summary: dict[str, Any]) -> str:
    count = summary.get("images_per_source", {}).get(PHOTOS)
    if not count:
        return ""
    return (
        f"\nThe {count} images of source `{PHOTOS}` are not from 4D-Humans: they come from DTO "
        "runs on other photos without a released pGT (CameraHMR with HumanFoV intrinsics as the "
        "starting point instead of CameraHMR's released fits; `dto-pipeline`, `apps/dto run`). "
        "Their keys are paths relative to the photo folder.\n"
    )


def _height_note(summary: dict[str, Any]) -> str:
    if summary.get("people") and summary.get("body_height_m_p5_p50_p95") is None:
        reason = NO_HEIGHTS.replace("\n", " ")
        return (
            f"`body_height` is NaN for every person, so the height figure is empty: {reason}. "
            "The annotations themselves are complete; heights are a function of the betas.\n"
        )
    return ""


def render_card(
    root: str | os.PathLike[str],
    *,
    repo_id: str | None = None,
    pretty_name: str = "DTO-Humans",
    summary: dict[str, Any] | None = None,
) -> DatasetCard:
    """The dataset card of a built dataset (statistics computed if `summary` is None). repo_id:
    used in the snippets; default: the one recorded at build time, else REPO_ID."""
    root = Path(root)
    manifest = read_manifest(root)
    if ANNOTATIONS not in manifest["families"]:
        raise FileNotFoundError(f"{root}: no {ANNOTATIONS!r} config built")
    if summary is None:
        summary = compute_statistics(root).summary
    figures = "\n".join(
        f"![{key}]({path})" for key, path in FIGURES.items() if (root / path).is_file()
    )
    annotations = manifest["families"][ANNOTATIONS]
    shards = family_shards(manifest, ANNOTATIONS)
    template = Template(resources.files(__package__).joinpath("card_template.md").read_text())
    body = template.substitute(
        schema_version=manifest["schema_version"],
        generator_version=manifest.get("generator", {}).get("dto_humans_hub", "?"),
        num_images=sum(s["num_rows"] for s in shards),
        num_people=sum(s["num_people"] for s in shards),
        load_snippet=_load_snippet(manifest, repo_id or manifest.get("repo_id") or REPO_ID),
        config_table=_config_table(manifest),
        source_configs=", ".join(f"`{c.name}`" for c in card_configs(manifest) if c.source),
        photos_note=_photos_note(summary),
        validation_percent=f"{100 * annotations.get('validation_fraction', 0):g}",
        field_table=field_table_markdown(),
        stats_table=_stats_table(summary),
        height_note=_height_note(summary),
        figures=figures,
        num_rejected=len(annotations.get("rejected", [])),
    )
    synthetic = bool(annotations.get("synthetic"))
    if synthetic:
        pretty_name = f"{pretty_name} (SYNTHETIC test data)"
    data = _card_data(manifest, pretty_name, synthetic=synthetic)
    banner = _banner(manifest) if synthetic else ""
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{banner}{body}")


def _banner(manifest: dict[str, Any]) -> str:
    names = [f["name"] for f in manifest["families"][ANNOTATIONS]["inputs"] if f.get("synthetic")]
    return (
        "> **SYNTHETIC TEST DATA, NOT DTO-Humans.** Built from synthetic inputs (files written "
        "by `dto_humans_hub.fixtures`, or DTO runs on synthetic scenes or with random teacher "
        f"weights: {', '.join(names)}): the numbers describe no real people, only the formats "
        "are real. `apps/publish` refuses to publish it as "
        f"`{REPO_ID}`.\n\n"
    )


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
