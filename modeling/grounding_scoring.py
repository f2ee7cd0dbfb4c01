"""Zero-shot temporal grounding from clip-sentence similarities (METHODS.md §2.4), numpy only: the one home of the
window scoring, shipped with LocVTP repos (`pipeline_locvtp.py`) and importable by `evaluation/grounding.py`.

Every window of consecutive clips is a candidate moment (the full video included). Its score is the mean
clip-sentence similarity inside the window minus the mean outside it; the full-video window has no outside,
whose mean counts as 0 (it scores its mean). Moments are ranked after greedy temporal NMS.
"""

from collections.abc import Sequence

import numpy as np


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
    """Indices kept by greedy NMS, best score first (a span whose IoU with a kept one exceeds `threshold` is
    dropped; equal scores keep the earlier span first)."""
    spans = np.asarray(spans, dtype=np.float64).reshape(-1, 2)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(spans) != len(scores):
        raise ValueError(f"nms: {len(spans)} spans but {len(scores)} scores")
    iou = temporal_iou(spans, spans)
    suppressed = np.zeros(len(spans), dtype=bool)
    keep: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if suppressed[i]:
            continue
        keep.append(int(i))
        if max_keep is not None and len(keep) >= max_keep:
            break
        suppressed |= iou[i] > threshold
    return np.asarray(keep, dtype=np.int64)


def sliding_windows(num_clips: int, window_sizes: Sequence[int] | None = None, stride: int = 1) -> np.ndarray:
    """Clip ranges [P, 2] (first clip, last clip + 1) of every window whose length is in `window_sizes`
    (default every length 1..num_clips, so the full video is one), stepped by `stride` clips."""
    if num_clips <= 0:
        raise ValueError(f"num_clips must be positive, got {num_clips}")
    sizes = range(1, num_clips + 1) if window_sizes is None else sorted({int(w) for w in window_sizes})
    windows = [(s, s + n) for n in sizes if 0 < n <= num_clips for s in range(0, num_clips - n + 1, stride)]
    if not windows:
        raise ValueError(f"no window of sizes {list(sizes)} fits {num_clips} clips")
    return np.asarray(windows, dtype=np.int64)


def window_scores(clip_scores: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Inside-minus-outside score [P] of each window [P, 2] from per-clip similarities [T] (an empty outside
    has mean 0)."""
    clip_scores = np.asarray(clip_scores, dtype=np.float64).reshape(-1)
    windows = np.asarray(windows, dtype=np.int64).reshape(-1, 2)
    cumulative = np.concatenate([[0.0], np.cumsum(clip_scores)])
    inside_sum = cumulative[windows[:, 1]] - cumulative[windows[:, 0]]
    inside_len = windows[:, 1] - windows[:, 0]
    outside_len = len(clip_scores) - inside_len
    outside = np.divide(
        cumulative[-1] - inside_sum, outside_len, out=np.zeros(len(windows)), where=outside_len > 0
    )
    return inside_sum / inside_len - outside


def rank_moments(
    clip_scores: np.ndarray,
    clip_times: np.ndarray,
    window_sizes: Sequence[int] | None = None,
    nms_threshold: float = 0.5,
    top_n: int = 5,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-clip sentence similarities [T] and clip times [T, 2] (seconds) -> the top `top_n` moments [n, 2]
    (seconds, after NMS) and their scores [n]."""
    clip_scores = np.asarray(clip_scores, dtype=np.float64).reshape(-1)
    clip_times = np.asarray(clip_times, dtype=np.float64)
    if clip_times.shape != (len(clip_scores), 2):
        raise ValueError(f"clip_times must be [{len(clip_scores)}, 2], got {clip_times.shape}")
    windows = sliding_windows(len(clip_scores), window_sizes)
    scores = window_scores(clip_scores, windows)
    spans = np.stack([clip_times[windows[:, 0], 0], clip_times[windows[:, 1] - 1, 1]], axis=1)  # [P, 2]
    keep = nms(spans, scores, nms_threshold, max_keep=top_n)
    return spans[keep], scores[keep]


def constant_scores(clip_scores: np.ndarray) -> bool:
    """True when every clip is equally similar to the sentence (no moment can be preferred)."""
    clip_scores = np.asarray(clip_scores, dtype=np.float64)
    return bool(np.ptp(clip_scores) <= 1e-9 * max(1.0, float(np.abs(clip_scores).max())))


__all__ = ["constant_scores", "nms", "rank_moments", "sliding_windows", "temporal_iou", "window_scores"]
