"""Helpers shared by the benchmark scripts (run as `python benchmarks/bench_*.py`): timing and the report."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

from vidtempo.processing.atomic_files import write_text_atomic


def best_time(fn: Callable[[], object], repeats: int = 3, warmup: bool = True) -> float:
    """Best wall time in seconds of `repeats` calls of `fn`, after one untimed warm-up call if `warmup`."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def interleaved_times(tasks: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Wall times in seconds of each task over `rounds` rounds, the tasks alternating within a round (so a
    drift of the machine's load affects them alike), after one untimed warm-up call of each."""
    for fn in tasks.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in tasks}
    for _ in range(rounds):
        for name, fn in tasks.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def write_report(path: str | os.PathLike, lines: Sequence[str]) -> str:
    """Write the markdown section `lines` to `path` atomically (parent folders created), print it, and
    return the text."""
    text = "\n".join(lines)
    write_text_atomic(path, text)
    print(text)
    return text


SPREAD_BOUND = 1.5  # a reference whose slowest round took more than this times its fastest: a disturbed run


def measured(tasks: dict[str, Callable[[], object]], rounds: int, reference: str) -> dict:
    """`interleaved_times` of `tasks` with the load average before and after: {"best": {name: s}, "times",
    "spread" (slowest / fastest round of `reference`), "disturbed" (spread > SPREAD_BOUND), "load"}."""
    before = os.getloadavg()[0]
    times = interleaved_times(tasks, rounds)
    after = os.getloadavg()[0]
    spread = max(times[reference]) / min(times[reference])
    return {
        "best": {name: min(values) for name, values in times.items()},
        "times": times,
        "spread": spread,
        "disturbed": spread > SPREAD_BOUND,
        "load": (before, after),
    }


def conditions_line(result: dict, reference: str) -> str:
    """One sentence: the load average and the reference's spread, flagged when beyond SPREAD_BOUND."""
    before, after = result["load"]
    flag = (
        f" **Disturbed run: the reference varied beyond the {SPREAD_BOUND}x bound; its ratios are not defensible.**"
        if result["disturbed"]
        else f" (within the {SPREAD_BOUND}x bound)"
    )
    return (
        f"Load average {before:.1f} before, {after:.1f} after; {reference} slowest / fastest round "
        f"{result['spread']:.2f}x{flag}"
    )


def matmul_shape(flops: float, max_rows: int = 8192) -> tuple[int, int, int, int]:
    """(m, k, n, repeats): `repeats` float32 matmuls [m, k] @ [k, n], k = n = 1024 (the width of the package's
    embeddings), m <= `max_rows`, whose 2 m k n repeats FLOPs are closest to `flops` (at least one row)."""
    rows = max(1, round(flops / (2 * 1024 * 1024)))
    repeats = -(-rows // max_rows)
    return max(1, round(rows / repeats)), 1024, 1024, repeats


def matmul_task(flops: float) -> tuple[Callable[[], object], float]:
    """`torch.matmul` work of (about) `flops` FLOPs (see `matmul_shape`), ready to time, and its exact FLOPs."""
    import torch

    m, k, n, repeats = matmul_shape(flops)
    a, b = torch.randn(m, k), torch.randn(k, n)

    def run() -> None:
        for _ in range(repeats):
            torch.matmul(a, b)

    return run, 2.0 * m * k * n * repeats


def square_matmul_task(size: int = 2048) -> tuple[Callable[[], object], float]:
    """`torch.matmul` of two float32 size x size matrices (this machine's peak reference) and its FLOPs."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    return (lambda: torch.matmul(a, b)), 2.0 * size**3


def load_line(before: float, after: float, what: str) -> str:
    """One sentence for a measurement with no reference to interleave: the load average around it."""
    return f"Load average {before:.1f} before, {after:.1f} after; no reference ({what})"
