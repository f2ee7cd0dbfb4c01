"""Warnings for scores that cannot carry a ranking: a metric computed from them is set by a tie rule, not by
the model (constant similarities, an all-[UNK] text tower, empty features)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

MOSTLY_TIED = 0.5  # share of queries (retrieval) or of one query's scores (AP) that counts as mostly tied


class DegenerateScoresWarning(UserWarning):
    """The scores behind a metric are mostly tied: the number measures the tie rule, not the model."""


def warn_if_mostly_tied(
    tied_share: float, what: str, threshold: float = MOSTLY_TIED, stacklevel: int = 2
) -> bool:
    """Warn when `tied_share` (0..1) of the queries in `what` have tied scores; returns whether it warned.
    `stacklevel` counts from the caller of this function, as in `warnings.warn`."""
    if tied_share > threshold:
        warnings.warn(
            f"{what}: {tied_share:.0%} of the queries have their ground truth tied with other candidates; "
            "the metric reflects the tie rule rather than the model (constant or degenerate scores?)",
            DegenerateScoresWarning,
            stacklevel=stacklevel + 1,
        )
        return True
    return False


def _largest_tie(scores: np.ndarray) -> tuple[float, int]:
    values, counts = np.unique(scores, return_counts=True)
    k = int(counts.argmax())
    return float(values[k]), int(counts[k])


def tied_share(scores: Sequence[float] | np.ndarray) -> float:
    """Share of `scores` equal to their most common value (0.0 when empty)."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    return _largest_tie(scores)[1] / scores.size if scores.size else 0.0


def mostly_tied(
    scores: Sequence[float] | np.ndarray,
    relevant: Sequence[bool] | np.ndarray | None = None,
    share: float = MOSTLY_TIED,
) -> bool:
    """True when more than `share` of a query's (two or more) scores are one tied value and, when `relevant`
    is given, a relevant item is among them: its AP then depends on the order the scores were given in
    (ties keep it), not on the scores."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.size < 2:
        return False
    value, count = _largest_tie(scores)
    if count / scores.size <= share:
        return False
    return relevant is None or bool(np.asarray(relevant, dtype=bool)[scores == value].any())


def warn_tied_queries(tied_queries: Sequence[str], num_queries: int, where: str) -> None:
    """Warn once that `tied_queries` (of `num_queries`) have mostly tied scores."""
    if tied_queries:
        shown = ", ".join(map(str, list(tied_queries)[:5])) + (", ..." if len(tied_queries) > 5 else "")
        warnings.warn(
            f"{where}: {len(tied_queries)} of {num_queries} queries have more than {MOSTLY_TIED:.0%} of their "
            f"scores tied at one value, positives among them ({shown}); their AP reflects the order the scores "
            "were given in (ties keep it), not a ranking",
            DegenerateScoresWarning,
            stacklevel=3,
        )


__all__ = [
    "MOSTLY_TIED",
    "DegenerateScoresWarning",
    "mostly_tied",
    "tied_share",
    "warn_if_mostly_tied",
    "warn_tied_queries",
]
