"""Text–video retrieval metrics (MSR-VTT protocol, `METHODS.md` §2.4) and the MSR-VTT 1k-A CSV reader.

For a square similarity matrix `sim[i, j]` (query i, candidate j; the ground truth of query i is candidate i),
the 0-based rank of query i is the number of candidates placed before its ground truth. Ties with the
ground-truth score are resolved by `ties`: "optimistic" (ground truth first among equals, as CLIP4Clip's
`compute_metrics` does), "pessimistic" (last) or "mean" (average position). Then

    R@K = 100 · mean(rank < K),   MdR = median(rank) + 1,   MnR = mean(rank) + 1.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

TIE_MODES = ("optimistic", "pessimistic", "mean")


def retrieval_ranks(similarity: np.ndarray, ties: str = "optimistic") -> np.ndarray:
    """0-based rank [N] of each query's ground truth (the diagonal) among the candidates of its row."""
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
    if ties == "optimistic":
        return greater.astype(np.float64)
    if ties == "pessimistic":
        return (greater + equal).astype(np.float64)
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


def retrieval_metrics(
    similarity: np.ndarray, ks: tuple[int, ...] = (1, 5, 10), ties: str = "optimistic"
) -> dict[str, dict[str, float]]:
    """Both directions from `similarity[text i, video j]`: {"t2v": {...}, "v2t": {...}}."""
    sim = np.asarray(similarity, dtype=np.float64)
    return {
        "t2v": metrics_from_ranks(retrieval_ranks(sim, ties), ks),
        "v2t": metrics_from_ranks(retrieval_ranks(sim.T, ties), ks),
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
