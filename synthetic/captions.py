"""Synthetic captioned videos for LocVTP: timed events ("a red square slides left") with ground-truth spans.

Each video shows two or three events one after another on a grey textured background; an event's object is
drawn only inside its span, in a colour used once per video. The harder set (`hard=True`, the LocVTP
ablation's): three events per video separated by idle gaps (background only, so the whole video is a poor
answer), the three sharing their colour or their shape (so a query is grounded only by its action word and the
other attribute), and the caption rows are video-level only: one row per video, [0, duration], the three
event captions joined with ", then " (the grounding files still hold one query per event). Output folder::

    videos/<video_id>.mp4
    captions.csv / captions.json    rows (video_id, video_path, start, end, caption, split), seconds
    train.csv, test.csv             the same rows per split (the WebVid / HowTo100M-style input)
    charades_sta_train.txt, charades_sta_test.txt   ``video_id start end##sentence`` lines (grounding)
    manifest.json (specs), info.json (parameters; written last, a complete folder is reused)
"""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path

import numpy as np

from ..processing.atomic_files import write_atomically, write_text_atomic
from .renderer import render_scene, split_frames
from .video_writer import write_video

logger = logging.getLogger(__name__)

COLORS = {
    "red": (230, 30, 30),
    "green": (30, 200, 40),
    "blue": (30, 60, 235),
    "yellow": (240, 220, 20),
    "magenta": (225, 30, 220),
    "cyan": (20, 215, 225),
}
KINDS = ("square", "circle", "triangle")
ACTIONS = ("slides left", "slides right", "moves up", "moves down", "appears", "grows", "spins")
_TRAVEL = 0.6  # distance covered by a moving object during its span (view heights)


def _event(
    rng: np.random.Generator,
    color: str,
    start: float,
    end: float,
    kind: str | None = None,
    action: str | None = None,
) -> tuple[dict, str]:
    kind = str(rng.choice(KINDS)) if kind is None else kind
    action = str(rng.choice(ACTIONS)) if action is None else action
    span = end - start
    place = rng.uniform([-0.25, -0.2], [0.25, 0.2])
    vel, grow, spin = np.zeros(2), 0.0, 0.0
    direction = {"slides left": (-1, 0), "slides right": (1, 0), "moves up": (0, -1), "moves down": (0, 1)}
    if action in direction:
        vel = np.asarray(direction[action], dtype=float) * _TRAVEL / span
        place = place * np.asarray([0 if direction[action][0] else 1, 0 if direction[action][1] else 1])
        place = place - vel * span / 2  # centred path
    elif action == "grows":
        grow = 1.0 / span
    elif action == "spins":
        spin = 3.0
    start_scale = 1.0 / (1.0 + grow * start)  # size at span start is the base size
    shape = {
        "kind": kind,
        "color": list(COLORS[color]),
        "size": float(rng.uniform(0.1, 0.15) * start_scale),
        "pos": (place - vel * start).tolist(),
        "vel": vel.tolist(),
        "angle": 0.0,
        "spin": spin,
        "stripes": 0.0,
        "grow": grow,
        "visible": [start, end],
    }
    if spin:
        shape["angle"] = -spin * start
    return shape, f"a {color} {kind} {action}"


def _hard_events(rng: np.random.Generator, num_frames: int, fps: float) -> list[tuple[dict, dict]]:
    """Three events with idle gaps, sharing a colour or a shape, with three different actions."""
    total = num_frames / fps
    lengths = rng.uniform(0.16, 0.22, 3) * total  # each event 16-22% of the video
    gaps = rng.dirichlet(np.ones(4)) * (total - lengths.sum() - 2 * 0.06 * total)
    gaps[1:3] += 0.06 * total  # the gaps between events are at least 6% of the video
    starts = np.cumsum(np.concatenate([[gaps[0]], (lengths + gaps[1:])[:2]]))
    actions = [str(a) for a in rng.choice(ACTIONS, 3, replace=False)]
    if rng.random() < 0.5:  # shared colour, three shapes
        colors = [str(rng.choice(list(COLORS)))] * 3
        kinds = [str(k) for k in rng.permutation(KINDS)]
    else:  # shared shape, three colours
        colors = [str(c) for c in rng.choice(list(COLORS), 3, replace=False)]
        kinds = [str(rng.choice(KINDS))] * 3
    events = []
    for k in range(3):
        a = np.round(starts[k] * fps) / fps
        b = min(np.round((starts[k] + lengths[k]) * fps) / fps, total)
        shape, caption = _event(rng, colors[k], float(a), float(b), kinds[k], actions[k])
        events.append((shape, {"start": round(float(a), 4), "end": round(float(b), 4), "caption": caption,
                               "color": colors[k]}))  # fmt: skip
    return events


def build_caption_specs(
    num_videos: int, seed: int, fps: float, duration: float, test_fraction: float = 0.3, hard: bool = False
) -> list[dict]:
    """Video specs with their events (deterministic by seed; `hard`: the harder set, module docstring)."""
    rng = np.random.default_rng(seed)
    num_frames = max(6, int(round(duration * fps)))
    total = num_frames / fps
    num_test = max(1, int(round(test_fraction * num_videos))) if num_videos > 1 else 0
    specs = []
    for v in range(num_videos):
        if hard:
            pairs = _hard_events(rng, num_frames, fps)
            shapes, events = [p[0] for p in pairs], [p[1] for p in pairs]
            specs.append(_video_spec(rng, v, num_videos, num_test, num_frames, shapes, events))
            specs[-1]["caption"] = ", then ".join(e["caption"] for e in events)
            continue
        num_events = int(rng.integers(2, 4))
        # Event boundaries on frame times, in order, each at least ~40% of an even share.
        bounds = np.concatenate([[0], np.cumsum(split_frames(rng, num_frames, num_events))])
        colors = [str(c) for c in rng.choice(list(COLORS), num_events, replace=False)]
        shapes, events = [], []
        for k in range(num_events):
            start, end = bounds[k] / fps, bounds[k + 1] / fps
            shape, caption = _event(rng, colors[k], float(start), float(end))
            shapes.append(shape)
            events.append(
                {
                    "start": round(float(start), 4),
                    "end": round(min(float(end), total), 4),
                    "caption": caption,
                    "color": colors[k],
                }
            )
        specs.append(_video_spec(rng, v, num_videos, num_test, num_frames, shapes, events))
    return specs


def _video_spec(rng, v: int, num_videos: int, num_test: int, num_frames: int, shapes, events) -> dict:
    """One video's spec: its scene (textured grey background, static camera, the event shapes)."""
    grey = rng.uniform(90, 150)
    scene = {
        "num_frames": num_frames,
        "t0": 0.0,
        "background": {
            "colors": [[grey] * 3, [grey + 40] * 3, [grey - 40] * 3],
            "freqs": rng.uniform(-2, 2, (3, 2)).round(3).tolist(),
            "phases": rng.uniform(0, 6.28, 3).round(3).tolist(),
        },
        "camera": {"pos": [0.0, 0.0], "vel": [0.0, 0.0], "zoom": 1.0, "zoom_rate": 0.0},
        "shapes": shapes,
    }
    return {
        "video_id": f"cap_{v:03d}",
        "split": "test" if v >= num_videos - num_test else "train",
        "scene": scene,
        "events": events,
    }


def _write_csv(path: Path, rows: list[dict]) -> None:
    def write(temporary: Path) -> None:
        with open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(
                handle, fieldnames=["video_id", "video_path", "start", "end", "caption", "split"]
            )
            writer.writeheader()
            writer.writerows(rows)

    write_atomically(path, write)


def _render_videos(specs: list[dict], videos_dir: Path, size: tuple[int, int], fps: float, progress: bool):
    """Write each spec's video (kept when already there) -> (caption rows, failures, written paths)."""
    from tqdm.auto import tqdm

    rows, failed, written = [], [], []
    for spec in tqdm(specs, desc="captioned videos", unit="video", disable=not progress):
        path = (videos_dir / f"{spec['video_id']}.mp4").resolve()
        try:
            if not path.exists():
                write_video(path, render_scene(spec["scene"], size, fps), fps)
        except Exception as error:  # noqa: BLE001 - skip and report one bad video
            failed.append({"video_id": spec["video_id"], "error": f"{type(error).__name__}: {error}"})
            continue
        written.append(str(path))
        if "caption" in spec:  # the harder set: one video-level row
            total = spec["scene"]["num_frames"] / fps
            rows.append(
                {
                    "video_id": spec["video_id"],
                    "video_path": str(path),
                    "start": 0.0,
                    "end": round(total, 4),
                    "caption": spec["caption"],
                    "split": spec["split"],
                }
            )
            continue
        rows += [
            {
                "video_id": spec["video_id"],
                "video_path": str(path),
                "start": e["start"],
                "end": e["end"],
                "caption": e["caption"],
                "split": spec["split"],
            }
            for e in spec["events"]
        ]
    return rows, failed, written


def _write_tables(paths: dict[str, Path], rows: list[dict], specs: list[dict], failed: list[dict]) -> None:
    """captions.csv/json, the per-split CSVs and the Charades-STA files (one query per event)."""
    failed_ids = {f["video_id"] for f in failed}
    queries = {  # grounding queries: one per event (the harder set's caption rows are video-level)
        split: [
            {"video_id": spec["video_id"], **e}
            for spec in specs
            if spec["split"] == split and spec["video_id"] not in failed_ids
            for e in spec["events"]
        ]
        for split in ("train", "test")
    }
    _write_csv(paths["captions.csv"], rows)
    write_text_atomic(paths["captions.json"], json.dumps(rows, indent=1))
    for split in ("train", "test"):
        split_rows = [r for r in rows if r["split"] == split]
        _write_csv(paths[f"{split}.csv"], split_rows)
        write_text_atomic(
            paths[f"charades_sta_{split}.txt"],
            "".join(
                f"{r['video_id']} {r['start']:.2f} {r['end']:.2f}##{r['caption']}\n" for r in queries[split]
            ),
        )


def generate_captioned_videos(
    out_dir: str | os.PathLike,
    num_videos: int = 40,
    seed: int = 0,
    size: tuple[int, int] = (112, 112),
    fps: float = 8.0,
    duration: float = 6.0,
    test_fraction: float = 0.3,
    progress: bool = True,
    hard: bool = False,
) -> dict[str, Path]:
    """Render the captioned set into `out_dir`; returns the paths of its files (see the module docstring).
    Video paths in the CSV/JSON are absolute. Resumable; a complete folder with the same parameters is reused."""
    width, height = int(size[0]), int(size[1])
    if width % 2 or height % 2 or min(width, height) < 16:
        raise ValueError(f"size must be even and at least 16x16, got {width}x{height}")
    root = Path(out_dir)
    paths = {
        name: root / name
        for name in (
            "captions.csv",
            "captions.json",
            "train.csv",
            "test.csv",
            "charades_sta_train.txt",
            "charades_sta_test.txt",
            "manifest.json",
            "info.json",
        )
    }
    paths["videos"] = root / "videos"
    params = {
        "num_videos": num_videos,
        "seed": seed,
        "size": [width, height],
        "fps": fps,
        "duration": duration,
        "test_fraction": test_fraction,
    }
    if hard:
        params["hard"] = True  # absent for the original set, so its existing folders are still reused
    if paths["info.json"].exists():
        info = json.loads(paths["info.json"].read_text())
        if info.get("params") != params:
            raise ValueError(
                f"{root} holds a captioned set made with other parameters ({info.get('params')}); "
                "use another output folder or delete it"
            )
        if all(Path(p).exists() for p in info["videos"]):
            return paths
    paths["videos"].mkdir(parents=True, exist_ok=True)
    specs = build_caption_specs(num_videos, seed, fps, duration, test_fraction, hard)
    rows, failed, written = _render_videos(specs, paths["videos"], (width, height), fps, progress)
    _write_tables(paths, rows, specs, failed)
    write_text_atomic(
        paths["manifest.json"],
        json.dumps({"fps": fps, "size": [width, height], "videos": specs, "failed": failed}, indent=1),
    )
    write_text_atomic(
        paths["info.json"],
        json.dumps(
            {"params": params, "videos": written, "num_failed": len(failed), "complete": True}, indent=1
        ),
    )
    if failed:
        logger.warning("%d captioned videos could not be written: %s", len(failed), failed)
    return paths


if __name__ == "__main__":
    from vidtempo.cli.synthetic import captions_main

    raise SystemExit(captions_main())
