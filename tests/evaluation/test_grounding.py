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
    score_windows,
    sliding_window_proposals,
    temporal_iou,
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
    windows = sliding_window_proposals(3)
    assert sorted(map(tuple, windows.tolist())) == sorted([(0, 1), (1, 2), (2, 3), (0, 2), (1, 3), (0, 3)])
    assert sliding_window_proposals(5, window_sizes=[2], stride=2).tolist() == [[0, 2], [2, 4]]
    rng = np.random.default_rng(0)
    scores = rng.normal(size=7)
    windows = sliding_window_proposals(7)
    mean = score_windows(scores, windows, "mean")
    contrast = score_windows(scores, windows, "contrast")
    for (a, b), m, c in zip(windows, mean, contrast):
        inside = scores[a:b].mean()
        outside = np.concatenate([scores[:a], scores[b:]])
        assert m == pytest.approx(inside)
        assert c == pytest.approx(inside - (outside.mean() if len(outside) else 0.0))


def test_ground_sentence_finds_the_aligned_clips():
    sentence = np.array([1.0, 0.0, 0.0])
    other = np.array([0.0, 1.0, 0.0])
    clips = np.stack([other, other, sentence, sentence, sentence, other, other, other])
    times = np.stack([np.arange(8) * 0.5, np.arange(8) * 0.5 + 0.5], axis=1)
    moments, scores = ground_sentence(clips, times, sentence, mode="contrast", top_n=5)
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
