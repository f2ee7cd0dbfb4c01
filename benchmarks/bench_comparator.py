"""Cost per video pair: the TCA_v comparator vs chamfer (TCA_f) vs cosine (TCA_c), measured interleaved.

    .venv/bin/python benchmarks/bench_comparator.py [--quick]

One query against a database of videos of 30-90 frames (1 fps), frame embeddings of the paper's size (1024),
inference on CPU. Each round times the three methods one after the other (interleaved, so machine load hits
all of them alike); the table gives the median over rounds of the time per query-database pair. Writes
`docs/bench/comparator.md`.
"""

import argparse
import datetime
import os
import platform
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F
from _timing import interleaved_times, write_report  # noqa: E402  (sibling module: scripts run from this folder)

from vidtempo.evaluation.embedding import frame_level_similarities
from vidtempo.modeling import TCAComparatorConfig, TCAComparatorModel, cosine_similarity

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "bench" / "comparator.md"


def measure(num_database: int, dim: int, rounds: int, seed: int = 0) -> dict[str, float]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(30, 91, (num_database,), generator=generator).tolist()
    database = [F.normalize(torch.randn(n, dim, generator=generator), dim=-1) for n in lengths]
    query = F.normalize(torch.randn(60, dim, generator=generator), dim=-1)
    query_video = F.normalize(query.mean(0, keepdim=True), dim=-1)
    database_videos = F.normalize(torch.stack([d.mean(0) for d in database]), dim=-1)
    comparator = TCAComparatorModel(TCAComparatorConfig()).eval()
    methods = {
        "cosine (TCA_c)": lambda: cosine_similarity(query_video, database_videos),
        "chamfer (TCA_f)": lambda: frame_level_similarities([query], database, "chamfer"),
        "comparator (TCA_v)": lambda: comparator.score_database(query, database, batch_size=64),
    }
    with torch.no_grad():
        times = interleaved_times(methods, rounds)
    return {name: statistics.median(values) / num_database for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    num_database, rounds = (64, 3) if args.quick else (512, 5)
    result = measure(num_database, 1024, rounds)
    chamfer = result["chamfer (TCA_f)"]
    lines = [
        "# TCA_v comparator vs chamfer vs cosine: time per video pair",
        "",
        f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads). One 60-frame query against {num_database} "
        f"videos of 30-90 frames, 1024-d; median of {rounds} interleaved rounds.",
        "",
        "| method | µs per pair | × chamfer |",
        "| --- | --- | --- |",
    ]
    for name, seconds in result.items():
        lines.append(f"| {name} | {seconds * 1e6:.1f} | {seconds / chamfer:.2f} |")
    write_report(OUTPUT, [*lines, ""])


if __name__ == "__main__":
    main()
