"""Vectorised numpy renderer of procedural scenes: textured background, moving textured shapes, camera motion.

A scene is a plain, JSON-serialisable dict, so a video is a pure function of its spec (deterministic by
construction; the generators draw every random number up front from one seeded generator). Coordinates
are resolution independent: the view is 1.0 high and ``W / H`` wide at zoom 1, so one spec renders at
any size. Time ``t`` is in seconds from the scene's event start ``t0``.

Scene spec::

    {"num_frames": int, "t0": float,
     "background": {"colors": [[r, g, b] x 3], "freqs": [[fx, fy] x 3], "phases": [p x 3]},
     "camera": {"pos": [x, y], "vel": [vx, vy], "zoom": z, "zoom_rate": dz},
     "shapes": [{"kind": "square" | "circle" | "triangle", "color": [r, g, b], "color2": [r, g, b],
                 "size": s, "pos": [x, y], "vel": [vx, vy], "angle": a, "spin": w, "stripes": f,
                 "visible": [t_start, t_end] (optional, event seconds), "grow": g (optional)}]}

Shapes move in event time (``t0 + k / fps``), so two scenes with the same shapes and different cameras or
``t0`` show the same event from another viewpoint or another moment; the camera moves from the scene start.
"""

from __future__ import annotations

import numpy as np

SHAPE_KINDS = ("square", "circle", "triangle")


def _grid(num_frames: int, t0: float, size: tuple[int, int], fps: float, camera: dict):
    """World coordinates of the pixel columns x [T, 1, W] and rows y [T, H, 1] (they broadcast to
    [T, H, W]) and the frame times [T]."""
    width, height = size
    times = (t0 + np.arange(num_frames) / fps).astype(np.float32)  # [T]
    rel = times - np.float32(t0)
    zoom = camera.get("zoom", 1.0) * (1.0 + camera.get("zoom_rate", 0.0) * rel)  # [T]
    cam_x = camera["pos"][0] + camera["vel"][0] * rel  # [T]
    cam_y = camera["pos"][1] + camera["vel"][1] * rel
    cols = ((np.arange(width, dtype=np.float32) + 0.5 - width / 2) / height)[None, None, :]  # [1, 1, W]
    rows = ((np.arange(height, dtype=np.float32) + 0.5 - height / 2) / height)[None, :, None]  # [1, H, 1]
    x = (cam_x[:, None, None] + cols / zoom[:, None, None]).astype(np.float32)  # [T, 1, W]
    y = (cam_y[:, None, None] + rows / zoom[:, None, None]).astype(np.float32)  # [T, H, 1]
    return x, y, times


def _plane_wave(x: np.ndarray, y: np.ndarray, fx: float, fy: float, phase: float) -> np.ndarray:
    """sin(2 pi (fx x + fy y) + phase) [T, H, W] from separable factors (x [T, 1, W], y [T, H, 1])."""
    ax, by = 2 * np.pi * fx * x, 2 * np.pi * fy * y + phase
    return np.sin(ax) * np.cos(by) + np.cos(ax) * np.sin(by)


def render_background(x: np.ndarray, y: np.ndarray, background: dict) -> np.ndarray:
    """Blend of three colours weighted by oriented sinusoids of world position: float32 [T, H, W, 3]."""
    colors = np.asarray(background["colors"], dtype=np.float32)  # [3, 3]
    shape = np.broadcast_shapes(x.shape, y.shape)
    out = np.broadcast_to(colors[0], shape + (3,)).copy()
    for k in (1, 2):
        weight = 0.5 + 0.5 * _plane_wave(x, y, *background["freqs"][k], background["phases"][k])  # [T, H, W]
        out += weight[..., None] * ((colors[k] - colors[0]) * 0.5 * k)
    out *= (0.85 + 0.15 * _plane_wave(x, y, *background["freqs"][0], background["phases"][0]))[..., None]
    return out


def shape_mask(kind: str, u: np.ndarray, v: np.ndarray, size) -> np.ndarray:
    """Boolean mask of a shape of half-size `size` centred at the origin of local coordinates (u, v)."""
    if kind == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= size
    if kind == "circle":
        return u * u + v * v <= size * size
    if kind == "triangle":  # equilateral, circumradius `size`, pointing up (v grows downwards)
        return (v <= 0.5 * size) & (np.sqrt(3.0) * u - v <= size) & (-np.sqrt(3.0) * u - v <= size)
    raise ValueError(f"unknown shape kind {kind!r}; expected one of {SHAPE_KINDS}")


def shape_state(shape: dict, times: np.ndarray):
    """Centre x, y, rotation angle, visibility and scale [T] of a shape at event `times` (seconds)."""
    rel = np.asarray(times, dtype=np.float32)
    cx = shape["pos"][0] + shape["vel"][0] * rel
    cy = shape["pos"][1] + shape["vel"][1] * rel
    angle = shape.get("angle", 0.0) + shape.get("spin", 0.0) * rel
    visible = np.ones_like(rel, dtype=bool)
    if shape.get("visible") is not None:
        start, end = shape["visible"]
        visible = (rel >= start) & (rel < end)
    scale = 1.0 + shape.get("grow", 0.0) * rel
    return cx, cy, angle, visible, scale


def draw_shapes(
    frames: np.ndarray, x: np.ndarray, y: np.ndarray, times: np.ndarray, shapes: list[dict]
) -> None:
    """Paint striped shapes onto float frames [T, H, W, 3] in place (later shapes on top); x [T, 1, W] and
    y [T, H, 1] are the world coordinates from `_grid`."""
    for shape in shapes:
        cx, cy, angle, visible, scale = shape_state(shape, times)
        if not visible.any():
            continue
        sel = np.nonzero(visible)[0]
        cos, sin = np.cos(angle[sel])[:, None, None], np.sin(angle[sel])[:, None, None]
        dx, dy = x[sel] - cx[sel, None, None], y[sel] - cy[sel, None, None]  # [t, 1, W], [t, H, 1]
        u, v = cos * dx + sin * dy, cos * dy - sin * dx  # [t, H, W]
        mask = shape_mask(shape["kind"], u, v, shape["size"] * scale[sel, None, None])  # [t, H, W]
        t_idx, rows, cols = np.nonzero(mask)
        mu, mv = u[t_idx, rows, cols], v[t_idx, rows, cols]
        stripes = np.sin(2 * np.pi * shape.get("stripes", 0.0) * (mu + 0.5 * mv)) > 0  # [n]
        color = np.where(
            stripes[:, None], np.float32(shape["color"]), np.float32(shape.get("color2", shape["color"]))
        )
        frames[sel[t_idx], rows, cols] = color


def render_scene(scene: dict, size: tuple[int, int], fps: float) -> np.ndarray:
    """Render one scene spec to uint8 RGB frames [T, H, W, 3]."""
    x, y, times = _grid(scene["num_frames"], scene.get("t0", 0.0), size, fps, scene["camera"])
    frames = render_background(x, y, scene["background"])
    draw_shapes(frames, x, y, times, scene["shapes"])
    return np.clip(frames, 0, 255).astype(np.uint8)


def render_scenes(scenes: list[dict], size: tuple[int, int], fps: float) -> np.ndarray:
    """Render and concatenate scenes (hard scene cuts): uint8 [sum T, H, W, 3]."""
    return np.concatenate([render_scene(scene, size, fps) for scene in scenes], axis=0)


# ----------------------------------------------------------------------------------------------------
# Random specs (all randomness comes from the caller's generator)
# ----------------------------------------------------------------------------------------------------


def random_palette(
    rng: np.random.Generator, num_colors: int = 5, near: np.ndarray | None = None
) -> np.ndarray:
    """Saturated colours float [N, 3] in 0..255; `near` perturbs a given palette (similar-looking distractors)."""
    if near is not None:
        return np.clip(np.asarray(near, dtype=np.float64) + rng.normal(0, 25, size=np.shape(near)), 0, 255)
    hues = rng.uniform(0, 1, num_colors)
    sat, val = rng.uniform(0.5, 1.0, num_colors), rng.uniform(0.45, 1.0, num_colors)
    return hsv_to_rgb(hues, sat, val)


def hsv_to_rgb(h, s, v) -> np.ndarray:
    """Vectorised HSV (all in 0..1) to RGB in 0..255: float [N, 3]."""
    h, s, v = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (h, s, v))
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = np.stack(
        [np.stack(c, -1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))]
    )
    return table[i, np.arange(len(h))] * 255.0


def random_incident(rng: np.random.Generator, near: dict | None = None) -> dict:
    """An "incident": a palette and an object set (kinds, colours, sizes, stripes) shared by its videos."""
    palette = random_palette(rng, 5, None if near is None else near["palette"])
    num_objects = int(rng.integers(2, 5))
    objects = [
        {
            "kind": SHAPE_KINDS[int(rng.integers(len(SHAPE_KINDS)))],
            "color": palette[int(rng.integers(5))].round(1).tolist(),
            "color2": palette[int(rng.integers(5))].round(1).tolist(),
            "size": float(rng.uniform(0.08, 0.2)),
            "stripes": float(rng.choice([0.0, rng.uniform(6, 18)])),
        }
        for _ in range(num_objects)
    ]
    return {"palette": palette.round(1).tolist(), "objects": objects}


def random_scene(rng: np.random.Generator, incident: dict, num_frames: int, t0: float = 0.0) -> dict:
    """A scene of `incident`: its objects at random places and velocities, a textured background from its
    palette, and a panning / zooming camera."""
    palette = np.asarray(incident["palette"])
    bg_idx = rng.choice(len(palette), 3, replace=False)
    shapes = []
    for obj in incident["objects"]:
        shapes.append(
            {
                **obj,
                "pos": rng.uniform([-0.5, -0.3], [0.5, 0.3]).tolist(),
                "vel": rng.uniform(-0.15, 0.15, 2).tolist(),
                "angle": float(rng.uniform(0, 2 * np.pi)),
                "spin": float(rng.uniform(-1.5, 1.5)),
            }
        )
    return {
        "num_frames": int(num_frames),
        "t0": float(t0),
        "background": {
            "colors": (palette[bg_idx] * rng.uniform(0.6, 1.0)).round(1).tolist(),
            "freqs": rng.uniform(-3, 3, (3, 2)).round(3).tolist(),
            "phases": rng.uniform(0, 2 * np.pi, 3).round(3).tolist(),
        },
        "camera": {
            "pos": rng.uniform(-0.2, 0.2, 2).tolist(),
            "vel": rng.uniform(-0.08, 0.08, 2).tolist(),
            "zoom": float(rng.uniform(0.9, 1.1)),
            "zoom_rate": float(rng.uniform(-0.05, 0.05)),
        },
        "shapes": shapes,
    }


def split_frames(rng: np.random.Generator, total: int, num_parts: int) -> list[int]:
    """Random positive lengths summing to `total` (each at least a quarter of an even share)."""
    num_parts = max(1, min(num_parts, total))
    weights = rng.uniform(0.6, 1.4, num_parts)
    lengths = np.maximum(1, np.floor(weights / weights.sum() * total).astype(int))
    lengths[-1] = total - lengths[:-1].sum()
    if lengths[-1] < 1:  # degenerate tiny totals
        lengths = np.full(num_parts, total // num_parts)
        lengths[-1] += total - lengths.sum()
    return [int(n) for n in lengths]


__all__ = [
    "SHAPE_KINDS",
    "draw_shapes",
    "hsv_to_rgb",
    "random_incident",
    "random_palette",
    "random_scene",
    "render_background",
    "render_scene",
    "render_scenes",
    "shape_mask",
    "shape_state",
    "split_frames",
]
