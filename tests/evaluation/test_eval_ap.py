"""AP definitions (FIVR / CC_WEB_VIDEO and EVVE) on hand-worked rankings, and the evaluate modules."""

from pathlib import Path

import numpy as np
import pytest

from vidtempo.evaluation.ap import (
    average_precision,
    evve_average_precision,
    fivr_task_average_precision,
    fivr_task_map,
    mean_average_precision,
)

METRICS = Path(__file__).resolve().parents[2] / "evaluation" / "metrics"


def naive_ap(scores, relevant, num_positives=None):
    """Loop over the ranking like the benchmarks' own code (float64, no numpy tricks)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # Python's sort is stable
    hits, total = 0, 0.0
    for rank, i in enumerate(order, start=1):
        if relevant[i]:
            hits += 1
            total += hits / rank
    positives = sum(bool(r) for r in relevant) if num_positives is None else num_positives
    return total / positives if positives else 0.0


def naive_evve_ap(scores, relevant, num_positives=None):
    """EVVE's score_ap_from_ranks_1, written out: trapezoids over the positives' 0-based ranks."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    ranks = [r for r, i in enumerate(order) if relevant[i]]
    nres = len(ranks) if num_positives is None else num_positives
    ap = 0.0
    for ntp, rank in enumerate(ranks):
        precision_0 = 1.0 if rank == 0 else ntp / rank
        precision_1 = (ntp + 1) / (rank + 1)
        ap += (precision_1 + precision_0) * (1.0 / nres) / 2.0
    return ap


def test_ap_hand_worked():
    # positives at ranks 1 and 3: (1/1 + 2/3) / 2
    assert average_precision([0.9, 0.8, 0.7, 0.6, 0.5], [1, 0, 1, 0, 0]) == pytest.approx(5 / 6)
    # same ranking given in another input order
    assert average_precision([0.7, 0.5, 0.9, 0.6, 0.8], [1, 0, 1, 0, 0]) == pytest.approx(5 / 6)
    # positives at ranks 2 and 4: (1/2 + 2/4) / 2
    assert average_precision([0.1, 0.9, 0.8, 0.7, 0.6], [0, 0, 1, 0, 1]) == pytest.approx(0.5)
    assert average_precision([0.3, 0.2], [0, 0]) == 0.0


def test_ap_ties_keep_input_order():
    assert average_precision([0.5, 0.5, 0.5], [0, 1, 0]) == pytest.approx(0.5)
    assert average_precision([0.5, 0.5, 0.5], [1, 0, 0]) == pytest.approx(1.0)
    assert average_precision([0.5, 0.5, 0.5], [0, 0, 1]) == pytest.approx(1 / 3)


def test_ap_missing_positives_count_as_never_retrieved():
    # 3 positives, two ranked at 1 and 3, one missing from the ranking: (1 + 2/3) / 3
    assert average_precision([0.9, 0.8, 0.7], [1, 0, 1], num_positives=3) == pytest.approx(5 / 9)
    with pytest.raises(ValueError, match="num_positives"):
        average_precision([0.9, 0.8], [1, 1], num_positives=1)


def test_evve_ap_hand_worked():
    # positives at 0-based ranks 0 and 2: (1 + 1)/2/2 + (1/2 + 2/3)/2/2
    expected = 0.5 + (0.5 + 2 / 3) / 4
    assert evve_average_precision([0.9, 0.8, 0.7], [1, 0, 1]) == pytest.approx(expected)
    # the same ranking with one more positive missing: every trapezoid is 2/3 as wide
    assert evve_average_precision([0.9, 0.8, 0.7], [1, 0, 1], num_positives=3) == pytest.approx(
        expected * 2 / 3
    )
    # perfect ranking -> 1
    assert evve_average_precision([3, 2, 1, 0], [1, 1, 1, 0]) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(5))
def test_ap_matches_naive_loops_on_random_rankings(seed):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(200), 2)  # rounding creates ties
    relevant = rng.random(200) < 0.1
    extra = int(rng.integers(0, 4))
    num = int(relevant.sum()) + extra
    assert average_precision(scores, relevant, num) == pytest.approx(
        naive_ap(list(scores), list(relevant), num)
    )
    assert evve_average_precision(scores, relevant, num) == pytest.approx(
        naive_evve_ap(list(scores), list(relevant), num)
    )


def test_ap_rejects_bad_input():
    with pytest.raises(ValueError, match="equal-length"):
        average_precision([0.1, 0.2], [1])
    with pytest.raises(ValueError, match="NaN"):
        evve_average_precision([np.nan, 0.2], [1, 0])


def test_fivr_task_ap_hand_worked():
    # ranking: "", ND, IS -> DSVR/CSVR: ND at rank 2 -> 1/2; ISVR: ND at 2, IS at 3 -> (1/2 + 2/3)/2
    out = fivr_task_average_precision([0.9, 0.5, 0.1], ["", "ND", "IS"])
    assert out == pytest.approx({"DSVR": 0.5, "CSVR": 0.5, "ISVR": 7 / 12})
    # DA is never positive; a query without CS/IS positives beyond DS keeps ISVR == DSVR
    out = fivr_task_map([[0.9, 0.5, 0.1], [0.2, 0.9, 0.1]], [["DA", "DS", ""], ["", "", "CS"]])
    assert out["DSVR"] == pytest.approx(0.5)  # second query has no DSVR positive: left out
    assert out["CSVR"] == pytest.approx((0.5 + 1 / 3) / 2)


def test_evaluate_modules_load_and_match():
    evaluate = pytest.importorskip("evaluate")
    video_map = evaluate.load(str(METRICS / "video_map"))
    rng = np.random.default_rng(0)
    predictions = [list(rng.random(30)) for _ in range(4)]
    references = [list((rng.random(30) < 0.3).astype(int)) for _ in range(4)]
    for definition, naive in (("fivr", naive_ap), ("evve", naive_evve_ap)):
        out = video_map.compute(predictions=predictions, references=references, ap_definition=definition)
        expected = [naive(p, r) for p, r in zip(predictions, references)]
        assert out["average_precision"] == pytest.approx(expected)
        assert out["map"] == pytest.approx(np.mean(expected))
    fivr_map = evaluate.load(str(METRICS / "fivr_map"))
    out = fivr_map.compute(predictions=[[0.9, 0.5, 0.1]], references=[["", "ND", "IS"]])
    assert out == pytest.approx({"DSVR": 0.5, "CSVR": 0.5, "ISVR": 7 / 12})


def test_all_equal_scores_follow_the_given_order_and_warn():
    """Constant scores: AP is whatever the given order makes it (1 / rank of the positive), and a warning says
    so; ties among negatives only (the positives above them) warn about nothing."""
    from vidtempo.evaluation.degenerate import DegenerateScoresWarning, mostly_tied, tied_share

    scores = [0.5, 0.5, 0.5, 0.5]
    with pytest.warns(DegenerateScoresWarning, match="2 of 2 queries"):
        value = mean_average_precision(
            [
                (np.array(scores), np.array([False, False, True, False])),
                (np.array(scores), np.array([True, False, False, False])),
            ]
        )
    assert value == pytest.approx((1 / 3 + 1) / 2)
    with pytest.warns(DegenerateScoresWarning, match="fivr_task_map: 1 of 1 queries"):
        fivr_task_map([scores], [["", "", "ND", ""]])
    assert tied_share([0.1, 0.2, 0.2, 0.3]) == 0.5 and not mostly_tied([0.1, 0.2, 0.2, 0.3])
    assert not mostly_tied([0.9, 0.8, 0.0, 0.0, 0.0], [True, True, False, False, False])
    assert mostly_tied([0.9, 0.0, 0.0, 0.0, 0.0], [True, False, True, False, False])
    assert not mostly_tied([0.4])
