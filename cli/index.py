"""`vidtempo-index`: build or extend a VideoIndex from a descriptor folder.

Example::

    vidtempo-index --features descriptors/collection --model checkpoints/tca --index my_index

The library is `vidtempo.search.build`; this module parses, prints and chooses the exit code
(`cli/_contract.py`). `vidtempo-search` is `cli/search.py`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ._contract import UsageError, add_common_flags, positive, run_command

# `vidtempo.search.index.INDEX_TYPES`, spelled out so that `--help` imports neither faiss nor torch
# (tests/search/test_search_cli.py checks that the two agree).
INDEX_TYPES = ("flat", "ivf", "ivfpq")
BACKENDS = ("faiss", "milvus")  # `vidtempo.search.index.BACKENDS`


DESCRIPTION = (
    "Embed a descriptor folder with a TCA model and build (or resume) a searchable VideoIndex: "
    "video embeddings in FAISS (or a Milvus collection: --backend milvus), frame embeddings in a memory-mapped "
    "float16 file for chamfer re-ranking."
)


def index_parser() -> argparse.ArgumentParser:
    """The `vidtempo-index` parser."""
    parser = argparse.ArgumentParser(prog="vidtempo-index", description=DESCRIPTION)
    parser.add_argument("--features", required=True, help="descriptor folder of the collection")
    parser.add_argument("--index", required=True, help="index folder (created, or resumed if it exists)")
    parser.add_argument(
        "--model", default="none", help="TCA checkpoint folder or hub id, or 'none' (baseline)"
    )
    parser.add_argument(
        "--index-type",
        choices=INDEX_TYPES,
        default="flat",
        help="flat = exact inner product; ivf / ivfpq = approximate, for large collections",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="where the video vectors live: faiss (in the folder; default for a new index) or milvus; "
        "an existing index keeps its own",
    )
    parser.add_argument(
        "--milvus-uri",
        help="Milvus server (http://host:19530) or Milvus Lite file (PATH.db); default: Milvus Lite in "
        "INDEX/milvus.db. A token, if the server needs one, is read from MILVUS_TOKEN",
    )
    parser.add_argument("--milvus-collection", help="Milvus collection name (default: a new unique one)")
    parser.add_argument("--nlist", type=positive(int), default=1024, help="IVF lists")
    parser.add_argument("--nprobe", type=positive(int), default=32, help="IVF lists probed per query")
    parser.add_argument("--pq-m", type=positive(int), default=64, help="PQ sub-quantisers (ivfpq)")
    parser.add_argument(
        "--no-frames", action="store_true", help="do not store frame embeddings (no re-ranking)"
    )
    parser.add_argument(
        "--frame-codec",
        choices=("float16", "int8"),
        default="float16",
        help="frame store: float16, or int8 with one scale per frame (half the disk; a new index only)",
    )
    parser.add_argument(
        "--chunk-videos", type=positive(int), default=256, help="videos embedded and committed at a time"
    )
    parser.add_argument(
        "--train-size", type=positive(int), default=50_000, help="embeddings used to train IVF"
    )
    parser.add_argument("--device", default="auto", help="'auto' (cuda when available), 'cpu', 'cuda', ...")
    parser.add_argument("--seed", type=int, default=0, help="seed (FAISS k-means training)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="add to an index built with a different model file (mixes spaces unless identical)",
    )
    parser.add_argument("--no-progress", action="store_true")
    return add_common_flags(parser)


def _index(args: argparse.Namespace) -> int:
    milvus = {}
    if args.backend == "milvus":
        milvus = {
            "backend": "milvus",
            "milvus_uri": args.milvus_uri,
            "milvus_collection": args.milvus_collection,
        }
    elif args.milvus_uri or args.milvus_collection:
        raise UsageError("--milvus-uri / --milvus-collection need --backend milvus")
    elif args.backend:
        milvus = {"backend": args.backend}
    import numpy as np
    import torch

    from ..evaluation.tca_eval import load_model, resolve_device
    from ..search.build import build_index

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    device = resolve_device(args.device)
    index = build_index(
        args.features,
        args.index,
        load_model(args.model, device),
        args.model,
        args.chunk_videos,
        args.train_size,
        device,
        not args.no_progress,
        force=args.force,
        index_type=args.index_type,
        nlist=args.nlist,
        nprobe=args.nprobe,
        pq_m=args.pq_m,
        store_frames=not args.no_frames,
        frame_codec=args.frame_codec,
        **milvus,
    )
    print(
        f"{args.index}: {len(index)} videos ({index.config['backend']} {index.config['index_type']}, dim {index.dim}, "
        f"frames {'stored' if index.frames is not None else 'not stored'}); {len(index.skipped)} skipped"
    )
    return 0


def index_main(argv: Sequence[str] | None = None) -> int:
    """`vidtempo-index`: exit 0 on success, 2 on a usage error, 1 on a runtime error."""
    return run_command(index_parser(), _index, argv)


def search_main(argv: Sequence[str] | None = None) -> int:
    """`vidtempo-search` (its home is `cli/search.py`; kept here for callers of the former entry point)."""
    from .search import main

    return main(argv)


if __name__ == "__main__":
    raise SystemExit(index_main())
