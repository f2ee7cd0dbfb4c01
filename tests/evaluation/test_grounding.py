"""Temporal grounding: IoU (strictly-greater boundaries), NMS, sliding windows, metrics, annotation I/O."""

import warnings
from pathlib import Path

import evaluate
import numpy as np
import pytest

from vidtempo.evaluation.degenerate import DegenerateScoresWarning
from vidtempo.evaluation.grounding import (
    export_clip_features,
    ground_sentence,
    grounding_metrics,
    load_clip_features,
    nms,
    read_charades_sta,
    reference_metrics,
    score_windows,
    sliding_windows,
    temporal_iou,
    window_scores,
)

METRICS_DIR = Path(__file__).resolve().parents[2] / "evaluation" / "metrics"


def test_temporal_iou_by_hand():
    iou = temporal_iou([[0, 4], [2, 6], [5, 7]], [[0, 4], [10, 12]])
    np.testing.assert_allclose(iou, [[1, 0], [2 / 6, 0], [0, 0]])


def test_iou_threshold_is_strictly_greater():
    gt = [[0.0, 10.0]]
    # IoU exactly 0.5 and exactly 0.7 are NOT hits at those thresholds; 0.3 is
    out = grounding_metrics([np.array([[0.0, 5.0]]), np.array([[0.0, 7.0]])], [gt[0], gt[0]], top_n=(1,))
    assert out["R@1,IoU=0.3"] == 100.0
    assert out["R@1,IoU=0.5"] == 50.0  # only the 0.7 prediction
    assert out["R@1,IoU=0.7"] == 0.0
    assert out["mIoU"] == pytest.approx(60.0)


def test_recall_at_5_uses_any_of_top_n_and_miou_top1():
    preds = [np.array([[20, 30], [0, 9]]), np.array([[0, 2]]), np.zeros((0, 2))]
    gts = [[0, 10], [0, 10], [0, 10]]
    out = grounding_metrics(preds, gts, top_n=(1, 5), thresholds=(0.5,))
    assert out["R@1,IoU=0.5"] == 0.0
    assert out["R@5,IoU=0.5"] == pytest.approx(100 / 3)  # query 0's second moment (IoU 0.9)
    assert out["mIoU"] == pytest.approx(100 * (0 + 0.2 + 0) / 3)


def test_nms_by_hand():
    spans = [[0, 4], [1, 5], [6, 8], [0, 2]]
    scores = [0.9, 0.8, 0.7, 0.6]
    # [1,5] has IoU 0.6 with [0,4] -> dropped; [0,2] has IoU exactly 0.5 -> kept (drop only when > 0.5)
    assert nms(spans, scores, 0.5).tolist() == [0, 2, 3]
    assert nms(spans, scores, 0.49).tolist() == [0, 2]
    assert nms(spans, scores, 0.5, max_keep=2).tolist() == [0, 2]
    assert nms(spans, [0.1, 0.8, 0.7, 0.6], 0.5).tolist() == [1, 2, 3]  # [0,4] suppressed by [1,5]


def test_sliding_windows_and_scores_against_loop():
    windows = sliding_windows(3)
    assert sorted(map(tuple, windows.tolist())) == sorted([(0, 1), (1, 2), (2, 3), (0, 2), (1, 3), (0, 3)])
    assert sliding_windows(5, window_sizes=[2], stride=2).tolist() == [[0, 2], [2, 4]]
    rng = np.random.default_rng(0)
    scores = rng.normal(size=7)
    windows = sliding_windows(7)
    mean = score_windows(scores, windows, "mean")
    contrast = score_windows(scores, windows, "contrast")
    prior = score_windows(scores, windows, "contrast", length_prior=0.3)
    for (a, b), m, c, p in zip(windows, mean, contrast, prior):
        inside = scores[a:b].mean()
        outside = np.concatenate([scores[:a], scores[b:]])
        expected = inside - outside.mean() if len(outside) else 0.0  # the full video scores 0 by definition
        assert m == pytest.approx(inside)
        assert c == pytest.approx(expected)
        assert p == pytest.approx(expected + 0.3 * np.log((b - a) / 7))


def test_window_scores_spans_and_shared_scale_by_hand():
    # 4 clips of 1 s, sims 1 on clips 1-2 and 0 elsewhere: in - out is 1 for the event, 0 for the full video
    sims = np.array([0.0, 1.0, 1.0, 0.0])
    times = np.stack([np.arange(4.0), np.arange(4.0) + 1], axis=1)
    spans, scores = window_scores(sims, times)
    table = {tuple(span): score for span, score in zip(spans.tolist(), scores)}
    assert table[(1.0, 3.0)] == pytest.approx(1.0)
    assert table[(0.0, 4.0)] == 0.0
    assert table[(1.0, 2.0)] == pytest.approx(1 - 1 / 3)  # in 1, out (0 + 1 + 0) / 3
    assert table[(0.0, 3.0)] == pytest.approx(2 / 3 - 0)
    assert table[(0.0, 1.0)] == pytest.approx(0 - 2 / 3)
    assert max(table, key=table.get) == (1.0, 3.0)
    with pytest.raises(ValueError, match="clip_times must be"):
        window_scores(sims, times[:3])
    with pytest.raises(ValueError, match="NaN"):
        window_scores(np.array([0.0, np.nan]), times[:2])


@pytest.mark.parametrize("seed", range(5))
def test_planted_event_ranks_first_and_mean_mode_cannot(seed):
    # a 3..6-clip event planted in noise: the contrast score's top-1 is exactly the event, whatever its length;
    # the "mean" score's top-1 is always a single clip (the fault it is kept to show)
    rng = np.random.default_rng(seed)
    n = 16
    length = int(rng.integers(3, 7))
    start = int(rng.integers(0, n - length + 1))
    sims = rng.normal(0.0, 0.05, n)
    sims[start : start + length] += 0.6
    times = np.stack([np.arange(n) * 0.5, np.arange(n) * 0.5 + 0.5], axis=1)
    sentence = np.array([1.0, 0.0])
    clips = np.stack([sims, np.sqrt(1 - np.minimum(sims**2, 1))], axis=1)  # unit vectors with these sims
    moments, _ = ground_sentence(clips, times, sentence, top_n=1)
    np.testing.assert_allclose(moments[0], [start * 0.5, (start + length) * 0.5])
    mean_top, _ = ground_sentence(clips, times, sentence, top_n=1, mode="mean")
    assert mean_top[0, 1] - mean_top[0, 0] == pytest.approx(0.5)


def test_reference_rows_by_hand():
    # 2 clips [0,1], [1,2]: candidates [0,1], [1,2], [0,2]; ground truth [0,1] -> IoUs 1, 0, 0.5
    times = [np.array([[0.0, 1.0], [1.0, 2.0]])]
    rows = reference_metrics(times, [(0.0, 1.0)], thresholds=(0.3, 0.5), top_n=(1, 5))
    assert rows["whole_video"]["mIoU"] == pytest.approx(50.0)
    assert rows["whole_video"]["R@1,IoU=0.3"] == 100.0 and rows["whole_video"]["R@1,IoU=0.5"] == 0.0
    random = rows["random_window"]
    assert random["mIoU"] == pytest.approx(100 * 1.5 / 3)
    assert random["R@1,IoU=0.3"] == pytest.approx(100 * 2 / 3)
    assert random["R@1,IoU=0.5"] == pytest.approx(100 / 3)
    # top 5 after NMS at 0.5: [0,1] and [1,2] never suppress each other, so [0,1] is always among them
    assert random["R@5,IoU=0.5"] == 100.0


def test_random_window_row_against_a_naive_loop():
    rng = np.random.default_rng(3)
    times, gts = [], []
    for _ in range(6):
        n = int(rng.integers(3, 9))
        times.append(np.stack([np.arange(n) * 2.0, np.arange(n) * 2.0 + 2.0], axis=1))
        a = float(rng.uniform(0, 2 * n - 2))
        gts.append((a, float(rng.uniform(a + 0.5, 2 * n))))
    rows = reference_metrics(times, gts, seed=7)
    expected_miou, expected_r1 = [], []
    for t, gt in zip(times, gts):
        ious = [
            temporal_iou([[t[a, 0], t[b - 1, 1]]], [gt])[0, 0]
            for a in range(len(t))
            for b in range(a + 1, len(t) + 1)
        ]
        expected_miou.append(np.mean(ious))
        expected_r1.append(np.mean(np.array(ious) > 0.5))
    assert rows["random_window"]["mIoU"] == pytest.approx(100 * np.mean(expected_miou))
    assert rows["random_window"]["R@1,IoU=0.5"] == pytest.approx(100 * np.mean(expected_r1))
    assert rows["random_window"]["R@5,IoU=0.5"] >= rows["random_window"]["R@1,IoU=0.5"]
    assert reference_metrics(times, gts, seed=7) == rows  # seeded
    whole = grounding_metrics([np.array([[t[0, 0], t[-1, 1]]]) for t in times], gts)
    assert rows["whole_video"] == whole


def test_ground_sentence_finds_the_aligned_clips():
    sentence = np.array([1.0, 0.0, 0.0])
    other = np.array([0.0, 1.0, 0.0])
    clips = np.stack([other, other, sentence, sentence, sentence, other, other, other])
    times = np.stack([np.arange(8) * 0.5, np.arange(8) * 0.5 + 0.5], axis=1)
    moments, scores = ground_sentence(clips, times, sentence, top_n=5)
    np.testing.assert_allclose(moments[0], [1.0, 2.5])
    assert (np.diff(scores) <= 0).all()
    iou = temporal_iou(moments, moments)
    assert (iou[np.triu_indices(len(moments), 1)] <= 0.5).all()  # NMS applied


@pytest.mark.parametrize("mode", ["mean", "contrast"])
def test_constant_clip_scores_warn(mode):
    # every clip equally similar to the sentence: no window can be preferred, and the caller is told so
    clips = np.tile(np.array([0.6, 0.8, 0.0]), (6, 1))
    times = np.stack([np.arange(6.0), np.arange(6.0) + 1], axis=1)
    with pytest.warns(DegenerateScoresWarning, match="all 6 clips are equally similar.*21 candidate moments"):
        ground_sentence(clips, times, np.array([1.0, 0.0, 0.0]), mode=mode)
    informative = clips.copy()
    informative[2] = [1.0, 0.0, 0.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateScoresWarning)
        ground_sentence(informative, times, np.array([1.0, 0.0, 0.0]), mode=mode)


def test_read_charades_sta(tmp_path):
    path = tmp_path / "charades_sta_test.txt"
    path.write_text("3MSZA 24.3 30.4##person turn a light on.\n\nABC12 0.00 5.50##a red square slides left\n")
    assert read_charades_sta(path) == [
        {"video_id": "3MSZA", "start": 24.3, "end": 30.4, "sentence": "person turn a light on."},
        {"video_id": "ABC12", "start": 0.0, "end": 5.5, "sentence": "a red square slides left"},
    ]
    path.write_text("3MSZA 24.3 30.4 person\n")
    with pytest.raises(ValueError, match="charades_sta_test.txt:1"):
        read_charades_sta(path)
    path.write_text("3MSZA 5 2##backwards\n")
    with pytest.raises(ValueError, match="start < end"):
        read_charades_sta(path)


def test_export_and_load_clip_features(tmp_path):
    feats = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    times = np.stack([np.arange(5.0), np.arange(5.0) + 1], axis=1)
    path = export_clip_features(tmp_path / "feats", "vid_1", feats, times)
    loaded, loaded_times = load_clip_features(path)
    np.testing.assert_array_equal(loaded, feats)
    np.testing.assert_array_equal(loaded_times, times)
    assert [p.name for p in (tmp_path / "feats").iterdir()] == ["vid_1.npz"]  # no temporary left
    with pytest.raises(ValueError, match="clip_times"):
        export_clip_features(tmp_path, "vid_2", feats, times[:3])


def test_grounding_metric_module_matches_function():
    metric = evaluate.load(str(METRICS_DIR / "grounding_recall"))
    preds = [np.array([[0.0, 5.0], [0.0, 9.0]]), np.array([[1.0, 3.0]])]
    gts = [[0.0, 10.0], [0.0, 4.0]]
    out = metric.compute(predictions=[p.ravel().tolist() for p in preds], references=gts)
    assert out == pytest.approx(grounding_metrics(preds, gts))
    # query 1: IoU exactly 0.5 at best, so only query 0 (IoU 0.9 at rank 2) counts at 0.5
    assert out["R@1,IoU=0.5"] == 0.0 and out["R@5,IoU=0.5"] == 50.0 and out["R@1,IoU=0.3"] == 100.0
