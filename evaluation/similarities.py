"""The names of the video similarities (no heavy imports: the CLIs build their `--similarity` choices from here)."""

from __future__ import annotations

SIMILARITIES = ("cosine", "chamfer", "symmetric_chamfer", "cascade", "comparator")
RERANK_SIMILARITIES = ("chamfer", "symmetric_chamfer", "comparator")
