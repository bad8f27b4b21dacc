"""hmr-render: the workspace renderer and pictures of human meshes.

`render_zbuffers` (per-person z-buffers by Embree ray casting, exact at pixel centres),
`render_tz_map` (DTO's rendering step: composite id and depth maps and visible-vertex counts for
`dto_core.cues.extract_cues`), and picture primitives: meshes over a photo, side and bird's-eye
views with a metric grid and the camera frustum, labels, PNG and GLB files.
"""

from hmr_render.raster import Composite, ZBuffer, render_composite, render_zbuffers
from hmr_render.scene import standing_people
from hmr_render.tzmap import TzMap, render_resolution, render_tz_map

__all__ = [
    "Composite",
    "TzMap",
    "ZBuffer",
    "render_composite",
    "render_resolution",
    "render_tz_map",
    "render_zbuffers",
    "standing_people",
]

__version__ = "0.1.0"
