"""Per-stage runtime of a run: mean milliseconds per image and share, printed and as JSON.

The table follows the layout of HAMSt3R's runtime table (supp. Table 7): stages grouped under
their part of the pipeline, a subtotal per group, then the total. A stage's mean is over the
images on which it ran in this process (cache hits and images resumed from disk do not count),
and its share is that mean over the sum of all means: the cost make-up of one image that runs
every stage.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["STAGE_GROUPS", "StageTimer", "format_profile"]

STAGE_GROUPS: dict[str, tuple[str, ...]] = {
    "input": ("read", "cache"),
    "teachers (GPU)": (
        "detection",
        "keypoints",
        "hmr",
        "matching",
        "fov",
        "depth",
        "age_gender",
    ),
    "DTO (CPU)": ("body_model", "rendering", "cues", "solve", "update"),
    "output": ("write", "vis"),
}
"""Every stage, in pipeline order, under its group."""

STAGES = tuple(s for group in STAGE_GROUPS.values() for s in group)


@dataclass
class StageTimer:
    """Accumulates wall-clock seconds and image counts per stage."""

    seconds: dict[str, float] = field(default_factory=dict)
    images: dict[str, int] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str, images: int = 1) -> Iterator[None]:
        """Time the block as `images` images of stage `name`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start, images)

    def add(self, name: str, seconds: float, images: int = 1) -> None:
        if name not in STAGES:
            raise ValueError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.images[name] = self.images.get(name, 0) + images

    def copy(self) -> StageTimer:
        return StageTimer(dict(self.seconds), dict(self.images))

    def minus(self, earlier: StageTimer) -> StageTimer:
        """What was timed since `earlier` (a `copy` of this timer)."""
        spent = StageTimer()
        for name, seconds in self.seconds.items():
            images = self.images[name] - earlier.images.get(name, 0)
            delta = seconds - earlier.seconds.get(name, 0.0)
            if images or delta:
                spent.seconds[name], spent.images[name] = delta, images
        return spent

    def merge(self, other: StageTimer) -> None:
        for name, seconds in other.seconds.items():
            self.add(name, seconds, other.images[name])

    def mean_ms(self, name: str) -> float:
        n = self.images.get(name, 0)
        return 1e3 * self.seconds[name] / n if n else 0.0

    def to_json(self) -> dict[str, Any]:
        """Per stage: group, images, total seconds, mean ms per image, share of the sum of means."""
        means = {s: self.mean_ms(s) for s in STAGES}
        total = sum(means.values())
        stages = {}
        for group, names in STAGE_GROUPS.items():
            for s in names:
                stages[s] = {
                    "group": group,
                    "images": self.images.get(s, 0),
                    "seconds": self.seconds.get(s, 0.0),
                    "mean_ms_per_image": means[s],
                    "share": means[s] / total if total else 0.0,
                }
        return {"stages": stages, "total_ms_per_image": total}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StageTimer:
        timer = cls()
        for name, entry in data["stages"].items():
            if entry["images"]:
                timer.add(name, entry["seconds"], entry["images"])
        return timer


def format_profile(profile: dict[str, Any], title: str = "Runtime per image") -> str:
    """The Table-7-style text table of `StageTimer.to_json()` output."""
    stages, total = profile["stages"], profile["total_ms_per_image"]
    lines = [title, f"{'stage':24s} {'images':>8s} {'ms/image':>10s} {'share':>7s}"]
    for group, names in STAGE_GROUPS.items():
        subtotal = sum(stages[s]["mean_ms_per_image"] for s in names)
        lines.append(f"{group}")
        for s in names:
            e = stages[s]
            if e["images"]:
                lines.append(
                    f"  {s:22s} {e['images']:8d} {e['mean_ms_per_image']:10.1f} "
                    f"{100 * e['share']:6.1f}%"
                )
        share = subtotal / total if total else 0.0
        lines.append(f"  {'subtotal':22s} {'':8s} {subtotal:10.1f} {100 * share:6.1f}%")
    lines.append(f"{'total':24s} {'':8s} {total:10.1f} {100.0 if total else 0.0:6.1f}%")
    return "\n".join(lines)
