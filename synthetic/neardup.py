"""Synthetic near-duplicate video retrieval benchmark in the FIVR schema (ND / DS / CS / IS + distractors).

Every *family* is one incident (a palette and an object set). Its query is a multi-scene source video;
its relatives are written as real video files:

- ND: the query transformed (strong crop, flip, colour shift, logo / text overlay, speed change, trim,
  resolution change, low-quality re-encode; one or two of them);
- DS: one or two of the query's scenes, unchanged, spliced with a scene of another incident;
- CS: the same events (same objects, same motion, same moments) seen by another camera (shifted, zoomed,
  facing another part of the location, so with another backdrop);
- IS: new scenes of the same incident (same objects and palette, other motion and backgrounds).

Every video is uploaded by one of ``num_channels`` channels, which prepends its intro bumper and stamps its
watermark on every frame. NDs are re-uploads, by another channel than the query's. So unrelated videos of
one channel share an intro and a watermark while copies do not, as on real platforms: the regularity a
trained model can learn (look past the channel) and a training-free baseline cannot.

Distractors are families of their own; a third of them copy a family's palette with small perturbations.
Families are split into TRAINING (VCDB-like positive pairs + negatives for the TCA data loader) and
HELD-OUT (the FIVR-schema version ``"synthetic"``), so held-out families never appear in training.

Output folder::

    videos/<video_id>.mp4      annotation.json (FIVR schema, versions "synthetic" = held out, "train")
    train_pairs.json           {"video_pairs": [{"videos": [a, b]}], "negs": [distractors],
                                "hard_negs": [training CS/IS videos: same incident, not copies], "videos": [...]}
    manifest.json (how every video was made)   failed.jsonl (videos that could not be written)
    info.json (parameters; written last and only when complete; a complete folder is reused)
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..processing.atomic_files import write_json_atomic as _write_json
from .renderer import random_incident, random_scene, render_scenes, split_frames
from .transforms import apply_transforms, random_transform, speed_indices
from .video_writer import write_video

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
ND_TRANSFORMS = ("crop", "hflip", "color_shift", "logo", "text", "speed", "trim", "resize", "reencode")
HARD_TRANSFORMS = ("crop", "speed", "trim")
DEFAULT_CRF = 23


@dataclass
class BenchmarkPaths:
    """Where `generate_benchmark` wrote everything."""

    root: Path
    videos: Path
    annotation: Path
    train_pairs: Path
    manifest: Path
    info: Path

    def to_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


# ----------------------------------------------------------------------------------------------------
# Specs: every random number is drawn here, in the parent process, from one generator
# ----------------------------------------------------------------------------------------------------


def _source_scenes(rng: np.random.Generator, incident: dict, num_frames: int) -> list[dict]:
    lengths = split_frames(rng, num_frames, int(rng.integers(2, 4)))
    return [random_scene(rng, incident, n, t0=float(rng.uniform(0, 2))) for n in lengths]


def _other_viewpoint(rng: np.random.Generator, scene: dict, incident: dict) -> dict:
    """The same event (same shapes moving the same way at the same event times) filmed by another camera:
    shifted and zoomed, and facing another part of the location, so the backdrop behind the shapes is
    another pattern of the incident's palette. (A camera that only moved over the same stationary texture
    would be indistinguishable from a cropped copy, which is an ND, not a CS.)"""
    camera = dict(scene["camera"])
    shift = rng.uniform(0.12, 0.25, 2) * rng.choice([-1, 1], 2)
    camera["pos"] = (np.asarray(camera["pos"]) + shift).tolist()
    camera["vel"] = rng.uniform(-0.08, 0.08, 2).tolist()
    camera["zoom"] = float(camera["zoom"] * rng.choice([rng.uniform(0.7, 0.85), rng.uniform(1.2, 1.4)]))
    backdrop = random_scene(rng, incident, scene["num_frames"])["background"]
    return {**scene, "camera": camera, "background": backdrop}


def _length_after(transform: dict, length: int) -> int:
    """Number of frames after `transform` is applied to a `length`-frame video."""
    if transform["name"] == "speed":
        return len(speed_indices(length, transform["factor"]))
    if transform["name"] == "trim":
        return transform["length"]
    return length


def _video(
    video_id: str,
    role: str,
    family: str,
    split: str,
    scenes: list[dict],
    transforms=(),
    size=None,
    render_size=None,
) -> dict:
    render_size = render_size or size
    crf = next((t["crf"] for t in transforms if t["name"] == "reencode"), DEFAULT_CRF)
    return {
        "video_id": video_id,
        "role": role,
        "family": family,
        "split": split,
        "scenes": scenes,
        "transforms": list(transforms),
        "crf": crf,
        "size": list(size),
        "render_size": list(render_size),
    }


def _nd_transforms(
    rng: np.random.Generator, num_frames: int, size: tuple[int, int], hard: bool
) -> list[dict]:
    """A near-duplicate's transforms: one or two of `ND_TRANSFORMS` (after a `HARD_TRANSFORMS` one if `hard`),
    each with parameters that fit the video as the previous ones left it."""
    names = [str(rng.choice(HARD_TRANSFORMS))] if hard else []
    names += [str(n) for n in rng.choice(ND_TRANSFORMS, int(rng.integers(1, 3)), replace=False)]
    transforms, length = [], num_frames
    for name in dict.fromkeys(names):
        transforms.append(random_transform(rng, name, length, size))
        length = _length_after(transforms[-1], length)
    return transforms


def _ds_scenes(rng: np.random.Generator, scenes: list, num_frames: int) -> list:
    """DS: one or two of the query's scenes spliced with a scene of an unrelated incident."""
    keep = sorted(rng.choice(len(scenes), min(len(scenes) - 1, int(rng.integers(1, 3))) or 1, replace=False))
    other = random_scene(rng, random_incident(rng), int(rng.integers(num_frames // 4, num_frames // 2 + 2)))
    ds_scenes = [scenes[i] for i in keep]
    ds_scenes.insert(int(rng.integers(0, len(ds_scenes) + 1)), other)
    return ds_scenes


def _distractor_incident(rng: np.random.Generator, incidents: list | None) -> dict:
    """An unrelated incident; with `incidents`, one with the palette of a random one of them (other objects)."""
    near = incidents[int(rng.integers(len(incidents)))] if incidents is not None else None
    incident = random_incident(rng, near=near)
    if near is not None:  # similar palette, different objects
        incident["objects"] = random_incident(rng)["objects"]
        for obj in incident["objects"]:
            obj["color"] = incident["palette"][int(rng.integers(5))]
    return incident


def build_specs(
    num_sources: int,
    num_distractors: int,
    seed: int,
    size: tuple[int, int],
    fps: float,
    duration: float,
    nd_per_source: int = 2,
    train_fraction: float = 0.6,
    num_channels: int = 8,
) -> list[list[dict]]:
    """All video specs, grouped by family (one group = one worker job; distractors are one-video groups).
    With ``num_channels > 0`` every video is uploaded by a channel (`assign_channels`)."""
    if num_sources < 1:
        raise ValueError(f"num_sources must be >= 1, got {num_sources}")
    num_frames = max(4, int(round(duration * fps)))
    rng = np.random.default_rng(seed)
    incidents = [random_incident(rng) for _ in range(num_sources)]
    num_train = min(num_sources - 1, int(round(train_fraction * num_sources))) if num_sources > 1 else 0
    train_families = set(rng.permutation(num_sources)[:num_train].tolist())
    groups = []
    for f, incident in enumerate(incidents):
        family, split = f"f{f:03d}", "train" if f in train_families else "test"
        scenes = _source_scenes(rng, incident, num_frames)
        group = [_video(f"{family}_q", "query", family, split, scenes, size=size)]
        for k in range(nd_per_source):
            transforms = _nd_transforms(rng, num_frames, size, hard=k == 0)
            out_size = next(((t["width"], t["height"]) for t in transforms if t["name"] == "resize"), size)
            group.append(_video(f"{family}_nd{k}", "ND", family, split, scenes, transforms, out_size, size))
        group.append(
            _video(f"{family}_ds", "DS", family, split, _ds_scenes(rng, scenes, num_frames), size=size)
        )
        # CS: the same events from another viewpoint.
        group.append(
            _video(
                f"{family}_cs",
                "CS",
                family,
                split,
                [_other_viewpoint(rng, s, incident) for s in scenes],
                size=size,
            )
        )
        # IS: the same incident, other scenes.
        group.append(
            _video(f"{family}_is", "IS", family, split, _source_scenes(rng, incident, num_frames), size=size)
        )
        groups.append(group)
    num_train_d = int(round(train_fraction * num_distractors)) if num_sources > 1 else 0
    for d in range(num_distractors):
        incident = _distractor_incident(rng, incidents if d % 3 == 0 else None)
        split = "train" if d < num_train_d else "test"
        scenes = _source_scenes(rng, incident, num_frames)
        groups.append([_video(f"d{d:03d}", "distractor", f"d{d:03d}", split, scenes, size=size)])
    if num_channels > 0:
        assign_channels(groups, num_channels, np.random.default_rng([seed, 1]), fps)
    return groups


def random_channel(rng: np.random.Generator, fps: float) -> dict:
    """An uploader channel: an intro bumper (1.5-2.5 s of its own animated scene) and a corner watermark."""
    intro = random_scene(rng, random_incident(rng), max(1, int(round(rng.uniform(1.5, 2.5) * fps))))
    w, h = rng.uniform(0.1, 0.16), rng.uniform(0.1, 0.16)
    x0, y0 = rng.choice([0.02, 0.98 - w]), rng.choice([0.02, 0.98 - h])
    watermark = {
        "name": "logo",
        "box": [round(x0, 3), round(y0, 3), round(x0 + w, 3), round(y0 + h, 3)],
        "color": rng.integers(0, 256, 3).tolist(),
        "color2": rng.integers(0, 256, 3).tolist(),
    }
    return {"intro": intro, "watermark": watermark}


def assign_channels(
    groups: list[list[dict]], num_channels: int, rng: np.random.Generator, fps: float
) -> None:
    """Give every video an uploader channel (in place): its intro is prepended and its watermark stamped on
    every frame, as platforms' channels do. Near-duplicates are re-uploads, so always by another channel
    than the query's; other relatives and distractors come from any channel. Unrelated videos of one
    channel therefore share content (intro, watermark) and copies do not: a retrieval model has to learn
    to look past the channel, which no training-free baseline can."""
    channels = [random_channel(rng, fps) for _ in range(num_channels)]
    for group in groups:
        query_channel = int(rng.integers(num_channels))
        for spec in group:
            channel = (
                query_channel if spec["role"] in ("query", "distractor") else int(rng.integers(num_channels))
            )
            if spec["role"] == "ND" and num_channels > 1:
                channel = int((query_channel + rng.integers(1, num_channels)) % num_channels)
            spec["channel"] = {"id": channel, **channels[channel]}


def render_video(spec: dict, fps: float, cache: dict | None = None) -> np.ndarray:
    """The exact frames (before encoding) of one video spec: uint8 [T, H, W, 3]. Scenes render at the
    benchmark size (``render_size``); transforms (a `resize` included) apply afterwards; then the channel's
    intro (rendered at the output size) is prepended and its watermark stamped on every frame."""
    key = json.dumps(spec["scenes"], sort_keys=True)
    frames = None if cache is None else cache.get(key)
    if frames is None:
        frames = render_scenes(spec["scenes"], tuple(spec["render_size"]), fps)
        if cache is not None:
            cache[key] = frames
    frames = apply_transforms(frames, spec["transforms"])
    channel = spec.get("channel")
    if channel:
        height, width = frames.shape[1:3]
        intro = render_scenes([channel["intro"]], (width, height), fps)
        frames = apply_transforms(np.concatenate([intro, frames]), [channel["watermark"]])
    return frames


def _write_group(group: list[dict], videos_dir: str, fps: float) -> list[dict]:
    """Render and encode one family's videos (source frames rendered once); returns status records."""
    cache: dict = {}
    records = []
    for spec in group:
        path = Path(videos_dir) / f"{spec['video_id']}.mp4"
        if path.exists():
            records.append({"video_id": spec["video_id"], "ok": True, "reused": True})
            continue
        try:
            frames = render_video(spec, fps, cache)
            write_video(path, frames, fps, crf=spec["crf"])
            records.append({"video_id": spec["video_id"], "ok": True, "num_frames": len(frames)})
        except Exception as error:  # noqa: BLE001 - one bad video must not stop the batch
            records.append(
                {"video_id": spec["video_id"], "ok": False, "error": f"{type(error).__name__}: {error}"}
            )
    return records


# ----------------------------------------------------------------------------------------------------
# Annotations
# ----------------------------------------------------------------------------------------------------


def build_annotations(groups: list[list[dict]], failed: set[str] = frozenset()) -> tuple[dict, dict]:
    """(FIVR-schema annotation, VCDB-like training pairs) from the specs, leaving out failed videos."""
    versions = {"synthetic": {"queries": [], "database": []}, "train": {"queries": [], "database": []}}
    annotation, pairs, negs, hard_negs = {}, [], [], []
    for group in groups:
        ok = [v for v in group if v["video_id"] not in failed]
        split = group[0]["split"]
        version = versions["synthetic" if split == "test" else "train"]
        if group[0]["role"] == "distractor":
            version["database"] += [v["video_id"] for v in ok]
            if split == "train":
                negs += [v["video_id"] for v in ok]
            continue
        query = group[0]["video_id"]
        relatives = [v for v in ok if v["role"] != "query"]
        version["database"] += [v["video_id"] for v in relatives]
        if query in failed:
            continue
        version["queries"].append(query)
        labels = {
            label: [v["video_id"] for v in relatives if v["role"] == label]
            for label in ("ND", "DS", "CS", "IS")
        }
        annotation[query] = {**labels, "DA": []}
        if split == "train":  # copies and partial copies are the positives TCA learns from
            copies = [query] + labels["ND"] + labels["DS"]
            pairs += [{"videos": [a, b]} for i, a in enumerate(copies) for b in copies[i + 1 :]]
            hard_negs += labels["CS"] + labels["IS"]
    fivr = {"versions": versions, "annotation": annotation}
    train = {
        "video_pairs": pairs,
        "negs": negs,
        "hard_negs": hard_negs,
        "videos": sorted({v["video_id"] for g in groups for v in g if v["split"] == "train"} - set(failed)),
    }
    return fivr, train


# ----------------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------------


def generate_benchmark(
    out_dir: str | os.PathLike,
    num_sources: int = 40,
    num_distractors: int = 60,
    seed: int = 0,
    size: tuple[int, int] = (128, 96),
    fps: float = 8.0,
    duration: float = 6.0,
    nd_per_source: int = 2,
    train_fraction: float = 0.6,
    num_channels: int = 8,
    workers: int = 1,
    progress: bool = True,
) -> BenchmarkPaths:
    """Render and encode the benchmark into `out_dir` (``6 * num_sources + num_distractors`` videos when
    ``nd_per_source=2``). Resumable: finished videos are kept, and a complete folder with the same
    parameters is returned as is; a folder made with other parameters is refused."""
    width, height = int(size[0]), int(size[1])
    if width % 2 or height % 2 or width < 16 or height < 16:
        raise ValueError(f"size must be even and at least 16x16, got {width}x{height}")
    if fps <= 0 or duration <= 0:
        raise ValueError(f"fps and duration must be positive, got fps={fps}, duration={duration}")
    root = Path(out_dir)
    paths = BenchmarkPaths(
        root,
        root / "videos",
        root / "annotation.json",
        root / "train_pairs.json",
        root / "manifest.json",
        root / "info.json",
    )
    params = {
        "format_version": FORMAT_VERSION,
        "num_sources": num_sources,
        "num_distractors": num_distractors,
        "seed": seed,
        "size": [width, height],
        "fps": fps,
        "duration": duration,
        "nd_per_source": nd_per_source,
        "train_fraction": train_fraction,
        "num_channels": num_channels,
    }
    if _is_complete(paths, params):
        return paths  # complete; a run with failures is retried (finished videos are kept)
    paths.videos.mkdir(parents=True, exist_ok=True)
    _write_json(root / "params.json", params)

    groups = build_specs(
        num_sources,
        num_distractors,
        seed,
        (width, height),
        fps,
        duration,
        nd_per_source,
        train_fraction,
        num_channels,
    )
    records = _render_groups(groups, paths.videos, fps, workers, progress)
    failed = {r["video_id"]: r["error"] for r in records if not r["ok"]}
    if failed:
        with open(root / "failed.jsonl", "a") as handle:
            for video_id, error in failed.items():
                handle.write(json.dumps({"video_id": video_id, "error": error}) + "\n")
        logger.warning(
            "%d synthetic videos could not be written (see %s)", len(failed), root / "failed.jsonl"
        )
    _write_outputs(paths, params, groups, failed, fps)
    return paths


def _is_complete(paths: BenchmarkPaths, params: dict) -> bool:
    """Whether `paths.root` holds a finished benchmark of `params` (ValueError: made with other parameters)."""
    params_file = paths.root / "params.json"
    if not params_file.exists():
        return False
    previous = json.loads(params_file.read_text())
    if previous != params:
        raise ValueError(
            f"{paths.root} holds a benchmark made with other parameters ({previous}); "
            "use another output folder or delete it"
        )
    manifest = json.loads(paths.manifest.read_text()) if paths.info.exists() else None
    return bool(
        manifest
        and not manifest["failed"]
        and all((paths.videos / f"{v}.mp4").exists() for v in manifest["ok_videos"])
    )


def _render_groups(
    groups: list, videos_dir: Path, fps: float, workers: int, progress: bool, writer=None
) -> list[dict]:
    """Write every group's videos (in `workers` processes) -> one record per video (``ok``, ``error``).
    `writer(group, videos_dir, fps)` renders one group (default: this module's `_write_group`)."""
    from tqdm.auto import tqdm

    writer = writer or _write_group
    records = []
    bar = tqdm(total=sum(len(g) for g in groups), desc="synthetic videos", unit="video", disable=not progress)
    if workers <= 1:
        for group in groups:
            records += writer(group, str(videos_dir), fps)
            bar.update(len(group))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(writer, g, str(videos_dir), fps): len(g) for g in groups}
            for future in as_completed(futures):
                records += future.result()
                bar.update(futures[future])
    bar.close()
    return records


def _write_outputs(
    paths: BenchmarkPaths, params: dict, groups: list, failed: dict, fps: float, video_pairs=None
) -> None:
    """The annotation, training pairs (`video_pairs` replaces the default pairs), manifest and (last, marking
    the folder complete) info files."""
    fivr, train = build_annotations(groups, set(failed))
    if video_pairs is not None:
        train["video_pairs"] = video_pairs
    videos = [
        {k: v for k, v in spec.items() if k != "scenes"}
        | {"path": f"videos/{spec['video_id']}.mp4", "num_scenes": len(spec["scenes"])}
        for g in groups
        for spec in g
    ]
    _write_json(paths.annotation, fivr)
    _write_json(paths.train_pairs, train)
    _write_json(
        paths.manifest,
        {
            "fps": fps,
            "videos": videos,
            "failed": sorted(failed),
            "ok_videos": sorted({v["video_id"] for v in videos} - set(failed)),
            "specs": groups,
        },
    )
    _write_json(
        paths.info,
        {
            **params,
            "num_videos": len(videos) - len(failed),
            "num_failed": len(failed),
            "complete": True,
            "paths": paths.to_dict(),
        },
    )


if __name__ == "__main__":
    from vidtempo.cli.synthetic import neardup_main

    raise SystemExit(neardup_main())
