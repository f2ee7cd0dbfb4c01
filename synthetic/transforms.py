"""Near-duplicate video transforms on uint8 frames [T, H, W, 3] (numpy; each one small and exact).

A transform is recorded as ``{"name": str, **params}`` so that a benchmark's manifest says exactly how a
derived video was made; `apply_transforms` replays a list of them.
"""

from __future__ import annotations

import numpy as np

# 5x5 block glyphs for text overlays (one bit per cell, row-major).
_GLYPHS = np.array(
    [
        [int(b) for b in f"{code:025b}"]
        for code in (
            0x1F8C63F,
            0x1E8FA3E,
            0x0F8420F,
            0x1E8C63E,
            0x1F87A1F,
            0x1F87A10,
            0x0F84E2F,
            0x118FE31,
            0x0E2108E,
            0x1F0862E,
            0x1197251,
            0x108421F,
            0x11DD631,
            0x11CD671,
            0x0E8C62E,
            0x1E8FA10,
        )
    ],
    dtype=bool,
).reshape(-1, 5, 5)


def resize_nearest(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize to (W, H): output pixel (i, j) takes input (floor((i + .5) H / h), ...)."""
    width, height = size
    in_h, in_w = frames.shape[1:3]
    rows = np.minimum(((np.arange(height) + 0.5) * in_h / height).astype(int), in_h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * in_w / width).astype(int), in_w - 1)
    return frames[:, rows][:, :, cols]


def hflip(frames: np.ndarray) -> np.ndarray:
    """Mirror left-right."""
    return frames[:, :, ::-1]


def crop(frames: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Crop the box (x0, y0, x1, y1, fractions of width/height) and resize it back to the input size."""
    height, width = frames.shape[1:3]
    x0, y0, x1, y1 = box
    c0, c1 = int(round(x0 * width)), max(int(round(x1 * width)), int(round(x0 * width)) + 1)
    r0, r1 = int(round(y0 * height)), max(int(round(y1 * height)), int(round(y0 * height)) + 1)
    return resize_nearest(frames[:, r0:r1, c0:c1], (width, height))


def color_shift(frames: np.ndarray, gain, offset) -> np.ndarray:
    """Per-channel ``clip(frame * gain + offset)``."""
    out = frames.astype(np.float32) * np.float32(gain) + np.float32(offset)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def overlay_logo(frames: np.ndarray, box: tuple[float, float, float, float], color, color2) -> np.ndarray:
    """A two-colour checkered logo in the box (fractions), on every frame."""
    out = frames.copy()
    height, width = frames.shape[1:3]
    r0, r1 = int(box[1] * height), max(int(box[3] * height), int(box[1] * height) + 1)
    c0, c1 = int(box[0] * width), max(int(box[2] * width), int(box[0] * width) + 1)
    rr, cc = np.mgrid[r0:r1, c0:c1]
    checker = ((rr - r0) // 3 + (cc - c0) // 3) % 2 == 0
    out[:, r0:r1, c0:c1] = np.where(checker[..., None], np.uint8(color), np.uint8(color2))
    return out


def overlay_text(frames: np.ndarray, glyphs: list[int], row: float, color) -> np.ndarray:
    """A dark caption bar at height `row` (fraction) with block glyphs (indices into a 16-glyph font)."""
    out = frames.copy()
    height, width = frames.shape[1:3]
    cell = max(1, height // 40)
    bar_h = 7 * cell
    r0 = min(int(row * height), height - bar_h)
    out[:, r0 : r0 + bar_h] = (out[:, r0 : r0 + bar_h] // 4).astype(np.uint8)
    for k, g in enumerate(glyphs):
        c0 = cell + k * 6 * cell
        if c0 + 5 * cell > width:
            break
        mask = np.kron(_GLYPHS[g % len(_GLYPHS)], np.ones((cell, cell), dtype=bool))
        block = out[:, r0 + cell : r0 + 6 * cell, c0 : c0 + 5 * cell]
        block[:, mask] = np.uint8(color)
    return out


def speed_indices(num_frames: int, factor: float) -> np.ndarray:
    """Source frame indices of a video played `factor` times faster (nearest earlier frame)."""
    count = max(1, int(np.floor(num_frames / factor)))
    return np.minimum(np.floor(np.arange(count) * factor + 1e-6).astype(int), num_frames - 1)


def speed(frames: np.ndarray, factor: float) -> np.ndarray:
    """Change playback speed at a constant fps by dropping (factor > 1) or repeating (< 1) frames."""
    return frames[speed_indices(len(frames), factor)]


def trim(frames: np.ndarray, start: int, length: int) -> np.ndarray:
    """Frames ``start .. start + length - 1``."""
    if not 0 <= start < len(frames) or length < 1:
        raise ValueError(f"trim: start {start} / length {length} outside a {len(frames)}-frame video")
    return frames[start : start + length]


def resize(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Change resolution (kept even for yuv420p)."""
    return resize_nearest(frames, (int(width), int(height)))


TRANSFORMS = {
    "hflip": hflip,
    "crop": crop,
    "color_shift": color_shift,
    "logo": overlay_logo,
    "text": overlay_text,
    "speed": speed,
    "trim": trim,
    "resize": resize,
    "reencode": lambda frames, **_: frames,  # applied by the encoder (crf / bit_rate), not to pixels
}


def apply_transforms(frames: np.ndarray, transforms: list[dict]) -> np.ndarray:
    """Replay recorded transforms ``[{"name": ..., **params}, ...]`` in order."""
    for spec in transforms:
        params = {k: v for k, v in spec.items() if k != "name"}
        if spec.get("name") not in TRANSFORMS:
            raise ValueError(f"unknown transform {spec.get('name')!r}; expected one of {sorted(TRANSFORMS)}")
        frames = TRANSFORMS[spec["name"]](frames, **params)
    return frames


def random_transform(rng: np.random.Generator, name: str, num_frames: int, size: tuple[int, int]) -> dict:
    """Random parameters for transform `name` (strong enough to be a hard near-duplicate)."""
    width, height = size
    if name == "hflip":
        return {"name": name}
    if name == "crop":
        scale = rng.uniform(0.55, 0.8)
        x0, y0 = rng.uniform(0, 1 - scale), rng.uniform(0, 1 - scale)
        return {"name": name, "box": [round(x0, 3), round(y0, 3), round(x0 + scale, 3), round(y0 + scale, 3)]}
    if name == "color_shift":
        return {
            "name": name,
            "gain": rng.uniform(0.7, 1.3, 3).round(3).tolist(),
            "offset": rng.uniform(-30, 30, 3).round(1).tolist(),
        }
    if name == "logo":
        w, h = rng.uniform(0.15, 0.3), rng.uniform(0.15, 0.3)
        x0, y0 = rng.choice([0.03, 0.97 - w]), rng.choice([0.03, 0.97 - h])
        return {
            "name": name,
            "box": [round(x0, 3), round(y0, 3), round(x0 + w, 3), round(y0 + h, 3)],
            "color": rng.integers(0, 256, 3).tolist(),
            "color2": rng.integers(0, 256, 3).tolist(),
        }
    if name == "text":
        return {
            "name": name,
            "glyphs": rng.integers(0, 16, 12).tolist(),
            "row": round(float(rng.uniform(0.05, 0.85)), 3),
            "color": rng.integers(160, 256, 3).tolist(),
        }
    if name == "speed":
        return {"name": name, "factor": float(rng.choice([0.5, 0.75, 1.5, 2.0]))}
    if name == "trim":
        length = max(2, int(num_frames * rng.uniform(0.4, 0.7)))
        return {"name": name, "start": int(rng.integers(0, num_frames - length + 1)), "length": length}
    if name == "resize":
        scale = float(rng.choice([0.5, 0.75, 1.25]))
        return {
            "name": name,
            "width": max(2, int(width * scale) // 2 * 2),
            "height": max(2, int(height * scale) // 2 * 2),
        }
    if name == "reencode":
        return {"name": name, "crf": int(rng.integers(36, 45))}
    raise ValueError(f"unknown transform {name!r}; expected one of {sorted(TRANSFORMS)}")


__all__ = [
    "TRANSFORMS",
    "apply_transforms",
    "color_shift",
    "crop",
    "hflip",
    "overlay_logo",
    "overlay_text",
    "random_transform",
    "resize",
    "resize_nearest",
    "speed",
    "speed_indices",
    "trim",
]
