"""`vidtempo-index` (build or extend a VideoIndex from a descriptor folder) and `vidtempo-search`.

Examples::

    vidtempo-index --features descriptors/collection --model checkpoints/tca --index my_index
    vidtempo-search --index my_index --features descriptors/queries --k 10 --rerank 100
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

from vidtempo.processing.atomic_files import write_json_atomic
from vidtempo.processing.descriptor_store import iter_descriptors, read_info
from vidtempo.processing.provenance import model_record, same_model

from ..evaluation.embedding import embed_descriptors
from ..evaluation.tca_eval import load_model
from ..search.index import INDEX_TYPES, VideoIndex


def _chunks(iterable, size: int):
    iterator = iter(iterable)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def build_index(
    features_dir: str | os.PathLike,
    index_dir: str | os.PathLike,
    model=None,
    model_name: str = "none",
    chunk_videos: int = 256,
    train_size: int = 50_000,
    device: str = "cpu",
    progress: bool = True,
    force: bool = False,
    **index_kwargs,
) -> VideoIndex:
    """Embed every video of a descriptor folder and add it to the index in `index_dir`, saving after
    each chunk. Videos already in the index are skipped (resume). IVF indexes are trained on the first
    `train_size` embeddings. Adding to an index built with another TCA model, or from descriptors of another
    descriptor model, is refused (the difference named) unless `force`: it would mix embedding spaces."""
    info = read_info(features_dir)
    record = model_record(model_name)
    descriptor_model = {"model": info.get("model"), "model_sha256": info.get("model_sha256")}
    index: VideoIndex | None = None
    if (Path(index_dir) / "config.json").exists():
        index = VideoIndex.load(index_dir)
        if not force:
            _check_same_space(index, record, descriptor_model, info)
    seen: set[str] = set()  # a duplicated id is indexed once (its first copy)
    skipped: list[dict] = []  # malformed videos: reported, the rest is indexed
    pending: list = []  # (ids, video embeds, frame embeds) buffered until an IVF index can be trained
    bar = tqdm(desc="indexing", unit="video", disable=not progress)
    for chunk in _chunks(iter_descriptors(features_dir), chunk_videos):
        chunk = [
            (v, f)
            for v, f, _ in chunk
            if (index is None or v not in index) and v not in seen and not seen.add(v)
        ]
        if not chunk:
            continue
        try:
            emb = embed_descriptors(
                model,
                chunk,
                keep_frames=index_kwargs.get("store_frames", True)
                if index is None
                else index.frames is not None,
                device=device,
                progress=False,
                skip_bad=True,
            )
        except ValueError as error:  # every video of the chunk was malformed
            skipped += [{"video_id": v, "error": str(error)} for v, _ in chunk]
            continue
        skipped += emb.skipped
        if index is None:
            metadata = {
                **record,
                "features": str(Path(features_dir).resolve()),
                "descriptor_dim": info["dim"],
                "descriptor_model": descriptor_model,
            }
            index = VideoIndex(index_dir, emb.video_embeds.shape[1], metadata=metadata, **index_kwargs)
        pending.append(emb)
        if not index.is_trained and sum(len(p) for p in pending) < train_size:
            continue
        if not index.is_trained:
            index.train(torch.cat([p.video_embeds for p in pending]))
        for emb in pending:
            index.add(emb.ids, emb.video_embeds, emb.frame_embeds)
            bar.update(len(emb))
        pending = []
        index.save()
    if pending:  # a collection smaller than train_size
        if not index.is_trained:
            index.train(torch.cat([p.video_embeds for p in pending]))
        for emb in pending:
            index.add(emb.ids, emb.video_embeds, emb.frame_embeds)
            bar.update(len(emb))
        index.save()
    bar.close()
    for item in skipped:
        print(f"vidtempo-index: skipped {item['video_id']}: {item['error']}", file=sys.stderr)
    if index is None:
        raise ValueError(f"{features_dir}: the descriptor folder holds no usable videos")
    index.skipped = skipped
    return index


def _check_same_space(index: VideoIndex, record: dict, descriptor_model: dict, info: dict) -> None:
    meta = index.config["metadata"]
    where = Path(index.directory) / "config.json"
    if not same_model(meta, record):
        raise ValueError(
            f"{where}: the index holds embeddings of model {meta.get('model')}, this run embeds with "
            f"{record['model']} ({'sha256 ' + record['model_sha256'][:12] + '…' if record['model_sha256'] else 'no hash'}); "
            "the two embedding spaces cannot be mixed: use another --index, or --force if they are the same model"
        )
    if meta.get("descriptor_dim") not in (None, info["dim"]):
        raise ValueError(
            f"{where}: the index was built from {meta['descriptor_dim']}-d descriptors, the features "
            f"are {info['dim']}-d"
        )
    recorded = meta.get("descriptor_model")
    if (
        recorded
        and (recorded.get("model_sha256") or descriptor_model.get("model_sha256"))
        and not same_model(recorded, descriptor_model)
    ):
        raise ValueError(
            f"{where}: the index was built from descriptors of {recorded.get('model')}, these features come from "
            f"{descriptor_model.get('model')}: use another --index, or --force if they are the same model"
        )


def index_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidtempo-index",
        description="Embed a descriptor folder with a TCA model and build (or resume) a searchable VideoIndex: "
        "video embeddings in FAISS, frame embeddings in a memory-mapped float16 file for chamfer re-ranking.",
    )
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
    parser.add_argument("--nlist", type=int, default=1024, help="IVF lists")
    parser.add_argument("--nprobe", type=int, default=32, help="IVF lists probed per query")
    parser.add_argument("--pq-m", type=int, default=64, help="PQ sub-quantisers (ivfpq)")
    parser.add_argument(
        "--no-frames", action="store_true", help="do not store frame embeddings (no re-ranking)"
    )
    parser.add_argument(
        "--chunk-videos", type=int, default=256, help="videos embedded and committed at a time"
    )
    parser.add_argument("--train-size", type=int, default=50_000, help="embeddings used to train IVF")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0, help="seed (FAISS k-means training)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="add to an index built with a different model file (mixes spaces unless identical)",
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return parser


def _run_cli(run, args) -> int:
    """Run a CLI body: library errors become one `error:` line and exit 1 (the traceback with --debug)."""
    try:
        return run(args)
    except (ValueError, FileNotFoundError, OSError) as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 1


def index_main(argv: Sequence[str] | None = None) -> int:
    return _run_cli(_index, index_parser().parse_args(argv))


def _index(args) -> int:
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    model = load_model(args.model, args.device)
    index = build_index(
        args.features,
        args.index,
        model,
        args.model,
        args.chunk_videos,
        args.train_size,
        args.device,
        not args.no_progress,
        force=args.force,
        index_type=args.index_type,
        nlist=args.nlist,
        nprobe=args.nprobe,
        pq_m=args.pq_m,
        store_frames=not args.no_frames,
    )
    print(
        f"{args.index}: {len(index)} videos ({index.config['index_type']}, dim {index.dim}, "
        f"frames {'stored' if index.frames is not None else 'not stored'}); {len(index.skipped)} skipped"
    )
    return 0


def search_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidtempo-search",
        description="Search a VideoIndex with query videos from a descriptor folder: cosine retrieval, "
        "optionally re-ranked by chamfer similarity (--rerank DEPTH).",
    )
    parser.add_argument("--index", required=True, help="index folder built by vidtempo-index")
    parser.add_argument("--features", required=True, help="descriptor folder holding the query videos")
    parser.add_argument("--queries", nargs="*", help="query video ids (default: every video in --features)")
    parser.add_argument("--model", help="TCA checkpoint (default: the one the index was built with)")
    parser.add_argument("--k", type=int, default=10, help="results per query")
    parser.add_argument(
        "--rerank", type=int, default=0, help="re-rank the top DEPTH candidates with chamfer (0: off)"
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
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return parser


def search_main(argv: Sequence[str] | None = None) -> int:
    return _run_cli(_search, search_parser().parse_args(argv))


def _search(args) -> int:
    torch.manual_seed(args.seed)
    index = VideoIndex.load(args.index)
    model_name = args.model or index.config["metadata"].get("model", "none")
    model = load_model(model_name, args.device)
    descriptors = list((v, f) for v, f, _ in iter_descriptors(args.features, args.queries))
    if args.queries:
        found = {v for v, _ in descriptors}
        absent = [q for q in args.queries if q not in found]
        if absent:
            raise SystemExit(f"vidtempo-search: queries not in {args.features}: {absent[:10]}")
    if not descriptors:
        raise SystemExit(f"vidtempo-search: no query videos in {args.features}")
    rerank = args.rerank or None
    queries = embed_descriptors(
        model, descriptors, keep_frames=rerank is not None, device=args.device, progress=not args.no_progress
    )
    extra = 1 if args.exclude_self else 0  # one more, in case the query itself is among the results
    results = index.search(
        queries.video_embeds, args.k + extra, rerank and rerank + extra, queries.frame_embeds, args.similarity
    )
    payload = {}
    for query, result in zip(queries.ids, results):
        hits = [(i, s) for i, s in zip(result.ids, result.scores) if not (args.exclude_self and i == query)]
        hits = hits[: args.k]
        payload[query] = [{"id": i, "score": round(float(s), 6)} for i, s in hits]
        print(f"{query}:")
        for rank, (video, score) in enumerate(hits, start=1):
            print(f"  {rank:3d}. {video}  {score:.4f}")
    if args.output:
        write_json_atomic(
            args.output,
            {
                "index": str(args.index),
                "k": args.k,
                "rerank": rerank,
                "similarity": args.similarity if rerank else "cosine",
                "results": payload,
            },
            indent=2,
        )
    return 0


if __name__ == "__main__":
    sys.exit(search_main())
