"""`vidtempo-eval`: evaluate a TCA model (or the no-TCA baseline) on FIVR, CC_WEB_VIDEO or EVVE.

Example::

    vidtempo-eval --benchmark fivr-5k --features descriptors/fivr --model checkpoints/tca \\
        --similarity chamfer --output results/fivr5k-chamfer

prints a table, writes ``results.json`` (ready for a model card) and ``ap_per_query.png``.

The defaults reproduce the published evaluators (TCA / ViSiL / DnS / S2VS) exactly: ``--protocol reference``
with the annotation the published tables used. ``--protocol strict`` never ranks a query against itself nor
counts it as its own positive, counts every video once and missing positives as misses; ``--missing``
overrides the missing-video rule alone; ``--annotation official`` uses the FIVR-200K dataset's own
annotation file. ``results.json`` names the protocol and counts the queries and database videos evaluated
and the positives without features.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from vidtempo.processing.atomic_files import write_atomically, write_json_atomic
from vidtempo.processing.descriptor_store import iter_descriptors, read_info
from vidtempo.processing.provenance import require_local_or_hub

from .benchmarks import (
    BENCHMARKS,
    DEFAULT_MISSING,
    FIVR_ANNOTATIONS,
    PROTOCOL_VARIANTS,
    SimilarityMatrix,
    benchmark_ids,
    evaluate_benchmark,
)
from .embedding import SIMILARITIES, VideoEmbeddings, compute_similarities, embed_descriptors

SIMILARITY_NAMES = {
    "cosine": "TCA_c",
    "chamfer": "TCA_f",
    "symmetric_chamfer": "TCA_sym",
    "cascade": "cascade",
    "comparator": "TCA_v",
}


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
        print(f"vidtempo-eval: skipped {item['video_id']}: {item['error']}", file=sys.stderr)
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


def eval_results_for_card(result: dict) -> list[dict]:
    """`huggingface_hub.EvalResult` keyword sets, one per metric (a non-reference protocol is named in the
    metric name)."""
    label = protocol_label(result)
    suffix = "" if label == "reference" else f"; {label}"
    return [
        {
            "task_type": "video-retrieval",
            "dataset_type": result["benchmark"],
            "dataset_name": result["benchmark"].upper(),
            "metric_type": "map",
            "metric_name": f"{name} mAP ({SIMILARITY_NAMES.get(result.get('similarity'), result.get('similarity'))}"
            f"{suffix})",
            "metric_value": round(value, 4),
        }
        for name, value in result["metrics"].items()
        if value is not None and "/" not in name
    ]


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidtempo-eval",
        description="Evaluate video retrieval on FIVR-5K/200K (DSVR/CSVR/ISVR), CC_WEB_VIDEO (4 variants) or "
        "EVVE with the published protocols. Videos are embedded full-length and deterministically.",
    )
    parser.add_argument(
        "--benchmark",
        choices=[*BENCHMARKS, "fivr"],
        required=True,
        help="benchmark protocol; 'fivr' with --annotation FILE/--version for a custom FIVR-schema file",
    )
    parser.add_argument(
        "--annotation",
        "--annotations",
        dest="annotation",
        default="published",
        help="FIVR annotation: "
        + "; ".join(f"'{k}' = {v}" for k, v in FIVR_ANNOTATIONS.items())
        + "; or a FIVR-schema JSON file (e.g. a synthetic benchmark)",
    )
    parser.add_argument(
        "--version", help="version inside --annotation FILE (default: from --benchmark, e.g. 5k)"
    )
    parser.add_argument(
        "--protocol",
        choices=PROTOCOL_VARIANTS,
        default="reference",
        help="'reference' (default) = the published TCA/ViSiL/DnS/S2VS evaluators exactly: ties keep "
        "the database order; FIVR keeps a query labelled positive for itself as an unretrievable "
        "positive; CC_WEB_VIDEO ranks the query against itself, counts its own E label and counts "
        "4_160_Y (listed twice) twice; FIVR/EVVE drop positives without features. 'strict' = the "
        "query is never ranked against itself nor its own positive, every video counts once, "
        "positives without features count as misses",
    )
    parser.add_argument("--features", required=True, help="descriptor folder (vidtempo-extract output)")
    parser.add_argument(
        "--model",
        default="none",
        help="TCA checkpoint folder or hub id, or 'none' for the baseline (mean of frame descriptors "
        "for cosine, raw descriptors for chamfer)",
    )
    parser.add_argument(
        "--similarity",
        choices=SIMILARITIES,
        default="cosine",
        help="cosine (TCA_c), chamfer (TCA_f), symmetric_chamfer (TCA_sym), comparator (TCA_v, "
        "needs --comparator) or cascade (cosine, then --cascade-rerank of the top --cascade-depth)",
    )
    parser.add_argument(
        "--cascade-depth", type=int, default=100, help="candidates re-ranked per query (cascade)"
    )
    parser.add_argument(
        "--comparator",
        help="TCA_v comparator checkpoint (for --similarity comparator or --cascade-rerank comparator)",
    )
    parser.add_argument(
        "--cascade-rerank",
        choices=["chamfer", "symmetric_chamfer", "comparator"],
        default="chamfer",
        help="what re-scores the cascade's top candidates",
    )
    parser.add_argument(
        "--missing",
        choices=["drop", "miss"],
        help="positives without features: 'drop' them from P or count them as 'miss'es (default: "
        f"the protocol's rule, reference {DEFAULT_MISSING['reference']}, strict: miss)",
    )
    parser.add_argument(
        "--output", default="eval_results", help="folder for results.json and ap_per_query.png"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0, help="seed (evaluation itself is deterministic)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    custom = args.annotation not in FIVR_ANNOTATIONS
    if args.benchmark == "fivr" and not (custom and args.version):
        raise SystemExit("vidtempo-eval: --benchmark fivr needs --annotation FILE and --version NAME")
    if not args.benchmark.startswith("fivr") and args.annotation != "published":
        raise SystemExit(
            f"vidtempo-eval: --annotation applies to FIVR only, not to --benchmark {args.benchmark}"
        )
    torch.manual_seed(args.seed)
    queries, database = benchmark_ids(args.benchmark, args.annotation, args.version)
    model = load_model(args.model, args.device)
    needs_comparator = args.similarity == "comparator" or (
        args.similarity == "cascade" and args.cascade_rerank == "comparator"
    )
    if needs_comparator and not args.comparator:
        raise SystemExit("vidtempo-eval: this similarity needs --comparator CHECKPOINT (a TCA_v comparator)")
    comparator = load_model(args.comparator, args.device) if needs_comparator else None
    embeddings = embed_folder(
        model,
        args.features,
        set(queries) | set(database),
        keep_frames=args.similarity != "cosine",
        device=args.device,
        progress=not args.no_progress,
    )
    result = evaluate_embeddings(
        embeddings,
        args.benchmark,
        args.similarity,
        args.annotation,
        args.version,
        args.cascade_depth,
        args.missing,
        progress=not args.no_progress,
        protocol=args.protocol,
        comparator=comparator,
        cascade_rerank=args.cascade_rerank,
    )
    result.update({"model": str(args.model), "features": str(args.features)})
    result["counts"]["videos_skipped_bad_descriptors"] = len(embeddings.skipped)
    result["skipped_videos"] = embeddings.skipped
    result["eval_results"] = eval_results_for_card(result)
    output = Path(args.output)
    write_json_atomic(output / "results.json", result, indent=2)
    plot_ap_per_query(result, output / "ap_per_query.png")
    print(format_table(result))
    print(f"\nwrote {output / 'results.json'} and {output / 'ap_per_query.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
