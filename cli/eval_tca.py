"""`vidtempo-eval`: evaluate a TCA model (or the no-TCA baseline) on FIVR, CC_WEB_VIDEO or EVVE.

Example::

    vidtempo-eval --benchmark fivr-5k --features descriptors/fivr --model checkpoints/tca \\
        --similarity chamfer --output results/fivr5k-chamfer

prints a table, writes ``results.json`` (ready for a model card) and ``ap_per_query.png``. The library is
`vidtempo.evaluation.tca_eval`; this module parses, prints and chooses the exit code (`cli/_contract.py`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..evaluation.benchmarks import BENCHMARKS, DEFAULT_MISSING, FIVR_ANNOTATIONS, PROTOCOL_VARIANTS
from ..evaluation.similarities import RERANK_SIMILARITIES, SIMILARITIES
from ._contract import UsageError, add_common_flags, positive, run_command

DESCRIPTION = (
    "Evaluate video retrieval on FIVR-5K/200K (DSVR/CSVR/ISVR), CC_WEB_VIDEO (4 variants) or "
    "EVVE with the published protocols. Videos are embedded full-length and deterministically."
)


def build_parser() -> argparse.ArgumentParser:
    """The `vidtempo-eval` parser."""
    parser = argparse.ArgumentParser(prog="vidtempo-eval", description=DESCRIPTION)
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
        "--cascade-depth", type=positive(int), default=100, help="candidates re-ranked per query (cascade)"
    )
    parser.add_argument(
        "--comparator",
        help="TCA_v comparator checkpoint (for --similarity comparator or --cascade-rerank comparator)",
    )
    parser.add_argument(
        "--cascade-rerank",
        choices=RERANK_SIMILARITIES,
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
    parser.add_argument("--device", default="auto", help="'auto' (cuda when available), 'cpu', 'cuda', ...")
    parser.add_argument("--seed", type=int, default=0, help="seed (evaluation itself is deterministic)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return add_common_flags(parser)


def check_args(args: argparse.Namespace) -> None:
    """Flag combinations the evaluation cannot run with, refused before any work (`UsageError`)."""
    custom = args.annotation not in FIVR_ANNOTATIONS
    if args.benchmark == "fivr" and not (custom and args.version):
        raise UsageError(
            f"--benchmark fivr (--annotation {args.annotation}): needs --annotation FILE and --version NAME"
        )
    if not args.benchmark.startswith("fivr") and args.annotation != "published":
        raise UsageError(
            f"--annotation {args.annotation} (--benchmark {args.benchmark}): --annotation applies to FIVR only"
        )
    needs = args.similarity == "comparator" or (
        args.similarity == "cascade" and args.cascade_rerank == "comparator"
    )
    if needs and not args.comparator:
        raise UsageError(
            f"--similarity {args.similarity} (--cascade-rerank {args.cascade_rerank}): needs --comparator "
            "CHECKPOINT (a TCA_v comparator)"
        )


def _body(args: argparse.Namespace) -> int:
    check_args(args)
    from ..evaluation.tca_eval import evaluate_folder, format_table, resolve_device, write_results
    from ..hub_cards.publish import model_index_entries

    result = evaluate_folder(
        args.features,
        args.benchmark,
        args.model,
        args.similarity,
        args.annotation,
        args.version,
        args.cascade_depth,
        args.missing,
        protocol=args.protocol,
        comparator=args.comparator,
        cascade_rerank=args.cascade_rerank,
        device=resolve_device(args.device),
        progress=not args.no_progress,
        seed=args.seed,
    )
    result["eval_results"] = model_index_entries([result])  # the card's entries, ready for vidtempo-publish
    results_json, plot = write_results(result, args.output)
    print(format_table(result))
    print(f"\nwrote {results_json} and {plot}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`vidtempo-eval`: exit 0 on success, 2 on a usage error, 1 on a runtime error."""
    return run_command(build_parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
