"""FIVR-200K frame level measured, not extrapolated: a `VideoIndex` over all 225,960 FIVR-200K database ids with
synthetic d = 1024 frame embeddings (1 frame per second, log-normal lengths with a mean of 120 frames, 5 to 1,200)
in the compact int8 frame store (one float32 scale per frame), on this machine's disk; then the cascade (cosine
over all videos, chamfer re-ranking of the top depth read from the store) per query, with peak RSS, and disk bytes
per video against the paper's 4 KB per second for TCA_f (1024 float32 per frame). Writes docs/bench/fivr_frames.md.

    .venv/bin/python benchmarks/bench_fivr_frames.py [--quick] [--keep]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from _timing import write_report  # noqa: E402  (sibling module)

from vidtempo.evaluation.benchmarks import benchmark_ids
from vidtempo.search.index import VideoIndex

ROOT = Path(__file__).resolve().parents[1]
DIM, MEAN, SIGMA = 1024, 120.0, 0.6


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def build(folder: Path, ids: list[str], codec: str, rng, chunk: int = 2000) -> dict:
    """Index `ids` with synthetic frames (rows of a random unit-norm pool plus noise); returns sizes and time."""
    lengths = np.clip(np.rint(rng.lognormal(np.log(MEAN) - SIGMA**2 / 2, SIGMA, len(ids))), 5, 1200).astype(
        int
    )
    pool = rng.standard_normal((1 << 16, DIM), dtype=np.float32)
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    index = VideoIndex(folder, DIM, frame_codec=codec)
    start = time.perf_counter()
    for s in range(0, len(ids), chunk):
        frames = []
        for length in lengths[s : s + chunk]:
            first = int(rng.integers(0, len(pool)))
            frames.append(pool[(first + np.arange(length)) % len(pool)])
        videos = np.stack([f.mean(0) for f in frames])
        index.add(ids[s : s + chunk], videos, frames)
        if (s // chunk) % 25 == 24:  # a commit now and then (each rewrites the FAISS file)
            index.save()
    index.save()
    seconds = time.perf_counter() - start
    disk = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    frame_bytes = sum(
        (folder / name).stat().st_size
        for name in ("frames.f16", "frames.i8", "frames.scales")
        if (folder / name).exists()
    )
    return {
        "seconds": seconds,
        "disk": disk,
        "frame_bytes": frame_bytes,
        "frames": int(lengths.sum()),
        "pool": pool,
    }


def cascade(folder: Path, num_queries: int, depths: tuple[int, ...], rng) -> dict:
    """Time per query of the cascade on the saved index (first pass cold from disk, second warm)."""
    index = VideoIndex.load(folder)
    picks = rng.choice(len(index), num_queries, replace=False)
    queries = []
    for p in picks:  # a noisy copy of a database video
        f = index.frame_embeddings(index.ids[int(p)]).astype(np.float32)
        f = f + rng.standard_normal(f.shape, dtype=np.float32) * 0.01
        queries.append(f / np.linalg.norm(f, axis=1, keepdims=True))
    out = {}
    for depth in depths:
        for phase in ("cold", "warm"):
            times = []
            for q in queries:
                start = time.perf_counter()
                index.search(q.mean(0), 10, rerank=depth, query_frames=[q])
                times.append(time.perf_counter() - start)
            out[(depth, phase)] = float(np.median(times))
    start = time.perf_counter()
    for q in queries:
        index.search(q.mean(0), 10)
    out["cosine"] = (time.perf_counter() - start) / num_queries
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="5,000 videos")
    parser.add_argument("--codec", default="int8", choices=("int8", "float16"))
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--scratch", default=str(ROOT / "outputs" / "bench_fivr_frames"))
    parser.add_argument("--keep", action="store_true", help="keep the index (about 28 GB)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "bench" / "fivr_frames.md"))
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    _, database = benchmark_ids("fivr-200k")
    database = list(dict.fromkeys(database))[: 5000 if args.quick else None]
    folder = Path(args.scratch)
    shutil.rmtree(folder, ignore_errors=True)
    load_before = os.getloadavg()[0]
    built = build(folder, database, args.codec, rng)
    del built["pool"]
    rss_build = peak_rss_gib()
    result = cascade(folder, args.queries, (100, 1000), rng)
    load_after = os.getloadavg()[0]
    per_video = built["frame_bytes"] / len(database)
    per_second = built["frame_bytes"] / built["frames"]  # 1 frame per second
    lines = [
        "## FIVR-200K frame level at full size (`benchmarks/bench_fivr_frames.py`)",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs (shared; load average {load_before:.1f} before, "
        f"{load_after:.1f} after), torch {torch.__version__} ({torch.get_num_threads()} threads), python "
        f"{platform.python_version()}; {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"Index: {'the first' if args.quick else 'all'} {len(database):,} FIVR-200K database ids (real ids, synthetic embeddings), {built['frames']:,} frames "
        f"(log-normal lengths, mean {MEAN:.0f} frames = seconds at 1 fps), d = {DIM}, frame store {args.codec}; "
        f"built in {built['seconds']:.0f} s; {built['disk'] / 2**30:.1f} GiB on disk (frames "
        f"{built['frame_bytes'] / 2**30:.1f} GiB, the rest the FAISS flat index of video embeddings and the ids).",
        "",
        f"Disk per video: {per_video / 1024:.0f} KiB; per second of video {per_second / 1024:.2f} KiB "
        f"(the paper's TCA_f: 4 KB per second, 1024 float32 per frame; float16 would be 2 KiB).",
        "",
        f"Cascade per query ({args.queries} queries, each a noisy copy of a database video; median; cold = first "
        "pass, frames read from disk; warm = the same queries again):",
        "",
        "| search | cold | warm |",
        "| --- | ---: | ---: |",
        f"| cosine only (VideoIndex flat over {len(database):,}) | | {result['cosine'] * 1e3:.0f} ms |",
    ]
    for depth in (100, 1000):
        cold, warm = result[(depth, "cold")], result[(depth, "warm")]
        lines.append(f"| cascade, re-rank top {depth} | {cold * 1e3:.0f} ms | {warm * 1e3:.0f} ms |")
    lines += [
        "",
        f"Peak RSS: {rss_build:.2f} GiB while building, {peak_rss_gib():.2f} GiB after the searches (the frames stay "
        "on disk, memory-mapped).",
        "",
    ]
    write_report(Path(args.out), lines)
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
