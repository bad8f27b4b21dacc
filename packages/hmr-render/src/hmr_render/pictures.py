"""Pictures of people's meshes: over the photo, from the side and from above, with labels.

Every function returns an (h, w, 3) uint8 RGB array and leaves its inputs unchanged. Meshes are
ray-cast (`hmr_render.raster`), depth-sorted per pixel, coloured per person from `PALETTE` and
Lambert-shaded from the normal of the face each pixel's ray hits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import trimesh
from PIL import Image, ImageDraw, ImageFont

from dto_core.camera import project
from hmr_render.raster import (
    Composite,
    OrthoCamera,
    check_meshes,
    composite,
    pixel_rays,
    render_composite,
)

__all__ = [
    "PALETTE",
    "birds_eye_view",
    "colorize_depth",
    "overlay_meshes",
    "person_colors",
    "side_view",
    "tile_images",
]

# Okabe-Ito's colour-blind-safe set (without black), then four more distinct hues.
PALETTE = np.array(
    [
        (230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178),
        (213, 94, 0), (204, 121, 167), (148, 103, 189), (140, 86, 75), (23, 190, 207),
        (188, 189, 34), (127, 127, 127),
    ],
    dtype=np.uint8,
)  # fmt: skip
AMBIENT = 0.35  # share of a colour lit whatever the surface orientation
# Light directions (towards the light, camera frame): a little above and left of each viewer.
LIGHT_CAMERA = np.array([-0.3, -0.6, -1.0]) / np.linalg.norm([-0.3, -0.6, -1.0])
LIGHT_ABOVE = np.array([-0.3, -1.0, -0.5]) / np.linalg.norm([-0.3, -1.0, -0.5])
LIGHT_SIDE = np.array([1.0, -0.6, -0.3]) / np.linalg.norm([1.0, -0.6, -0.3])
GRID_STEPS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)  # m, the auto grid's choices
MAX_GRID_LINES = 12  # the auto grid step is the smallest that draws at most this many per axis
MARGIN = 0.6  # m of free space around the people and the camera in the automatic extents
BACKGROUND = (250, 250, 250)
GRID = (222, 222, 222)
AXIS = (170, 170, 170)
FRUSTUM_FILL = (232, 238, 248)
FRUSTUM_EDGE = (120, 135, 165)
INK = (60, 60, 60)


def person_colors(n: int) -> np.ndarray:
    """(n, 3) uint8: PALETTE cycled, one colour per person."""
    return PALETTE[np.arange(n) % len(PALETTE)]


# --------------------------------------------------------------------------------------------------
# Overlay on the photo
# --------------------------------------------------------------------------------------------------


def overlay_meshes(
    image: np.ndarray,
    vertices: np.ndarray,
    faces: np.ndarray,
    K: np.ndarray,
    *,
    colors: np.ndarray | None = None,
    alpha: float = 0.8,
    heights: np.ndarray | None = None,
    distances: np.ndarray | None = None,
) -> np.ndarray:
    """The meshes drawn over the photo: image (H, W, 3) uint8, vertices (N, V, 3) m camera frame,
    faces (F, 3), K (3, 3) of the photo. colors (N, 3) uint8 (default `person_colors`); alpha the
    opacity of the meshes. Pixels no mesh covers keep the photo's values, except under the labels
    drawn when heights and/or distances (N,) m are given (above each person's head).
    """
    image = check_image(image)
    vertices, faces = check_meshes(vertices, faces)
    colors = check_colors(colors, len(vertices))
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    height, width = image.shape[:2]
    comp = render_composite(vertices, faces, K, (height, width))
    rows, cols = np.nonzero(comp.person >= 0)
    view = pixel_rays(np.asarray(K, dtype=np.float64), rows, cols)
    shaded = _shade(comp, rows, cols, vertices, faces, colors, view, LIGHT_CAMERA)
    out = image.copy()
    out[rows, cols] = np.round((1.0 - alpha) * image[rows, cols] + alpha * shaded).astype(np.uint8)

    texts = _label_texts(len(vertices), heights, distances)
    if texts is None:
        return out
    in_front = np.all(vertices[..., 2] > 0, axis=1)  # others have no label
    uv = np.full((len(vertices), 2, 2), np.nan)
    uv[in_front] = _extremes(project(vertices[in_front], K))
    anchors = np.stack([uv[:, :, 0].mean(axis=1), uv[:, 0, 1]], axis=-1)  # above the head
    return _draw_labels(out, anchors, texts, colors, vertices[..., 2].mean(axis=1))


# --------------------------------------------------------------------------------------------------
# Side and bird's-eye views
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """A metric 2D view: pixel (col, row) = (w - 1)/2 + (a - a_c)/s, (h - 1)/2 + sign (b - b_c)/s
    for a point's horizontal coordinate a and vertical coordinate b (metres)."""

    a_c: float
    b_c: float
    scale: float  # metres per pixel
    b_down: bool  # rows grow with b (side view: y) or against it (bird's eye: z)
    size: tuple[int, int]

    @classmethod
    def fit(cls, extent: Sequence[float], size: tuple[int, int], b_down: bool) -> _Plan:
        a0, a1, b0, b1 = (float(e) for e in extent)
        if not (a1 > a0 and b1 > b0):
            raise ValueError(f"extent must be (min, max, min, max) with max > min, got {extent}")
        height, width = size
        scale = max((a1 - a0) / width, (b1 - b0) / height)
        return cls((a0 + a1) / 2, (b0 + b1) / 2, scale, b_down, (height, width))

    def to_pixels(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        height, width = self.size
        sign = 1.0 if self.b_down else -1.0
        col = (width - 1) / 2 + (np.asarray(a) - self.a_c) / self.scale
        row = (height - 1) / 2 + sign * (np.asarray(b) - self.b_c) / self.scale
        return np.stack([col, row], axis=-1)

    def bounds(self) -> tuple[float, float, float, float]:
        """(a_min, a_max, b_min, b_max) m at the image border."""
        height, width = self.size
        half_a, half_b = width / 2 * self.scale, height / 2 * self.scale
        return self.a_c - half_a, self.a_c + half_a, self.b_c - half_b, self.b_c + half_b


def birds_eye_view(
    vertices: np.ndarray,
    faces: np.ndarray,
    K: np.ndarray,
    image_size: tuple[int, int],
    *,
    colors: np.ndarray | None = None,
    heights: np.ndarray | None = None,
    distances: np.ndarray | None = None,
    size: tuple[int, int] = (768, 768),
    extent: Sequence[float] | None = None,
    grid_step: float | None = None,
) -> np.ndarray:
    """The scene seen from above (looking along +y), orthographic: columns are x (right), rows are
    z (far at the top, the camera at the bottom), equal metres per pixel on both axes. A metric grid
    every grid_step m (None: 0.25-100 m, at most 12 lines), the camera and its horizontal frustum
    (from K and the photo's image_size (H, W)), the meshes, and labels right of each person when
    heights / distances (N,) m are given. extent (x_min, x_max, z_min, z_max) m is centred in the
    picture of size (h, w) px; None fits the people and the camera. A point (x, z) lands at
    col = (w - 1)/2 + (x - x_c)/s, row = (h - 1)/2 - (z - z_c)/s, (x_c, z_c) the extent's centre
    and s = max((x_max - x_min)/w, (z_max - z_min)/h) m per pixel.
    """
    vertices, faces = check_meshes(vertices, faces)
    colors = check_colors(colors, len(vertices))
    x, z = vertices[..., 0], vertices[..., 2]
    if extent is None:
        extent = _fit_extent(x, z, b_min=min(0.0, float(z.min(initial=0.0))))
    plan = _Plan.fit(extent, size, b_down=False)
    y_top = float(vertices[..., 1].min(initial=0.0)) - 1.0  # the rays start above everyone
    x0, z1 = plan.to_pixels(0.0, 0.0)  # pixel of the camera
    camera = OrthoCamera(
        corner=np.array([-x0 * plan.scale, y_top, z1 * plan.scale]),
        axis_u=np.array([plan.scale, 0.0, 0.0]),
        axis_v=np.array([0.0, 0.0, -plan.scale]),
        direction=np.array([0.0, 1.0, 0.0]),
    )
    K = np.asarray(K, dtype=np.float64)
    width_px = image_size[1]
    slopes = ((-0.5 - K[0, 2]) / K[0, 0], (width_px - 0.5 - K[0, 2]) / K[0, 0])  # x / z at edges
    title = "bird's eye: x right, z forward"
    canvas = _plan_canvas(plan, slopes, False, title, 1.0, grid_step)
    out = _draw_meshes(canvas, camera, vertices, faces, colors, LIGHT_ABOVE)
    texts = _label_texts(len(vertices), heights, distances)
    if texts is None:
        return out
    footprint = _extremes(camera.pixels(vertices))
    anchors = np.stack([footprint[:, 1, 0], footprint[:, :, 1].mean(axis=1)], axis=-1)
    return _draw_labels(out, anchors, texts, colors, z.mean(axis=1), beside=True)


def side_view(
    vertices: np.ndarray,
    faces: np.ndarray,
    K: np.ndarray,
    image_size: tuple[int, int],
    *,
    colors: np.ndarray | None = None,
    heights: np.ndarray | None = None,
    distances: np.ndarray | None = None,
    size: tuple[int, int] = (432, 768),
    extent: Sequence[float] | None = None,
    grid_step: float | None = None,
) -> np.ndarray:
    """The scene seen from the camera's right (looking along -x), orthographic: columns are z
    (the camera on the left), rows are y (down). Grid, camera, vertical frustum, meshes and labels
    above the heads as in `birds_eye_view`; extent is (z_min, z_max, y_min, y_max) m.
    """
    vertices, faces = check_meshes(vertices, faces)
    colors = check_colors(colors, len(vertices))
    y, z = vertices[..., 1], vertices[..., 2]
    if extent is None:
        z_lo, z_hi = _fit_extent(z, y, b_min=None)[:2]
        z_lo = min(z_lo, -MARGIN)
        y_lo, y_hi = min(float(y.min(initial=0.0)), 0.0), max(float(y.max(initial=0.0)), 0.0)
        extent = (z_lo, z_hi, y_lo - MARGIN, y_hi + MARGIN)
    plan = _Plan.fit(extent, size, b_down=True)
    x_right = float(vertices[..., 0].max(initial=0.0)) + 1.0  # the rays start right of everyone
    z0, y0 = plan.to_pixels(0.0, 0.0)
    camera = OrthoCamera(
        corner=np.array([x_right, -y0 * plan.scale, -z0 * plan.scale]),
        axis_u=np.array([0.0, 0.0, plan.scale]),
        axis_v=np.array([0.0, plan.scale, 0.0]),
        direction=np.array([-1.0, 0.0, 0.0]),
    )
    K = np.asarray(K, dtype=np.float64)
    height_px = image_size[0]
    slopes = ((-0.5 - K[1, 2]) / K[1, 1], (height_px - 0.5 - K[1, 2]) / K[1, 1])  # y / z at edges
    title = "side: z forward, height above the camera"
    canvas = _plan_canvas(plan, slopes, True, title, -1.0, grid_step)
    out = _draw_meshes(canvas, camera, vertices, faces, colors, LIGHT_SIDE)
    texts = _label_texts(len(vertices), heights, distances)
    if texts is None:
        return out
    box = _extremes(camera.pixels(vertices))
    anchors = np.stack([box[:, :, 0].mean(axis=1), box[:, 0, 1]], axis=-1)
    return _draw_labels(out, anchors, texts, colors, z.mean(axis=1))


def _fit_extent(a: np.ndarray, b: np.ndarray, b_min: float | None) -> tuple[float, ...]:
    """(a_min, a_max, b_min, b_max) m around points (a, b), the camera (0, 0) and MARGIN."""
    a_lo, a_hi = min(float(a.min(initial=0.0)), 0.0), max(float(a.max(initial=0.0)), 0.0)
    b_lo = min(float(b.min(initial=0.0)), 0.0) if b_min is None else b_min
    b_hi = max(float(b.max(initial=0.0)), 1.0)
    return a_lo - MARGIN, a_hi + MARGIN, b_lo - MARGIN, b_hi + MARGIN


def _plan_canvas(
    plan: _Plan,
    slopes: tuple[float, float],
    depth_is_a: bool,
    title: str,
    b_sign: float,
    grid_step: float | None,
) -> np.ndarray:
    """Background, metric grid labelled in metres (b values times b_sign), the frustum (lines
    from the camera at (0, 0) with slope = lateral / depth; depth is a in the side view, b in the
    bird's eye view), the camera marker and a title naming the axes."""
    height, width = plan.size
    a0, a1, b0, b1 = plan.bounds()
    step = grid_step if grid_step is not None else _auto_step(max(a1 - a0, b1 - b0))
    if step <= 0:
        raise ValueError(f"grid_step must be > 0, got {grid_step}")
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = _font(max(11, round(min(height, width) / 45)))

    # Frustum: depth is b in the bird's eye view (a = x, b = z), a in the side view (a = z, b = y).
    far = (a1 if depth_is_a else b1) * 1.5 + 1.0
    corners = []
    for slope in slopes:
        a, b = (far, slope * far) if depth_is_a else (slope * far, far)
        corners.append(tuple(plan.to_pixels(a, b)))
    apex = tuple(plan.to_pixels(0.0, 0.0))
    draw.polygon([apex, *corners], fill=FRUSTUM_FILL)

    # Grid lines every `step` m; the lines through the camera are darker.
    for k in range(int(np.ceil(a0 / step)), int(np.floor(a1 / step)) + 1):
        col = float(plan.to_pixels(k * step, 0.0)[0])
        draw.line([(col, 0), (col, height)], fill=AXIS if k == 0 else GRID, width=1)
    for k in range(int(np.ceil(b0 / step)), int(np.floor(b1 / step)) + 1):
        row = float(plan.to_pixels(0.0, k * step)[1])
        draw.line([(0, row), (width, row)], fill=AXIS if k == 0 else GRID, width=1)
    for corner in corners:
        draw.line([apex, corner], fill=FRUSTUM_EDGE, width=2)
    # Axis labels: a values along the bottom, b values along the left edge.
    for k in range(int(np.ceil(a0 / step)), int(np.floor(a1 / step)) + 1):
        col = float(plan.to_pixels(k * step, 0.0)[0])
        draw.text((col + 3, height - 4), _metres(k * step), fill=INK, font=font, anchor="ld")
    for k in range(int(np.ceil(b0 / step)), int(np.floor(b1 / step)) + 1):
        row = float(plan.to_pixels(0.0, k * step)[1])
        if row - 2 > font.size:  # the label fits above its line
            draw.text((4, row - 2), _metres(b_sign * k * step + 0.0), fill=INK, font=font,
                      anchor="ld")  # fmt: skip
    draw.text((width - 6, 6), f"{title}; grid {_metres(step)}", fill=INK, font=font, anchor="ra")

    # Camera: a small dark triangle pointing along the optical axis.
    size = max(7.0, min(height, width) / 60)
    forward = np.array([1.0, 0.0]) if depth_is_a else np.array([0.0, -1.0])
    side = np.array([-forward[1], forward[0]])
    tip = np.asarray(apex) + forward * size
    base = np.asarray(apex) - forward * size
    draw.polygon(
        [tuple(tip), tuple(base + side * size * 0.8), tuple(base - side * size * 0.8)], fill=INK
    )
    return np.asarray(image).copy()


def _auto_step(span: float) -> float:
    for step in GRID_STEPS:
        if span / step <= MAX_GRID_LINES:
            return step
    return GRID_STEPS[-1]


def _metres(value: float) -> str:
    return f"{value:g} m"


def _draw_meshes(
    canvas: np.ndarray,
    camera: OrthoCamera,
    vertices: np.ndarray,
    faces: np.ndarray,
    colors: np.ndarray,
    light: np.ndarray,
) -> np.ndarray:
    comp = composite(vertices, faces, camera, canvas.shape[:2])
    rows, cols = np.nonzero(comp.person >= 0)
    out = canvas.copy()
    out[rows, cols] = np.round(
        _shade(comp, rows, cols, vertices, faces, colors, camera.direction, light)
    ).astype(np.uint8)
    return out


# --------------------------------------------------------------------------------------------------
# Shading, labels, depth colours and panels
# --------------------------------------------------------------------------------------------------


def _shade(
    comp: Composite,
    rows: np.ndarray,
    cols: np.ndarray,
    vertices: np.ndarray,
    faces: np.ndarray,
    colors: np.ndarray,
    view: np.ndarray,
    light: np.ndarray,
) -> np.ndarray:
    """(n, 3) float colours of the covered pixels: the person's colour times
    AMBIENT + (1 - AMBIENT) max(0, n . light), n the hit face's normal turned towards the viewer."""
    person, face = comp.person[rows, cols], comp.face[rows, cols]
    tri = vertices[person[:, None], faces[face]]  # (n, 3, 3)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    facing = np.einsum("nk,nk->n", normal, np.broadcast_to(view, normal.shape))
    normal[facing > 0] *= -1.0  # no back-face culling: light the side that the viewer sees
    lambert = np.maximum(normal @ light, 0.0)
    return colors[person] * (AMBIENT + (1.0 - AMBIENT) * lambert)[:, None]


def _extremes(uv: np.ndarray) -> np.ndarray:
    """(N, 2, 2): per person, [[min col, min row], [max col, max row]] of points uv (N, V, 2)."""
    return np.stack([uv.min(axis=1), uv.max(axis=1)], axis=1)


def _label_texts(
    n: int, heights: np.ndarray | None, distances: np.ndarray | None
) -> list[str] | None:
    if heights is None and distances is None:
        return None
    lines: list[list[str]] = [[] for _ in range(n)]
    for name, values, fmt in (
        ("heights", heights, "{:.2f} m tall"),
        ("distances", distances, "{:.1f} m away"),
    ):
        if values is None:
            continue
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (n,) or not np.isfinite(values).all():
            raise ValueError(f"{name} must be {n} finite values (m), got {values.shape} {values}")
        for i, value in enumerate(values):
            lines[i].append(fmt.format(value))
    return ["\n".join(text) for text in lines]


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _draw_labels(
    image: np.ndarray,
    anchors: np.ndarray,
    texts: Sequence[str],
    colors: np.ndarray,
    depth: np.ndarray,
    beside: bool = False,
) -> np.ndarray:
    """Text boxes in each person's colour, centred above anchors (N, 2) (col, row), or right of
    them and vertically centred (beside=True); kept inside the image. Nearer persons (smaller
    depth (N,)) are placed first; a box that would cover a placed one moves up or down a step."""
    height, width = image.shape[:2]
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    font = _font(max(12, round(min(height, width) / 36)))
    pad, gap = 4, 6
    placed: list[tuple[float, float, float, float]] = []
    for i in np.argsort(depth, kind="stable"):
        if not np.isfinite(anchors[i]).all():
            continue
        left, top, right, bottom = draw.multiline_textbbox((0, 0), texts[i], font=font, spacing=2)
        box_w, box_h = right - left + 2 * pad, bottom - top + 2 * pad
        col, row = anchors[i]
        x, y = (col + gap, row - box_h / 2) if beside else (col - box_w / 2, row - gap - box_h)
        x = float(np.clip(x, 0, max(width - box_w - 1, 0)))
        y = _free_row(x, float(np.clip(y, 0, max(height - box_h - 1, 0))), box_w, box_h, placed,
                      height)  # fmt: skip
        placed.append((x, y, x + box_w, y + box_h))
        color = tuple(int(c) for c in colors[i])
        luminance = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
        ink = (20, 20, 20) if luminance > 140 else (255, 255, 255)
        draw.rounded_rectangle(placed[-1], radius=4, fill=color, outline=(40, 40, 40), width=1)
        draw.multiline_text(
            (x + pad - left, y + pad - top), texts[i], fill=ink, font=font, spacing=2
        )
    return np.asarray(picture).copy()


def _free_row(
    x: float, y: float, w: float, h: float, placed: list[tuple[float, ...]], height: int
) -> float:
    """A row for box (x, y, w, h) where it overlaps no placed box: y, else just above the boxes
    in its way, else just below them; y itself if neither fits in the image."""
    for direction in (-1, 1):
        row = y
        for _ in range(len(placed) + 1):
            hits = [
                b for b in placed if x < b[2] and b[0] < x + w and row < b[3] and b[1] < row + h
            ]
            if not hits:
                return row
            row = min(b[1] for b in hits) - h - 2 if direction < 0 else max(b[3] for b in hits) + 2
            if not 0 <= row <= height - h - 1:
                break
    return y


def colorize_depth(
    depth: np.ndarray, valid: np.ndarray | None = None, cmap: str = "magma"
) -> np.ndarray:
    """(H, W, 3) uint8 picture of a depth map (H, W): near is bright, far dark, scaled between the
    2nd and 98th percentiles of the valid pixels; invalid or non-finite pixels are black. cmap:
    one of trimesh's "viridis", "inferno", "plasma", "magma"."""
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 2:
        raise ValueError(f"depth must be 2-D (H, W), got shape {depth.shape}")
    ok = np.isfinite(depth) if valid is None else np.asarray(valid, dtype=bool) & np.isfinite(depth)
    out = np.zeros((*depth.shape, 3), dtype=np.uint8)
    if not ok.any():
        return out
    lo, hi = np.percentile(depth[ok], [2.0, 98.0])
    value = np.clip((depth[ok] - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    out[ok] = trimesh.visual.color.interpolate(np.r_[0.0, 1.0 - value, 1.0], cmap)[1:-1, :3]
    return out


def tile_images(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    columns: int = 3,
    tile_height: int = 384,
) -> np.ndarray:
    """A panel: images (each (h, w, 3) uint8) scaled to tile_height px high, in rows of `columns`,
    each under its title; (rows * (title + tile_height), sum of the widest row) uint8."""
    if not images:
        raise ValueError("tile_images needs at least one image")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images")
    font = _font(max(12, tile_height // 20))
    title_h = font.size + 10 if titles is not None else 0
    tiles = []
    for image in images:
        image = check_image(image)
        w = max(1, round(image.shape[1] * tile_height / image.shape[0]))
        tiles.append(Image.fromarray(image).resize((w, tile_height), Image.Resampling.LANCZOS))
    rows = [tiles[i : i + columns] for i in range(0, len(tiles), columns)]
    width = max(sum(t.width for t in row) + 4 * (len(row) - 1) for row in rows)
    panel = Image.new("RGB", (width, len(rows) * (title_h + tile_height + 4) - 4), (255, 255, 255))
    draw = ImageDraw.Draw(panel)
    for r, row in enumerate(rows):
        x, y = 0, r * (title_h + tile_height + 4)
        for c, tile in enumerate(row):
            if titles is not None:
                draw.text((x + 4, y + 5), titles[r * columns + c], fill=INK, font=font)
            panel.paste(tile, (x, y + title_h))
            x += tile.width + 4
    return np.asarray(panel).copy()


def check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.dtype} {image.shape}")
    return image


def check_colors(colors: np.ndarray | None, n: int) -> np.ndarray:
    if colors is None:
        return person_colors(n)
    colors = np.asarray(colors)
    if colors.shape != (n, 3):
        raise ValueError(f"colors must have shape ({n}, 3) (uint8 RGB), got {colors.shape}")
    return colors.astype(np.uint8)
