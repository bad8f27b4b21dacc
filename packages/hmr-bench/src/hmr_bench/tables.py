"""Paper-style tables: the reference rows of "Towards Metric-Aware Multi-Person Mesh Recovery by
Jointly Optimizing Human Crowd in Camera Space" (Tables 1-5) beside the evaluated numbers, as
text, JSON and CSV; and `format_like_mahmr`, MA-HMR's printed rounding.

The reference numbers were produced by the authors' evaluators on the real datasets with their
checkpoints; numbers computed here on fixtures or synthetic body models are not comparable.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hmr_bench.datasets.common import write_atomic
from hmr_bench.protocols.common import EvalResult, to_native

__all__ = [
    "BENCHMARK_TABLES",
    "Column",
    "ReferenceRow",
    "TableSpec",
    "format_like_mahmr",
    "format_table",
    "table_rows",
    "write_results",
]


@dataclass(frozen=True)
class Column:
    """A table column: metric key, header, factor applied to our value, decimals."""

    key: str
    header: str
    scale: float = 1.0
    decimals: int = 1


@dataclass(frozen=True)
class ReferenceRow:
    """A row of the paper: method, fine-tuned on the benchmark's train split, values by column
    key in the paper's units (None: not reported), and the table it comes from."""

    method: str
    fine_tuned: bool
    values: tuple[float | None, ...]
    source: str


@dataclass(frozen=True)
class TableSpec:
    title: str
    columns: tuple[Column, ...]
    reference: tuple[ReferenceRow, ...]
    footnote: str = ""


def _rows(
    source: str, *rows: tuple[str, bool, tuple[float | None, ...]]
) -> tuple[ReferenceRow, ...]:
    return tuple(ReferenceRow(m, ft, v, source) for m, ft, v in rows)


_RH = TableSpec(
    "Relative Human (paper Tables 1, 3): PCDR_0.2 (%) per age group and all, 2D PCK",
    (
        Column("pcdr@0.2/baby", "baby", 100, 2),
        Column("pcdr@0.2/kid", "kid", 100, 2),
        Column("pcdr@0.2/teen", "teen", 100, 2),
        Column("pcdr@0.2/adult", "adult", 100, 2),
        Column("pcdr@0.2/all", "all", 100, 2),
        Column("pck2d@1/7", "PCK", 1, 3),
    ),
    _rows("Table 1", ("CHMR", False, (31.25, 49.90, 60.07, 61.20, 60.43, 0.921)))
    + _rows(
        "Table 3",
        ("CHMR + DTO", False, (69.65, 76.28, 74.53, 74.41, 74.16, 0.936)),
        ("SAT-HMR w. DH", False, (59.14, 68.98, 66.20, 68.83, 68.30, 0.927)),
        ("MA-HMR w. DH", False, (58.64, 72.35, 76.83, 73.43, 72.90, 0.925)),
        ("SAT-HMR w. DH", True, (65.56, 74.24, 73.85, 73.31, 72.89, 0.924)),
        ("MA-HMR w. DH", True, (67.76, 75.57, 76.81, 75.77, 75.35, 0.926)),
    ),
)
_PW3D = TableSpec(
    "3DPW (paper Tables 2, 5): MPJPE, PA-MPJPE, MVE, height error (mm)",
    (
        Column("mpjpe", "MPJPE"),
        Column("pa_mpjpe", "PA-MPJPE"),
        Column("pve", "MVE"),
        Column("height_error_mm", "height"),
    ),
    _rows(
        "Tables 2, 5",
        ("SAT-HMR stage1", False, (81.0, 52.7, 94.5, None)),
        ("SAT-HMR w. 4D", False, (68.8, 44.5, 80.5, 49.0)),
        ("MA-HMR w. 4D", False, (65.4, 42.6, 76.9, 41.5)),
        ("SAT-HMR w. DH", False, (63.6, 40.5, 74.4, 38.2)),
        ("MA-HMR w. DH", False, (62.9, 40.1, 73.5, 36.9)),
        ("SAT-HMR w. DH", True, (60.1, 37.7, 69.7, None)),
        ("MA-HMR w. DH", True, (58.5, 36.3, 67.9, None)),
    ),
)
_HI4D = TableSpec(
    "Hi4D (paper Tables 4, 5): MPJPE, PA-MPJPE, MVE, height error (mm)",
    _PW3D.columns,
    _rows(
        "Tables 4, 5",
        ("SAT-HMR stage1", False, (95.5, 62.0, 111.7, None)),
        ("SAT-HMR w. 4D", False, (74.0, 50.0, 90.5, 111.1)),
        ("MA-HMR w. 4D", False, (68.3, 47.3, 85.1, 86.9)),
        ("SAT-HMR w. DH", False, (61.0, 46.4, 76.9, 38.3)),
        ("MA-HMR w. DH", False, (60.2, 45.6, 76.0, 35.0)),
        ("SAT-HMR w. DH", True, (44.3, 34.3, 54.9, None)),
        ("MA-HMR w. DH", True, (43.5, 33.8, 54.2, None)),
    ),
)
_PANOPTIC = TableSpec(
    "CMU Panoptic (paper Table 2): MPJPE (mm) per activity and mean",
    (
        Column("mpjpe/haggling", "haggling"),
        Column("mpjpe/mafia", "mafia"),
        Column("mpjpe/ultimatum", "ultimatum"),
        Column("mpjpe/pizza", "pizza"),
        Column("mean_pooled", "mean"),
    ),
    _rows(
        "Table 2",
        ("SAT-HMR stage1", False, (101.2, 120.5, 135.4, 120.6, 119.3)),
        ("SAT-HMR w. 4D", False, (80.5, 102.2, 113.6, 96.7, 98.5)),
        ("MA-HMR w. 4D", False, (79.0, 98.6, 114.8, 98.6, 97.5)),
        ("SAT-HMR w. DH", False, (64.3, 78.6, 87.7, 85.5, 79.6)),
        ("MA-HMR w. DH", False, (66.2, 76.7, 87.0, 87.4, 79.6)),
        ("SAT-HMR w. DH", True, (64.5, 72.7, 88.7, 83.6, 76.9)),
        ("MA-HMR w. DH", True, (62.3, 72.3, 84.3, 85.4, 76.3)),
    ),
    "the paper's mean is the mean over all people (MA-HMR), not of the four activity means",
)
_MUPOTS = TableSpec(
    "MuPoTS-3D (paper Tables 1, 2): 3D PCK@150 mm (%), All and Matched",
    (Column("pck_all", "All", 100, 1), Column("pck_matched", "Match", 100, 1)),
    _rows(
        "Table 1",
        ("CHMR", False, (87.3, 89.0)),
        ("CHMR + DTO", False, (85.0, 90.8)),
    )
    + _rows(
        "Table 2",
        ("SAT-HMR stage1", False, (83.2, 86.6)),
        ("SAT-HMR w. 4D", False, (85.4, 89.0)),
        ("MA-HMR w. 4D", False, (83.0, 89.5)),
        ("SAT-HMR w. DH", False, (86.9, 90.0)),
        ("MA-HMR w. DH", False, (87.0, 89.8)),
    ),
    "Table 1 also reports a MuPoTS MPJPE whose definition is not in the released code; "
    "it is not computed here",
)
BENCHMARK_TABLES: dict[str, TableSpec] = {
    "rh": _RH,
    "3dpw": _PW3D,
    "hi4d": _HI4D,
    "panoptic": _PANOPTIC,
    "mupots": _MUPOTS,
}


def _fmt(value: float | None, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{decimals}f}"


def table_rows(result: EvalResult, label: str | None = None) -> list[dict[str, Any]]:
    """The table as rows {method, ft, source, <header>: value}: the paper's rows, then ours."""
    spec = BENCHMARK_TABLES[result.benchmark]
    rows = [
        {
            "method": r.method,
            "ft": r.fine_tuned,
            "source": f"paper {r.source}",
            **{c.header: v for c, v in zip(spec.columns, r.values, strict=True)},
        }
        for r in spec.reference
    ]
    ours = {}
    for c in spec.columns:
        value = result.metrics.get(c.key)
        ours[c.header] = None if value is None or not np.isfinite(value) else value * c.scale
    rows.append({
        "method": label or f"this evaluation ({result.mode} mode)",
        "ft": None,
        "source": "hmr-bench",
        **ours,
    })  # fmt: skip
    return rows


def format_table(result: EvalResult, label: str | None = None) -> str:
    """The benchmark's paper table with our row last, as aligned text."""
    spec = BENCHMARK_TABLES[result.benchmark]
    rows = table_rows(result, label)
    width = max(len(r["method"]) for r in rows) + 2
    header = f"{'method':{width}s}{'f.t.':>5s}" + "".join(f"{c.header:>11s}" for c in spec.columns)
    lines = [spec.title, "", header, "-" * len(header)]
    for r in rows:
        if r["source"] == "hmr-bench":
            lines.append("-" * len(header))
        ft = "" if r["ft"] is None else ("yes" if r["ft"] else "")
        cells = "".join(f"{_fmt(r[c.header], c.decimals):>11s}" for c in spec.columns)
        lines.append(f"{r['method']:{width}s}{ft:>5s}{cells}")
    if spec.footnote:
        lines += ["", spec.footnote]
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def format_like_mahmr(result: EvalResult) -> dict[str, Any]:
    """The numbers as MA-HMR / the RH evaluator print them (their units and rounding)."""
    m = result.metrics
    if result.benchmark in ("3dpw", "hi4d"):
        out = {
            "recall": round(m["recall"], 2),
            "MPJPE": round(m["mpjpe"], 1),
            "PA-MPJPE": round(m["pa_mpjpe"], 1),
            "MVE": round(m["pve"], 1),
            "PA-MVE": round(m["pa_pve"], 1),
            "focal": round(m["focal_mae_px_network"], 4),
            "height_error": round(m["height_error_m"], 4),
        }
        if result.benchmark == "hi4d":
            out["precision"], out["f1"] = round(m["precision"], 2), round(m["f1"], 2)
        return out
    if result.benchmark == "rh":
        legacy = m["rh_legacy_prf1"]
        out = {
            "Precision": round(legacy["precision"], 2),
            "Recall": round(legacy["recall"], 2),
            "F1 score": round(legacy["f1"], 2),
            "mPCKh_0.6": round(100 * m["pck2d@1/7"], 2),
            "PCRD_0.2": round(100 * m["pcdr@0.2/all"], 2),
        }
        for age in ("adult", "teen", "kid", "baby"):
            if f"pcdr@0.2/{age}" in m:
                out[f"PCRD_0.2_{age}"] = round(100 * m[f"pcdr@0.2/{age}"], 2)
        return out
    if result.benchmark == "panoptic":
        out = {
            name: round(m[f"mpjpe/{name}"], 1)
            for name in ("haggling", "mafia", "ultimatum", "pizza")
        }
        out["mean"] = round(m["mean_pooled"], 1)
        return out
    return {
        "PCK (All)": round(100 * m["pck_all"], 1),
        "PCK (Match)": round(100 * m["pck_matched"], 1),
        "mismatch": m["n_unmatched"],
    }


def _json_safe(value: Any) -> Any:
    value = to_native(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_results(
    result: EvalResult,
    out_dir: str | os.PathLike[str],
    label: str | None = None,
    provenance: dict[str, Any] | None = None,
) -> list[Path]:
    """Write <benchmark>_<mode>.json (metrics, MA-HMR-style numbers, config, notes, table,
    provenance), <benchmark>_<mode>_table.csv and <benchmark>_<mode>_persons.csv atomically."""
    out_dir = Path(out_dir)
    stem = f"{result.benchmark}_{result.mode}"
    rows = table_rows(result, label)
    document = {
        "benchmark": result.benchmark,
        "mode": result.mode,
        "metrics": result.metrics,
        "as_printed_by_mahmr": format_like_mahmr(result),
        "config": result.config.as_dict(),
        "notes": list(result.notes),
        "table": rows,
        "provenance": provenance or {},
    }
    text = json.dumps(_json_safe(document), indent=2)
    person_rows = [
        {
            "image_key": result.image_keys[int(i)],
            **{k: to_native(v[n]) for k, v in result.persons.items()},
        }
        for n, i in enumerate(result.persons["image"])
    ]
    return [
        write_atomic(out_dir / f"{stem}.json", lambda f: f.write(text.encode())),
        write_atomic(out_dir / f"{stem}_table.csv", lambda f: f.write(_csv_text(rows).encode())),
        write_atomic(
            out_dir / f"{stem}_persons.csv", lambda f: f.write(_csv_text(person_rows).encode())
        ),
    ]
