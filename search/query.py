"""Searching a saved `VideoIndex` with the query videos of a descriptor folder."""

from __future__ import annotations

import os
from collections.abc import Sequence

from vidtempo.evaluation.embedding import embed_descriptors
from vidtempo.evaluation.tca_eval import load_model
from vidtempo.processing.descriptor_store import iter_descriptors

from .index import VideoIndex


def search_folder(
    index_dir: str | os.PathLike,
    features: str | os.PathLike,
    queries: Sequence[str] | None = None,
    model: str | None = None,
    k: int = 10,
    rerank: int | None = None,
    similarity: str = "chamfer",
    exclude_self: bool = False,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, list[dict]]:
    """{query id: [{"id", "score"}, ...] best first} for the videos `queries` (default: all) of the
    descriptor folder `features`, embedded with `model` (default: the TCA model the index was built with):
    cosine retrieval of `k` results, the top `rerank` re-scored by `similarity` (frame level);
    `exclude_self` drops a query's own id from its results."""
    index = VideoIndex.load(index_dir)
    model_name = model or index.config["metadata"].get("model", "none")
    tca = load_model(model_name, device)
    descriptors = [(v, f) for v, f, _ in iter_descriptors(features, queries)]
    if queries:
        found = {v for v, _ in descriptors}
        absent = [q for q in queries if q not in found]
        if absent:
            raise ValueError(f"query videos ({features}): not in the descriptor folder: {absent[:10]}")
    if not descriptors:
        raise ValueError(f"query videos ({features}): the descriptor folder holds none")
    embedded = embed_descriptors(
        tca, descriptors, keep_frames=rerank is not None, device=device, progress=progress
    )
    extra = 1 if exclude_self else 0  # one more, in case the query itself is among the results
    found_hits = index.search(
        embedded.video_embeds, k + extra, rerank and rerank + extra, embedded.frame_embeds, similarity
    )
    out = {}
    for query, result in zip(embedded.ids, found_hits):
        hits = [(i, s) for i, s in zip(result.ids, result.scores) if not (exclude_self and i == query)]
        out[query] = [{"id": i, "score": round(float(s), 6)} for i, s in hits[:k]]
    return out
