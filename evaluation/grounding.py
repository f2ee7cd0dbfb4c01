"""Temporal grounding with clip-level features (`METHODS.md` §2.4).

* `read_charades_sta`: the Charades-STA annotation format, one ``video_id start end##sentence`` per line.
* `temporal_iou`, `nms`: IoU of [start, end] spans (seconds) and greedy non-maximum suppression.
* `sliding_windows`, `score_windows`, `window_scores`, `ground_sentence`: zero-shot grounding.
* `grounding_metrics`: R@n,IoU=m — share of queries where any of the top-n moments (after NMS) has IoU
  STRICTLY greater than m with the ground truth — and mIoU of the top-1 moment.
* `reference_metrics`: the rows every grounding table reports next to a model: the whole video and a random
  window (the untrained model is the third, computed by `locvtp_eval`).
* `export_clip_features`, `load_clip_features`: one ``<video_id>.npz`` per video (`tadn_export` writes the
  one-HDF5-per-dataset files 2D-TAN reads).

The window score (inside-minus-outside, every window incl. the full video on one scale), NMS and
`grounding_metrics` have their one home in `modeling/grounding_scoring.py` (shipped standalone with LocVTP repos
and the `grounding_recall` evaluate module); this module re-exports them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..modeling.grounding_scoring import (
    DEFAULT_SCORE,
    DEFAULT_THRESHOLDS,
    DEFAULT_TOPN,
    SCORE_MODES,
    constant_scores,
    grounding_metrics,
    nms,
    score_windows,
    sliding_windows,
    temporal_iou,
    window_scores,
)
from .degenerate import DegenerateScoresWarning


def read_charades_sta(path: str | os.PathLike) -> list[dict]:
    """Queries of a Charades-STA file: [{"video_id", "start", "end", "sentence"}], seconds."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: Charades-STA annotation file not found")
    queries = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line:
                continue
            head, sep, sentence = line.partition("##")
            fields = head.split()
            try:
                if not sep or len(fields) != 3:
                    raise ValueError
                start, end = float(fields[1]), float(fields[2])
            except ValueError:
                raise ValueError(
                    f"{path}:{number}: expected 'video_id start end##sentence', got {line[:80]!r}"
                ) from None
            if not end > start or start < 0:
                raise ValueError(f"{path}:{number}: need 0 <= start < end, got start={start} end={end}")
            queries.append({"video_id": fields[0], "start": start, "end": end, "sentence": sentence.strip()})
    if not queries:
        raise ValueError(f"{path}: no queries")
    return queries


def _warn_if_constant(clip_scores: np.ndarray, num_windows: int) -> None:
    if constant_scores(clip_scores):
        warnings.warn(
            f"grounding: all {len(clip_scores)} clips are equally similar to the sentence "
            f"({clip_scores[0]:.4g}), so none of the {num_windows} candidate moments can be preferred: the top "
            "moment is set by the window score's form, not by the video",
            DegenerateScoresWarning,
            stacklevel=3,
        )


def ground_sentence(
    clip_embeds: np.ndarray,
    clip_times: np.ndarray,
    sentence_embed: np.ndarray,
    window_sizes: Sequence[int] | None = None,
    nms_threshold: float = 0.5,
    top_n: int = 5,
    mode: str = DEFAULT_SCORE,
    length_prior: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Zero-shot grounding of one sentence: clip embeddings [T, D] (L2-normalised), clip times [T, 2]
    seconds, sentence embedding [D] -> the top `top_n` moments [n, 2] (seconds) after NMS and their scores.
    Warns (`DegenerateScoresWarning`) when every clip is equally similar to the sentence."""
    clip_embeds = np.asarray(clip_embeds, dtype=np.float64)
    clip_times = np.asarray(clip_times, dtype=np.float64)
    if clip_embeds.ndim != 2 or clip_times.shape != (len(clip_embeds), 2):
        raise ValueError(
            f"clip_embeds must be [T, D] and clip_times [T, 2]; got {clip_embeds.shape} and {clip_times.shape}"
        )
    clip_scores = clip_embeds @ np.asarray(sentence_embed, dtype=np.float64)  # [T]
    spans, scores = window_scores(clip_scores, clip_times, window_sizes, 1, mode, length_prior)
    _warn_if_constant(clip_scores, len(scores))
    keep = nms(spans, scores, nms_threshold, max_keep=top_n)
    return spans[keep], scores[keep]


def reference_metrics(
    clip_times: Sequence[np.ndarray],
    ground_truth: Sequence[Sequence[float]],
    window_sizes: Sequence[int] | None = None,
    nms_threshold: float = 0.5,
    top_n: Sequence[int] = DEFAULT_TOPN,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    seed: int = 0,
    draws: int = 50,
) -> dict[str, dict[str, float]]:
    """The two model-free rows of a grounding table, for queries whose videos have clip times
    `clip_times[q]` [N_q, 2] and ground truth `ground_truth[q]`:

    * "whole_video": the one prediction [first clip start, last clip end] (for every n).
    * "random_window": a candidate window drawn uniformly at random (the same candidates as the model).
      R@1 and mIoU are the exact expected values over the candidates; R@n for n > 1 is the mean over
      `draws` seeded draws of a random ranking of the candidates, NMS-ed like the model's.
    """
    whole = [np.asarray([[t[0, 0], t[-1, 1]]], dtype=np.float64) for t in map(np.asarray, clip_times)]
    rows = {"whole_video": grounding_metrics(whole, ground_truth, top_n, thresholds)}
    rng = np.random.default_rng(seed)
    exact: dict[str, list[float]] = {}
    sampled: dict[str, list[float]] = {}
    for times, gt in zip(clip_times, ground_truth):
        times = np.asarray(times, dtype=np.float64)
        windows = sliding_windows(len(times), window_sizes)
        spans = np.stack([times[windows[:, 0], 0], times[windows[:, 1] - 1, 1]], axis=1)
        iou = temporal_iou(spans, np.asarray(gt, dtype=np.float64)[None])[:, 0]
        exact.setdefault("mIoU", []).append(100.0 * iou.mean())
        for m in thresholds:
            exact.setdefault(f"R@1,IoU={m}", []).append(100.0 * (iou > m).mean())
        ranked = [nms(spans, rng.random(len(spans)), nms_threshold, max(top_n)) for _ in range(draws)]
        for n in top_n:
            for m in thresholds:
                hits = [float((iou[keep[:n]] > m).any()) for keep in ranked]
                sampled.setdefault(f"R@{n},IoU={m}", []).append(100.0 * np.mean(hits))
    random_row = {k: float(np.mean(v)) for k, v in sampled.items()}
    random_row.update({k: float(np.mean(v)) for k, v in exact.items()})
    rows["random_window"] = {k: random_row[k] for k in rows["whole_video"]}
    return rows


def export_clip_features(
    out_dir: str | os.PathLike, video_id: str, features: np.ndarray, clip_times: np.ndarray
) -> Path:
    """Write `<out_dir>/<video_id>.npz` (features float32 [T, D], start/end [T] seconds), atomically."""
    features = np.asarray(features, dtype=np.float32)
    clip_times = np.asarray(clip_times, dtype=np.float64)
    if features.ndim != 2 or clip_times.shape != (len(features), 2):
        raise ValueError(
            f"{video_id}: features must be [T, D] and clip_times [T, 2], got {features.shape}, {clip_times.shape}"
        )
    if not video_id or "/" in video_id or video_id.startswith("."):
        raise ValueError(f"video_id {video_id!r} is not usable as a file name")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from vidtempo.processing.atomic_files import write_atomically  # here: `processing` imports torch

    def save(temporary: Path) -> None:
        with open(temporary, "wb") as handle:  # a handle: np.savez would add ".npz" to the temporary name
            np.savez(handle, features=features, start=clip_times[:, 0], end=clip_times[:, 1])

    return write_atomically(out_dir / f"{video_id}.npz", save)


def load_clip_features(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(features [T, D], clip_times [T, 2]) from a file written by `export_clip_features`."""
    with np.load(path) as data:
        missing = {"features", "start", "end"} - set(data.files)
        if missing:
            raise ValueError(f"{path}: not a clip-feature file (missing {sorted(missing)})")
        return data["features"], np.stack([data["start"], data["end"]], axis=1)


__all__ = [
    "DEFAULT_SCORE",
    "DEFAULT_THRESHOLDS",
    "DEFAULT_TOPN",
    "SCORE_MODES",
    "export_clip_features",
    "ground_sentence",
    "grounding_metrics",
    "load_clip_features",
    "nms",
    "read_charades_sta",
    "reference_metrics",
    "score_windows",
    "sliding_windows",
    "temporal_iou",
    "window_scores",
]
