"""The standalone window scorer of zero-shot grounding: inside-minus-outside for every window (the full video
included, which scores 0: its outside is taken equal to its inside), checked against a naive loop and a hand-worked example."""

import numpy as np
import pytest

from vidtempo.modeling.grounding_scoring import (
    constant_scores,
    nms,
    rank_moments,
    score_windows,
    sliding_windows,
    temporal_iou,
)


def test_window_scores_equal_a_naive_loop():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal(7)
    windows = sliding_windows(7)
    assert len(windows) == 28 and [0, 7] in windows.tolist()  # every length, the full video included
    expected = []
    for start, end in windows:
        inside = scores[start:end].mean()
        rest = np.concatenate([scores[:start], scores[end:]])
        expected.append(inside - (rest.mean() if len(rest) else inside))
    np.testing.assert_allclose(score_windows(scores, windows), expected, atol=1e-12)
    assert score_windows(scores, np.array([[0, 7]]))[0] == 0.0  # the full video is on the windows' scale


def test_ranked_moments_by_hand():
    # clips 1-2 match the sentence: window [1, 3) scores 0.9 - 0.1 = 0.8, the best of all 10 windows
    clip_scores = np.array([0.1, 0.9, 0.9, 0.1])
    times = np.array([[0, 2], [2, 4], [4, 6], [6, 8]], dtype=float)
    spans, values = rank_moments(clip_scores, times, top_n=3, nms_threshold=0.5)
    assert spans[0].tolist() == [2.0, 6.0] and values[0] == pytest.approx(0.8)
    assert (temporal_iou(spans[1:], spans[:1]) <= 0.5).all()  # NMS dropped the overlapping windows
    assert list(values) == sorted(values, reverse=True)
    assert score_windows(clip_scores, np.array([[0, 4]]))[0] == 0.0  # full video: no part stands out


def test_nms_and_degenerate_scores():
    spans = np.array([[0, 10], [1, 10], [20, 30]], dtype=float)
    assert nms(spans, np.array([0.9, 0.8, 0.1]), threshold=0.5).tolist() == [0, 2]
    assert constant_scores(np.full(5, 0.3)) and not constant_scores(np.array([0.3, 0.31]))
    with pytest.raises(ValueError, match="clip_times must be"):
        rank_moments(np.zeros(3), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="num_clips must be positive"):
        sliding_windows(0)
