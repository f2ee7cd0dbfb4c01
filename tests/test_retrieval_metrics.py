"""Retrieval R@K / MdR / MnR on hand-worked examples (ties included) and against a naive sort loop."""

from pathlib import Path

import evaluate
import numpy as np
import pytest

from vidtempo.evaluation.retrieval import (
    metrics_from_ranks,
    read_msrvtt_csv,
    retrieval_metrics,
    retrieval_ranks,
)

METRICS_DIR = Path(__file__).resolve().parents[1] / "evaluation" / "metrics"

# rows: texts, columns: videos; ground truth on the diagonal
SIM = np.array([[0.5, 0.5, 0.1], [0.9, 0.2, 0.2], [0.3, 0.3, 0.3]])


def test_ranks_with_ties_worked_by_hand():
    # row 0: nothing above 0.5, one tie; row 1: 0.9 above 0.2, one tie; row 2: two ties with 0.3
    assert retrieval_ranks(SIM, "optimistic").tolist() == [0, 1, 0]
    assert retrieval_ranks(SIM, "pessimistic").tolist() == [1, 2, 2]
    assert retrieval_ranks(SIM, "mean").tolist() == [0.5, 1.5, 1.0]


def test_metrics_worked_by_hand():
    out = retrieval_metrics(SIM)
    assert out["t2v"] == pytest.approx({"R@1": 200 / 3, "R@5": 100.0, "R@10": 100.0, "MdR": 1.0, "MnR": 4 / 3})
    # columns: video 0 -> [0.5, 0.9, 0.3] rank 1; video 1 -> [0.5, 0.2, 0.3] rank 2; video 2 -> rank 0
    assert out["v2t"] == pytest.approx({"R@1": 100 / 3, "R@5": 100.0, "R@10": 100.0, "MdR": 2.0, "MnR": 2.0})
    pess = retrieval_metrics(SIM, ties="pessimistic")["t2v"]
    assert pess == pytest.approx({"R@1": 0.0, "R@5": 100.0, "R@10": 100.0, "MdR": 3.0, "MnR": 8 / 3})


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
    path.write_text("key,vid_key,video_id,sentence\nret0,msr7020,video7020,a man is singing\n"
                    "ret1,msr7021,video7021,\"a dog, running\"\n")
    rows = read_msrvtt_csv(path)
    assert rows == [{"video_id": "video7020", "sentence": "a man is singing"},
                    {"video_id": "video7021", "sentence": "a dog, running"}]
    bad = tmp_path / "bad.csv"
    bad.write_text("video,caption\nv,c\n")
    with pytest.raises(ValueError, match="bad.csv.*sentence"):
        read_msrvtt_csv(bad)
