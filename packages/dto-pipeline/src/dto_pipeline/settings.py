"""A run's settings and its output folder: one folder holds one run's rows, never a mix.

`run.json` records everything that changes the rows (teachers' model ids, body model, DTO
variant and overrides, update rule, keep mode, number of shares, chunk size, input listing
digest). Every process of a run and every resumed run compares its own settings with the
folder's: any difference is refused with the differing fields named (mixing rows of two
settings in one dataset would be silent corruption). `images.json` is the input listing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from dto_core import DTOConfig
from dto_core.atomic import write_atomic
from dto_core.cues import CueConfig

from .errors import OutputMismatchError, UsageError

__all__ = [
    "OutputMismatchError",
    "claim_output",
    "differences",
    "listing_digest",
    "parse_overrides",
    "read_json",
    "write_json",
]

RUN_FILE = "run.json"
IMAGES_FILE = "images.json"
RUN_ENTRIES = frozenset(
    {RUN_FILE, IMAGES_FILE, "cache", "ranks", "dataset", "report.json", "profile.json"}
)
"""What a run folder may hold (another process of the same run may be creating them)."""
LOCATIONS = frozenset({"images", "body_files"})
"""Settings that locate the inputs but do not change the rows (a moved images or SMPL folder);
the input listing's digest and the body model's file digests still guard their content."""


def _parse_value(name: str, text: str, default: Any) -> Any:
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if isinstance(default, bool):
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise UsageError(f"--set {name}={text}: expected true or false")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float) or default is None:
        return float(text)
    if isinstance(default, str):
        return text
    raise UsageError(f"--set {name}: {type(default).__name__} values cannot be set here")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`--set name=value` items -> DTOConfig overrides ("cues.<field>" for the cue thresholds),
    values typed after the field's default (true/false, numbers, none).

    Raises:
        ValueError: an unknown field or a value of the wrong type, naming it.
    """
    config, cues = DTOConfig(), CueConfig()
    known = {f.name: getattr(config, f.name) for f in dataclasses.fields(DTOConfig)}
    known.update({f"cues.{f.name}": getattr(cues, f.name) for f in dataclasses.fields(CueConfig)})
    for fixed in ("variant", "cues", "prior_table"):
        known.pop(fixed)
    overrides: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or name not in known:
            raise UsageError(
                f"--set {item!r}: expected name=value with a DTOConfig field; fields: "
                + ", ".join(sorted(known))
            )
        try:
            overrides[name] = _parse_value(name, text, known[name])
        except ValueError as exc:
            raise UsageError(f"--set {item!r}: {exc}") from exc
    return dict(sorted(overrides.items()))


def listing_digest(entries: list[dict[str, Any]]) -> str:
    """sha256 of an input listing (JSON)."""
    text = json.dumps(entries, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text())


def write_json(path: str | os.PathLike[str], value: Any) -> None:
    """Write `value` as indented JSON, atomically and flushed to disk (a resumed job trusts the
    files it finds)."""
    data = (json.dumps(value, indent=1) + "\n").encode()
    write_atomic(path, lambda f: f.write(data), fsync=True)


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            name = f"{prefix}.{key}" if prefix else key
            if key not in old:
                out.append(f"{name}: not in the folder's run, {new[key]!r} in this one")
            elif key not in new:
                out.append(f"{name}: {old[key]!r} in the folder's run, not in this one")
            else:
                out += differences(old[key], new[key], name)
        return out
    return [] if old == new else [f"{prefix}: folder {old!r}, this run {new!r}"]


def claim_output(out: str | os.PathLike[str], settings: dict[str, Any], images: list[Any]) -> None:
    """Record `settings` and the input listing `images` in `out`, or check them against the
    run already recorded there (every process of a run calls this; the files are written
    atomically with identical content, so concurrent calls are safe).

    Raises:
        OutputMismatchError: `out` holds a run with other settings or another input listing,
            naming every difference and what to do.
    """
    out = Path(out)
    settings = {**settings, "input_digest": listing_digest(images)}
    run_path = out / RUN_FILE
    if run_path.is_file():
        old = read_json(run_path)
        diffs = differences(
            {k: v for k, v in old.items() if k not in LOCATIONS},
            {k: v for k, v in settings.items() if k not in LOCATIONS},
        )
        if diffs:
            raise OutputMismatchError(
                f"{out} holds a run with other settings; its rows cannot be mixed with this "
                "run's. Differences:\n  "
                + "\n  ".join(diffs)
                + "\nUse another --out, or the folder's own settings to resume it."
            )
        if (out / IMAGES_FILE).is_file():
            return
    elif out.exists():
        foreign = sorted(
            p.name
            for p in out.iterdir()
            if p.name not in RUN_ENTRIES and not p.name.startswith(".")
        )
        if foreign:
            raise OutputMismatchError(
                f"{out} holds {', '.join(foreign[:5])} and no {RUN_FILE}: not a DTO run folder; "
                "use another --out"
            )
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / IMAGES_FILE, images)
    write_json(run_path, settings)
