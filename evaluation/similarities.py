"""The names of the video similarities (no heavy imports: the CLIs build their `--similarity` choices from here)."""

from __future__ import annotations

SIMILARITIES = ("cosine", "chamfer", "symmetric_chamfer", "cascade", "comparator")
# The paper's names of the scores, used in tables and model cards.
SIMILARITY_NAMES = {
    "cosine": "TCA_c",
    "chamfer": "TCA_f",
    "symmetric_chamfer": "TCA_sym",
    "cascade": "cascade",
    "comparator": "TCA_v",
}
RERANK_SIMILARITIES = ("chamfer", "symmetric_chamfer", "comparator")
