"""benchmarks/_timing.py: interleaved rounds, the spread flag and the matmul references, on scripted clocks and
hand-worked shapes (no timing in the test itself)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

_SPEC = importlib.util.spec_from_file_location(
    "bench_timing", Path(__file__).resolve().parents[1] / "benchmarks" / "_timing.py"
)
timing = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(timing)


def scripted(monkeypatch, durations: list[float], loads=(1.0, 2.0)) -> None:
    """perf_counter returns start/stop pairs whose differences are `durations`; getloadavg returns `loads`."""
    clock, now = [], 0.0
    for d in durations:
        clock += [now, now + d]
        now += d + 10.0
    ticks, load_values = iter(clock), iter(loads)
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(ticks))
    monkeypatch.setattr(timing.os, "getloadavg", lambda: (next(load_values), 0.0, 0.0))


def test_measured_best_spread_and_flag_against_hand_made_times(monkeypatch):
    calls = {"a": 0, "b": 0}

    def task(name):
        def run():
            calls[name] += 1

        return run

    # rounds alternate a, b: a takes 2, 1, 3 s and b 5, 4, 6 s
    scripted(monkeypatch, [2.0, 5.0, 1.0, 4.0, 3.0, 6.0])
    result = timing.measured({"a": task("a"), "b": task("b")}, 3, "b")
    assert calls == {"a": 4, "b": 4}  # one warm-up each, then 3 rounds
    assert result["times"] == {"a": [2.0, 1.0, 3.0], "b": [5.0, 4.0, 6.0]}
    assert result["best"] == {"a": 1.0, "b": 4.0}
    assert result["spread"] == pytest.approx(6.0 / 4.0)
    assert result["disturbed"] is False  # 1.5 is on the bound, not beyond it
    assert result["load"] == (1.0, 2.0)

    scripted(monkeypatch, [2.0, 5.0, 1.0, 4.0, 3.0, 6.0])
    flagged = timing.measured({"a": task("a"), "b": task("b")}, 3, "a")
    assert flagged["spread"] == pytest.approx(3.0) and flagged["disturbed"] is True


def test_conditions_line_states_load_spread_and_flag():
    quiet = {"load": (3.04, 4.96), "spread": 1.2, "disturbed": False}
    assert timing.conditions_line(quiet, "matmul") == (
        "Load average 3.0 before, 5.0 after; matmul slowest / fastest round 1.20x (within the 1.5x bound)"
    )
    noisy = {"load": (3.0, 5.0), "spread": 2.0, "disturbed": True}
    assert "2.00x **Disturbed run" in timing.conditions_line(noisy, "matmul")


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (100, (100, 1024, 1024, 1)),  # fits in one matmul
        (8192, (8192, 1024, 1024, 1)),  # exactly the row cap
        (20_000, (6667, 1024, 1024, 3)),  # ceil(20000 / 8192) = 3 matmuls of 20000 / 3 rows
        (0.2, (1, 1024, 1024, 1)),  # at least one row
    ],
)
def test_matmul_shape_hand_worked(rows, expected):
    assert timing.matmul_shape(rows * 2 * 1024 * 1024) == expected


def test_matmul_task_runs_its_shapes_and_counts_its_flops(monkeypatch):
    seen = []
    real = torch.matmul
    monkeypatch.setattr(torch, "matmul", lambda a, b: seen.append((a.shape, b.shape)) or real(a, b))
    run, flops = timing.matmul_task(20_000 * 2 * 1024 * 1024)
    run()
    assert seen == [(torch.Size([6667, 1024]), torch.Size([1024, 1024]))] * 3
    assert flops == 2.0 * 6667 * 1024 * 1024 * 3


def test_square_matmul_task_flops():
    run, flops = timing.square_matmul_task(8)
    assert flops == 2.0 * 8**3
    assert run().shape == (8, 8)


def test_load_line():
    assert (
        timing.load_line(2.04, 3.06, "one run")
        == "Load average 2.0 before, 3.1 after; no reference (one run)"
    )
