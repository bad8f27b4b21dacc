"""`--vis-every N` panels: what DTO did to one image, drawn with hmr-render's primitives.

Tiles: the input; the teacher's meshes and DTO's overlaid (depth-sorted, one colour per person,
labelled with height and distance); the bird's-eye views before and after on one metric grid
and extent; the relative depth map the cues used. People DTO's cue checks removed keep their
teacher mesh and are drawn grey in the "after" tiles.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from dto_core import PersonStatus
from dto_core.body import BodyModel

from .outcome import ImageOutcome

__all__ = ["panel_path", "panel_tiles", "write_panel"]

REMOVED_GREY = np.array([150, 150, 150], np.uint8)
"""Colour of the people DTO's cue checks removed, in the panels' "after" tiles."""


def panel_path(folder: Path, image_path: str) -> Path:
    """`folder/<image path with separators as __>.png` (flat, unique per image path)."""
    return folder / (re.sub(r"[^A-Za-z0-9._-]", "_", image_path.replace("/", "__")) + ".png")


def panel_tiles(
    pixels: np.ndarray, outcome: ImageOutcome, body: BodyModel, variant: str
) -> list[tuple[str, np.ndarray]]:
    """The panel's (title, RGB uint8 image) tiles for a solved image whose solution holds its
    `views` (`solve_image(..., keep_views=True)`)."""
    from hmr_render import (
        birds_eye_view,
        colorize_depth,
        fit_extent,
        overlay_meshes,
        person_colors,
    )

    s = outcome.solution
    if s is None or s.views is None:
        raise ValueError(f"{outcome.path}: no solution views to draw")
    before, after = s.views["vertices_before"], s.views["vertices_after"]
    K, size, faces = s.K, s.image_size, body.faces
    colors = person_colors(len(s))
    height_before = body.tpose_height(s.betas_in) if len(s) else np.zeros(0)
    height_after = np.where(s.result.updated, s.result.height, height_before)
    removed = s.result.status == PersonStatus.REMOVED
    after_colors = colors.copy()
    after_colors[removed] = REMOVED_GREY
    extent = fit_extent(np.concatenate([before, after]), "bev")  # one scale for both views
    verdict = "kept" if s.reason == "" else s.reason
    verdict += ", grey = removed" if removed.any() else ""
    rel = s.views["rel_depth"]
    return [
        (f"input {outcome.path}", pixels),
        (
            "teacher (before DTO)",
            overlay_meshes(
                pixels, before, faces, K, colors=colors, heights=height_before,
                distances=s.transl_in[:, 2],
            ),
        ),
        (
            f"DTO {variant}: {verdict}",
            overlay_meshes(
                pixels, after, faces, K, colors=after_colors, heights=height_after,
                distances=s.transl[:, 2],
            ),
        ),
        (
            "bird's-eye view, before",
            birds_eye_view(before, faces, K, size, colors=colors, heights=height_before,
                           extent=extent),
        ),
        (
            "bird's-eye view, after",
            birds_eye_view(after, faces, K, size, colors=after_colors, heights=height_after,
                           extent=extent),
        ),
        ("relative depth (1 / disparity; near = bright)", colorize_depth(rel)),
    ]  # fmt: skip


def write_panel(
    path: Path, pixels: np.ndarray, outcome: ImageOutcome, body: BodyModel, variant: str
) -> Path:
    """Draw `panel_tiles` as one titled grid and save it as PNG (atomically)."""
    from hmr_render import save_png, tile_images

    tiles = panel_tiles(pixels, outcome, body, variant)
    grid = tile_images([t for _, t in tiles], [title for title, _ in tiles], columns=3)
    return save_png(path, grid)
