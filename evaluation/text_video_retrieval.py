"""Text–video retrieval metrics (MSR-VTT protocol, `METHODS.md` §2.4) and the MSR-VTT 1k-A CSV reader.

For a square similarity matrix `sim[i, j]` (query i, candidate j; the ground truth of query i is candidate i),
the 0-based rank of query i is the number of candidates placed before its ground truth. Ties with the
ground-truth score are resolved by `ties`:

* "mean" (default): the expectation over a uniformly random order of the tied candidates. With g candidates
  above the ground truth and e tied with it, the rank is g + U, U uniform on {0..e}, so
  R@K = 100 · mean(clip((K - g) / (e + 1), 0, 1)) and MdR / MnR use the expected rank g + e/2. A constant
  similarity matrix gives chance: R@K = 100 · K / N.
* "optimistic": the ground truth first among equals (CLIP4Clip's `compute_metrics`). It turns constant
  scores into R@1 = 100, so use it only to compare with numbers computed that way.
* "pessimistic": the ground truth last among equals.

Then R@K = 100 · mean(rank < K), MdR = median(rank) + 1, MnR = mean(rank) + 1. Scores whose ground truth is
mostly tied raise a `DegenerateScoresWarning`.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from .degenerate import warn_if_mostly_tied

TIE_MODES = ("mean", "optimistic", "pessimistic")


def _tie_counts(similarity: np.ndarray, ties: str) -> tuple[np.ndarray, np.ndarray]:
    """Per query: candidates scored above its ground truth, and other candidates tied with it."""
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1] or sim.shape[0] == 0:
        raise ValueError(f"similarity must be a non-empty square [N, N] matrix, got shape {sim.shape}")
    if not np.isfinite(sim).all():
        raise ValueError("similarity contains NaN or infinite values")
    if ties not in TIE_MODES:
        raise ValueError(f"ties must be one of {TIE_MODES}, got {ties!r}")
    target = np.diag(sim)[:, None]  # [N, 1]
    greater = (sim > target).sum(1)  # [N]
    equal = (sim == target).sum(1) - 1  # other candidates tied with the ground truth
    return greater.astype(np.float64), equal.astype(np.float64)


def retrieval_ranks(similarity: np.ndarray, ties: str = "mean") -> np.ndarray:
    """0-based rank [N] of each query's ground truth (the diagonal) among the candidates of its row
    ("mean": the expected rank under a random order of the tied candidates)."""
    greater, equal = _tie_counts(similarity, ties)
    if ties == "optimistic":
        return greater
    if ties == "pessimistic":
        return greater + equal
    return greater + equal / 2.0


def metrics_from_ranks(ranks: np.ndarray, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """R@K (percent), MdR and MnR (1-based) from 0-based ranks."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.ndim != 1 or ranks.size == 0:
        raise ValueError(f"ranks must be a non-empty 1-D array, got shape {ranks.shape}")
    out = {f"R@{k}": float(100.0 * np.mean(ranks < k)) for k in ks}
    out["MdR"] = float(np.median(ranks) + 1)
    out["MnR"] = float(np.mean(ranks) + 1)
    return out


def _direction_metrics(similarity: np.ndarray, ks: tuple[int, ...], ties: str, what: str) -> dict[str, float]:
    greater, equal = _tie_counts(similarity, ties)
    warn_if_mostly_tied(float(np.mean(equal > 0)), what, stacklevel=3)
    out = metrics_from_ranks(retrieval_ranks(similarity, ties), ks)
    if ties == "mean":  # expected recall under a random order of the tied candidates
        for k in ks:
            out[f"R@{k}"] = float(100.0 * np.mean(np.clip((k - greater) / (equal + 1), 0.0, 1.0)))
    return out


def retrieval_metrics(
    similarity: np.ndarray, ks: tuple[int, ...] = (1, 5, 10), ties: str = "mean"
) -> dict[str, dict[str, float]]:
    """Both directions from `similarity[text i, video j]`: {"t2v": {...}, "v2t": {...}}."""
    sim = np.asarray(similarity, dtype=np.float64)
    return {
        "t2v": _direction_metrics(sim, ks, ties, "text-to-video retrieval"),
        "v2t": _direction_metrics(sim.T, ks, ties, "video-to-text retrieval"),
    }


def read_msrvtt_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows (video_id, sentence) of an MSR-VTT test CSV such as `MSRVTT_JSFUSION_test.csv` (1k-A split:
    columns `key, vid_key, video_id, sentence`); only `video_id` and `sentence` are required."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: MSR-VTT CSV not found")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"video_id", "sentence"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(
                f"{path}: expected columns video_id and sentence (MSR-VTT 1k-A CSV), missing {sorted(missing)}; "
                f"found {reader.fieldnames}"
            )
        rows = []
        for line, row in enumerate(reader, start=2):
            if not row["video_id"] or row["sentence"] is None:
                raise ValueError(f"{path}:{line}: empty video_id or sentence")
            rows.append({"video_id": row["video_id"].strip(), "sentence": row["sentence"].strip()})
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


__all__ = ["TIE_MODES", "metrics_from_ranks", "read_msrvtt_csv", "retrieval_metrics", "retrieval_ranks"]
