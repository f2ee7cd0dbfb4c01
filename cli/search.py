"""`vidtempo-search`: query a VideoIndex with videos of a descriptor folder.

Example::

    vidtempo-search --index my_index --features descriptors/queries --k 10 --rerank 100

The library is `vidtempo.search.query`; this module parses, prints and chooses the exit code
(`cli/_contract.py`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ._contract import add_common_flags, positive, run_command

DESCRIPTION = (
    "Search a VideoIndex with query videos from a descriptor folder: cosine retrieval, "
    "optionally re-ranked by chamfer similarity (--rerank DEPTH)."
)


def search_parser() -> argparse.ArgumentParser:
    """The `vidtempo-search` parser."""
    parser = argparse.ArgumentParser(prog="vidtempo-search", description=DESCRIPTION)
    parser.add_argument("--index", required=True, help="index folder built by vidtempo-index")
    parser.add_argument("--features", required=True, help="descriptor folder holding the query videos")
    parser.add_argument("--queries", nargs="*", help="query video ids (default: every video in --features)")
    parser.add_argument("--model", help="TCA checkpoint (default: the one the index was built with)")
    parser.add_argument("--k", type=positive(int), default=10, help="results per query")
    parser.add_argument(
        "--rerank",
        type=positive(int, allow_zero=True),
        default=0,
        help="re-rank the top DEPTH candidates with chamfer (0: off)",
    )
    parser.add_argument(
        "--similarity",
        choices=["chamfer", "symmetric_chamfer"],
        default="chamfer",
        help="frame-level similarity used for re-ranking",
    )
    parser.add_argument(
        "--exclude-self",
        action="store_true",
        help="drop a query's own id from its results (when the queries are in the index)",
    )
    parser.add_argument("--output", help="write the results as JSON here")
    parser.add_argument("--device", default="auto", help="'auto' (cuda when available), 'cpu', 'cuda', ...")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    return add_common_flags(parser)


def _search(args: argparse.Namespace) -> int:
    import torch

    from ..evaluation.tca_eval import resolve_device
    from ..processing.atomic_files import write_json_atomic
    from ..search.query import search_folder

    torch.manual_seed(args.seed)
    rerank = args.rerank or None
    results = search_folder(
        args.index,
        args.features,
        args.queries,
        args.model,
        args.k,
        rerank,
        args.similarity,
        args.exclude_self,
        resolve_device(args.device),
        not args.no_progress,
    )
    for query, hits in results.items():
        print(f"{query}:")
        for rank, hit in enumerate(hits, start=1):
            print(f"  {rank:3d}. {hit['id']}  {hit['score']:.4f}")
    if args.output:
        write_json_atomic(
            args.output,
            {
                "index": str(args.index),
                "k": args.k,
                "rerank": rerank,
                "similarity": args.similarity if rerank else "cosine",
                "results": results,
            },
            indent=2,
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`vidtempo-search`: exit 0 on success, 2 on a usage error, 1 on a runtime error."""
    return run_command(search_parser(), _search, argv)


if __name__ == "__main__":
    raise SystemExit(main())
