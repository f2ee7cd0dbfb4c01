"""Temporal near-duplicate benchmark (issue 20): long 1-fps videos of real photos and procedural scenes, in the
FIVR schema, whose difficulty is what TCA is meant to solve (partial overlap, generic frames, look-alike shots).

A video is a sequence of *shots* (2-4 frames each at 1 fps; videos are tens of seconds long):

- **photo** shots: a camera panning and zooming over a tile of one of the bundled photographs
  (`real_media.bundled_photos`), tinted, with a procedural scene composited as an inset in one corner. Every
  tile belongs to one family only (tiles are dealt without replacement), so unrelated videos never share photo
  content by accident;
- **scene** shots: procedural scenes (`renderer.random_scene`) of the family's incident;
- **generic** shots: sky, fades, slates and black frames drawn from one small pool shared by every video,
  independent of family, making up a share of 10-30% of every video (the paper's "mostly sky" failure case);
- **look-alike** shots: one photo tile shown (with another tint and camera path) in exactly two unrelated units
  (families or distractors): frame by frame they look alike, only their neighbouring shots tell them apart.

Relatives of each family's query: ND (two, the whole query under one or two transforms: crop, flip, colour,
logo, text, speed, resize, re-encode), DS (a contiguous segment of the query holding 15-35% of its frames, inside
another video of new content), CS (the same events as 30-60% of the query, filmed by another camera: same tiles
and scenes, another camera path, zoom and tint, plus new shots of the incident), IS (new shots of the incident).
Distractors are units of their own. Families are split into TRAINING (VCDB-shaped pairs with their overlap
segments, plus distractors) and HELD-OUT (the FIVR version ``"synthetic"``).

Every shot records its ``content`` key (``photo:<name>:<col>:<row>``, ``scene:<unit>:<k>``, ``generic:<k>``,
``lookalike:<k>``), so a test can check what any two videos share. The output folder is `neardup`'s.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..processing.atomic_files import write_json_atomic as _write_json
from .neardup import BenchmarkPaths, _is_complete, _length_after, _render_groups, _write_outputs
from .renderer import random_incident, random_scene, render_scene
from .transforms import apply_transforms, random_transform
from .video_writer import write_video

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
FPS = 1.0
ND_TRANSFORMS = ("crop", "hflip", "color_shift", "logo", "text", "speed", "resize", "reencode")
HARD_TRANSFORMS = ("crop", "speed")
GENERIC_KINDS = ("sky", "fade", "slate", "black")
TILE_PIXELS = 96  # a photo tile's short side is at least this many pixels
MAX_GRID = 6  # at most 6 x 6 tiles a photo (large, uniform photos such as retina would dominate)
DEFAULT_CRF = 23
DS_SHARE = (0.15, 0.35)  # a duplicate-scene video holds this share of its query (issue 20)
_PHOTOS: dict[str, np.ndarray] = {}  # per process: photos are decoded once


# ----------------------------------------------------------------------------------------------------
# Content sources
# ----------------------------------------------------------------------------------------------------


class _Tiles:
    """Photo tiles dealt without replacement (shuffled by the benchmark's generator); None when used up."""

    def __init__(self, rng: np.random.Generator, photo_sizes: dict[str, tuple[int, int]]):
        tiles = []
        for name, (height, width) in photo_sizes.items():
            cols = min(MAX_GRID, max(1, width // TILE_PIXELS))
            rows = min(MAX_GRID, max(1, height // TILE_PIXELS))
            tiles += [
                (name, c, r, [c / cols, r / rows, (c + 1) / cols, (r + 1) / rows])
                for c in range(cols)
                for r in range(rows)
            ]
        self.tiles = [tiles[i] for i in rng.permutation(len(tiles))]

    def take(self):
        return self.tiles.pop() if self.tiles else None


def photo_sizes() -> dict[str, tuple[int, int]]:
    """(height, width) of every bundled photo (decoded once per process)."""
    from .real_media import bundled_photos

    if not _PHOTOS:
        _PHOTOS.update(dict(bundled_photos()))
    return {name: photo.shape[:2] for name, photo in _PHOTOS.items()}


def _camera(rng: np.random.Generator) -> dict:
    return {
        "path": rng.uniform(0, 1, 4)
        .round(3)
        .tolist(),  # window centre start (x, y) and end, free-range fractions
        "window": round(float(rng.uniform(0.7, 0.95)), 3),
        "zoom": round(float(rng.uniform(0.0, 0.25)), 3),
        "tint": rng.uniform(0.85, 1.15, 3).round(3).tolist(),
        "corner": int(rng.integers(4)),
    }


def _photo_shot(rng, tile, incident: dict, num_frames: int, content: str) -> dict:
    name, col, row, box = tile
    return {
        "kind": "photo",
        "content": content or f"photo:{name}:{col}:{row}",
        "num_frames": num_frames,
        "photo": name,
        "box": box,
        **_camera(rng),
        "inset": random_scene(rng, incident, num_frames),
    }


def _scene_shot(rng, incident: dict, num_frames: int, content: str) -> dict:
    return {
        "kind": "scene",
        "content": content,
        "num_frames": num_frames,
        "scene": random_scene(rng, incident, num_frames),
    }


def generic_pool(rng: np.random.Generator, size: int = 8) -> list[dict]:
    """Generic low-information templates shared by all videos: sky gradients, fades, slates, black."""
    pool = []
    for k in range(size):
        kind = GENERIC_KINDS[k % len(GENERIC_KINDS)]
        top = rng.uniform([90, 140, 200], [140, 190, 250]) if kind == "sky" else rng.uniform(20, 235, 3)
        bottom = rng.uniform([180, 200, 220], [230, 235, 255]) if kind == "sky" else rng.uniform(20, 235, 3)
        pool.append({"kind": kind, "top": top.round(1).tolist(), "bottom": bottom.round(1).tolist()})
    return pool


def _generic_shot(rng, pool: list[dict], num_frames: int) -> dict:
    k = int(rng.integers(len(pool)))
    return {"kind": "generic", "content": f"generic:{k}", "num_frames": num_frames, "template": pool[k]}


class _Unit:
    """The content source of one family (or distractor): its incident and photo tiles, new keys per shot."""

    def __init__(self, rng, name: str, tiles: _Tiles, photo_share: float):
        self.rng, self.name, self.tiles, self.photo_share = rng, name, tiles, photo_share
        self.incident = random_incident(rng)
        self.count = 0

    def shot(self, num_frames: int) -> dict:
        self.count += 1
        tile = self.tiles.take() if self.rng.uniform() < self.photo_share else None
        if tile is not None:
            return _photo_shot(self.rng, tile, self.incident, num_frames, "")
        return _scene_shot(self.rng, self.incident, num_frames, f"scene:{self.name}:{self.count}")


def _shot_lengths(rng, total: int) -> list[int]:
    lengths = []
    while sum(lengths) < total:
        lengths.append(int(rng.integers(2, 5)))
    lengths[-1] -= sum(lengths) - total
    if lengths[-1] < 1:
        lengths.pop()
        lengths[-1] += total - sum(lengths)
    return lengths


def _with_generics(rng, shots: list[dict], share: float, pool: list[dict], keep: tuple[int, int] = (0, 0)):
    """Insert generic shots (1-3 frames, outside ``shots[keep[0]:keep[1]]``) until generic frames are at least
    `share` of the video (at most one frame more). Returns (shots, where the kept run starts now)."""
    total = _frames(shots)
    generic = sum(s["num_frames"] for s in shots if s["kind"] == "generic")
    needed = max(0, int(np.ceil((share * total - generic) / (1 - share) - 1e-9)))
    out, start, length = list(shots), keep[0], keep[1] - keep[0]
    while needed > 0:
        n = min(needed, int(rng.integers(1, 4)))
        gaps = [k for k in range(len(out) + 1) if not start < k < start + length]
        at = gaps[int(rng.integers(len(gaps)))]
        out.insert(at, _generic_shot(rng, pool, n))
        start += at <= start and length > 0
        needed -= n
    return out, start


def _segment(rng, shots: list[dict], low: float, high: float) -> tuple[int, int]:
    """A contiguous run shots[i:j] with one content shot at least, holding between `low` and `high` of the
    frames (a run exists: no shot is longer than `high - low` of the video)."""
    total = sum(s["num_frames"] for s in shots)
    target = rng.uniform(low, high)
    runs = []
    for i in range(len(shots)):
        frames = 0
        for j in range(i, len(shots)):
            frames += shots[j]["num_frames"]
            share = frames / total
            if share > high:
                break
            if share >= low and any(s["kind"] != "generic" for s in shots[i : j + 1]):
                runs.append((abs(share - target), i, j + 1))
    if not runs:
        raise ValueError(f"no run of shots holds {low:.0%}-{high:.0%} of a {total}-frame video")
    runs.sort()
    best = [r for r in runs if r[0] <= runs[0][0] + 0.05]
    _, i, j = best[int(rng.integers(len(best)))]
    return i, j


def _other_camera(rng, shot: dict, incident: dict) -> dict:
    """The same event from another camera: the same tile or scene objects, another path, zoom and tint."""
    if shot["kind"] == "photo":
        return {**shot, **_camera(rng), "inset": random_scene(rng, incident, shot["num_frames"])}
    scene = dict(shot["scene"])
    camera = dict(scene["camera"])
    camera["pos"] = (np.asarray(camera["pos"]) + rng.uniform(0.12, 0.25, 2) * rng.choice([-1, 1], 2)).tolist()
    camera["zoom"] = float(camera["zoom"] * rng.choice([rng.uniform(0.7, 0.85), rng.uniform(1.2, 1.4)]))
    backdrop = random_scene(rng, incident, scene["num_frames"])["background"]
    return {**shot, "scene": {**scene, "camera": camera, "background": backdrop}}


# ----------------------------------------------------------------------------------------------------
# Specs
# ----------------------------------------------------------------------------------------------------


def _video(video_id, role, family, split, shots, size, transforms=(), out_size=None, segments=None) -> dict:
    crf = next((t["crf"] for t in transforms if t["name"] == "reencode"), DEFAULT_CRF)
    return {
        "video_id": video_id,
        "role": role,
        "family": family,
        "split": split,
        "shots": shots,
        "scenes": [],  # the `neardup` manifest's field; shots describe these videos
        "transforms": list(transforms),
        "crf": crf,
        "size": list(out_size or size),
        "render_size": list(size),
        "segments": segments or [],
    }


def _nd_transforms(rng, num_frames: int, size, hard: bool) -> list[dict]:
    names = [str(rng.choice(HARD_TRANSFORMS))] if hard else []
    names += [str(n) for n in rng.choice(ND_TRANSFORMS, int(rng.integers(1, 3)), replace=False)]
    transforms, length = [], num_frames
    for name in dict.fromkeys(names):
        transforms.append(random_transform(rng, name, length, size))
        length = _length_after(transforms[-1], length)
    return transforms


def _content(rng, unit: _Unit, frames: int) -> list[dict]:
    return [unit.shot(n) for n in _shot_lengths(rng, frames)]


def _frames(shots: list[dict]) -> int:
    return sum(s["num_frames"] for s in shots)


def _offset(shots: list[dict], index: int) -> int:
    return _frames(shots[:index])


class _Draw:
    """The benchmark's shared state while drawing specs: generator, tiles, generic pool, look-alike pool."""

    def __init__(self, rng, seconds, generic_share, photo_share, pool, ds_share=DS_SHARE):
        self.rng, self.seconds, self.generic_share, self.photo_share, self.pool = (
            rng,
            seconds,
            generic_share,
            photo_share,
            pool,
        )
        self.ds_share = ds_share
        self.tiles = _Tiles(rng, photo_sizes())

    def length(self) -> int:
        return int(self.rng.integers(self.seconds[0], self.seconds[1] + 1))

    def share(self) -> float:
        """A generic-frame share, leaving room for the frame of rounding up (see `_with_generics`)."""
        low, high = self.generic_share
        return float(self.rng.uniform(low, max(low, high - 0.03)))

    def content(self, unit: _Unit, frames: int, lookalike: dict | None = None) -> list[dict]:
        """New content shots of `unit` (with the look-alike shot, if any, at a random place)."""
        content = _content(self.rng, unit, frames)
        if lookalike is not None:
            content.insert(int(self.rng.integers(0, len(content) + 1)), lookalike)
        return content

    def video_shots(self, unit: _Unit, frames: int, lookalike: dict | None = None) -> list[dict]:
        """About `frames` frames: new content of `unit` plus a share of generic shots."""
        share = self.share()
        content = self.content(unit, int(round(frames * (1 - share))), lookalike)
        return _with_generics(self.rng, content, share, self.pool)[0]

    def splice(self, content: list[dict], inner: list[dict]) -> tuple[list[dict], int]:
        """`inner` at a random place among `content`, then generic shots outside it -> (shots, where it starts)."""
        at = int(self.rng.integers(0, len(content) + 1))
        shots = content[:at] + inner + content[at:]
        return _with_generics(self.rng, shots, self.share(), self.pool, (at, at + len(inner)))


def _lookalikes(draw: _Draw, units: list[str], fraction: float) -> dict[str, dict]:
    """unit -> its look-alike shot: a share `fraction` of the units, in pairs that show one photo tile each."""
    rng = draw.rng
    order = [units[i] for i in rng.permutation(len(units))]
    chosen = order[: int(len(units) * fraction) // 2 * 2]
    shots = {}
    for k in range(0, len(chosen), 2):
        tile = draw.tiles.take()
        if tile is None:
            break
        incident = random_incident(rng)
        for unit in chosen[k : k + 2]:
            shots[unit] = _photo_shot(rng, tile, incident, int(rng.integers(2, 5)), f"lookalike:{k // 2}")
    return shots


def _family(draw: _Draw, f: int, split: str, size, lookalike) -> list[dict]:
    rng = draw.rng
    family = f"f{f:03d}"
    unit = _Unit(rng, family, draw.tiles, draw.photo_share)
    query = draw.video_shots(unit, draw.length(), lookalike)
    length = _frames(query)
    group = [_video(f"{family}_q", "query", family, split, query, size)]
    for k in range(2):  # near-duplicates: the whole query, transformed
        transforms = _nd_transforms(rng, length, size, hard=k == 0)
        out_size = next(((t["width"], t["height"]) for t in transforms if t["name"] == "resize"), size)
        nd_length = length
        for transform in transforms:
            nd_length = _length_after(transform, nd_length)
        segment = [[0, length, 0, nd_length]]
        group.append(
            _video(f"{family}_nd{k}", "ND", family, split, query, size, transforms, out_size, segment)
        )
    # DS: a contiguous segment of the query (15-35% by default) inside a video of new content
    i, j = _segment(rng, query, *draw.ds_share)
    filler = _Unit(rng, f"{family}ds", draw.tiles, draw.photo_share)
    share = draw.share()
    other = draw.content(filler, max(4, int(round(draw.length() * (1 - share))) - _frames(query[i:j])))
    ds, at = draw.splice(other, query[i:j])
    segment = [_offset(query, i), _offset(query, j), _offset(ds, at), _offset(ds, at + j - i)]
    group.append(_video(f"{family}_ds", "DS", family, split, ds, size, segments=[segment]))
    # CS: the same events as 30-60% of the query from another camera, plus new shots of the incident
    i, j = _segment(rng, query, 0.3, 0.6)
    seen = [_other_camera(rng, s, unit.incident) for s in query[i:j] if s["kind"] != "generic"]
    rest = draw.content(unit, max(4, int(round(draw.length() * (1 - draw.share()))) - _frames(seen)))
    group.append(_video(f"{family}_cs", "CS", family, split, draw.splice(rest, seen)[0], size))
    group.append(_video(f"{family}_is", "IS", family, split, draw.video_shots(unit, draw.length()), size))
    return group


def build_temporal_specs(
    num_sources: int,
    num_distractors: int,
    seed: int,
    size: tuple[int, int] = (128, 112),
    seconds: tuple[int, int] = (20, 40),
    generic_share: tuple[float, float] = (0.1, 0.3),
    photo_share: float = 0.5,
    lookalike_fraction: float = 0.5,
    train_fraction: float = 0.6,
    ds_share: tuple[float, float] = DS_SHARE,
) -> list[list[dict]]:
    """Every video spec, grouped by family (distractors are one-video groups); see the module docstring.
    `ds_share`: the range of the share of its query a duplicate-scene video holds (one contiguous segment; the
    range must be at least 0.2 wide, the longest shot's share of a 20 s video)."""
    if num_sources < 2:
        raise ValueError(f"num_sources must be >= 2 (training and held-out families), got {num_sources}")
    if not 0 <= generic_share[0] <= generic_share[1] < 0.5:
        raise ValueError(f"generic_share must be a range within [0, 0.5), got {generic_share}")
    if not (0 < ds_share[0] and ds_share[0] + 0.2 <= ds_share[1] + 1e-9 and ds_share[1] <= 1):
        raise ValueError(f"ds_share must be a range within (0, 1] at least 0.2 wide, got {ds_share}")
    if seconds[0] < 20 or seconds[1] < seconds[0]:
        raise ValueError(
            f"seconds must be a range of at least 20 s (15% of a video is one shot), got {seconds}"
        )
    rng = np.random.default_rng([seed, 20])
    draw = _Draw(rng, seconds, generic_share, photo_share, generic_pool(rng), tuple(ds_share))
    families = [f"f{f:03d}" for f in range(num_sources)]
    distractors = [f"d{d:03d}" for d in range(num_distractors)]
    lookalike = _lookalikes(draw, families + distractors, lookalike_fraction)
    num_train = min(num_sources - 1, max(1, int(round(train_fraction * num_sources))))
    train = set(rng.permutation(num_sources)[:num_train].tolist())
    groups = []
    for f, family in enumerate(families):
        groups.append(_family(draw, f, "train" if f in train else "test", size, lookalike.get(family)))
    num_train_d = int(round(train_fraction * num_distractors))
    for d, name in enumerate(distractors):
        unit = _Unit(rng, name, draw.tiles, draw.photo_share)
        shots = draw.video_shots(unit, draw.length(), lookalike.get(name))
        split = "train" if d < num_train_d else "test"
        groups.append([_video(name, "distractor", name, split, shots, size)])
    return groups


# ----------------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------------


def _render_photo(shot: dict, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    photo_sizes()
    photo = _PHOTOS[shot["photo"]]
    height, width = photo.shape[:2]
    x0, y0, x1, y1 = shot["box"]
    tx0, ty0, tw, th = x0 * width, y0 * height, (x1 - x0) * width, (y1 - y0) * height
    out_w, out_h = size
    frames = []
    for t in np.linspace(0.0, 1.0, shot["num_frames"]):
        view_h = th * shot["window"] * (1 - shot["zoom"] * t)
        view_w = min(tw, view_h * out_w / out_h)
        view_h = min(view_h, view_w * out_h / out_w)
        px, py, ex, ey = shot["path"]
        cx = tx0 + view_w / 2 + (px + (ex - px) * t) * (tw - view_w)
        cy = ty0 + view_h / 2 + (py + (ey - py) * t) * (th - view_h)
        box = (cx - view_w / 2, cy - view_h / 2, cx + view_w / 2, cy + view_h / 2)
        view = Image.fromarray(photo).resize((out_w, out_h), Image.Resampling.BILINEAR, box=box)
        frames.append(np.asarray(view, dtype=np.float32))
    frames = np.stack(frames) * np.float32(shot["tint"])
    inset_w, inset_h = out_w * 2 // 5 // 2 * 2, out_h * 2 // 5 // 2 * 2
    inset = render_scene(shot["inset"], (inset_w, inset_h), FPS)
    r0 = 2 if shot["corner"] in (0, 1) else out_h - inset_h - 2
    c0 = 2 if shot["corner"] in (0, 2) else out_w - inset_w - 2
    frames[:, r0 : r0 + inset_h, c0 : c0 + inset_w] = inset
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def _render_generic(shot: dict, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    template = shot["template"]
    top, bottom = np.float32(template["top"]), np.float32(template["bottom"])
    n = shot["num_frames"]
    if template["kind"] == "black":
        frame = np.full((height, width, 3), 4.0, np.float32)
    elif template["kind"] == "sky":
        ramp = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
        frame = np.broadcast_to(top + (bottom - top) * ramp, (height, width, 3)).copy()
    else:  # slate: flat colour with three bars; fade: the same slate colour, dimmed over the shot
        frame = np.broadcast_to(top, (height, width, 3)).copy()
        if template["kind"] == "slate":
            for k in range(3):
                r = height * (2 * k + 1) // 7
                frame[r : r + height // 10, width // 6 : width * 5 // 6] = bottom
    frames = np.repeat(frame[None], n, axis=0)
    if template["kind"] == "fade":
        frames *= np.linspace(1.0, 0.15, n, dtype=np.float32)[:, None, None, None]
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def render_shot(shot: dict, size: tuple[int, int]) -> np.ndarray:
    """uint8 frames [num_frames, H, W, 3] of one shot spec at `size` = (W, H)."""
    if shot["kind"] == "photo":
        return _render_photo(shot, size)
    if shot["kind"] == "scene":
        return render_scene(shot["scene"], size, FPS)
    if shot["kind"] == "generic":
        return _render_generic(shot, size)
    raise ValueError(f"unknown shot kind {shot['kind']!r}; expected photo, scene or generic")


def render_temporal_video(spec: dict) -> np.ndarray:
    """The exact frames (before encoding) of one video spec: its shots, then its transforms."""
    size = tuple(spec["render_size"])
    frames = np.concatenate([render_shot(shot, size) for shot in spec["shots"]])
    return apply_transforms(frames, spec["transforms"])


def _write_temporal_group(group: list[dict], videos_dir: str, fps: float) -> list[dict]:
    """Render and encode one family's videos; returns status records (`neardup._render_groups`' writer)."""
    records = []
    for spec in group:
        path = Path(videos_dir) / f"{spec['video_id']}.mp4"
        if path.exists():
            records.append({"video_id": spec["video_id"], "ok": True, "reused": True})
            continue
        try:
            frames = render_temporal_video(spec)
            write_video(path, frames, fps, crf=spec["crf"])
            records.append({"video_id": spec["video_id"], "ok": True, "num_frames": len(frames)})
        except Exception as error:  # noqa: BLE001 - one bad video must not stop the batch
            records.append(
                {"video_id": spec["video_id"], "ok": False, "error": f"{type(error).__name__}: {error}"}
            )
    return records


def training_segments(groups: list[list[dict]], failed: set[str] = frozenset()) -> list[dict]:
    """VCDB-shaped training pairs of the training families with their overlap segments (seconds):
    ``{"videos": [a, b], "segments": [[a_start, a_end, b_start, b_end]]}`` (query-ND, query-DS, ND-ND)."""
    pairs = []
    for group in groups:
        if group[0]["split"] != "train" or group[0]["role"] == "distractor" or group[0]["video_id"] in failed:
            continue
        query = group[0]["video_id"]
        for spec in group[1:]:
            if spec["video_id"] in failed or spec["role"] not in ("ND", "DS"):
                continue
            pairs.append({"videos": [query, spec["video_id"]], "segments": spec["segments"]})
        nds = [s["video_id"] for s in group if s["role"] == "ND" and s["video_id"] not in failed]
        pairs += [{"videos": [a, b], "segments": []} for i, a in enumerate(nds) for b in nds[i + 1 :]]
    return pairs


def generate_temporal_benchmark(
    out_dir: str | os.PathLike,
    num_sources: int = 40,
    num_distractors: int = 60,
    seed: int = 0,
    size: tuple[int, int] = (128, 112),
    seconds: tuple[int, int] = (20, 40),
    generic_share: tuple[float, float] = (0.1, 0.3),
    train_fraction: float = 0.6,
    workers: int = 1,
    progress: bool = True,
    ds_share: tuple[float, float] = DS_SHARE,
) -> BenchmarkPaths:
    """Render and encode the temporal benchmark into `out_dir` at 1 fps (``6 * num_sources + num_distractors``
    videos), in `neardup`'s layout; `train_pairs.json` adds ``"segments"`` to each pair. Resumable like
    `generate_benchmark`: a complete folder with the same parameters is reused, one with others refused."""
    width, height = int(size[0]), int(size[1])
    if width % 2 or height % 2 or width < 32 or height < 32:
        raise ValueError(f"size must be even and at least 32x32, got {width}x{height}")
    root = Path(out_dir)
    paths = BenchmarkPaths(
        root, root / "videos", root / "annotation.json", root / "train_pairs.json", root / "manifest.json",
        root / "info.json",
    )  # fmt: skip
    params = {
        "benchmark": "temporal",
        "format_version": FORMAT_VERSION,
        "num_sources": num_sources,
        "num_distractors": num_distractors,
        "seed": seed,
        "size": [width, height],
        "fps": FPS,
        "seconds": list(seconds),
        "generic_share": list(generic_share),
        "train_fraction": train_fraction,
    }
    if tuple(ds_share) != DS_SHARE:  # only when changed: folders written before the option stay complete
        params["ds_share"] = list(ds_share)
    if _is_complete(paths, params):
        return paths
    paths.videos.mkdir(parents=True, exist_ok=True)
    _write_json(root / "params.json", params)
    groups = build_temporal_specs(
        num_sources,
        num_distractors,
        seed,
        (width, height),
        seconds,
        generic_share,
        train_fraction=train_fraction,
        ds_share=tuple(ds_share),
    )
    records = _render_groups(groups, paths.videos, FPS, workers, progress, writer=_write_temporal_group)
    failed = {r["video_id"]: r["error"] for r in records if not r["ok"]}
    if failed:
        logger.warning("%d synthetic videos could not be written: %s", len(failed), sorted(failed)[:5])
    _write_outputs(paths, params, groups, failed, FPS, video_pairs=training_segments(groups, set(failed)))
    return paths


__all__ = [
    "build_temporal_specs",
    "generate_temporal_benchmark",
    "generic_pool",
    "render_shot",
    "render_temporal_video",
    "training_segments",
]
