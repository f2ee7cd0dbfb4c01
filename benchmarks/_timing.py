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
