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
