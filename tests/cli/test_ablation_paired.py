"""`paired_bootstrap_difference`: the interval of a difference of arms, against a naive loop."""

import numpy as np
import pytest

from vidtempo.cli.ablation import BOOTSTRAP_SAMPLES, paired_bootstrap_difference


def _runs(values):
    return [{f"q{i}": float(v) for i, v in enumerate(row)} for row in values]


def test_constant_difference_has_a_zero_width_interval():
    a = _runs([[0.5, 0.7, 0.9], [0.2, 0.4, 0.6]])
    b = _runs([[0.4, 0.6, 0.8], [0.1, 0.3, 0.5]])
    d, low, high = paired_bootstrap_difference(a, b, [0, 0])
    assert (d, low, high) == pytest.approx((0.1, 0.1, 0.1))


def test_matches_a_naive_loop_over_the_same_draws():
    rng = np.random.default_rng(1)
    a_values, b_values = rng.uniform(size=(4, 9)), rng.uniform(size=(4, 9))
    groups = [0, 0, 1, 1]  # two benchmarks, two training seeds each
    d, low, high = paired_bootstrap_difference(_runs(a_values), _runs(b_values), groups)
    assert d == pytest.approx((a_values - b_values).mean())
    draw = np.random.default_rng(0)
    picks = {g: draw.integers(0, 9, size=(BOOTSTRAP_SAMPLES, 9)) for g in (0, 1)}
    # queries sorted by name: q0, q1, q2, ..., q8 (one digit each, so sorted == column order)
    naive = []
    for s in range(BOOTSTRAP_SAMPLES):
        per_run = [np.mean([a_values[r, q] - b_values[r, q] for q in picks[groups[r]][s]]) for r in range(4)]
        naive.append(np.mean(per_run))
    assert (low, high) == pytest.approx(tuple(np.percentile(naive, [2.5, 97.5])))
    assert low < d < high


def test_pairing_narrows_the_interval_of_correlated_arms():
    rng = np.random.default_rng(2)
    base = rng.uniform(size=(1, 30))
    shifted = base + 0.02 + rng.normal(0, 0.005, size=base.shape)
    _, low, high = paired_bootstrap_difference(_runs(shifted), _runs(base), [0])
    assert 0 < low < 0.02 < high < 0.04


def test_refuses_runs_on_other_queries():
    with pytest.raises(ValueError, match="different queries"):
        paired_bootstrap_difference([{"a": 1.0}], [{"b": 1.0}], [0])
    with pytest.raises(ValueError, match="as many runs"):
        paired_bootstrap_difference([{"a": 1.0}], [], [0])
