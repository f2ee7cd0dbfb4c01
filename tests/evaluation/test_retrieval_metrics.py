"""Retrieval R@K / MdR / MnR on hand-worked examples (ties included) and against a naive sort loop."""

from pathlib import Path

import evaluate
import numpy as np
import pytest

from vidtempo.evaluation.degenerate import DegenerateScoresWarning
from vidtempo.evaluation.text_video_retrieval import (
    metrics_from_ranks,
    read_msrvtt_csv,
    retrieval_metrics,
    retrieval_ranks,
)

METRICS_DIR = Path(__file__).resolve().parents[2] / "evaluation" / "metrics"

# rows: texts, columns: videos; ground truth on the diagonal
SIM = np.array([[0.5, 0.5, 0.1], [0.9, 0.2, 0.2], [0.3, 0.3, 0.3]])


def test_ranks_with_ties_worked_by_hand():
    # row 0: nothing above 0.5, one tie; row 1: 0.9 above 0.2, one tie; row 2: two ties with 0.3
    assert retrieval_ranks(SIM, "optimistic").tolist() == [0, 1, 0]
    assert retrieval_ranks(SIM, "pessimistic").tolist() == [1, 2, 2]
    assert retrieval_ranks(SIM, "mean").tolist() == [0.5, 1.5, 1.0]


@pytest.mark.filterwarnings("ignore::vidtempo.evaluation.degenerate.DegenerateScoresWarning")
def test_metrics_worked_by_hand():
    with pytest.warns(DegenerateScoresWarning, match="text-to-video retrieval: 100%"):
        out = retrieval_metrics(SIM, ties="optimistic")
    assert out["t2v"] == pytest.approx(
        {"R@1": 200 / 3, "R@5": 100.0, "R@10": 100.0, "MdR": 1.0, "MnR": 4 / 3}
    )
    # columns: video 0 -> [0.5, 0.9, 0.3] rank 1; video 1 -> [0.5, 0.2, 0.3] rank 2; video 2 -> rank 0
    assert out["v2t"] == pytest.approx({"R@1": 100 / 3, "R@5": 100.0, "R@10": 100.0, "MdR": 2.0, "MnR": 2.0})
    pess = retrieval_metrics(SIM, ties="pessimistic")["t2v"]
    assert pess == pytest.approx({"R@1": 0.0, "R@5": 100.0, "R@10": 100.0, "MdR": 3.0, "MnR": 8 / 3})
    # the default: expected recall under a random order of the tied candidates. Row 0 holds its ground truth
    # first with probability 1/2 (one tie), row 1 never (0.9 above it), row 2 with probability 1/3 (two ties)
    mean = retrieval_metrics(SIM)["t2v"]
    assert mean == pytest.approx(
        {"R@1": 100 * (1 / 2 + 0 + 1 / 3) / 3, "R@5": 100.0, "R@10": 100.0, "MdR": 2.0, "MnR": 2.0}
    )


@pytest.mark.parametrize("n", [7, 100])
def test_constant_scores_give_chance_and_a_warning(n):
    constant = np.full((n, n), 0.25)
    with pytest.warns(DegenerateScoresWarning):
        out = retrieval_metrics(constant)
    for direction in ("t2v", "v2t"):
        for k in (1, 5, 10):
            assert out[direction][f"R@{k}"] == pytest.approx(100 * min(k, n) / n)
        assert out[direction]["MnR"] == pytest.approx((n + 1) / 2)  # the mean of ranks 1..n
    # the optimistic rule is what made constant scores look perfect; it stays an explicit option
    with pytest.warns(DegenerateScoresWarning):
        assert retrieval_metrics(constant, ties="optimistic")["v2t"]["R@1"] == 100.0


def test_mean_rule_matches_a_monte_carlo_over_tie_orders():
    rng = np.random.default_rng(3)
    sim = rng.integers(0, 4, size=(30, 30)).astype(float)  # many ties
    with pytest.warns(DegenerateScoresWarning):
        expected = retrieval_metrics(sim)["t2v"]["R@5"]
    hits = []
    for _ in range(1500):  # break ties by a random secondary key, then count naively
        noise = rng.random(sim.shape)
        hits.append(
            np.mean(
                [sorted(range(30), key=lambda j: (-sim[i, j], noise[i, j])).index(i) < 5 for i in range(30)]
            )
        )
    assert 100 * np.mean(hits) == pytest.approx(expected, abs=1.5)


def test_rank_boundaries():
    # rank 4 is inside R@5, rank 5 is not; the median of an even count averages the middle ranks
    out = metrics_from_ranks(np.array([4, 5, 0, 9]))
    assert out == pytest.approx({"R@1": 25.0, "R@5": 50.0, "R@10": 100.0, "MdR": 5.5, "MnR": 5.5})


def test_against_naive_sort_loop():
    rng = np.random.default_rng(0)
    sim = rng.normal(size=(37, 37))
    naive = []
    for i, row in enumerate(sim):
        order = sorted(range(len(row)), key=lambda j: -row[j])
        naive.append(order.index(i))
    np.testing.assert_array_equal(retrieval_ranks(sim), naive)
    ranks = np.array(naive)
    assert retrieval_metrics(sim)["t2v"]["R@5"] == pytest.approx(100 * sum(r < 5 for r in naive) / 37)
    assert retrieval_metrics(sim)["t2v"]["MdR"] == sorted(naive)[18] + 1
    assert retrieval_metrics(sim)["t2v"]["MnR"] == pytest.approx(ranks.mean() + 1)


def test_bad_input():
    with pytest.raises(ValueError, match="square"):
        retrieval_ranks(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        retrieval_ranks(np.array([[np.nan, 0], [0, 1]]))
    with pytest.raises(ValueError, match="ties"):
        retrieval_ranks(SIM, "random")


def test_metric_module_matches_function_and_reorders_references():
    metric = evaluate.load(str(METRICS_DIR / "retrieval_recall"))
    rng = np.random.default_rng(1)
    sim = rng.normal(size=(12, 12))
    expected = retrieval_metrics(sim)
    out = metric.compute(predictions=sim.tolist(), references=list(range(12)))
    assert out["t2v_R@1"] == pytest.approx(expected["t2v"]["R@1"])
    assert out["v2t_MnR"] == pytest.approx(expected["v2t"]["MnR"])
    # the same videos in another column order, references pointing at them
    perm = rng.permutation(12)
    shuffled = np.empty_like(sim)
    shuffled[:, perm] = sim
    out2 = metric.compute(predictions=shuffled.tolist(), references=perm.tolist())
    assert out2 == pytest.approx(out)


def test_read_msrvtt_csv(tmp_path):
    path = tmp_path / "MSRVTT_JSFUSION_test.csv"
    path.write_text(
        "key,vid_key,video_id,sentence\nret0,msr7020,video7020,a man is singing\n"
        'ret1,msr7021,video7021,"a dog, running"\n'
    )
    rows = read_msrvtt_csv(path)
    assert rows == [
        {"video_id": "video7020", "sentence": "a man is singing"},
        {"video_id": "video7021", "sentence": "a dog, running"},
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("video,caption\nv,c\n")
    with pytest.raises(ValueError, match="bad.csv.*sentence"):
        read_msrvtt_csv(bad)
