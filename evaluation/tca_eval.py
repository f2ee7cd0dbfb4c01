"""TCA retrieval evaluation of a descriptor folder on FIVR, CC_WEB_VIDEO or EVVE (the library behind
`vidtempo-eval`, whose parser lives in `cli/eval_tca.py`).

`evaluate_folder` embeds a descriptor folder with a TCA model (or the no-TCA baseline) and runs a benchmark
protocol; `write_results` writes ``results.json`` (ready for a model card) and ``ap_per_query.png``;
`format_table` renders the result as a markdown table.

The defaults reproduce the published evaluators (TCA / ViSiL / DnS / S2VS) exactly: ``--protocol reference``
with the annotation the published tables used. ``--protocol strict`` never ranks a query against itself nor
counts it as its own positive, counts every video once and missing positives as misses; ``--missing``
overrides the missing-video rule alone; ``--annotation official`` uses the FIVR-200K dataset's own
annotation file. ``results.json`` names the protocol and counts the queries and database videos evaluated
and the positives without features.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from vidtempo.processing.atomic_files import write_atomically, write_json_atomic
from vidtempo.processing.descriptor_store import iter_descriptors, read_info
from vidtempo.processing.provenance import require_local_or_hub

from .benchmarks import (
    SimilarityMatrix,
    benchmark_ids,
    evaluate_benchmark,
)
from .embedding import VideoEmbeddings, compute_similarities, embed_descriptors

logger = logging.getLogger(__name__)


def load_model(checkpoint: str | os.PathLike | None, device: str = "cpu"):
    """A TCA model from a local folder or hub id (``trust_remote_code=True``), or ``None`` for ``none``."""
    if checkpoint is None or str(checkpoint).lower() == "none":
        return None
    from transformers import AutoModel

    import vidtempo.modeling  # noqa: F401  (registers TCA with the Auto classes for local folders)

    require_local_or_hub(str(checkpoint), "TCA model")
    model = AutoModel.from_pretrained(str(checkpoint), trust_remote_code=True)
    return model.to(device).eval()


def embed_folder(
    model,
    features_dir: str | os.PathLike,
    ids: Sequence[str] | None = None,
    keep_frames: bool = True,
    device: str = "cpu",
    progress: bool = True,
    chunk_videos: int = 1024,
) -> VideoEmbeddings:
    """Embed the videos of a descriptor folder (only `ids` when given; absent ids are simply left out).

    Streams the folder `chunk_videos` videos at a time, so only the embeddings stay in memory (video level:
    4 KB a video; frame level: 4 KB per frame in float32)."""
    read_info(features_dir)  # clear error when the folder is not a descriptor folder
    parts: list[VideoEmbeddings] = []
    skipped: list[dict] = []
    seen: set[str] = set()
    stream = ((v, f) for v, f, _ in iter_descriptors(features_dir, ids))
    bar = tqdm(desc="embedding", unit="video", disable=not progress)
    while chunk := list(itertools.islice(stream, chunk_videos)):
        chunk = [
            (v, f) for v, f in chunk if v not in seen and not seen.add(v)
        ]  # first copy of a duplicate id wins
        if chunk:
            try:
                part = embed_descriptors(
                    model, chunk, keep_frames=keep_frames, device=device, progress=False, skip_bad=True
                )
            except ValueError as error:  # every video of the chunk was malformed
                skipped += [{"video_id": v, "error": str(error)} for v, _ in chunk]
                continue
            parts.append(part)
            skipped += part.skipped
            bar.update(len(chunk))
    bar.close()
    for item in skipped:
        logger.warning("skipped %s: %s", item["video_id"], item["error"])
    if not parts:
        raise ValueError(
            f"{features_dir}: none of the requested videos has usable descriptors in this folder"
        )
    frames = [f for p in parts for f in p.frame_embeds] if keep_frames else None
    return VideoEmbeddings(
        [i for p in parts for i in p.ids], torch.cat([p.video_embeds for p in parts]), frames, skipped
    )


def evaluate_embeddings(
    embeddings: VideoEmbeddings,
    benchmark: str,
    similarity: str = "cosine",
    annotation=None,
    version: str | None = None,
    cascade_depth: int = 100,
    missing: str | None = None,
    progress: bool = False,
    protocol: str = "reference",
    comparator=None,
    cascade_rerank: str = "chamfer",
) -> dict:
    """Score the benchmark's queries against its database with `similarity` and run its protocol
    (`protocol` ``reference``: the published evaluators; ``strict``: see `benchmarks`; `comparator`: a
    TCAComparatorModel for ``comparator`` or a cascade re-ranked by it)."""
    queries, database = benchmark_ids(benchmark, annotation, version)
    present = set(embeddings.ids)
    query_ids = [q for q in queries if q in present]
    database_ids = [d for d in database if d in present]
    if not query_ids or not database_ids:
        raise ValueError(
            f"{benchmark}: {len(query_ids)} queries and {len(database_ids)} database videos have "
            "embeddings; need at least one of each"
        )
    scores = compute_similarities(
        embeddings.subset(query_ids),
        embeddings.subset(database_ids),
        similarity,
        cascade_depth,
        progress,
        comparator=comparator,
        cascade_rerank=cascade_rerank,
    )
    result = evaluate_benchmark(
        benchmark,
        SimilarityMatrix(query_ids, database_ids, scores.numpy()),
        annotation,
        version,
        missing,
        protocol,
    )
    result["similarity"] = similarity
    if similarity == "cascade":
        result["cascade_depth"] = cascade_depth
        result["cascade_rerank"] = cascade_rerank
    return result


def protocol_label(result: dict) -> str:
    """``reference`` for the published evaluators' protocol, else the variant and its missing-video rule."""
    protocol = result.get("protocol") or {}
    if not protocol or protocol.get("published_evaluator"):
        return "reference"
    return f"{protocol.get('variant')}, missing={protocol.get('missing')}"


def format_table(result: dict) -> str:
    counts = result["counts"]
    lines = [
        f"{result['benchmark']}  similarity={result.get('similarity', '?')}  protocol={protocol_label(result)}"
        + (f"  annotation={result['annotation']}" if "annotation" in result else ""),
        "",
        "| metric | mAP |",
        "| --- | --- |",
    ]
    for name, value in result["metrics"].items():
        lines.append(f"| {name} | {'n/a' if value is None else f'{value:.4f}'} |")
    lines += [
        "",
        f"queries evaluated {counts['queries_evaluated']}/{counts['queries']} (missing {counts['queries_missing']}); "
        f"database videos evaluated {counts['database_evaluated']}/{counts['database']}; positives without features "
        f"{counts['positives_missing']} ({'dropped from P' if counts['missing_mode'] == 'drop' else 'counted as misses'})",
    ]
    if counts.get("queries_mostly_tied"):
        lines.append(
            f"WARNING: {counts['queries_mostly_tied']} queries have mostly tied scores: their AP reflects "
            "the order the scores were given in, not a ranking"
        )
    return "\n".join(lines)


def plot_ap_per_query(result: dict, path: str | os.PathLike) -> Path:
    """One panel per metric: the queries' AP, sorted, with the mAP as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {name: values for name, values in result["per_query"].items() if values}
    fig, axes = plt.subplots(len(panels) or 1, 1, figsize=(8, 2.4 * max(len(panels), 1)), squeeze=False)
    for axis, (name, values) in zip(axes[:, 0], panels.items()):
        aps = np.sort(np.fromiter(values.values(), dtype=float))[::-1]
        axis.bar(np.arange(len(aps)), aps, width=1.0, color="tab:blue")
        axis.axhline(float(aps.mean()), color="tab:red", linestyle="--", label=f"mAP {aps.mean():.3f}")
        axis.set_ylim(0, 1.02)
        axis.set_ylabel(f"{name} AP")
        axis.legend(loc="lower left")
    axes[-1, 0].set_xlabel("queries (sorted by AP)")
    fig.suptitle(f"{result['benchmark']} — {result.get('similarity', '')}")
    fig.tight_layout()
    write_atomically(path, lambda temporary: fig.savefig(temporary, dpi=100, format="png"))
    plt.close(fig)
    return Path(path)


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; any other name is returned as given."""
    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def needs_comparator(similarity: str, cascade_rerank: str = "chamfer") -> bool:
    """Whether `similarity` (with the cascade's `cascade_rerank`) scores with a TCA_v comparator."""
    return similarity == "comparator" or (similarity == "cascade" and cascade_rerank == "comparator")


def evaluate_folder(
    features: str | os.PathLike,
    benchmark: str,
    model: str | os.PathLike | None = "none",
    similarity: str = "cosine",
    annotation="published",
    version: str | None = None,
    cascade_depth: int = 100,
    missing: str | None = None,
    protocol: str = "reference",
    comparator: str | os.PathLike | None = None,
    cascade_rerank: str = "chamfer",
    device: str = "cpu",
    progress: bool = True,
    seed: int = 0,
) -> dict:
    """Embed the benchmark's videos of the descriptor folder `features` with the TCA checkpoint `model`
    (``none``: the baseline) and run the benchmark's protocol (see `evaluate_embeddings`). The result names
    the model and features and counts the videos skipped for bad descriptors."""
    if needs_comparator(similarity, cascade_rerank) and not comparator:
        raise ValueError(f"similarity {similarity}: needs a TCA_v comparator checkpoint")
    torch.manual_seed(seed)
    queries, database = benchmark_ids(benchmark, annotation, version)
    tca = load_model(model, device)
    comparator_model = (
        load_model(comparator, device) if needs_comparator(similarity, cascade_rerank) else None
    )
    embeddings = embed_folder(
        tca,
        features,
        set(queries) | set(database),
        keep_frames=similarity != "cosine",
        device=device,
        progress=progress,
    )
    result = evaluate_embeddings(
        embeddings,
        benchmark,
        similarity,
        annotation,
        version,
        cascade_depth,
        missing,
        progress=progress,
        protocol=protocol,
        comparator=comparator_model,
        cascade_rerank=cascade_rerank,
    )
    result.update({"model": str(model), "features": str(features)})
    result["counts"]["videos_skipped_bad_descriptors"] = len(embeddings.skipped)
    result["skipped_videos"] = embeddings.skipped
    return result


def write_results(result: dict, output: str | os.PathLike) -> tuple[Path, Path]:
    """``results.json`` and ``ap_per_query.png`` of `result` in the folder `output` (both written atomically)."""
    output = Path(output)
    json_path = write_json_atomic(output / "results.json", result, indent=2)
    return Path(json_path), plot_ap_per_query(result, output / "ap_per_query.png")
