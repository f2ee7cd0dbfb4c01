"""Average precision as the FIVR / CC_WEB_VIDEO evaluation code defines it (METHODS.md §1.5)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def average_precision(scores: Sequence[float] | np.ndarray, relevant: Sequence[bool] | np.ndarray) -> float:
    """AP of one query: rank by descending score (ties keep input order), then
    AP = (1/|P|) * sum over the ranks k of the positives of (positives among the first k) / k.

    `scores[i]` and `relevant[i]` describe database item i. Returns 0.0 when there is no positive.
    """
    scores = np.asarray(scores, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=bool)
    if scores.shape != relevant.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and relevant {relevant.shape} must be equal-length vectors")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    num_positives = int(relevant.sum())
    if num_positives == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    hits = relevant[order]
    ranks = np.flatnonzero(hits) + 1  # 1-based ranks of the positives
    return float(np.mean(np.arange(1, num_positives + 1) / ranks))


def mean_average_precision(per_query: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """mAP over `(scores, relevant)` pairs, one per query."""
    if not per_query:
        raise ValueError("mean_average_precision: no queries")
    return float(np.mean([average_precision(s, r) for s, r in per_query]))


__all__ = ["average_precision", "mean_average_precision"]
