"""Warnings for scores that cannot carry a ranking: a metric computed from them is set by a tie rule, not by
the model (constant similarities, an all-[UNK] text tower, empty features)."""

from __future__ import annotations

import warnings

MOSTLY_TIED = 0.5  # share of queries whose ground truth ties with another candidate before we warn


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


__all__ = ["MOSTLY_TIED", "DegenerateScoresWarning", "warn_if_mostly_tied"]
