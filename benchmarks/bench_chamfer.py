"""One query's frame-level similarity at realistic lengths against the same-FLOPs matmul, measured interleaved:
`frame_level_similarities` (the path of `vidtempo-eval --similarity chamfer`) and the cascade's re-ranking
(`VideoIndex.search(..., rerank=...)`, float16 frames from the on-disk store), a naive per-video loop, a
`torch.matmul` of exactly the same FLOPs and a 2048^3 matmul, alternated over rounds, best of each. Also bf16
autocast for the key encoding of a TCA training step: time and accuracy cost. Writes docs/bench/chamfer.md.

    .venv/bin/python benchmarks/bench_chamfer.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch
from _timing import conditions_line, measured, write_report  # noqa: E402  (sibling module)

from vidtempo.evaluation.embedding import frame_level_similarities
from vidtempo.modeling import TCAConfig, TCAModel
from vidtempo.search.index import VideoIndex

ROOT = Path(__file__).resolve().parents[1]
DIM, QUERY_FRAMES, TARGET = 1024, 120, 0.70


def unit(rng, n):
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def chamfer_section(num_videos: int, rounds: int, rng, lines: list[str]) -> None:
    lengths = rng.integers(30, 241, num_videos)
    database = [torch.from_numpy(unit(rng, int(n)).astype(np.float16).astype(np.float32)) for n in lengths]
    query = torch.from_numpy(unit(rng, QUERY_FRAMES))
    flat = torch.cat(database)  # [sum Fd, d]: the same FLOPs in one matmul
    flops = 2.0 * QUERY_FRAMES * int(lengths.sum()) * DIM
    square = torch.randn(2048, 2048)
    subset = min(num_videos, 100)
    with tempfile.TemporaryDirectory() as tmp:
        index = VideoIndex(tmp, DIM)
        index.add([f"v{i}" for i in range(num_videos)], torch.stack([f.mean(0) for f in database]), database)
        index.save()
        index = VideoIndex.load(tmp)
        video_query = query.mean(0, keepdim=True)

        def naive():
            return [float((query @ database[i].T).amax(1).mean()) for i in range(subset)]

        result = measured(
            {
                "same-FLOPs matmul": lambda: torch.matmul(query, flat.T),
                "2048^3 matmul": lambda: torch.matmul(square, square),
                "frame_level_similarities": lambda: frame_level_similarities([query], database),
                "cascade re-rank (VideoIndex.search, rerank = all)": lambda: index.search(
                    video_query, 10, rerank=num_videos, query_frames=[query]
                ),
                "cosine part of that search": lambda: index.search(video_query, num_videos),
                "naive loop": naive,
            },
            rounds,
            "same-FLOPs matmul",
        )
    best = result["best"]
    best["naive loop"] *= num_videos / subset
    rerank_only = (
        best["cascade re-rank (VideoIndex.search, rerank = all)"] - best["cosine part of that search"]
    )
    peak = flops / best["same-FLOPs matmul"]
    lines += [
        f"### One query ({QUERY_FRAMES} frames) against {num_videos} videos of 30-240 frames, d = {DIM} (float32 compute)",
        "",
        f"{rounds} interleaved rounds, best of each. " + conditions_line(result, "same-FLOPs matmul") + ".",
        "",
        "| method | time | GFLOP/s | share of the same-FLOPs matmul |",
        "| --- | ---: | ---: | ---: |",
    ]
    rows = [
        ("torch.matmul of the same FLOPs (reference)", best["same-FLOPs matmul"]),
        ("torch.matmul 2048^3 (machine peak)", None),
        (
            "`frame_level_similarities` (`vidtempo-eval --similarity chamfer`)",
            best["frame_level_similarities"],
        ),
        (
            "cascade re-ranking (search with rerank minus its cosine part; float16 frames from disk)",
            rerank_only,
        ),
        ("naive loop (one matmul + max per video; timed on 100 videos, scaled)", best["naive loop"]),
    ]
    for name, seconds in rows:
        if seconds is None:
            gflops = 2.0 * 2048**3 / best["2048^3 matmul"] / 1e9
            lines.append(
                f"| {name} | {best['2048^3 matmul'] * 1e3:.1f} ms | {gflops:.1f} | {gflops / (peak / 1e9):.0%} |"
            )
            continue
        lines.append(
            f"| {name} | {seconds * 1e3:.1f} ms | {flops / seconds / 1e9:.1f} | {best['same-FLOPs matmul'] / seconds:.0%} |"
        )
    shares = (
        best["same-FLOPs matmul"] / best["frame_level_similarities"],
        best["same-FLOPs matmul"] / rerank_only,
    )
    verdict = "meets" if min(shares) >= TARGET else "misses"
    lines += [
        "",
        f"Target: one-query frame-level similarity >= {TARGET:.0%} of the same-FLOPs matmul. Evaluation path "
        f"{shares[0]:.0%}, cascade re-ranking {shares[1]:.0%}: this run {verdict} it.",
        "",
    ]


def _bf16_flags() -> str:
    """The CPU's bf16 instruction sets, from /proc/cpuinfo (Linux)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    found = [name for name in ("avx512_bf16", "amx_bf16") if name in flags]
    return ", ".join(found) or "none"


def bf16_section(num_keys: int, rounds: int, lines: list[str]) -> None:
    torch.manual_seed(0)
    model = TCAModel(TCAConfig(input_size=DIM, hidden_size=DIM, num_hidden_layers=1)).eval()
    keys = torch.randn(num_keys, 64, DIM)
    mask = torch.ones(num_keys, 64, dtype=torch.long)
    anchors = torch.nn.functional.normalize(torch.randn(64, DIM), dim=-1)

    def encode(bf16: bool):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model(frame_features=keys, attention_mask=mask).video_embeds.float()

    result = measured({"fp32": lambda: encode(False), "bf16 autocast": lambda: encode(True)}, rounds, "fp32")
    exact, fast = encode(False), encode(True)
    cosine = torch.nn.functional.cosine_similarity(exact, fast, dim=-1)
    sims_exact, sims_fast = anchors @ exact.T, anchors @ fast.T  # what the loss sees
    top_agree = (
        sims_exact.argsort(1, descending=True)[:, :16] == sims_fast.argsort(1, descending=True)[:, :16]
    )
    best = result["best"]
    lines += [
        f"### bf16 autocast for the key encoding of a training step ({num_keys} keys x 64 frames, paper TCA, CPU)",
        "",
        f"{rounds} interleaved rounds, best of each. " + conditions_line(result, "fp32") + ".",
        "",
        "| key encoding | time | speed-up |",
        "| --- | ---: | ---: |",
        f"| fp32 | {best['fp32'] * 1e3:.0f} ms | 1.00x |",
        f"| bf16 autocast | {best['bf16 autocast'] * 1e3:.0f} ms | {best['fp32'] / best['bf16 autocast']:.2f}x |",
        "",
        f"Accuracy cost (same weights and inputs): cosine between fp32 and bf16 key embeddings min "
        f"{cosine.min():.5f}, mean {cosine.mean():.5f}; anchor-key similarities (what the loss sees) differ by "
        f"at most {(sims_exact - sims_fast).abs().max():.2e}; the top-16 negatives per anchor agree in place "
        f"{top_agree.float().mean():.1%} of the time. CPU: {platform.processor() or platform.machine()}, "
        f"bf16 instructions: {_bf16_flags()} (bf16 matmuls are fast only with AVX-512 BF16 / AMX). "
        "Training uses it with `TrainConfig.bf16_keys` / `--bf16-keys` (off by default: the keys change).",
        "",
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="200 videos, 3 rounds, 128 keys")
    parser.add_argument("--out", default=str(ROOT / "docs" / "bench" / "chamfer.md"))
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    lines = [
        "## Frame-level similarity at realistic lengths, and bf16 key encoding (`benchmarks/bench_chamfer.py`)",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs (shared), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), python {platform.python_version()}; "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC.",
        "",
    ]
    chamfer_section(200 if args.quick else 800, 3 if args.quick else 5, rng, lines)
    bf16_section(128 if args.quick else 256, 3, lines)
    write_report(Path(args.out), lines)


if __name__ == "__main__":
    main()
