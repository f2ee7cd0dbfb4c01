"""Cost per video pair: the TCA_v comparator vs chamfer (TCA_f) vs cosine (TCA_c), measured interleaved.

    .venv/bin/python benchmarks/bench_comparator.py [--quick]

One query against a database of videos of 30-90 frames (1 fps), frame embeddings of the paper's size (1024),
inference on CPU. Each round times, one after the other, the three methods, a naive per-video chamfer loop
and a `torch.matmul` of the chamfer's FLOPs and shapes (the reference; `_timing.measured`), so machine load hits all of
them alike; the table gives the best round of each per query-database pair. Writes `docs/bench/comparator.md`.
"""

import argparse
import datetime
import os
import platform
from pathlib import Path

import torch
import torch.nn.functional as F
from _timing import conditions_line, measured, write_report  # noqa: E402  (sibling module)

from vidtempo.evaluation.embedding import frame_level_similarities
from vidtempo.modeling import TCAComparatorConfig, TCAComparatorModel, cosine_similarity

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "bench" / "comparator.md"
REFERENCE = "torch.matmul of the chamfer's FLOPs (reference)"


def measure(num_database: int, dim: int, rounds: int, seed: int = 0) -> tuple[dict, float]:
    """`measured` result of the methods (times for the whole database) and the chamfer's FLOPs."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(30, 91, (num_database,), generator=generator).tolist()
    database = [F.normalize(torch.randn(n, dim, generator=generator), dim=-1) for n in lengths]
    query = F.normalize(torch.randn(60, dim, generator=generator), dim=-1)
    query_video = F.normalize(query.mean(0, keepdim=True), dim=-1)
    database_videos = F.normalize(torch.stack([d.mean(0) for d in database]), dim=-1)
    comparator = TCAComparatorModel(TCAComparatorConfig()).eval()
    flops = 2.0 * len(query) * sum(lengths) * dim
    flat = torch.cat(database)  # [sum of frames, d]: the chamfer's FLOPs in one matmul of the same shapes
    methods = {
        REFERENCE: lambda: torch.matmul(query, flat.T),
        "cosine (TCA_c)": lambda: cosine_similarity(query_video, database_videos),
        "chamfer (TCA_f)": lambda: frame_level_similarities([query], database, "chamfer"),
        "naive chamfer loop (one matmul + max per video)": lambda: [
            float((query @ d.T).amax(1).mean()) for d in database
        ],
        "comparator (TCA_v)": lambda: comparator.score_database(query, database, batch_size=64),
    }
    with torch.no_grad():
        return measured(methods, rounds, REFERENCE), flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    num_database, rounds = (64, 3) if args.quick else (512, 5)
    result, flops = measure(num_database, 1024, rounds)
    best = result["best"]
    chamfer = best["chamfer (TCA_f)"]
    lines = [
        "## TCA_v comparator vs chamfer vs cosine: time per video pair (`benchmarks/bench_comparator.py`"
        + (" --quick" if args.quick else "")
        + ")",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.platform()}, "
        f"{os.cpu_count()} CPUs (shared), torch {torch.__version__} ({torch.get_num_threads()} threads). One "
        f"60-frame query against {num_database} videos of 30-90 frames, 1024-d; {rounds} interleaved rounds, best "
        "of each. " + conditions_line(result, "matmul reference") + ".",
        "",
        "| method | µs per pair | × chamfer | share of the same-FLOPs matmul (chamfer work) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, seconds in best.items():
        lines.append(
            f"| {name} | {seconds / num_database * 1e6:.1f} | {seconds / chamfer:.2f} | "
            f"{best[REFERENCE] / seconds:.0%} |"
        )
    lines += [
        "",
        f"The reference is one `torch.matmul` of the query against all database frames, the chamfer's "
        f"{flops / 1e9:.2f} GFLOP "
        f"({flops / best[REFERENCE] / 1e9:.1f} GFLOP/s); the share column is its time over each method's (for "
        "cosine and the comparator, which do other work, it only compares times).",
        "",
    ]
    write_report(OUTPUT, lines)


if __name__ == "__main__":
    main()
