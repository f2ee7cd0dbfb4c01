"""Zero-shot temporal grounding from clip-sentence similarities (METHODS.md §2.4), numpy only: the one home of the
window score, NMS and the grounding recall. It ships with LocVTP repos (`pipeline_locvtp.py`) and with the
`grounding_recall` evaluate module; `evaluation/grounding.py` builds on it.

A candidate moment is any window w of consecutive clips (every length 1..N by default, the full video included).
With ``in(w)`` the mean clip-sentence similarity over the clips of w and ``out(w)`` the mean over the other clips,

    score(w) = in(w) - out(w) + length_prior * log(|w| / N)        (mode "contrast", the default)

and for the full video (no clip outside) ``out := in``, so it scores ``0 + 0``: the value of a window no more
similar to the sentence than the rest of the video. Every window is on that one scale (a difference of two means
of the same similarities), so the full video competes like any other window and wins only when no part of the
video stands out. `length_prior` (default 0) > 0 favours longer windows, < 0 shorter ones. Ties keep the
shorter, then the earlier window. Mode "mean" (``in(w)`` alone) is kept for comparison only: its maximum is
always a single clip (a mean never exceeds its largest term), so it cannot rank longer moments.
"""

from collections.abc import Sequence

import numpy as np

DEFAULT_THRESHOLDS = (0.3, 0.5, 0.7)
DEFAULT_TOPN = (1, 5)
SCORE_MODES = ("contrast", "mean")
DEFAULT_SCORE = "contrast"


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
    (default every length 1..num_clips, so the full video is one), ordered by length then start."""
    if num_clips <= 0:
        raise ValueError(f"num_clips must be positive, got {num_clips}")
    sizes = range(1, num_clips + 1) if window_sizes is None else sorted({int(w) for w in window_sizes})
    windows = [(s, s + n) for n in sizes if 0 < n <= num_clips for s in range(0, num_clips - n + 1, stride)]
    if not windows:
        raise ValueError(f"no window of sizes {list(sizes)} fits {num_clips} clips")
    return np.asarray(windows, dtype=np.int64)


def score_windows(
    clip_scores: np.ndarray, windows: np.ndarray, mode: str = DEFAULT_SCORE, length_prior: float = 0.0
) -> np.ndarray:
    """Score [P] of each window [P, 2] (first clip, last clip + 1) from per-clip sentence similarities [N]:
    the module docstring's formula."""
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
    and scores [P], windows ordered by length then start. A pure function of its inputs."""
    clip_sims = np.asarray(clip_sims, dtype=np.float64).reshape(-1)
    clip_times = np.asarray(clip_times, dtype=np.float64)
    if clip_times.shape != (len(clip_sims), 2):
        raise ValueError(f"clip_times must be [N, 2] for {len(clip_sims)} clips, got {clip_times.shape}")
    windows = sliding_windows(len(clip_sims), window_sizes, stride)
    scores = score_windows(clip_sims, windows, mode, length_prior)
    spans = np.stack([clip_times[windows[:, 0], 0], clip_times[windows[:, 1] - 1, 1]], axis=1)
    return spans, scores


def rank_moments(
    clip_scores: np.ndarray,
    clip_times: np.ndarray,
    window_sizes: Sequence[int] | None = None,
    nms_threshold: float = 0.5,
    top_n: int = 5,
    mode: str = DEFAULT_SCORE,
    length_prior: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-clip sentence similarities [T] and clip times [T, 2] (seconds) -> the top `top_n` moments [n, 2]
    (seconds, after NMS) and their scores [n]."""
    spans, scores = window_scores(clip_scores, clip_times, window_sizes, 1, mode, length_prior)
    keep = nms(spans, scores, nms_threshold, max_keep=top_n)
    return spans[keep], scores[keep]


def constant_scores(clip_scores: np.ndarray) -> bool:
    """True when every clip is equally similar to the sentence (no moment can be preferred)."""
    clip_scores = np.asarray(clip_scores, dtype=np.float64)
    return bool(np.ptp(clip_scores) <= 1e-9 * max(1.0, float(np.abs(clip_scores).max())))


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


__all__ = [
    "DEFAULT_SCORE",
    "DEFAULT_THRESHOLDS",
    "DEFAULT_TOPN",
    "SCORE_MODES",
    "constant_scores",
    "grounding_metrics",
    "nms",
    "rank_moments",
    "score_windows",
    "sliding_windows",
    "temporal_iou",
    "window_scores",
]
