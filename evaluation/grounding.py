"""Temporal grounding with clip-level features (`METHODS.md` §2.4).

* `read_charades_sta`: the Charades-STA annotation format, one ``video_id start end##sentence`` per line.
* `temporal_iou`, `nms`: IoU of [start, end] spans (seconds) and greedy non-maximum suppression.
* `sliding_window_proposals`, `score_windows`, `window_scores`, `ground_sentence`: zero-shot grounding.
* `grounding_metrics`: R@n,IoU=m — share of queries where any of the top-n moments (after NMS) has IoU
  STRICTLY greater than m with the ground truth — and mIoU of the top-1 moment.
* `reference_metrics`: the rows every grounding table reports next to a model: the whole video and a random
  window (the untrained model is the third, computed by `locvtp_eval`).
* `export_clip_features`, `load_clip_features`: one ``<video_id>.npz`` per video (`tadn_export` writes the
  one-HDF5-per-dataset files 2D-TAN reads).

The window score (shared with the LocVTP pipelines in `modeling/`; a pure function of the per-clip
similarities ``clip_sims`` [N] and the clip times): a candidate moment is any window w of consecutive clips
(every length 1..N by default, the full video included). With ``in(w)`` the mean of ``clip_sims`` over the
clips of w and ``out(w)`` the mean over the other clips,

    score(w) = in(w) - out(w) + length_prior * log(|w| / N)        (mode "contrast", the default)

and for the full video (no clip outside) ``out := in``, so its score is ``0 + 0``: the value of a window
that is no more similar to the sentence than the rest of the video. Every window is on that one scale (a
difference of two means of the same similarities), so the full video competes like any other window and
wins only when no part of the video stands out. `length_prior` (default 0) adds a log-length term:
> 0 favours longer windows, < 0 shorter ones. Ties keep the shorter, then the earlier window first.
Mode "mean" (``in(w)`` alone) is kept for comparison only: its maximum is always a single clip (the mean of
several clips never exceeds their maximum), so it cannot rank moments longer than one clip.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .degenerate import DegenerateScoresWarning

DEFAULT_THRESHOLDS = (0.3, 0.5, 0.7)
DEFAULT_TOPN = (1, 5)
SCORE_MODES = ("contrast", "mean")
DEFAULT_SCORE = "contrast"


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


def temporal_iou(spans_a: np.ndarray, spans_b: np.ndarray) -> np.ndarray:
    """IoU [N, M] between spans [N, 2] and [M, 2] (start, end)."""
    a = np.asarray(spans_a, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(spans_b, dtype=np.float64).reshape(-1, 2)
    inter = np.clip(
        np.minimum(a[:, None, 1], b[None, :, 1]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None
    )
    union = (a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(
    spans: np.ndarray, scores: np.ndarray, threshold: float = 0.5, max_keep: int | None = None
) -> np.ndarray:
    """Indices of the spans kept by greedy NMS, best score first: a span is dropped when its IoU with an
    already kept span is greater than `threshold`. Equal scores keep the earlier span first."""
    spans = np.asarray(spans, dtype=np.float64).reshape(-1, 2)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(spans) != len(scores):
        raise ValueError(f"nms: {len(spans)} spans but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    suppressed = np.zeros(len(spans), dtype=bool)
    iou = temporal_iou(spans, spans)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        if max_keep is not None and len(keep) >= max_keep:
            break
        suppressed |= iou[i] > threshold
    return np.asarray(keep, dtype=np.int64)


def sliding_window_proposals(
    num_clips: int, window_sizes: Sequence[int] | None = None, stride: int = 1
) -> np.ndarray:
    """Candidate moments as clip ranges [P, 2] (first clip, last clip + 1): every window of consecutive clips
    whose length is in `window_sizes` (default: all lengths 1..num_clips), stepped by `stride` clips."""
    if num_clips <= 0:
        raise ValueError(f"num_clips must be positive, got {num_clips}")
    sizes = range(1, num_clips + 1) if window_sizes is None else sorted({int(w) for w in window_sizes})
    windows = [
        (start, start + size)
        for size in sizes
        if 0 < size <= num_clips
        for start in range(0, num_clips - size + 1, stride)
    ]
    if not windows:
        raise ValueError(f"no window of sizes {list(sizes)} fits {num_clips} clips")
    return np.asarray(windows, dtype=np.int64)


def score_windows(
    clip_scores: np.ndarray, windows: np.ndarray, mode: str = DEFAULT_SCORE, length_prior: float = 0.0
) -> np.ndarray:
    """Score [P] of each window [P, 2] (first clip, last clip + 1) from per-clip sentence similarities [N]:
    the module docstring's formula (mode "contrast": in - out, the full video 0; "mean": in alone), plus
    `length_prior * log(length / N)`."""
    if mode not in SCORE_MODES:
        raise ValueError(f"mode must be one of {SCORE_MODES}, got {mode!r}")
    clip_scores = np.asarray(clip_scores, dtype=np.float64).reshape(-1)
    windows = np.asarray(windows, dtype=np.int64).reshape(-1, 2)
    n = len(clip_scores)
    if n == 0:
        raise ValueError("score_windows: no clips (empty clip_scores)")
    if not np.isfinite(clip_scores).all():
        raise ValueError("score_windows: clip_scores contain NaN or inf")
    if len(windows) and (
        windows[:, 0].min() < 0 or windows[:, 1].max() > n or (windows[:, 1] <= windows[:, 0]).any()
    ):
        raise ValueError(f"score_windows: windows must satisfy 0 <= first < last + 1 <= {n}")
    cumulative = np.concatenate([[0.0], np.cumsum(clip_scores)])
    inside_sum = cumulative[windows[:, 1]] - cumulative[windows[:, 0]]
    inside_len = windows[:, 1] - windows[:, 0]
    inside = inside_sum / inside_len
    if mode == "mean":
        score = inside
    else:
        outside_len = n - inside_len
        outside = np.divide(
            cumulative[-1] - inside_sum, outside_len, out=inside.copy(), where=outside_len > 0
        )
        score = inside - outside  # the full video: outside := inside, score 0
    if length_prior:
        score = score + length_prior * np.log(inside_len / n)
    return score


def window_scores(
    clip_sims: np.ndarray,
    clip_times: np.ndarray,
    window_sizes: Sequence[int] | None = None,
    stride: int = 1,
    mode: str = DEFAULT_SCORE,
    length_prior: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Every candidate moment of one video and its score: spans [P, 2] (seconds, from `clip_times` [N, 2])
    and scores [P] (module docstring), windows ordered by length then start. Pure function of its inputs."""
    clip_sims = np.asarray(clip_sims, dtype=np.float64).reshape(-1)
    clip_times = np.asarray(clip_times, dtype=np.float64)
    if clip_times.shape != (len(clip_sims), 2):
        raise ValueError(f"clip_times must be [N, 2] for {len(clip_sims)} clips, got {clip_times.shape}")
    windows = sliding_window_proposals(len(clip_sims), window_sizes, stride)
    scores = score_windows(clip_sims, windows, mode, length_prior)
    spans = np.stack([clip_times[windows[:, 0], 0], clip_times[windows[:, 1] - 1, 1]], axis=1)
    return spans, scores


def _warn_if_constant(clip_scores: np.ndarray, num_windows: int) -> None:
    if np.ptp(clip_scores) <= 1e-9 * max(1.0, float(np.abs(clip_scores).max())):
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


def grounding_metrics(
    predictions: Sequence[np.ndarray],
    ground_truth: Sequence[Sequence[float]],
    top_n: Sequence[int] = DEFAULT_TOPN,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> dict[str, float]:
    """R@n,IoU=m (percent; IoU strictly greater than m) and mIoU (percent) of the top-1.

    `predictions[q]` holds query q's ranked moments [n_q, 2] (already after NMS, best first; may be empty);
    `ground_truth[q]` is its (start, end)."""
    if len(predictions) != len(ground_truth):
        raise ValueError(f"{len(predictions)} predictions but {len(ground_truth)} ground-truth moments")
    if not predictions:
        raise ValueError("no queries to score")
    ious = []
    for q, (pred, gt) in enumerate(zip(predictions, ground_truth)):
        pred = np.asarray(pred, dtype=np.float64).reshape(-1, 2)
        gt = np.asarray(gt, dtype=np.float64).reshape(-1)
        if gt.shape != (2,) or not gt[1] > gt[0]:
            raise ValueError(f"ground_truth[{q}] must be (start, end) with end > start, got {gt.tolist()}")
        ious.append(temporal_iou(pred, gt[None])[:, 0])  # [n_q]
    out = {}
    for n in top_n:
        for m in thresholds:
            hits = [bool((iou[:n] > m).any()) for iou in ious]
            out[f"R@{n},IoU={m}"] = float(100.0 * np.mean(hits))
    out["mIoU"] = float(100.0 * np.mean([iou[0] if len(iou) else 0.0 for iou in ious]))
    return out


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
        windows = sliding_window_proposals(len(times), window_sizes)
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
    "export_clip_features",
    "ground_sentence",
    "grounding_metrics",
    "load_clip_features",
    "nms",
    "read_charades_sta",
    "reference_metrics",
    "score_windows",
    "sliding_window_proposals",
    "temporal_iou",
    "window_scores",
]
