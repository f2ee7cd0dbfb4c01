"""Average precision as the FIVR / CC_WEB_VIDEO and EVVE evaluation code define it (METHODS.md §1.5)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .degenerate import mostly_tied, warn_tied_queries

# The FIVR labels and, for each task, the labels that are its positives (METHODS.md §1.5): the one home of the
# table (`benchmarks` and the `fivr_map` metric use it from here).
FIVR_LABELS = ("ND", "DS", "CS", "IS", "DA")
FIVR_TASKS = {"DSVR": ("ND", "DS"), "CSVR": ("ND", "DS", "CS"), "ISVR": ("ND", "DS", "CS", "IS")}


def _ranked_hits(scores, relevant, num_positives: int | None) -> tuple[np.ndarray, int]:
    """0-based ranks of the relevant items after a stable descending sort, and |P|."""
    scores = np.asarray(scores, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=bool)
    if scores.shape != relevant.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and relevant {relevant.shape} must be equal-length vectors")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    found = int(relevant.sum())
    if num_positives is None:
        num_positives = found
    elif num_positives < found:
        raise ValueError(f"num_positives={num_positives} is smaller than the {found} relevant items ranked")
    order = np.argsort(-scores, kind="stable")
    return np.flatnonzero(relevant[order]), int(num_positives)


def average_precision(
    scores: Sequence[float] | np.ndarray,
    relevant: Sequence[bool] | np.ndarray,
    num_positives: int | None = None,
) -> float:
    """AP of one query: rank by descending score (ties keep input order), then
    AP = (1/|P|) * sum over the ranks k of the positives of (positives among the first k) / k.

    `scores[i]` and `relevant[i]` describe database item i. `num_positives` is |P| when some positives
    are not in the ranking (they count as never retrieved); it defaults to the number of relevant items.
    Returns 0.0 when there is no positive.
    """
    return ap_from_hit_ranks(*_ranked_hits(scores, relevant, num_positives))


def ap_from_hit_ranks(hit_ranks: np.ndarray, num_positives: int) -> float:
    """:func:`average_precision` from the increasing 0-based ranks of the relevant items found and |P|."""
    if num_positives == 0:
        return 0.0
    precisions = np.arange(1, len(hit_ranks) + 1) / (np.asarray(hit_ranks) + 1)
    return float(precisions.sum() / num_positives)


def evve_average_precision(
    scores: Sequence[float] | np.ndarray,
    relevant: Sequence[bool] | np.ndarray,
    num_positives: int | None = None,
) -> float:
    """EVVE's AP: trapezoids under the precision–recall curve, accumulated over the positives' ranks.

    The n-th positive (n = 0, 1, ...) found at 0-based rank r adds
    (1/|P|) * (p0 + p1) / 2 with p0 = n / r (1 when r = 0) and p1 = (n + 1) / (r + 1).
    """
    return evve_ap_from_hit_ranks(*_ranked_hits(scores, relevant, num_positives))


def evve_ap_from_hit_ranks(hit_ranks: np.ndarray, num_positives: int) -> float:
    """:func:`evve_average_precision` from the increasing 0-based ranks of the positives found and |P|."""
    if num_positives == 0:
        return 0.0
    found = np.arange(len(hit_ranks), dtype=np.float64)
    ranks = np.asarray(hit_ranks, dtype=np.float64)
    left = np.where(ranks == 0, 1.0, found / np.maximum(ranks, 1.0))
    right = (found + 1) / (ranks + 1)
    return float(((left + right) / 2).sum() / num_positives)


def mean_average_precision(per_query: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """mAP over `(scores, relevant)` pairs, one per query (warns when most of a query's scores are tied)."""
    if not per_query:
        raise ValueError("mean_average_precision: no queries")
    warn_tied_queries(
        [str(i) for i, (s, r) in enumerate(per_query) if mostly_tied(s, r)],
        len(per_query),
        "mean_average_precision",
    )
    return float(np.mean([average_precision(s, r) for s, r in per_query]))


def fivr_task_average_precision(
    scores: Sequence[float] | np.ndarray, labels: Sequence[str]
) -> dict[str, float | None]:
    """AP of one FIVR query for DSVR / CSVR / ISVR from the labels of its ranked database items
    (``ND``, ``DS``, ``CS``, ``IS``, ``DA`` or anything else for unrelated). None where a task has no positive."""
    labels = np.asarray([str(label).upper() for label in labels])
    out: dict[str, float | None] = {}
    for task, positive in FIVR_TASKS.items():
        relevant = np.isin(labels, positive)
        out[task] = average_precision(scores, relevant) if relevant.any() else None
    return out


def fivr_task_map(
    per_query_scores: Sequence[Sequence[float]], per_query_labels: Sequence[Sequence[str]]
) -> dict[str, float | None]:
    """FIVR mAP per task over queries (queries without a positive for a task are left out of its mean)."""
    if len(per_query_scores) != len(per_query_labels):
        raise ValueError(f"{len(per_query_scores)} score lists for {len(per_query_labels)} label lists")
    per_task: dict[str, list[float]] = {task: [] for task in FIVR_TASKS}
    tied = [
        str(i)
        for i, (s, labels) in enumerate(zip(per_query_scores, per_query_labels))
        if mostly_tied(s, np.isin([str(x).upper() for x in labels], FIVR_TASKS["ISVR"]))
    ]
    warn_tied_queries(tied, len(per_query_scores), "fivr_task_map")
    for scores, labels in zip(per_query_scores, per_query_labels):
        for task, value in fivr_task_average_precision(scores, labels).items():
            if value is not None:
                per_task[task].append(value)
    return {task: (float(np.mean(values)) if values else None) for task, values in per_task.items()}


__all__ = [
    "FIVR_LABELS",
    "FIVR_TASKS",
    "ap_from_hit_ranks",
    "average_precision",
    "evve_ap_from_hit_ranks",
    "evve_average_precision",
    "fivr_task_average_precision",
    "fivr_task_map",
    "mean_average_precision",
]
