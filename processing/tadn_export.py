"""Clip features in the files 2D-TAN's dataset readers open (Zhang et al., AAAI 2020; LocVTP's grounding
protocol, `METHODS.md` §2.4): one HDF5 file per dataset, one entry per video, features [num_clips, D].

Layout per dataset (file name inside 2D-TAN's ``DATA_DIR``; how its reader gets a video's features):

| dataset | file | features of video `vid` |
| --- | --- | --- |
| ``charades`` (Charades-STA) | ``{VIS_INPUT_TYPE}_features.hdf5`` | ``f[vid][:]`` |
| ``activitynet`` (ActivityNet Captions) | ``sub_activitynet_v1-3.c3d.hdf5`` | ``f[vid]['c3d_features'][:]`` |
| ``tacos`` (TACoS) | ``tall_c3d_features.hdf5`` (its reader asserts ``VIS_INPUT_TYPE: c3d``) | ``f[vid][:]`` |

2D-TAN assumes the clips cover the video uniformly: it averages them to ``NUM_SAMPLE_CLIPS`` bins and
gives bin i the times [i, i + 1] · duration / NUM_SAMPLE_CLIPS. `uniform_clip_features` makes that true
of LocVTP's consecutive clips (whose last clip is usually shorter): bin j of n covers
[j, j + 1] · duration / n and is the overlap-weighted mean of the clips it overlaps. Charades-STA's reader
also needs the durations (``Charades_v1_{split}.csv``, columns ``id``, ``length``), which
`write_charades_durations` writes. Config values to set in 2D-TAN's experiment YAML: ``DATASET.VIS_INPUT_TYPE``
(Charades-STA: the file's prefix; TACoS: ``c3d``), ``TAN.FRAME_MODULE.PARAMS.INPUT_SIZE: D`` (the feature size,
e.g. 512 for LocVTP's projection), and ``NUM_SAMPLE_CLIPS`` no larger than the exported clip count unless
repeated clips are wanted (see docs/locvtp.md).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .atomic_files import write_atomically

TADN_DATASETS = ("charades", "activitynet", "tacos")


def tadn_file_name(dataset: str, vis_input_type: str = "locvtp") -> str:
    """The HDF5 file name 2D-TAN's reader of `dataset` opens (Charades-STA: `{vis_input_type}_features`)."""
    if dataset not in TADN_DATASETS:
        raise ValueError(f"2D-TAN dataset must be one of {TADN_DATASETS}, got {dataset!r}")
    return {
        "charades": f"{vis_input_type}_features.hdf5",
        "activitynet": "sub_activitynet_v1-3.c3d.hdf5",
        "tacos": "tall_c3d_features.hdf5",
    }[dataset]


def uniform_clip_features(
    features: np.ndarray, clip_times: np.ndarray, duration: float | None = None, num_clips: int | None = None
) -> np.ndarray:
    """[n, D] features of `n` (default: as many as given) equal bins over [0, duration] (default: the last
    clip's end): each bin the overlap-weighted mean of the clips [T, 2] (seconds) that overlap it."""
    features = np.asarray(features, dtype=np.float64)
    clip_times = np.asarray(clip_times, dtype=np.float64)
    if features.ndim != 2 or clip_times.shape != (len(features), 2) or len(features) == 0:
        raise ValueError(
            f"features must be [T, D] with T > 0 and clip_times [T, 2], got {features.shape}, {clip_times.shape}"
        )
    duration = float(clip_times[-1, 1]) if duration is None else float(duration)
    n = len(features) if num_clips is None else int(num_clips)
    if not duration > 0 or n <= 0:
        raise ValueError(f"need a positive duration and bin count, got duration={duration}, num_clips={n}")
    edges = np.linspace(0.0, duration, n + 1)
    overlap = np.clip(
        np.minimum(edges[1:, None], clip_times[None, :, 1])
        - np.maximum(edges[:-1, None], clip_times[None, :, 0]),
        0.0,
        None,
    )  # [n, T] seconds of clip t inside bin j
    empty = overlap.sum(1) <= 0
    if empty.any():  # a bin no clip reaches (times not covering the duration): the nearest clip
        centres = clip_times.mean(1)
        nearest = np.abs(((edges[:-1] + edges[1:]) / 2)[:, None] - centres[None]).argmin(1)
        overlap[empty, nearest[empty]] = 1.0
    return (overlap / overlap.sum(1, keepdims=True)) @ features


def write_tadn_features(
    out_dir: str | os.PathLike,
    dataset: str,
    features: Mapping[str, np.ndarray],
    vis_input_type: str = "locvtp",
) -> Path:
    """One HDF5 file (`tadn_file_name`) in `out_dir` holding every video's features [num_clips, D] float32 in
    the layout 2D-TAN's reader of `dataset` expects, written atomically. All videos must share D."""
    import h5py

    name = tadn_file_name(dataset, vis_input_type)
    if not features:
        raise ValueError(f"{name}: no video features to write")
    dims = {np.asarray(f).shape[-1] for f in features.values()}
    for video_id, f in features.items():
        if np.asarray(f).ndim != 2 or len(f) == 0:
            raise ValueError(
                f"{name}: features of {video_id!r} must be [num_clips > 0, D], got {np.shape(f)}"
            )
        if not video_id or "/" in video_id:
            raise ValueError(f"{name}: video id {video_id!r} is not usable as an HDF5 key")
    if len(dims) != 1:
        raise ValueError(f"{name}: every video needs the same feature size D, got {sorted(dims)}")
    Path(out_dir).mkdir(parents=True, exist_ok=True)

    def save(temporary: Path) -> None:
        with h5py.File(temporary, "w") as handle:
            handle.attrs["feature_size"] = int(dims.pop())
            handle.attrs["layout"] = f"2D-TAN {dataset}"
            for video_id in sorted(features):
                data = np.asarray(features[video_id], dtype=np.float32)
                if dataset == "activitynet":
                    handle.create_group(video_id).create_dataset("c3d_features", data=data)
                else:
                    handle.create_dataset(video_id, data=data)

    return write_atomically(Path(out_dir) / name, save)


def write_charades_durations(out_dir: str | os.PathLike, durations: Mapping[str, float], split: str) -> Path:
    """`Charades_v1_{split}.csv` (columns id, length in seconds): the durations 2D-TAN's Charades-STA reader
    takes from the Charades metadata."""

    def save(temporary: Path) -> None:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "length"])
            for video_id in sorted(durations):
                writer.writerow([video_id, f"{float(durations[video_id]):.3f}"])

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return write_atomically(Path(out_dir) / f"Charades_v1_{split}.csv", save)


__all__ = [
    "TADN_DATASETS",
    "tadn_file_name",
    "uniform_clip_features",
    "write_charades_durations",
    "write_tadn_features",
]
