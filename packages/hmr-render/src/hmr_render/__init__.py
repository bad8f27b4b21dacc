"""hmr-render: the workspace renderer and pictures of human meshes.

`render_zbuffers` (per-person z-buffers by Embree ray casting, exact at pixel centres),
`render_composite` (the depth-sorted composite of all persons), `render_tz_map` (DTO's rendering
step: composite id and depth maps and visible-vertex counts for `dto_core.cues.extract_cues`),
and pictures: meshes over a photo, side and bird's-eye views with a metric grid and the camera
frustum, labels, depth colours, panels, PNG and GLB files.
"""

from hmr_render.files import mesh_scene, save_glb, save_png
from hmr_render.pictures import (
    PALETTE,
    birds_eye_view,
    colorize_depth,
    overlay_meshes,
    person_colors,
    side_view,
    tile_images,
)
from hmr_render.raster import Composite, ZBuffer, render_composite, render_zbuffers
from hmr_render.scene import standing_people
from hmr_render.tzmap import TzMap, render_resolution, render_tz_map

__all__ = [
    "PALETTE",
    "Composite",
    "TzMap",
    "ZBuffer",
    "birds_eye_view",
    "colorize_depth",
    "mesh_scene",
    "overlay_meshes",
    "person_colors",
    "render_composite",
    "render_resolution",
    "render_tz_map",
    "render_zbuffers",
    "save_glb",
    "save_png",
    "side_view",
    "standing_people",
    "tile_images",
]

__version__ = "0.1.0"
